"""Appeals of penalties and suspensions through the service (both databases): a reversed
no-show gives the points back and lifts the suspension it caused, an upheld one changes
nothing, and every refusal answers its code."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.events.models import Event
from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger.models import Transfer
from carepoints.notifications import templates as tpl
from carepoints.operations import appeals
from carepoints.operations.models import Appeal
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, bp, enrol, event, ingest_one, points

DESK = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d1", "frontdesk")
DESK2 = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d2", "frontdesk")


def no_show(pid: str, now: datetime, days_ago: int) -> dict[str, Any]:
    slot = now - timedelta(days=days_ago)
    out = ingest_one(now, event(pid, "appointment.no_show", slot + timedelta(minutes=30),
                                {"appointment_id": f"appt-{pid[-6:]}-{days_ago}", "slot_start": slot.isoformat()}))
    assert [a["points"] for a in out["awards"]] == [-50]
    return out


def suspended(pid: str, now: datetime) -> tuple[str, str]:
    """Three no-shows: the third suspends earning. (its event id, the suspension id)"""
    no_show(pid, now, 5)
    no_show(pid, now, 4)
    third = no_show(pid, now, 3)
    assert points(pid, now)["suspended_until"] is not None
    with read_tx() as s:
        [sus] = appeals.suspensions(s, pid)["items"]
    assert sus["trigger_event_id"] == third["event_id"]
    return third["event_id"], sus["id"]


def file(actor: Actor, pid: str, now: datetime, **kw: Any) -> dict[str, Any]:
    kw.setdefault("reason", "hospitalised")
    with write_tx() as s:
        return appeals.file(s, actor, now, patient_id=None, ref=PatientRef(id=pid), **kw)


def decide(appeal_id: str, outcome: str, actor: Actor, now: datetime) -> dict[str, Any]:
    with write_tx() as s:
        return appeals.decide(s, appeal_id, outcome, actor, now, note="checked the ward record")


def refused(code: str, fn: Any, *args: Any, **kw: Any) -> AppError:
    with pytest.raises(AppError) as info:
        fn(*args, **kw)
    assert info.value.code == code, info.value
    return info.value


def audit_actions(appeal_id: str) -> list[str]:
    a = table(AuditEntry)
    with read_tx() as s:
        return sorted(s.connection().execute(select(a.c.action).where(a.c.subject_id == appeal_id)).scalars())


def audit_details(appeal_id: str) -> list[dict[str, Any]]:
    a = table(AuditEntry)
    with read_tx() as s:
        return [dict(d) for d in s.connection().execute(select(a.c.details).where(a.c.subject_id == appeal_id))
                .scalars()]


def topics(pid: str) -> list[str]:
    """The patient's appeal messages in the outbox, each rendered in zh and en (ids only in them)."""
    o = table(OutboxMessage)
    with read_tx() as s:
        rows = s.connection().execute(select(o.c.topic, o.c.payload).where(o.c.key == pid, o.c.topic.like(
            "appeal.%")).order_by(o.c.created_at, o.c.id)).all()
    for topic, payload in rows:
        assert set(payload) <= {"patient_id", "appeal_id", "due_at", "subject_kind", "points"}
        template = tpl.lookup(tpl.BUILTIN, topic, tpl.variant_of(topic, payload))
        assert template is not None, topic
        out = tpl.render(template, tpl.params_of(payload, ZoneInfo("Asia/Shanghai")))
        assert out.body_zh
        assert out.body_en
    return [str(r[0]) for r in rows]


def reversals(event_id: str) -> int:
    t = table(Transfer)
    with read_tx() as s:
        return int(s.connection().execute(select(func.count()).select_from(t).where(
            t.c.event_id == event_id, t.c.kind == "reversal")).scalar() or 0)


def test_a_reversed_no_show_gives_the_points_back_and_lifts_its_suspension(db: Db, now: datetime) -> None:
    pid = enrol(now)
    eid, _sid = suspended(pid, now)
    assert balance(pid, now) == -50
    patient = Actor("patient", pid, "patient")
    doc = file(patient, pid, now, event_id=eid)
    assert doc["status"] == "open"
    assert doc["subject"] == {"kind": "penalty", "id": eid}
    assert doc["deadline"] == now + timedelta(days=15)
    assert doc["decision"] is None

    later = now + timedelta(days=2)
    out = decide(doc["id"], "reversed", DESK, later)
    assert out["status"] == "reversed"
    assert out["points_returned"] == 50
    assert out["decision"]["decided_by"] == {"kind": "staff", "id": DESK.id}
    assert balance(pid, later) == 0
    assert points(pid, later)["suspended_until"] is None
    with read_tx() as s:
        assert appeals.suspensions(s, pid)["items"] == []
        ev = s.connection().execute(select(table(Event).c.status, table(Event).c.revoke_reason)
                                    .where(table(Event).c.id == eid)).one()
    assert tuple(ev) == ("revoked", f"appeal:{doc['id']}")
    assert reversals(eid) == 1
    assert audit_actions(doc["id"]) == ["operations:appeal:decided", "operations:appeal:filed"]
    assert all("note" not in d and "checked" not in str(d) for d in audit_details(doc["id"]))
    assert topics(pid) == ["appeal.received", "appeal.reversed"]
    assert_ledger_intact()


def test_a_suspension_appeal_revokes_its_trigger_no_show(db: Db, now: datetime) -> None:
    pid = enrol(now)
    eid, sid = suspended(pid, now)
    doc = file(DESK, pid, now, suspension_id=sid, reason="session_cancelled_unrecorded")
    assert doc["subject"] == {"kind": "suspension", "id": sid}
    assert doc["event_id"] == eid
    with read_tx() as s:
        assert appeals.suspensions(s, pid)["items"][0]["appeal"] == {"id": doc["id"], "status": "open"}
    decide(doc["id"], "reversed", DESK2, now)
    assert points(pid, now)["suspended_until"] is None
    assert balance(pid, now) == 0
    assert reversals(eid) == 1
    # the suspension is gone, its appeal is decided: appealing it again says so
    refused("appeals.already_decided", file, DESK, pid, now, suspension_id=sid)
    assert_ledger_intact()


def test_an_upheld_appeal_changes_nothing(db: Db, now: datetime) -> None:
    pid = enrol(now)
    eid, _sid = suspended(pid, now)
    until = points(pid, now)["suspended_until"]
    doc = file(Actor("patient", pid, "patient"), pid, now, event_id=eid, reason="other", note="我那天在住院")
    out = decide(doc["id"], "upheld", DESK, now)
    assert (out["status"], out["points_returned"]) == ("upheld", 0)
    assert balance(pid, now) == -50
    assert points(pid, now)["suspended_until"] == until
    assert reversals(eid) == 0
    assert topics(pid) == ["appeal.received", "appeal.upheld"]
    refused("appeals.already_decided", decide, doc["id"], "reversed", DESK2, now)
    refused("appeals.already_decided", file, DESK, pid, now, event_id=eid)
    assert balance(pid, now) == -50
    assert_ledger_intact()


def test_refusals(db: Db, now: datetime) -> None:
    pid, other = enrol(now), enrol(now)
    penalty = no_show(pid, now, 2)["event_id"]
    earning = ingest_one(now, event(pid, "health.measurement", now - timedelta(hours=1), bp()))["event_id"]
    refused("appeals.not_a_penalty", file, DESK, pid, now, event_id=earning)
    refused("appeals.subject_not_found", file, DESK, other, now, event_id=penalty)  # not the other's
    refused("appeals.subject_not_found", file, DESK, pid, now, event_id="0190a5f0-0000-7000-8000-000000000000")
    refused("appeals.subject_not_found", file, DESK, pid, now, suspension_id="not-an-id")
    refused("appeals.subject_required", file, DESK, pid, now)
    refused("appeals.subject_required", file, DESK, pid, now, event_id=penalty, suspension_id=penalty)
    refused("appeals.note_required", file, DESK, pid, now, event_id=penalty, reason="other", note="  ")
    refused("appeals.too_late", file, DESK, pid, now + timedelta(days=31), event_id=penalty)
    refused("patients.not_found", file, DESK, "0190a5f0-0000-7000-8000-000000000000", now, event_id=penalty)

    doc = file(DESK, pid, now + timedelta(days=29), event_id=penalty)  # still inside the window
    refused("appeals.already_open", file, Actor("patient", pid, "patient"), pid, now, event_id=penalty)
    refused("appeals.decider_not_allowed", decide, doc["id"], "reversed", DESK, now)  # who filed it
    refused("appeals.decider_not_allowed", decide, doc["id"], "reversed", Actor("patient", pid, "patient"), now)
    refused("appeals.not_found", decide, "0190a5f0-0000-7000-8000-000000000000", "reversed", DESK2, now)
    assert balance(pid, now) == 110  # 100 welcome - 50 no-show + 60 reading: nothing changed
    with read_tx() as s:
        assert [a["id"] for a in appeals.queue(s)["items"]] == [doc["id"]]
    assert_ledger_intact()


def test_the_database_refuses_a_decider_who_filed_it_and_two_open_appeals(db: Db, now: datetime) -> None:
    pid = enrol(now)
    penalty = no_show(pid, now, 2)["event_id"]
    doc = file(DESK, pid, now, event_id=penalty)
    t = table(Appeal)
    for decider in (DESK.id, pid):
        with pytest.raises(IntegrityError), write_tx() as s:
            s.connection().execute(update(t).where(t.c.id == doc["id"]).values(
                status="upheld", decided_by_kind="staff", decided_by_id=decider, decided_at=now))
    with pytest.raises(IntegrityError), write_tx() as s:
        s.connection().execute(t.insert(), [{**_raw(doc["id"]),
                                             "id": "0190a5f0-0000-7000-8000-0000000000ee"}])


def _raw(appeal_id: str) -> dict[str, Any]:
    t = table(Appeal)
    with read_tx() as s:
        return dict(s.connection().execute(select(t).where(t.c.id == appeal_id)).mappings().one())


def test_queue_pages_and_filters(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ids = [file(DESK, pid, now, event_id=no_show(pid, now, d)["event_id"])["id"] for d in (1, 2, 3)]
    decide(ids[0], "upheld", DESK2, now)
    with read_tx() as s:
        first = appeals.queue(s, limit=1)
        second = appeals.queue(s, limit=1, before=first["next"])
        assert [a["id"] for a in first["items"] + second["items"]] == [ids[2], ids[1]]
        assert [a["id"] for a in appeals.queue(s, status="upheld")["items"]] == [ids[0]]
        assert len(appeals.queue(s, status=None, patient_id=pid)["items"]) == 3
