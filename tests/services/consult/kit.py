"""What the consultation tests share: a department with advisers on its roster (staff users of
the clinician / nurse roles, their tokens), a patient's token, a thread opened through the API,
small real images (Pillow) and reads of the outbox and the audit log."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from PIL import Image
from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import DepartmentCreate, InstitutionCreate
from carepoints.security import otp

if TYPE_CHECKING:
    from tests.api_client import Api

_n = itertools.count(1)
PASSWORD = "pw-123456789"


def patient_token(pid: str) -> str:
    token, _ttl = otp.patient_token(pid, utc_now(), get_settings())
    return token


@dataclass
class Adviser:
    id: str
    username: str
    token: str
    department_id: str
    profession: str


class Clinic:
    """An institution with two departments (`department`, `other_department`) and advisers put
    on the roster through the API by the admin key (`adviser(...)`)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        i = next(_n)
        now = utc_now()
        with write_tx() as s:
            inst = sch.create_institution(s, InstitutionCreate(code=f"c{i}", name_zh="第一人民医院",
                                                               name_en="First People's Hospital"), now)
            self.department = sch.create_department(s, DepartmentCreate(
                institution_id=inst["id"], code=f"endo{i}", name_zh="内分泌科", name_en="Endocrinology"), now)["id"]
            self.other_department = sch.create_department(s, DepartmentCreate(
                institution_id=inst["id"], code=f"ped{i}", name_zh="儿科", name_en="Paediatrics"), now)["id"]

    def adviser(self, name: str, profession: str = "clinician", *, department: str | None = None,
                role: str | None = None) -> Adviser:
        """A new staff user (role clinician, or nurse for nurses and pharmacists) on the roster."""
        username = f"{name}-{next(_n)}"
        role = role or ("clinician" if profession == "clinician" else "nurse")
        dep = department or self.department
        uid = self.api.make_staff(username, PASSWORD, role)
        r = self.api.request("PUT", f"/consultations/advisers/{uid}", {
            "department_id": dep, "profession": profession, "display_name": f"{name}老师", "title": "主治医师"})
        assert r.status_code == 200, r.text
        token = self.api.post("/auth/token", {"username": username, "password": PASSWORD}, auth=False)
        assert token.status_code == 200, token.text
        return Adviser(uid, username, str(token.json()["access_token"]), dep, profession)


def open_body(pid: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"patient_id": pid, "subject": "血糖控制", "text": "餐后血糖偏高,饮食上要注意什么?",
                            "disclaimer_version": get_settings().consult_disclaimer_version,
                            "disclaimer_accepted_at": (utc_now() - timedelta(minutes=1)).isoformat(),
                            "idempotency_key": f"k{next(_n)}"}
    body.update(extra)
    return body


def open_thread(api: Api, pid: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
    r = api.post("/consultations", open_body(pid, **extra), key=token or patient_token(pid))
    assert r.status_code == 201, r.text
    return dict(r.json())


def png(width: int = 40, height: int = 30, fmt: str = "PNG", exif: bool = False) -> bytes:
    img = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    if exif:
        info = Image.Exif()
        info[0x010F] = "CameraMaker"  # Make
        img.save(out, format=fmt, exif=info.tobytes())
    else:
        img.save(out, format=fmt)
    return out.getvalue()


def outbox(topic: str) -> list[dict[str, Any]]:
    with read_tx() as s:
        rows = s.execute(select(OutboxMessage.payload).where(OutboxMessage.topic == topic)
                         .order_by(OutboxMessage.created_at, OutboxMessage.id)).all()
    return [dict(r[0]) for r in rows]


def audit(action: str, subject_id: str | None = None) -> list[dict[str, Any]]:
    with read_tx() as s:
        stmt = select(AuditEntry.actor_id, AuditEntry.patient_id, AuditEntry.subject_id, AuditEntry.details,
                      AuditEntry.on_behalf_of).where(AuditEntry.action == action)
        if subject_id is not None:
            stmt = stmt.where(AuditEntry.subject_id == subject_id)
        return [dict(r) for r in s.execute(stmt).mappings()]
