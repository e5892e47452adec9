"""Photo check-in tasks (拍照打卡): task definitions, and check-ins that store one
photo each. A photo is accepted only when its bytes decode as JPEG, PNG or WebP
(never judged by the file name or the client's content type), is within the size
setting, and is re-encoded without metadata (EXIF location!) before it is stored in
the database, where every app process can serve it. A check-in emits `photo.checkin`."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.engagement import spine
from carepoints.engagement.community.errors import (
    DoneByNotAllowedError,
    PhotoDailyLimitError,
    PhotoInvalidError,
    PhotoNotFoundError,
    PhotoTaskExistsError,
    PhotoTaskInactiveError,
    PhotoTaskNotForPatientError,
    PhotoTaskNotFoundError,
    PhotoTooLargeError,
    PhotoTypeError,
)
from carepoints.engagement.community.models import Photo, PhotoTask
from carepoints.engagement.community.schemas import PhotoTarget, PhotoTaskCreate
from carepoints.kit import uploads
from carepoints.kit.bulk import insert_new, savepoint
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import as_utc, local_date
from carepoints.patients import households
from carepoints.patients.errors import ProxyNotAuthorisedError
from carepoints.patients.proxies import GUARDIAN_AGE, Proxy, check, turns

_tasks = table(PhotoTask)
_photos = table(Photo)
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def task_doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "code": row["code"], "title": row["title"], "description": row["description"],
            "per_day": row["per_day"], "target": row["target"], "active": bool(row["active"])}


def create_task(session: Session, data: PhotoTaskCreate, now: datetime) -> dict[str, Any]:
    row = {"id": new_id(), "code": data.code, "title": data.title.model_dump(exclude_none=True),
           "description": data.description.model_dump(exclude_none=True) if data.description else None,
           "per_day": data.per_day, "target": data.target.value, "active": data.active, "created_at": now}
    if not insert_new(session.connection(), _tasks, row, ["code"]):
        raise PhotoTaskExistsError()
    return task_doc(row)


def tasks(session: Session, *, active_only: bool) -> list[dict[str, Any]]:
    stmt = select(_tasks).order_by(_tasks.c.code)
    if active_only:
        stmt = stmt.where(_tasks.c.active.is_(True))
    return [task_doc(r) for r in session.connection().execute(stmt).mappings().all()]


def read_limited(stream: IO[bytes], limit: int) -> bytes:
    """At most `limit` bytes of the upload, read in chunks; 413 beyond (the rest unread)."""
    return uploads.read_limited(stream, limit, lambda: PhotoTooLargeError(limit=limit))


def clean_image(raw: bytes) -> tuple[bytes, str, int, int]:
    """Decode `raw` by content; re-encode it without any metadata. (bytes, media type, w, h)."""
    if not raw:
        raise PhotoInvalidError()
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format or ""
            if fmt not in FORMATS:
                raise PhotoTypeError()
            if probe.width * probe.height > get_settings().photo_max_pixels:
                raise PhotoInvalidError()
            probe.verify()
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise PhotoTypeError() from None
    except (OSError, SyntaxError, ValueError):
        raise PhotoInvalidError() from None
    return _encode(upright, fmt), FORMATS[fmt], upright.width, upright.height


def _encode(img: Image.Image, fmt: str) -> bytes:
    """A fresh image from the pixels only: no EXIF, XMP, ICC text chunks or comments."""
    mode = img.mode if fmt != "JPEG" else ("L" if img.mode in ("L", "1") else "RGB")
    bare = Image.new(mode, img.size)
    bare.paste(img.convert(mode))
    out = io.BytesIO()
    bare.save(out, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()


def _task(session: Session, task_id: str) -> Any:
    row = session.connection().execute(select(_tasks).where(_tasks.c.id == task_id)).mappings().first() \
        if is_id(task_id) else None
    if row is None:
        raise PhotoTaskNotFoundError()
    if not row["active"]:
        raise PhotoTaskInactiveError()
    return row


def _is_child(birth: date | None, now: datetime) -> bool:
    return birth is not None and local_date(now, get_settings().tz) < turns(birth, GUARDIAN_AGE)


def _check_done_by(session: Session, patient_id: str, done_by: str, now: datetime) -> None:
    """A family member may check in for the patient: same household, or an authorised proxy."""
    mine, theirs = households.membership(session, patient_id), households.membership(session, done_by)
    if mine is not None and theirs is not None and mine["household_id"] == theirs["household_id"]:
        return
    try:
        check(session, patient_id, Proxy(done_by), "view", now)
    except ProxyNotAuthorisedError:
        raise DoneByNotAllowedError() from None


def check_in(session: Session, task_id: str, patient_id: str, raw: bytes, *, taken_at: datetime | None,
             done_by: str | None, now: datetime) -> dict[str, Any]:
    """Store one check-in photo (within the task's per-day count) and emit `photo.checkin`."""
    task = _task(session, task_id)
    patient = spine.patient_of(session, patient_id)
    pid = patient.patient_id
    if task["target"] == PhotoTarget.child and not _is_child(patient.birth_date, now):
        raise PhotoTaskNotForPatientError()
    if done_by is not None and done_by != pid:
        spine.patient_of(session, done_by)
        _check_done_by(session, pid, done_by, now)
    data, media_type, width, height = clean_image(raw)
    at = as_utc(taken_at) if taken_at is not None else now
    day = local_date(at, get_settings().tz)
    row = _store(session, task, pid, day, {
        "id": new_id(), "task_id": task["id"], "patient_id": pid, "done_by_patient_id": done_by, "day": day,
        "media_type": media_type, "size": len(data), "width": width, "height": height, "data": data,
        "taken_at": at, "created_at": now})
    outcome = spine.emit(session, "photo.checkin", pid, at, now, f"photo:{row['id']}",
                         {"task_id": task["id"], "photo_id": row["id"], "task": task["code"]})
    return {"photo_id": row["id"], "task_id": task["id"], "patient_id": pid, "day": day.isoformat(),
            "seq": row["seq"], "media_type": media_type, "size": row["size"], "outcome": outcome}


def _store(session: Session, task: Any, pid: str, day: date, row: dict[str, Any]) -> dict[str, Any]:
    conn = session.connection()
    c = _photos.c
    done = conn.execute(select(func.count()).select_from(_photos).where(
        c.task_id == task["id"], c.patient_id == pid, c.day == day)).scalar_one()
    if done >= task["per_day"]:
        raise PhotoDailyLimitError(limit=task["per_day"])
    row = {**row, "seq": done + 1}
    try:
        with savepoint(conn):
            conn.execute(_photos.insert(), [row])
    except IntegrityError:  # a concurrent check-in took this place: the unique index decides
        raise PhotoDailyLimitError(limit=task["per_day"]) from None
    return row


def image(session: Session, photo_id: str) -> tuple[bytes, str]:
    row = session.connection().execute(select(_photos.c.data, _photos.c.media_type).where(
        _photos.c.id == photo_id)).first() if is_id(photo_id) else None
    if row is None:
        raise PhotoNotFoundError()
    return bytes(row[0]), str(row[1])
