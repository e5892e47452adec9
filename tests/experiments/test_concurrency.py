"""Racing starts really commit from separate connections: of two starts of one experiment
exactly one wins, and of two experiments overriding the same rule exactly one runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.experiments import service
from carepoints.experiments.errors import NotDraftError, OverlappingExperimentError
from carepoints.experiments.models import Experiment
from carepoints.experiments.schemas import ExperimentCreate
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from tests.conftest import Db
from tests.experiments.support import design
from tests.locks import errors, oks, race

ADMIN = Actor("api_key", new_id(), "admin")


def _draft(body: dict[str, Any]) -> str:
    with write_tx() as session:
        doc, _ = service.create(session, ExperimentCreate.model_validate(body), ADMIN, utc_now())
    return str(doc["id"])


def _starter(eid: str) -> Callable[[], str]:
    def run() -> str:
        with write_tx() as session:
            return str(service.start(session, eid, Actor("staff", new_id(), "admin"), utc_now())["status"])
    return run


def _statuses() -> dict[str, str]:
    t = table(Experiment)
    with read_tx() as session:
        return dict(session.connection().execute(select(t.c.code, t.c.status)).all())


def test_two_starts_of_one_experiment_one_wins(racing: Db) -> None:
    eid = _draft(design())
    results = race(racing, [_starter(eid), _starter(eid)], lock=(table(Experiment), [eid]))
    assert oks(results) == ["running"]
    [err] = errors(results)
    assert isinstance(err, NotDraftError)
    assert err.params == {"status": "running"}
    assert _statuses() == {"bp_points": "running"}


def test_two_experiments_on_one_rule_never_both_run(racing: Db) -> None:
    a = _draft(design("bp_points"))
    b = _draft(design("bp_cap", [{"rule": "health_checkin", "daily_points": 40}]))
    results = race(racing, [_starter(a), _starter(b)], lock=(table(Experiment), [a, b]))
    assert oks(results) == ["running"]
    [err] = errors(results)
    assert isinstance(err, OverlappingExperimentError)
    assert sorted(_statuses().values()) == ["draft", "running"]


def test_two_creates_of_one_code_store_one(racing: Db) -> None:
    def create() -> tuple[str, bool]:
        with write_tx() as session:
            doc, created = service.create(session, ExperimentCreate.model_validate(design()), ADMIN, utc_now())
        return str(doc["id"]), created

    results = race(racing, [create, create, create])
    found = oks(results)
    assert len(found) == 3
    assert len({eid for eid, _ in found}) == 1
    assert sorted(created for _, created in found) == [False, False, True]
