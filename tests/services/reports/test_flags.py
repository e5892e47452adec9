"""Interpretation flags without a database: the sender's flag wins, else the range decides."""

from __future__ import annotations

import pytest

from carepoints.services.reports.flags import interpret, is_abnormal, is_critical
from carepoints.services.reports.schemas import Flag


@pytest.mark.parametrize(("value", "low", "high", "given", "expected"), [
    (11.2, 3.5, 9.5, None, Flag.high), (3.4, 3.5, 9.5, None, Flag.low), (3.5, 3.5, 9.5, None, Flag.normal),
    (9.5, 3.5, 9.5, None, Flag.normal), (7.0, None, 6.1, None, Flag.high), (0.5, 1.0, None, None, Flag.low),
    (6.0, 3.5, 9.5, Flag.critical_high, Flag.critical_high), (5.0, None, None, None, None),
    ("阴性", None, None, None, None), ("阳性", None, None, Flag.abnormal, Flag.abnormal)])
def test_interpret(value: float | str, low: float | None, high: float | None, given: Flag | None,
                   expected: Flag | None) -> None:
    assert interpret(value, low, high, given) == expected


def test_abnormal_and_critical() -> None:
    assert [is_abnormal(f) for f in ("N", "H", None, "critical")] == [False, True, False, True]
    assert [is_critical(f) for f in ("HH", "LL", "critical", "H", "A", None)] == [True, True, True, False, False,
                                                                                   False]
