"""Every query of online consultations. Departments and staff users are read here, never written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from carepoints.kit.bulk import insert_new, insert_rows, savepoint, upsert
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.scheduling.models import Department
from carepoints.security.models import StaffUser
from carepoints.services.consult.models import (
    ConsultAdviser,
    ConsultImage,
    ConsultMessage,
    ConsultRating,
    ConsultThread,
)
from carepoints.services.consult.states import HOSPITALS_TURN, State

advisers = table(ConsultAdviser)
threads = table(ConsultThread)
messages = table(ConsultMessage)
images = table(ConsultImage)
ratings = table(ConsultRating)
_departments = table(Department)
_staff = table(StaffUser)
_TURN = tuple(str(s) for s in HOSPITALS_TURN)


# --- roster -----------------------------------------------------------------------------------

def department(conn: Connection, department_id: str) -> RowMapping | None:
    if not is_id(department_id):
        return None
    stmt = select(_departments.c.id, _departments.c.institution_id, _departments.c.name_zh, _departments.c.name_en)
    return conn.execute(stmt.where(_departments.c.id == department_id)).mappings().first()


def adviser(conn: Connection, staff_user_id: str) -> RowMapping | None:
    """The roster row with the staff user's role and whether the user is active."""
    if not is_id(staff_user_id):
        return None
    stmt = (select(advisers, _staff.c.role, _staff.c.active.label("user_active"),
                   _departments.c.name_zh.label("department_zh"), _departments.c.name_en.label("department_en"))
            .join(_staff, _staff.c.id == advisers.c.staff_user_id)
            .join(_departments, _departments.c.id == advisers.c.department_id)
            .where(advisers.c.staff_user_id == staff_user_id))
    return conn.execute(stmt).mappings().first()


def roster(conn: Connection, department_id: str | None, *, active_only: bool) -> list[RowMapping]:
    stmt = (select(advisers, _departments.c.name_zh.label("department_zh"),
                   _departments.c.name_en.label("department_en"))
            .join(_staff, _staff.c.id == advisers.c.staff_user_id)
            .join(_departments, _departments.c.id == advisers.c.department_id)
            .order_by(_departments.c.name_zh, advisers.c.profession, advisers.c.display_name))
    if department_id is not None:
        stmt = stmt.where(advisers.c.department_id == department_id)
    if active_only:
        stmt = stmt.where(advisers.c.active.is_(True), _staff.c.active.is_(True))
    return list(conn.execute(stmt).mappings())


def roster_departments(conn: Connection) -> list[RowMapping]:
    """Departments with at least one active adviser (what a patient may choose)."""
    stmt = (select(_departments.c.id, _departments.c.name_zh, _departments.c.name_en).distinct()
            .join(advisers, advisers.c.department_id == _departments.c.id)
            .join(_staff, _staff.c.id == advisers.c.staff_user_id)
            .where(advisers.c.active.is_(True), _staff.c.active.is_(True)).order_by(_departments.c.name_zh))
    return list(conn.execute(stmt).mappings())


def set_adviser(conn: Connection, row: dict[str, Any]) -> None:
    keep = {k: v for k, v in row.items() if k not in ("staff_user_id", "created_at")}
    stmt = upsert(conn, advisers).values(**row).on_conflict_do_update(index_elements=["staff_user_id"], set_=keep)
    conn.execute(stmt)


# --- threads ----------------------------------------------------------------------------------

def insert_thread(conn: Connection, row: dict[str, Any]) -> bool:
    """False when the patient already opened a thread with this idempotency key."""
    return insert_new(conn, threads, row, ("patient_id", "idempotency_key"))


def by_key(conn: Connection, patient_id: str, key: str) -> RowMapping | None:
    stmt = select(threads).where(threads.c.patient_id == patient_id, threads.c.idempotency_key == key)
    return conn.execute(stmt).mappings().first()


def thread(conn: Connection, thread_id: str, *, lock: bool = False) -> RowMapping | None:
    """The thread with its department's names and whether it is rated; `lock`: its row locked
    (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    if not is_id(thread_id):
        return None
    if lock and conn.dialect.name == "postgresql":
        conn.execute(select(threads.c.id).where(threads.c.id == thread_id).with_for_update())
    stmt = (select(threads, _departments.c.name_zh.label("department_zh"),
                   _departments.c.name_en.label("department_en"), ratings.c.stars.label("rating"),
                   ratings.c.comment.label("rating_comment"))
            .join(_departments, _departments.c.id == threads.c.department_id)
            .outerjoin(ratings, ratings.c.thread_id == threads.c.id)
            .where(threads.c.id == thread_id))
    return conn.execute(stmt).mappings().first()


def owners(conn: Connection, thread_id: str) -> list[str]:
    if not is_id(thread_id):
        return []
    return [str(v) for v in conn.execute(select(threads.c.patient_id).where(threads.c.id == thread_id)).scalars()]


def of_patient(conn: Connection, patient_id: str, limit: int) -> list[RowMapping]:
    stmt = (select(threads, _departments.c.name_zh.label("department_zh"),
                   _departments.c.name_en.label("department_en"), ratings.c.stars.label("rating"))
            .join(_departments, _departments.c.id == threads.c.department_id)
            .outerjoin(ratings, ratings.c.thread_id == threads.c.id)
            .where(threads.c.patient_id == patient_id)
            .order_by(threads.c.last_message_at.desc(), threads.c.id.desc()).limit(limit))
    return list(conn.execute(stmt).mappings())


def queue(conn: Connection, staff_user_id: str | None, departments: list[tuple[str, str]] | None,
          limit: int) -> list[RowMapping]:
    """Threads waiting for the hospital, longest wait first: assigned to this staff user, or
    unclaimed in one of their (department, profession) pairs (None = every thread: admins)."""
    c = threads.c
    stmt = (select(threads, _departments.c.name_zh.label("department_zh"),
                   _departments.c.name_en.label("department_en"))
            .join(_departments, _departments.c.id == c.department_id)
            .where(c.state.in_(_TURN)).order_by(c.waiting_since, c.id).limit(limit))
    if departments is not None:
        mine: ColumnElement[bool] = c.assignee_staff_id == staff_user_id
        unclaimed = [and_(c.department_id == d, or_(c.profession.is_(None), c.profession == p)) for d, p in departments]
        if unclaimed:
            mine = or_(mine, and_(c.assignee_staff_id.is_(None), c.target == "department", or_(*unclaimed)))
        stmt = stmt.where(mine)
    return list(conn.execute(stmt).mappings())


def assigned(conn: Connection, staff_user_id: str, limit: int) -> list[RowMapping]:
    """The staff user's own threads waiting for the patient (answered), latest first."""
    c = threads.c
    stmt = (select(threads, _departments.c.name_zh.label("department_zh"),
                   _departments.c.name_en.label("department_en"))
            .join(_departments, _departments.c.id == c.department_id)
            .where(c.assignee_staff_id == staff_user_id, c.state == str(State.answered))
            .order_by(c.last_message_at.desc(), c.id.desc()).limit(limit))
    return list(conn.execute(stmt).mappings())


def claim(conn: Connection, thread_id: str, staff_user_id: str, now: datetime) -> bool:
    """Take an unclaimed routed thread; False when someone else has it (or it closed)."""
    c = threads.c
    stmt = (update(threads).where(c.id == thread_id, c.assignee_staff_id.is_(None), c.state != str(State.closed))
            .values(assignee_staff_id=staff_user_id, claimed_at=now))
    return bool(conn.execute(stmt).rowcount)


def advance(conn: Connection, thread_id: str, from_state: str, count: int, **values: Any) -> bool:
    """Count one more message and move the state, only from the state and count the caller
    read (a guarded UPDATE: False when the thread changed meanwhile)."""
    c = threads.c
    stmt = (update(threads).where(c.id == thread_id, c.state == from_state, c.message_count == count)
            .values(message_count=count + 1, **values))
    return bool(conn.execute(stmt).rowcount)


def close(conn: Connection, thread_id: str, now: datetime, by: str, reason: str) -> bool:
    """Close a live thread; False when it is closed already (whoever closed it first wins)."""
    c = threads.c
    stmt = (update(threads).where(c.id == thread_id, c.state != str(State.closed))
            .values(state=str(State.closed), closed_at=now, closed_by=by, close_reason=reason, waiting_since=None))
    return bool(conn.execute(stmt).rowcount)


def idle(conn: Connection, before: datetime, limit: int) -> list[RowMapping]:
    """Answered threads with no message since `before`, oldest first."""
    c = threads.c
    stmt = (select(c.id, c.patient_id, c.assignee_staff_id, c.message_count)
            .where(c.state == str(State.answered), c.last_message_at < before)
            .order_by(c.last_message_at, c.id).limit(limit))
    return list(conn.execute(stmt).mappings())


def close_idle(conn: Connection, thread_id: str, before: datetime, now: datetime) -> bool:
    """Close one thread by inactivity, only if it is still answered and idle (a message that
    arrived meanwhile keeps it open)."""
    c = threads.c
    stmt = (update(threads).where(c.id == thread_id, c.state == str(State.answered), c.last_message_at < before)
            .values(state=str(State.closed), closed_at=now, closed_by="system", close_reason="inactivity"))
    return bool(conn.execute(stmt).rowcount)


def count_image(conn: Connection, thread_id: str, limit: int) -> bool:
    """One more image on the thread, within `limit` (guarded: concurrent uploads cannot pass it)."""
    c = threads.c
    stmt = update(threads).where(c.id == thread_id, c.image_count < limit).values(image_count=c.image_count + 1)
    return bool(conn.execute(stmt).rowcount)


# --- messages, images, ratings ----------------------------------------------------------------

def message_by_key(conn: Connection, thread_id: str, key: str) -> RowMapping | None:
    stmt = select(messages).where(messages.c.thread_id == thread_id, messages.c.idempotency_key == key)
    return conn.execute(stmt).mappings().first()


def add_message(conn: Connection, row: dict[str, Any]) -> None:
    insert_rows(conn, messages, [row])


def messages_after(conn: Connection, thread_id: str, after: int, limit: int) -> list[RowMapping]:
    stmt = (select(messages.c.id, messages.c.seq, messages.c.author, messages.c.author_id, messages.c.body,
                   messages.c.image_id, messages.c.created_at, images.c.width, images.c.height)
            .outerjoin(images, images.c.id == messages.c.image_id)
            .where(messages.c.thread_id == thread_id, messages.c.seq > after)
            .order_by(messages.c.seq).limit(limit))
    return list(conn.execute(stmt).mappings())


def add_image(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(images.insert(), [row])


def image(conn: Connection, thread_id: str, image_id: str) -> RowMapping | None:
    if not is_id(image_id):
        return None
    stmt = select(images.c.data, images.c.media_type).where(images.c.id == image_id, images.c.thread_id == thread_id)
    return conn.execute(stmt).mappings().first()


def rate(conn: Connection, row: dict[str, Any]) -> bool:
    """The rating, once per thread (the primary key decides between concurrent ratings)."""
    try:
        with savepoint(conn, "cp_consult_rate"):
            conn.execute(ratings.insert(), [row])
    except IntegrityError:
        return False
    return True


def staff_names(conn: Connection, ids: list[str]) -> dict[str, RowMapping]:
    """Roster rows (display name, title, profession) of these staff users."""
    wanted = [i for i in set(ids) if is_id(i)]
    if not wanted:
        return {}
    stmt = select(advisers).where(advisers.c.staff_user_id.in_(wanted))
    return {r["staff_user_id"]: r for r in conn.execute(stmt).mappings()}


# --- retention --------------------------------------------------------------------------------

def purge_closed(conn: Connection, before: datetime, limit: int) -> int:
    """Delete up to `limit` threads closed before `before` with their messages, images and
    rating (children first: SQLite does not enforce the cascade)."""
    ids = [r[0] for r in conn.execute(select(threads.c.id).where(threads.c.state == str(State.closed),
                                                                  threads.c.closed_at < before)
                                      .order_by(threads.c.closed_at, threads.c.id).limit(limit))]
    if not ids:
        return 0
    conn.execute(delete(ratings).where(ratings.c.thread_id.in_(ids)))
    conn.execute(delete(messages).where(messages.c.thread_id.in_(ids)))
    conn.execute(delete(images).where(images.c.thread_id.in_(ids)))
    return int(conn.execute(delete(threads).where(threads.c.id.in_(ids))).rowcount or 0)

