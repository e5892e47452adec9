"""Interpretation flags: the sender's, or computed from the reference range. Pure, no I/O."""

from __future__ import annotations

from carepoints.services.reports.schemas import Flag

CRITICAL = frozenset({Flag.critical_high, Flag.critical_low, Flag.critical})
# FHIR / HL7 v3 ObservationInterpretation codes → ours; unknown codes count as abnormal
FHIR_CODES = {"N": Flag.normal, "H": Flag.high, "L": Flag.low, "HH": Flag.critical_high, "LL": Flag.critical_low,
              "A": Flag.abnormal, "AA": Flag.critical, "HU": Flag.critical_high, "LU": Flag.critical_low,
              ">": Flag.high, "<": Flag.low, "POS": Flag.abnormal, "NEG": Flag.normal, "DET": Flag.abnormal,
              "ND": Flag.normal, "NR": Flag.normal, "R": Flag.abnormal, "IND": Flag.abnormal}


def interpret(value: float | str | None, low: float | None, high: float | None, given: Flag | None) -> Flag | None:
    """The sender's flag when it gave one; else H / L / N from a numeric value and its range;
    else none (a text value without a flag, or no range)."""
    if given is not None:
        return given
    if not isinstance(value, float | int) or (low is None and high is None):
        return None
    if high is not None and value > high:
        return Flag.high
    if low is not None and value < low:
        return Flag.low
    return Flag.normal


def is_abnormal(flag: str | None) -> bool:
    return flag is not None and flag != Flag.normal


def is_critical(flag: str | None) -> bool:
    return flag in CRITICAL
