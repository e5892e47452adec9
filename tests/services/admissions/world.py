"""A hospital for the admissions tests: an institution with a surgery department, a ward, an
operating room for elective and one for day surgery, an imaging resource and a clinician who is a
staff user; sessions are made on local days relative to the real clock (the endpoints use it).
Also tokens, the outbox and the audit rows the tests read."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import (
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    ResourceCreate,
    SessionCreate,
)
from carepoints.security import otp
from carepoints.security import service as security
from carepoints.services.admissions import service
from carepoints.services.admissions.schemas import RoomCreate, WardCreate

_n = itertools.count(1)
ADMIN = Actor("staff", "test-admin", "admin")
PASSWORD = "correct horse battery"
INSTRUCTIONS = "请携带身份证、医保卡和既往病历;入院当天早上空腹。"


def local_today() -> date:
    return utc_now().astimezone(get_settings().tz).date()


def working_day(after: date, days: int = 0) -> date:
    """The first Monday–Friday on or after `after` + `days`."""
    d = after + timedelta(days=days)
    while d.isoweekday() > 5:
        d += timedelta(days=1)
    return d


def patient_token(pid: str) -> str:
    return otp.patient_token(pid, utc_now(), get_settings())[0]


class Hospital:
    def __init__(self, beds: int = 2, room_minutes: int = 300, room_cases: int = 4) -> None:
        now = utc_now()
        i = next(_n)
        with write_tx() as s:
            inst = sch.create_institution(s, InstitutionCreate(code=f"adm{i}", name_zh="第一人民医院",
                                                               name_en="First People's Hospital"), now)
            self.department = sch.create_department(s, DepartmentCreate(
                institution_id=inst["id"], code=f"surg{i}", name_zh="普外科", name_en="General surgery"), now)["id"]
            self.imaging = sch.create_department(s, DepartmentCreate(
                institution_id=inst["id"], code=f"img{i}", name_zh="影像科", name_en="Imaging"), now)["id"]
            self.doctor_username = f"doc{i}-{now.timestamp():.0f}"
            self.doctor_user = security.create_staff(s, self.doctor_username, PASSWORD, "clinician", now)
            self.clinician = sch.create_clinician(s, ClinicianCreate(
                department_id=self.department, code=f"c{i}", name="李医生", title="主任医师",
                staff_user_id=self.doctor_user), now)["id"]
            self.resource = sch.create_resource(s, ResourceCreate(
                department_id=self.imaging, code=f"ct{i}", modality="ct", name="CT 1"), now)["id"]
            self.ward = service.create_ward(s, WardCreate(
                department_id=self.department, code=f"w{i}", name_zh="普外一病区", name_en="Surgery ward 1",
                daily_admissions=beds, instructions_zh=INSTRUCTIONS,
                instructions_en="Bring your ID card, insurance card and past records; fast on the morning."),
                ADMIN, now)["id"]
            self.room = service.create_room(s, RoomCreate(
                department_id=self.department, code=f"or{i}", name="3号手术间", minutes_per_day=room_minutes,
                cases_per_day=room_cases, elective=True, day_surgery=False), ADMIN, now)["id"]
            self.day_room = service.create_room(s, RoomCreate(
                department_id=self.department, code=f"ds{i}", name="日间手术室", minutes_per_day=room_minutes,
                cases_per_day=room_cases, elective=False, day_surgery=True), ADMIN, now)["id"]

    def session(self, day: date, start: time, end: time, *, minutes: int = 30, exam: bool = False) -> dict[str, Any]:
        """A session of the clinician (or of the CT resource), released a day ago."""
        owner = {"resource_id": self.resource} if exam else {"clinician_id": self.clinician}
        with write_tx() as s:
            return sch.create_session(s, SessionCreate(
                date=day, start=start, end=end, slot_minutes=minutes, fee_cny=Decimal(10),
                release_at=utc_now() - timedelta(days=1), referral_share=Decimal(0), pattern=["online"], **owner),
                utc_now())


def order_body(pid: str, ward: str, **extra: Any) -> dict[str, Any]:
    return {"patient_id": pid, "ward_id": ward, "idempotency_key": f"ord-{next(_n)}", **extra}


def surgery_body(pid: str, department: str, **extra: Any) -> dict[str, Any]:
    body = {"patient_id": pid, "department_id": department, "procedure": "腹腔镜胆囊切除术", "kind": "elective",
            "expected_minutes": 120, "idempotency_key": f"sur-{next(_n)}"}
    return {**body, **extra}


def outbox(topic: str, patient_id: str | None = None) -> list[dict[str, Any]]:
    with read_tx() as s:
        stmt = select(OutboxMessage.payload).where(OutboxMessage.topic == topic)
        if patient_id is not None:
            stmt = stmt.where(OutboxMessage.key == patient_id)
        return [dict(r[0]) for r in s.execute(stmt.order_by(OutboxMessage.created_at, OutboxMessage.id)).all()]


def audit(subject_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(action, details) of a record's use-case audit rows (not the request-level ones), oldest first."""
    with read_tx() as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.subject_id == subject_id, AuditEntry.action.startswith("admissions:"))
            .order_by(AuditEntry.at, AuditEntry.id)).all()
    return [(r[0], dict(r[1] or {})) for r in rows]


def count(model: Any) -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def local(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=get_settings().tz)
