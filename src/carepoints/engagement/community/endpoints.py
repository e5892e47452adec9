"""Community API: posts and answers with their moderation queue, photo check-in tasks
and photos, invite codes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import AwareDatetime

from carepoints.config import get_settings
from carepoints.engagement.community import invites, photos, posts
from carepoints.engagement.community.errors import PhotoTooLargeError
from carepoints.engagement.community.schemas import InviteAccept, PhotoTaskCreate, PostCreate, PostStatus, Reject
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["community"])


@router.post("/community/posts", status_code=201)
def create_post(body: PostCreate, p: Principal = Depends(require("engagement:write"))) -> JSON:
    """Submit a post or an answer; it waits for moderation (status `pending`)."""
    with write_tx() as session:
        return JSON(posts.create(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/community/posts")
def feed(topic: str | None = Query(None, pattern=r"^[a-z0-9_\-]{1,50}$"),
         parent_id: str | None = Query(None, min_length=1, max_length=36),
         limit: int = Query(20, ge=1, le=100), before: str | None = Query(None, min_length=1, max_length=36),
         _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """The public feed: approved posts only, newest first (answers of a post with `parent_id`)."""
    with read_tx() as session:
        return JSON(posts.feed(session, topic=topic, parent_id=parent_id, limit=limit, before=before))


@router.get("/community/posts/{post_id}")
def get_post(post_id: str, as_patient: str | None = Query(None, min_length=1, max_length=36),
             p: Principal = Depends(require("engagement:read"))) -> JSON:
    """One post; before approval only moderators and the author (`as_patient`) see it."""
    with read_tx() as session:
        return JSON(posts.read(session, post_id, moderator=p.can("moderation:write"), as_patient=as_patient))


@router.get("/moderation/posts")
def moderation_queue(status: PostStatus = PostStatus.pending, limit: int = Query(50, ge=1, le=200),
                     before: str | None = Query(None, min_length=1, max_length=36),
                     _p: Principal = Depends(require("moderation:write"))) -> JSON:
    """The moderation queue (pending posts oldest first)."""
    with read_tx() as session:
        return JSON(posts.queue(session, status=status, limit=limit, before=before))


@router.post("/moderation/posts/{post_id}/approve")
def approve_post(post_id: str, p: Principal = Depends(require("moderation:write"))) -> JSON:
    """Approve a pending post: it becomes public and the author earns the community reward."""
    with write_tx() as session:
        return JSON(posts.approve(session, post_id, p.actor(), utc_now()))


@router.post("/moderation/posts/{post_id}/reject")
def reject_post(post_id: str, body: Reject, p: Principal = Depends(require("moderation:write"))) -> JSON:
    """Reject a pending post with a reason code; the author is told."""
    with write_tx() as session:
        return JSON(posts.reject(session, post_id, body, p.actor(), utc_now()))


@router.post("/photo-tasks", status_code=201)
def create_photo_task(body: PhotoTaskCreate, _p: Principal = Depends(require("content:write"))) -> JSON:
    """Define a photo check-in task (拍照打卡)."""
    with write_tx() as session:
        return JSON(photos.create_task(session, body, utc_now()), status_code=201)


@router.get("/photo-tasks")
def list_photo_tasks(active: bool = True, _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """Photo check-in tasks (active ones by default)."""
    with read_tx() as session:
        return JSON({"items": photos.tasks(session, active_only=active)})


@router.post("/photo-tasks/{task_id}/checkins", status_code=201)
def photo_checkin(task_id: str, request: Request, file: UploadFile = File(...),
                  patient_id: str = Form(min_length=1, max_length=64),
                  taken_at: AwareDatetime | None = Form(None),
                  done_by_patient_id: str | None = Form(None, min_length=1, max_length=64),
                  _p: Principal = Depends(require("engagement:write"))) -> JSON:
    """Check in with a photo (multipart: file, patient_id, taken_at?, done_by_patient_id?).
    JPEG / PNG / WebP only, judged by content; metadata is stripped before storing."""
    limit = get_settings().photo_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PhotoTooLargeError(limit=limit)
    raw = photos.read_limited(file.file, limit)
    now = utc_now()
    with write_tx() as session:
        return JSON(photos.check_in(session, task_id, patient_id, raw, taken_at=taken_at,
                                    done_by=done_by_patient_id, now=now), status_code=201)


@router.get("/photos/{photo_id}")
def get_photo(photo_id: str, _p: Principal = Depends(require("engagement:read"))) -> Response:
    """The stored image (no public URLs)."""
    with read_tx() as session:
        data, media_type = photos.image(session, photo_id)
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, no-store"})


@router.get("/patients/{patient_id}/invite-code")
def invite_code(patient_id: str, _p: Principal = Depends(require("engagement:write"))) -> JSON:
    """The patient's invite code (created on first call)."""
    with write_tx() as session:
        return JSON(invites.code_of(session, patient_id, utc_now()))


@router.post("/invites/accept", status_code=201)
def accept_invite(body: InviteAccept, p: Principal = Depends(require("engagement:write"))) -> JSON:
    """A newly enrolled patient accepts an invite code (once)."""
    with write_tx() as session:
        return JSON(invites.accept(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/patients/{patient_id}/invites")
def list_invites(patient_id: str, _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """The patient's invitees (ids and status only)."""
    with read_tx() as session:
        return JSON({"items": invites.of_inviter(session, patient_id)})
