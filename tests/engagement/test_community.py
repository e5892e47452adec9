"""Community posts: moderation queue, nothing public before approval, one decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.api_client import make_key
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def submit(api: Api, pid: str, **extra: object) -> dict[str, object]:
    r = api.post("/community/posts", {"patient_id": pid, "kind": "post", "title": "刷牙心得", "text": "每天两次",
                                      **extra})
    assert r.status_code == 201, r.text
    body = dict(r.json())
    assert body["status"] == "pending"
    return body


def test_nothing_public_before_approval_then_paid_20(api: Api) -> None:
    pid = api.enrol()
    post = submit(api, pid)
    assert api.get("/community/posts").json()["items"] == []
    app_key = make_key("integration")
    error(api.get(f"/community/posts/{post['id']}", key=app_key), 404, "community.post_not_found")
    assert api.get(f"/community/posts/{post['id']}?as_patient={pid}", key=app_key).status_code == 200
    queue = api.get("/moderation/posts?status=pending").json()["items"]
    assert [q["id"] for q in queue] == [post["id"]]
    before = api.balance(pid)
    r = api.post(f"/moderation/posts/{post['id']}/approve")
    assert r.status_code == 200, r.text
    assert api.balance(pid) == before + 20
    assert [p["id"] for p in api.get("/community/posts").json()["items"]] == [post["id"]]
    error(api.post(f"/moderation/posts/{post['id']}/approve"), 409, "community.post_already_decided")
    error(api.post(f"/moderation/posts/{post['id']}/reject", {"reason_code": "spam"}), 409,
          "community.post_already_decided")
    assert api.balance(pid) == before + 20


def test_reject_records_reason_and_tells_author(api: Api) -> None:
    from sqlalchemy import select

    from carepoints.kit.db import read_tx
    from carepoints.models import OutboxMessage

    pid = api.enrol()
    post = submit(api, pid)
    r = api.post(f"/moderation/posts/{post['id']}/reject", {"reason_code": "medical_misinformation", "note": "请核实"})
    assert r.status_code == 200, r.text
    assert r.json()["reason_code"] == "medical_misinformation"
    assert api.get("/community/posts").json()["items"] == []
    assert api.get(f"/community/posts/{post['id']}").json()["status"] == "rejected"  # admin is a moderator
    with read_tx() as s:
        rows = s.execute(select(OutboxMessage.payload).where(OutboxMessage.topic == "community.post_rejected")).all()
    assert [r[0] for r in rows] == [{"patient_id": pid, "post_id": post["id"],
                                     "reason_code": "medical_misinformation"}]


def test_answers_need_an_approved_question(api: Api) -> None:
    pid = api.enrol()
    q = submit(api, pid)
    error(api.post("/community/posts", {"patient_id": pid, "kind": "answer", "parent_id": q["id"], "text": "a"}),
          422, "community.parent_not_found")
    api.post(f"/moderation/posts/{q['id']}/approve")
    r = api.post("/community/posts", {"patient_id": pid, "kind": "answer", "parent_id": q["id"], "text": "a"})
    assert r.status_code == 201, r.text
    assert api.post(f"/moderation/posts/{r.json()['id']}/approve").status_code == 200
    answers = api.get(f"/community/posts?parent_id={q['id']}").json()["items"]
    assert [a["id"] for a in answers] == [r.json()["id"]]
    assert [p["id"] for p in api.get("/community/posts").json()["items"]] == [q["id"]]


def test_bad_input_is_4xx_with_a_code(api: Api) -> None:
    pid = api.enrol()
    for body in ({"patient_id": pid, "text": ""}, {"patient_id": pid, "text": "x" * 5001},
                 {"patient_id": pid, "text": "a", "kind": "answer"}, {"patient_id": pid, "text": "a", "extra": 1},
                 {"text": "a"}, {"patient_id": pid, "text": "a", "parent_id": "x"}):
        r = api.post("/community/posts", body)
        assert r.status_code == 422, body
        assert r.json()["error"]
    assert api.post("/community/posts", {"patient_id": "nobody", "text": "a"}).status_code == 404
    post = submit(api, pid)
    r = api.post(f"/moderation/posts/{post['id']}/reject", {"reason_code": "rude"})
    assert r.status_code == 422
    error(api.post("/moderation/posts/nope/approve"), 404, "community.post_not_found")
    error(api.get("/community/posts/nope"), 404, "community.post_not_found")
