"""A demo hospital: ~50 patients with some months of behaviour history.

Idempotent: patients carry fixed idempotency keys and events fixed source
keys, so a second run changes nothing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from carepoints.enrolment import service as enrolment
from carepoints.events import service as events
from carepoints.kit.db import write_tx
from carepoints.patients.schemas import PatientCreate

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀英", "桂英", "建国", "志强", "淑珍", "国华", "玉兰", "德明",
         "丽华", "永红", "海燕", "春梅", "文", "静", "伟"]
DEPARTMENTS = ["心内科", "内分泌科", "全科医学科", "老年医学科"]
PATIENTS = 50
DAYS = 120


def _patient(i: int, now: datetime) -> PatientCreate:
    rnd = random.Random(i)  # noqa: S311 - deterministic demo data
    birth_year = 1940 + rnd.randint(0, 55)
    return PatientCreate.model_validate({
        "name": rnd.choice(SURNAMES) + rnd.choice(GIVEN),
        "phone": f"139{rnd.randint(10_000_000, 99_999_999)}",
        "birth_date": f"{birth_year}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        "sex": rnd.choice(["male", "female"]),
        "external_ids": [{"system": "urn:demo:his:mrn", "value": f"DEMO{i:05d}"}],
        "consent": {"version": "1.0", "accepted_at": (now - timedelta(days=DAYS + 1)).isoformat()},
        "idempotency_key": f"demo-patient-{i}",
    })


def _history(i: int, pid: str, now: datetime) -> list[dict[str, Any]]:
    rnd = random.Random(1000 + i)  # noqa: S311 - deterministic demo data
    out: list[dict[str, Any]] = []
    start = (now - timedelta(days=DAYS)).replace(hour=0, minute=30, second=0, microsecond=0)
    diligence = rnd.random()

    def add(type_: str, at: datetime, attrs: dict[str, Any], key: str) -> None:
        out.append({"type": type_, "patient": {"id": pid}, "occurred_at": at.isoformat(), "source": "demo",
                    "source_event_id": f"{i}:{key}", "attributes": attrs})

    for d in range(DAYS):
        day = start + timedelta(days=d)
        if rnd.random() < diligence:
            add("health.measurement", day + timedelta(hours=rnd.randint(0, 2)),
                {"kind": "blood_pressure", "systolic": rnd.randint(112, 158), "diastolic": rnd.randint(70, 96),
                 "pulse": rnd.randint(58, 92), "provenance": rnd.choice(["device", "self_reported"])}, f"bp{d}")
        if rnd.random() < diligence * 0.8:
            add("medication.taken", day + timedelta(hours=1), {"plan_id": f"plan-{i}"}, f"med{d}")
        if rnd.random() < 0.05:
            add("selfservice.used", day + timedelta(hours=2), {"action": rnd.choice(["pay", "print_report"])},
                f"kiosk{d}")
    for v in range(rnd.randint(1, 4)):
        slot = (start + timedelta(days=rnd.randint(10, DAYS - 2))).replace(hour=1 + rnd.randint(0, 6))
        appt = f"demo-appt-{i}-{v}"
        if rnd.random() < 0.1:
            add("appointment.no_show", slot, {"appointment_id": appt, "slot_start": slot.isoformat()}, f"ns{v}")
            continue
        booked = slot - timedelta(days=rnd.randint(1, 7))
        attrs = {"appointment_id": appt, "slot_start": slot.isoformat(), "booked_at": booked.isoformat(),
                 "booked_by": "patient", "checked_in_at": (slot - timedelta(minutes=rnd.randint(-5, 20))).isoformat(),
                 "department": rnd.choice(DEPARTMENTS)}
        add("appointment.attended", slot, attrs, f"att{v}")
        if rnd.random() < 0.5:
            add("review.submitted", slot + timedelta(hours=3), {
                "appointment_id": appt, "rating": rnd.randint(4, 5),
                "text": "医生问诊非常仔细,耐心解释了检查结果和用药方法,护士指导测量血压的方法也很清楚,候诊秩序良好,"
                        "预约时间准确,整体就医体验很好,感谢医院的贴心服务。"}, f"rev{v}")
    return out


def load(now: datetime) -> str:
    created = 0
    for i in range(PATIENTS):
        with write_tx() as session:
            pid, new = enrolment.enrol(session, _patient(i, now), now - timedelta(days=DAYS), channel="demo")
            history = _history(i, pid, now)
            for b in range(0, len(history), 500):
                events.ingest(session, history[b:b + 500], now)
        created += int(new)
    return f"demo hospital ready: {PATIENTS} patients ({created} new) with {DAYS} days of history"
