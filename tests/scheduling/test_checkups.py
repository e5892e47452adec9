"""Checkup packages (体检套餐) on SQLite and PostgreSQL: the daily capacity holds under
real concurrency, cancellations give places back, attending pays like an exam."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import checkups
from carepoints.scheduling import errors as err_
from carepoints.scheduling import repository as repo
from carepoints.scheduling.schemas import CheckupBookingCreate, CheckupPackageCreate
from tests.conftest import Db
from tests.helpers import balance, enrol
from tests.locks import errors, oks, race
from tests.scheduling.test_concurrency import _patients, ahead
from tests.scheduling.test_service import NOW, local, refused

DAY = date(2026, 6, 20)


def package(code: str = "elder", capacity: int = 3) -> dict[str, Any]:
    with write_tx() as s:
        return checkups.create_package(s, CheckupPackageCreate(
            code=code, name_zh="老年人健康体检", name_en="Senior checkup", items=["血常规", "心电图", " 腹部B超 "],
            price_cny=Decimal("380"), daily_capacity=capacity), NOW)


def book(pid: str, day: date = DAY, code: str = "elder", key: str | None = None, at: Any = NOW) -> dict[str, Any]:
    with write_tx() as s:
        doc, _new = checkups.book(s, CheckupBookingCreate(
            patient_id=pid, package=code, date=day, idempotency_key=key or f"c-{pid}-{day}"), at)
    return doc


def remaining(day: date = DAY) -> int:
    with read_tx() as s:
        return int(checkups.list_packages(s, day, NOW)[0]["remaining"])


def test_capacity_cancel_and_attend(db: Db) -> None:
    doc = package()
    assert doc["items"] == ["血常规", "心电图", "腹部B超"]
    assert doc["price_cny"] == "380.00"
    pids = [enrol(NOW) for _ in range(4)]
    first = book(pids[0])
    assert book(pids[0]) == first  # the same key: the same booking
    assert isinstance(refused(book, pids[0], key="again"), err_.AlreadyBookedCheckupError)
    book(pids[1])
    book(pids[2])
    assert remaining() == 0
    assert isinstance(refused(book, pids[3]), err_.CheckupFullError)
    assert remaining(DAY + timedelta(days=1)) == 3  # another day has its own places
    with write_tx() as s:
        assert checkups.cancel(s, first["id"], NOW)["status"] == "cancelled"
    assert remaining() == 1
    late = book(pids[3])
    with write_tx() as s:
        err = refused(checkups.attend, s, late["id"], NOW)
    assert isinstance(err, err_.CheckupNotTodayError)
    on_the_day = local(DAY, "10:30")
    with write_tx() as s:
        assert checkups.attend(s, late["id"], on_the_day)["status"] == "attended"
    assert balance(pids[3], on_the_day) == 100 + 10  # an exam attended (Saturday: not off-peak)
    with write_tx() as s:
        err = refused(checkups.cancel, s, late["id"], on_the_day)
    assert isinstance(err, err_.IllegalTransitionError)


def test_days_and_unknowns(db: Db) -> None:
    package()
    pid = enrol(NOW)
    assert isinstance(refused(book, pid, day=date(2026, 6, 14)), err_.CheckupDayError)  # yesterday
    assert isinstance(refused(book, pid, day=date(2026, 8, 15)), err_.CheckupDayError)  # > 60 days
    assert isinstance(refused(book, pid, code="nope"), err_.PackageNotFoundError)
    with pytest.raises(err_.DuplicateCodeError):
        package()
    assert book(pid, day=date(2026, 6, 15))["status"] == "booked"  # today is fine


def test_the_daily_capacity_holds_under_concurrency(db: Db) -> None:
    with write_tx() as s:
        checkups.create_package(s, CheckupPackageCreate(code="rush", name_zh="体检", items=["血常规"],
                                                        price_cny=Decimal(100), daily_capacity=5), utc_now())
    day = ahead(3)
    pids = [enrol(utc_now()) for _ in range(15)]  # with the lock holder, within one process's pool
    results = race(db, [lambda p=p: book(p, day=day, code="rush", at=utc_now()) for p in pids],  # type: ignore[misc]
                   lock=(_patients, pids))
    assert len(oks(results)) == 5
    assert all(isinstance(e, err_.CheckupFullError) for e in errors(results))
    with read_tx() as s:
        live = s.execute(select(func.count()).select_from(repo.checkup_bookings).where(
            repo.checkup_bookings.c.day == day, repo.checkup_bookings.c.status == "booked")).scalar()
        counter = s.execute(select(repo.checkup_days.c.booked).where(repo.checkup_days.c.day == day)).scalar()
    assert (live, counter) == (5, 5)
