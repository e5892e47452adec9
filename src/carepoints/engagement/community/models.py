"""Community posts, photo tasks and photos, invite codes and invites."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class CommunityPost(Base):
    """A post or an answer (to a question post). Nothing is public before a moderator
    approves it; a decision is final (`status` moves once from pending)."""

    __tablename__ = "community_posts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(8))  # post | answer
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("community_posts.id"))
    title: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected
    reason_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))  # the moderator's note to the author
    decided_by: Mapped[str | None] = mapped_column(String(36))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_community_posts_feed", "status", "created_at"),
        Index("ix_community_posts_parent", "parent_id", "status"),
        Index("ix_community_posts_patient", "patient_id", "created_at"),
    )


class PhotoTask(Base):
    """A photo check-in task definition (e.g. a child's daily tooth brushing)."""

    __tablename__ = "photo_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    title: Mapped[dict[str, Any]] = mapped_column(JSON)  # {zh, en?}
    description: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    per_day: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(8))  # child | any
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Photo(Base):
    """One check-in photo, stored (metadata stripped) in the database so that every app
    process can serve it. `(task, patient, day, seq)` is unique: at most `per_day` a day."""

    __tablename__ = "photos"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("photo_tasks.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    done_by_patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    day: Mapped[date] = mapped_column(Date)  # the hospital's local day of taken_at
    seq: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("task_id", "patient_id", "day", "seq"),)


class InviteCode(Base):
    """A patient's own invite code (one per patient)."""

    __tablename__ = "invite_codes"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invite(Base):
    """An invitee linked to the inviter (once per invitee); completed at the invitee's
    first attended visit."""

    __tablename__ = "invites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    invitee_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), unique=True)
    inviter_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    status: Mapped[str] = mapped_column(String(16))  # accepted | completed
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    visit_event_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index("ix_invites_inviter", "inviter_id", "accepted_at"),)
