"""Links are decided by the primary key: racers linking one patient to one institution
all succeed, exactly one of them links, and one row results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients.models import PatientInstitution
from carepoints.scheduling import alliance as service
from tests.locks import oks, race

if TYPE_CHECKING:
    from tests.alliance.conftest import Alliance
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]


def _link(pid: str, iid: str) -> bool:
    with write_tx() as session:
        return bool(service.link_patient(session, pid, iid, utc_now())["linked"])


def test_concurrent_links_make_one_row(racing: Db, alliance: Alliance) -> None:
    results = race(racing, [lambda: _link(alliance.pb, alliance.a) for _ in range(8)])
    done = oks(results)
    assert len(done) == 8, results
    assert sorted(done) == [False] * 7 + [True]
    with read_tx() as session:
        rows = session.execute(select(func.count()).select_from(PatientInstitution).where(
            PatientInstitution.patient_id == alliance.pb)).scalar()
    assert rows == 2  # B (enrolment) and A
