"""Proxy authorisations (代办): scopes, revocation, the service window, the guardian's
default for a child under 14, and proxy actions recorded as such."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.patients import proxies
from carepoints.patients.errors import InvalidProxyError, ProxyExistsError, ProxyNotAuthorisedError
from carepoints.patients.proxies import Proxy
from tests.conftest import Db
from tests.helpers import enrol


def by_guardian(now: datetime) -> dict[str, str]:
    """A child under 14 is enrolled with a guardian's consent (PIPL; enrolment.privacy)."""
    return {"version": "1.0", "accepted_at": (now - timedelta(days=1)).isoformat(), "source": "guardian"}


WINDOW = Proxy.service_window()
DESK = Actor("staff", "0190a5f0-0000-7000-8000-0000000000bb", "frontdesk")


def authorise(pid: str, proxy: Proxy, scopes: list[str], now: datetime, *, guardian: bool = False) -> str:
    with write_tx() as session:
        return str(proxies.authorise(session, pid, proxy, scopes, now, guardian=guardian)["id"])


def allowed(pid: str, proxy: Proxy, scope: str, now: datetime) -> bool:
    with read_tx() as session:
        try:
            proxies.check(session, pid, proxy, scope, now)
        except ProxyNotAuthorisedError as exc:
            denied = exc
        else:
            return True
    assert denied.status_code == 403
    return False


def test_a_caregiver_acts_within_the_scopes_until_revoked(db: Db, now: datetime) -> None:
    patient, carer, stranger = enrol(now), enrol(now), enrol(now)
    aid = authorise(patient, Proxy(carer), ["view", "book"], now)
    assert allowed(patient, Proxy(carer), "view", now)
    assert allowed(patient, Proxy(carer), "book", now)
    assert not allowed(patient, Proxy(carer), "redeem", now)
    assert not allowed(patient, Proxy(stranger), "view", now)
    assert not allowed(carer, Proxy(patient), "view", now)  # authorisations are one-way
    with write_tx() as session:
        revoked = proxies.revoke(session, patient, aid, now)
        again = proxies.revoke(session, patient, aid, now + timedelta(hours=1))
    assert revoked == again
    assert revoked["revoked_at"] == now
    assert not allowed(patient, Proxy(carer), "view", now)
    # once revoked, the same caregiver may be authorised afresh
    authorise(patient, Proxy(carer), ["redeem"], now)
    assert allowed(patient, Proxy(carer), "redeem", now)
    with read_tx() as session:
        listed = proxies.authorisations(session, patient)
    assert [a["scopes"] for a in listed] == [["redeem"], ["view", "book"]]


def test_one_active_authorisation_per_proxy(db: Db, now: datetime) -> None:
    patient, carer = enrol(now), enrol(now)
    authorise(patient, Proxy(carer), ["view"], now)
    with pytest.raises(ProxyExistsError):
        authorise(patient, Proxy(carer), ["book"], now)
    authorise(patient, WINDOW, ["redeem"], now)
    with pytest.raises(ProxyExistsError):
        authorise(patient, WINDOW, ["view"], now)
    with pytest.raises(InvalidProxyError):
        authorise(patient, Proxy(patient), ["view"], now)
    with pytest.raises(InvalidProxyError):
        authorise(patient, WINDOW, [], now, guardian=True)


def test_the_service_window_acts_only_where_authorised(db: Db, now: datetime) -> None:
    patient, other = enrol(now), enrol(now)
    authorise(patient, WINDOW, ["redeem"], now)
    assert allowed(patient, WINDOW, "redeem", now)
    assert not allowed(patient, WINDOW, "book", now)
    assert not allowed(other, WINDOW, "redeem", now)


@pytest.mark.parametrize(("birth", "under_14"), [("2012-06-16", True), ("2012-06-15", False)])
def test_a_guardian_acts_in_every_scope_for_a_child_under_14(db: Db, now: datetime, birth: str,
                                                             under_14: bool) -> None:
    """13 years and 364 days old: every scope; from the 14th birthday only those recorded."""
    child, guardian = enrol(now, birth_date=birth, consent=by_guardian(now)), enrol(now)
    authorise(child, Proxy(guardian), ["view"], now, guardian=True)
    assert allowed(child, Proxy(guardian), "view", now)
    assert allowed(child, Proxy(guardian), "redeem", now) is under_14
    assert allowed(child, Proxy(guardian), "book", now) is under_14


def test_the_14th_birthday_is_the_hospitals_local_day(db: Db, now: datetime) -> None:
    child, guardian = enrol(now, birth_date="2012-06-15", consent=by_guardian(now)), enrol(now)
    authorise(child, Proxy(guardian), [], now - timedelta(days=30), guardian=True)
    just_before = datetime(2026, 6, 14, 15, 59, tzinfo=UTC)  # 23:59 on the 14th in Shanghai
    birthday = datetime(2026, 6, 14, 16, 0, tzinfo=UTC)  # midnight: the 15th in Shanghai, still the 14th in UTC
    assert allowed(child, Proxy(guardian), "redeem", just_before)
    assert not allowed(child, Proxy(guardian), "redeem", birthday)


def test_a_leap_day_child_turns_14_on_the_first_of_march() -> None:
    assert proxies.turns(datetime(2012, 2, 29).date(), 14) == datetime(2026, 3, 1).date()  # noqa: DTZ001
    assert proxies.turns(datetime(2012, 3, 1).date(), 14) == datetime(2026, 3, 1).date()  # noqa: DTZ001


def test_an_adult_guardian_authorisation_keeps_only_its_scopes(db: Db, now: datetime) -> None:
    ward, guardian, nobody = enrol(now, birth_date="1950-01-01"), enrol(now), enrol(now)
    authorise(ward, Proxy(guardian), ["view"], now, guardian=True)
    assert allowed(ward, Proxy(guardian), "view", now)
    assert not allowed(ward, Proxy(guardian), "redeem", now)
    no_birth = enrol(now)
    authorise(no_birth, Proxy(nobody), [], now, guardian=True)
    assert not allowed(no_birth, Proxy(nobody), "view", now)  # no birth date: no default


def test_a_proxy_action_is_recorded_as_such(db: Db, now: datetime) -> None:
    patient, carer = enrol(now), enrol(now)
    aid = authorise(patient, Proxy(carer), ["book"], now)
    with write_tx() as session:
        assert proxies.act(session, DESK, patient, Proxy(carer), "book", "scheduling:appointment:book", now,
                           subject_id=aid) == aid
    with write_tx() as session, pytest.raises(ProxyNotAuthorisedError):
        proxies.act(session, DESK, patient, Proxy(carer), "redeem", "rewards:redemption:create", now)
    with read_tx() as session:
        rows = audit.entries(session, patient_id=patient)
    assert len(rows) == 1
    row = rows[0]
    assert (row["action"], row["on_behalf_of"], row["actor_id"]) == ("scheduling:appointment:book", patient, DESK.id)
    assert row["details"] == {"authorisation_id": aid, "proxy": carer, "scope": "book"}
