"""Concurrent approvals really commit from separate connections: exactly one installs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.config import reset_settings
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.rules import governance
from carepoints.rules.errors import DraftNotOpenError, DraftStaleError
from carepoints.rules.models import ProgrammeDraft, ProgramVersion
from tests.conftest import Db
from tests.helpers import enrol
from tests.locks import errors, oks, race

MAKER = Actor("api_key", new_id(), "admin")
SUMMARY = {"zh": "调整", "en": "Change"}


def _propose(cap: int) -> str:
    now = utc_now()
    with write_tx() as session:
        return str(governance.propose(session, MAKER, summary=SUMMARY, activate_at=now + timedelta(days=1), now=now,
                                      changes={"settings": {"annual_cap": cap}})["id"])


def _approver(draft_id: str) -> object:
    checker = Actor("staff", new_id(), "admin")

    def run() -> int:
        with write_tx() as session:
            return int(governance.approve(session, draft_id, checker, utc_now())["installed_version"])
    return run


def _versions() -> tuple[int, int]:
    with read_tx() as session:
        conn = session.connection()
        count = conn.execute(select(func.count()).select_from(table(ProgramVersion))).scalar()
        approved = conn.execute(select(func.count()).select_from(table(ProgrammeDraft)).where(
            table(ProgrammeDraft).c.status == "approved")).scalar()
    return int(count or 0), int(approved or 0)


def test_two_approvals_of_one_draft_install_once(racing: Db) -> None:
    did = _propose(9000)
    results = race(racing, [_approver(did), _approver(did)], lock=(table(ProgrammeDraft), [did]))  # type: ignore[list-item]
    assert oks(results) == [2]
    errs = errors(results)
    assert len(errs) == 1
    assert isinstance(errs[0], DraftNotOpenError)
    assert _versions() == (2, 1)


def test_two_drafts_on_one_base_install_one(racing: Db) -> None:
    a, b = _propose(9000), _propose(8000)
    results = race(racing, [_approver(a), _approver(b)], lock=(table(ProgrammeDraft), [a, b]))  # type: ignore[list-item]
    assert oks(results) == [2]
    errs = errors(results)
    assert len(errs) == 1
    assert isinstance(errs[0], DraftStaleError)
    assert _versions() == (2, 1)


def test_two_announcers_tell_each_patient_once(racing: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_PROGRAMME_ANNOUNCE_BATCH", "2")
    reset_settings()
    now = utc_now()
    pids = [enrol(now - timedelta(days=2)) for _ in range(7)]
    did = _propose(9000)
    _approver(did)()  # type: ignore[operator]
    results = race(racing, [lambda: governance.announce_programme(now), lambda: governance.announce_programme(now)],
                   lock=(table(ProgrammeDraft), [did]))
    told = [r["patients"] for r in oks(results)]
    assert len(told) == 2
    assert sum(told) == 7
    with read_tx() as session:
        keys = session.connection().execute(select(table(OutboxMessage).c.key).where(
            table(OutboxMessage).c.topic == "programme.changed")).scalars().all()
    assert sorted(keys) == sorted(pids)
