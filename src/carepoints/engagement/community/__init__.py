"""Community (社区): posts and answers behind a moderation queue; photo check-in tasks
(拍照打卡) with their stored photos; invite codes (推荐好友) paid when the invitee
attends a first visit."""
