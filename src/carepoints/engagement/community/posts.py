"""Community posts and answers (社区分享 / 问答): every post waits in the moderation
queue; approval makes it public and emits `community.post_approved` for the author,
rejection records a reason code and tells the author. A decision is final: a guarded
`UPDATE ... WHERE status = 'pending'` lets exactly one moderator decide. Post text is
never logged nor put in audit rows or outbox payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement import spine
from carepoints.engagement.community.errors import ParentNotFoundError, PostDecidedError, PostNotFoundError
from carepoints.engagement.community.models import CommunityPost
from carepoints.engagement.community.schemas import PostCreate, PostKind, PostStatus, Reject
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many

_posts = table(CommunityPost)


def doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "patient_id": row["patient_id"], "kind": row["kind"], "parent_id": row["parent_id"],
            "title": row["title"], "text": row["text"], "topic": row["topic"], "status": row["status"],
            "reason_code": row["reason_code"], "note": row["note"], "created_at": row["created_at"].isoformat(),
            "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None}


def _row(session: Session, post_id: str) -> Any:
    if not is_id(post_id):
        return None
    return session.connection().execute(select(_posts).where(_posts.c.id == post_id)).mappings().first()


def create(session: Session, data: PostCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    """Submit a post or an answer (to an approved question post): pending until moderated."""
    pid = spine.patient_of(session, data.patient_id, data.patient).patient_id
    if data.kind is PostKind.answer:
        parent = _row(session, data.parent_id or "")
        if parent is None or parent["status"] != PostStatus.approved or parent["kind"] != PostKind.post:
            raise ParentNotFoundError()
    post_id = new_id()
    row: dict[str, Any] = {"id": post_id, "patient_id": pid, "kind": data.kind.value, "parent_id": data.parent_id,
           "title": data.title, "text": data.text, "topic": data.topic, "status": PostStatus.pending.value,
           "reason_code": None, "note": None, "decided_by": None, "decided_at": None, "created_at": now}
    session.connection().execute(_posts.insert(), [row])
    audit.record(session, actor, "community:post:submit", now, subject_id=post_id, patient_id=pid,
                 kind=data.kind.value)
    return doc(row)


def read(session: Session, post_id: str, *, moderator: bool, as_patient: str | None) -> dict[str, Any]:
    """One post: approved ones for anyone; pending or rejected only for moderators and the author."""
    row = _row(session, post_id)
    if row is None:
        raise PostNotFoundError()
    if row["status"] != PostStatus.approved and not moderator and as_patient != row["patient_id"]:
        raise PostNotFoundError()
    return doc(row)


def _page(session: Session, where: list[Any], limit: int, before: str | None, newest_first: bool) -> dict[str, Any]:
    c = _posts.c
    if before is not None:
        cursor = _row(session, before)
        if cursor is not None:
            at, cid = cursor["created_at"], cursor["id"]
            where.append(or_(c.created_at < at, and_(c.created_at == at, c.id < cid)) if newest_first
                         else or_(c.created_at > at, and_(c.created_at == at, c.id > cid)))
    order = (c.created_at.desc(), c.id.desc()) if newest_first else (c.created_at.asc(), c.id.asc())
    rows = session.connection().execute(select(_posts).where(*where).order_by(*order).limit(limit + 1)).mappings().all()
    items = [doc(r) for r in rows[:limit]]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}


def feed(session: Session, *, topic: str | None, parent_id: str | None, limit: int,
         before: str | None) -> dict[str, Any]:
    """The public feed: approved posts only, newest first (answers of one post with `parent_id`)."""
    c = _posts.c
    where: list[Any] = [c.status == PostStatus.approved.value]
    where.append(c.parent_id == parent_id if parent_id is not None else c.kind == PostKind.post.value)
    if topic is not None:
        where.append(c.topic == topic)
    return _page(session, where, limit, before, newest_first=True)


def queue(session: Session, *, status: PostStatus, limit: int, before: str | None) -> dict[str, Any]:
    """The moderation queue, oldest first."""
    newest_first = status is not PostStatus.pending
    return _page(session, [_posts.c.status == status.value], limit, before, newest_first=newest_first)


def _decide(session: Session, post_id: str, status: PostStatus, actor: Actor, now: datetime,
            **fields: Any) -> Any:
    """Move a pending post to `status`; exactly one concurrent decision wins."""
    conn = session.connection()
    stmt = (update(_posts).where(_posts.c.id == post_id, _posts.c.status == PostStatus.pending.value)
            .values(status=status.value, decided_by=actor.id, decided_at=now, **fields).returning(_posts.c.id))
    if not is_id(post_id) or conn.execute(stmt).first() is None:
        if _row(session, post_id) is None:
            raise PostNotFoundError()
        raise PostDecidedError()
    return _row(session, post_id)


def approve(session: Session, post_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Approve: the post goes public and the author's `community.post_approved` is emitted."""
    row = _decide(session, post_id, PostStatus.approved, actor, now)
    audit.record(session, actor, "community:post:approve", now, subject_id=post_id, patient_id=row["patient_id"])
    outcome = spine.emit(session, "community.post_approved", row["patient_id"], now, now, f"community:{post_id}",
                         {"post_id": post_id, "kind": row["kind"]})
    return {**doc(row), "outcome": outcome}


def reject(session: Session, post_id: str, data: Reject, actor: Actor, now: datetime) -> dict[str, Any]:
    """Reject with a reason code (and an optional note to the author); the author is told."""
    row = _decide(session, post_id, PostStatus.rejected, actor, now, reason_code=data.reason_code.value,
                  note=data.note)
    pid = row["patient_id"]
    audit.record(session, actor, "community:post:reject", now, subject_id=post_id, patient_id=pid,
                 reason_code=data.reason_code.value)
    enqueue_many(session.connection(), [("community.post_rejected", pid, {
        "patient_id": pid, "post_id": post_id, "reason_code": data.reason_code.value})], now)
    return doc(row)
