"""Programme drafts against the database (SQLite and PostgreSQL): maker-checker,
scheduled activation, staleness, the announcement job and the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.kit.db import get_engine, read_tx, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.notifications.models import InboxMessage
from carepoints.rules import governance
from carepoints.rules import service as rules
from carepoints.rules.errors import (
    ActivationBeforeScheduledError,
    ActivationPastError,
    ApproverIsAuthorError,
    DraftNotOpenError,
    DraftStaleError,
    NoChangesError,
    NotAuthorError,
)
from carepoints.rules.models import ProgrammeDraft, ProgramVersion
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, enrol, event, ingest_one

MAKER = Actor("api_key", new_id(), "admin")
CHECKER = Actor("staff", new_id(), "admin")
SUMMARY = {"zh": "健康讲座积分调整为40分", "en": "Health lectures earn 40 points"}
_drafts = table(ProgrammeDraft)
_outbox = table(OutboxMessage)


def _propose(now: datetime, activate_at: datetime, changes: dict[str, Any] | None = None,
             actor: Actor = MAKER) -> str:
    with write_tx() as session:
        doc = governance.propose(session, actor, summary=SUMMARY, activate_at=activate_at, now=now,
                                 changes=changes or {"rules": [{"code": "lecture", "points": 40}]})
    return str(doc["id"])


def _approve(draft_id: str, now: datetime, actor: Actor = CHECKER) -> dict[str, Any]:
    with write_tx() as session:
        return governance.approve(session, draft_id, actor, now, "ok")


def _newest() -> int:
    with read_tx() as session:
        return int(session.connection().execute(select(func.max(table(ProgramVersion).c.version))).scalar() or 0)


def test_approved_draft_applies_from_activate_at(db: Db) -> None:
    t0 = utc_now()
    pid = enrol(t0 - timedelta(days=2))
    activate = t0 + timedelta(hours=1)
    did = _propose(t0, activate)
    with read_tx() as session:
        doc = governance.draft(session, did)
    assert doc["status"] == "draft"
    assert doc["base_version"] == 1
    assert doc["change_kinds"] == ["rules"]
    assert doc["diff"]["rules"][0]["fields"] == [{"field": "points", "old": 30, "new": 40}]
    assert _newest() == 1  # nothing installed yet

    out = _approve(did, t0 + timedelta(minutes=1))
    assert out["status"] == "approved"
    assert out["installed_version"] == 2
    assert out["decided_by"] == {"kind": "staff", "id": CHECKER.id}
    assert out["announcement"]["state"] == "pending"
    with read_tx() as session:
        conn = session.connection()
        eff = conn.execute(select(table(ProgramVersion).c.effective_from).where(
            table(ProgramVersion).c.version == 2)).scalar()
        assert eff == activate
        msgs = conn.execute(select(_outbox.c.topic, _outbox.c.key).where(
            _outbox.c.topic.like("programme.%"))).all()
        assert msgs == [("programme.approved", did)]  # one message at approval; patients come with the job

    later = t0 + timedelta(hours=2)  # both events arrive after activation; each is judged at its own time
    before = ingest_one(later, event(pid, "lecture.attended", activate - timedelta(minutes=30), {"lecture_id": "L1"}))
    after = ingest_one(later, event(pid, "lecture.attended", activate + timedelta(minutes=30), {"lecture_id": "L2"}))
    assert [a["points"] for a in before["awards"]] == [30]
    assert [a["points"] for a in after["awards"]] == [40]
    assert_ledger_intact()
    with read_tx() as session:
        trail = session.connection().execute(select(table(AuditEntry).c.action).where(
            table(AuditEntry).c.subject_id == did).order_by(table(AuditEntry).c.at)).scalars().all()
    assert trail == ["rules:programme_draft:create", "rules:programme_draft:approve"]


def test_author_cannot_approve_or_reject(db: Db) -> None:
    t0 = utc_now()
    did = _propose(t0, t0 + timedelta(days=1))
    with pytest.raises(ApproverIsAuthorError):
        _approve(did, t0, actor=MAKER)
    with pytest.raises(ApproverIsAuthorError), write_tx() as session:
        governance.reject(session, did, MAKER, t0, "no")
    # the same id under another credential kind is another person
    with pytest.raises(NotAuthorError), write_tx() as session:
        governance.withdraw(session, did, Actor("staff", MAKER.id, "admin"), t0)
    assert _newest() == 1


def test_database_refuses_the_author_as_approver(db: Db) -> None:
    t0 = utc_now()
    did = _propose(t0, t0 + timedelta(days=1))
    with pytest.raises(IntegrityError), get_engine().begin() as conn:
        conn.execute(update(_drafts).where(_drafts.c.id == did).values(
            status="rejected", decided_by_kind=MAKER.kind, decided_by_id=MAKER.id, decided_at=t0))
    with pytest.raises(IntegrityError), get_engine().begin() as conn:  # approved needs an installed version
        conn.execute(update(_drafts).where(_drafts.c.id == did).values(
            status="approved", decided_by_kind=CHECKER.kind, decided_by_id=CHECKER.id, decided_at=t0))


def test_stale_draft_is_refused(db: Db) -> None:
    t0 = utc_now()
    first = _propose(t0, t0 + timedelta(days=1))
    second = _propose(t0, t0 + timedelta(days=2), {"settings": {"annual_cap": 9000}})
    _approve(first, t0)
    with pytest.raises(DraftStaleError) as err:
        _approve(second, t0)
    assert err.value.code == "programme.draft_stale"
    assert err.value.status_code == 409
    with read_tx() as session:
        assert governance.draft(session, second)["status"] == "draft"  # the refusal rolled back
    assert _newest() == 2
    # a file loaded meanwhile (the CLI) makes a draft stale too
    third = _propose(t0, t0 + timedelta(days=3), {"settings": {"annual_cap": 9000}})
    with write_tx() as session:
        rules.install(session, rules.default_programme_text(), effective_from=t0 + timedelta(days=4))
    with pytest.raises(DraftStaleError):
        _approve(third, t0)


def test_decisions_are_final_and_checked(db: Db) -> None:
    t0 = utc_now()
    did = _propose(t0, t0 + timedelta(days=1))
    with write_tx() as session:
        assert governance.withdraw(session, did, MAKER, t0)["status"] == "withdrawn"
    with pytest.raises(DraftNotOpenError) as err:
        _approve(did, t0)
    assert "withdrawn" in err.value.detail
    other = _propose(t0, t0 + timedelta(days=1))
    with write_tx() as session:
        out = governance.reject(session, other, CHECKER, t0, "budget too high")
    assert out["status"] == "rejected"
    assert out["decision_note"] == "budget too high"
    with pytest.raises(NoChangesError):
        _propose(t0, t0 + timedelta(days=1), {"rules": [{"code": "lecture", "points": 30}]})
    with pytest.raises(ActivationPastError):
        _propose(t0, t0 - timedelta(minutes=1))
    late = _propose(t0, t0 + timedelta(minutes=5))
    with pytest.raises(ActivationPastError):  # approved after its activation time: draft again
        _approve(late, t0 + timedelta(minutes=6))
    with read_tx() as session:
        assert [d["id"] for d in governance.drafts(session, "rejected")] == [other]
        assert len(governance.drafts(session)) == 3


def test_activation_before_a_scheduled_version_is_refused(db: Db) -> None:
    t0 = utc_now()
    _approve(_propose(t0, t0 + timedelta(days=10)), t0)
    with pytest.raises(ActivationBeforeScheduledError):
        _propose(t0, t0 + timedelta(days=5), {"settings": {"annual_cap": 9000}})


def _inbox_count(topic: str) -> int:
    with read_tx() as session:
        return int(session.connection().execute(select(func.count()).select_from(table(InboxMessage)).where(
            table(InboxMessage).c.topic == topic)).scalar() or 0)


def _dispatch(now: datetime) -> None:
    from carepoints.config import get_settings
    from carepoints.notifications import dispatch

    with write_tx() as session:
        dispatch.dispatch(session.connection(), get_settings(), now, 10_000)


def test_announcement_fans_out_once_in_batches(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import reset_settings
    from carepoints.enrolment import privacy

    monkeypatch.setenv("CAREPOINTS_PROGRAMME_ANNOUNCE_BATCH", "2")
    reset_settings()
    t0 = utc_now()
    pids = [enrol(t0 - timedelta(days=2)) for _ in range(5)]
    with write_tx() as session:  # one withdrew from the programme: not told
        privacy.withdraw(session, pids[0], "points_programme", MAKER, t0)
    assert governance.announce_programme(t0) == {"patients": 0, "batches": 0}  # nothing pending
    did = _propose(t0, t0 + timedelta(days=7))
    _approve(did, t0)

    from carepoints.jobs import registry

    result = registry.run("announce-programme", t0)  # the job as the scheduler runs it
    assert result == {"patients": 4, "batches": 3}  # 2 + 2 + 0 (the last batch finds the end)
    assert governance.announce_programme(t0) == {"patients": 0, "batches": 0}  # a re-run adds nothing
    with read_tx() as session:
        conn = session.connection()
        told = conn.execute(select(_outbox.c.key).where(_outbox.c.topic == "programme.changed")).scalars().all()
        doc = governance.draft(session, did)
    assert sorted(told) == sorted(pids[1:])
    assert doc["announcement"] == {"state": "done", "patients": 4, "finished_at": t0}
    _dispatch(t0)
    assert _inbox_count("programme.changed") == 4
    assert _inbox_count("programme.approved") == 1  # the admins' inbox
    with read_tx() as session:
        inbox = table(InboxMessage)
        row = session.connection().execute(select(inbox).where(
            inbox.c.recipient_id == pids[1], inbox.c.topic == "programme.changed")).mappings().one()
    effective = (t0 + timedelta(days=7)).astimezone(db_tz()).date().isoformat()
    assert row["body_zh"].startswith(f"积分规则将于 {effective} 起更新")


def db_tz() -> Any:
    from carepoints.config import get_settings

    return get_settings().tz


def test_announcement_resumes_after_a_crash(db: Db) -> None:
    t0 = utc_now()
    pids = [enrol(t0 - timedelta(days=2)) for _ in range(3)]
    _approve(_propose(t0, t0 + timedelta(days=1)), t0)
    with write_tx() as session:
        assert governance.announce_batch(session, t0, 1) == (1, True)
    def crash() -> None:  # a batch that fails leaves nothing behind
        with write_tx() as session:
            governance.announce_batch(session, t0, 1)
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        crash()
    with write_tx() as session:
        assert governance.announce_batch(session, t0, 10) == (2, True)
    with write_tx() as session:
        assert governance.announce_batch(session, t0, 10) == (0, False)
    with read_tx() as session:
        told = session.connection().execute(select(_outbox.c.key).where(
            _outbox.c.topic == "programme.changed")).scalars().all()
    assert sorted(told) == sorted(pids)
