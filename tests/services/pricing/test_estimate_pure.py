"""The estimate's arithmetic without a database: integer fen, shares in basis points rounded half
up per line, the class rule (甲 0, 乙 the item's or the institution's, 丙 all), validity days, and
which equivalents count as cheaper."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepoints.services.pricing.estimate import Priced, cheaper, in_effect, line, self_pay_bp, share_of, totals


def item(code: str, fen: int, cls: str = "b", bp: int = 1000, group: str | None = None) -> Priced:
    return Priced(code, code, None, "drug", "盒", fen, cls, bp, group)


@pytest.mark.parametrize(("amount", "bp", "expected"), [
    (5, 1000, 1),  # ¥0.05 at 10% = ¥0.005 → ¥0.01 (half up)
    (4, 1000, 0),  # ¥0.004 → ¥0.00
    (25, 1000, 3),  # ¥0.025 → ¥0.03
    (24, 1000, 2),
    (15, 5000, 8),  # 7.5 fen → 8
    (7525, 1000, 753),  # ¥75.25 at 10% = ¥7.525 → ¥7.53
    (28000, 2000, 5600),
    (0, 1000, 0),
    (12345, 0, 0),
    (12345, 10_000, 12345),
])
def test_share_rounds_half_up_to_the_fen(amount: int, bp: int, expected: int) -> None:
    assert share_of(amount, bp) == expected


def test_share_refuses_what_cannot_be() -> None:
    for amount, bp in ((-1, 1000), (100, -1), (100, 10_001)):
        with pytest.raises(ValueError, match="share"):
            share_of(amount, bp)


@given(st.integers(min_value=0, max_value=10**11), st.integers(min_value=0, max_value=10_000))
def test_share_is_the_nearest_fen(amount: int, bp: int) -> None:
    got = share_of(amount, bp)
    exact = amount * bp  # in 1/10000 fen
    assert abs(got * 10_000 - exact) <= 5_000  # never more than half a fen off
    assert 0 <= got <= amount


def test_the_class_decides_the_share() -> None:
    assert self_pay_bp("a", None, 1500) == 0
    assert self_pay_bp("c", None, 1500) == 10_000
    assert self_pay_bp("b", None, 1500) == 1500  # the institution's share
    assert self_pay_bp("b", 3000, 1500) == 3000  # the item's own
    assert self_pay_bp("b", 0, 1500) == 0
    with pytest.raises(ValueError, match="insurance class"):
        self_pay_bp("d", None, 1500)


def test_validity_days_are_inclusive() -> None:
    day = date(2026, 6, 15)
    assert in_effect(True, None, None, day)
    assert not in_effect(False, None, None, day)
    assert in_effect(True, day, day, day)
    assert not in_effect(True, date(2026, 6, 16), None, day)
    assert not in_effect(True, None, date(2026, 6, 14), day)


def test_a_line_and_the_totals() -> None:
    ct, tiny, room = item("CT", 28000, "b", 1000), item("TINY", 5, "b", 1000), item("ROOM", 20000, "c", 10_000)
    lines = [line(ct, 1, []), line(tiny, 3, []), line(room, 3, [], package="P")]
    assert [(ln.amount_fen, ln.self_pay_fen, ln.insured_fen) for ln in lines] == [
        (28000, 2800, 25200), (15, 2, 13), (60000, 60000, 0)]  # 1.5 fen → 2
    t = totals(lines)
    assert (t.total_fen, t.self_pay_fen, t.insured_fen, t.lines) == (88015, 62802, 25213, 3)
    assert t.by_package == {"P": (60000, 60000)}


def test_each_line_rounds_on_its_own() -> None:
    """Two lines of ¥0.05 at 10% are 1 fen each (2 in all), not one rounding of 1 fen."""
    tiny = item("TINY", 5, "b", 1000)
    other = item("TINY2", 5, "b", 1000)
    t = totals([line(tiny, 1, []), line(other, 1, [])])
    assert t.self_pay_fen == 2
    assert line(tiny, 2, []).self_pay_fen == 1  # one line of qty 2: ¥0.01


def test_cheaper_equivalents_are_the_groups_cheaper_or_lower_self_pay_items() -> None:
    brand = item("BRAND", 9850, "b", 1000, "amlo")
    generic = item("GEN", 336, "b", 1000, "amlo")
    pricier_but_covered = item("COVERED", 9900, "a", 0, "amlo")  # costs more, nothing to pay oneself
    dearer = item("DEARER", 12000, "b", 1000, "amlo")  # neither cheaper nor less to pay
    elsewhere = item("OTHER", 100, "b", 1000, "statin")
    found = cheaper(brand, 2, [brand, generic, pricier_but_covered, dearer, elsewhere])
    assert [e.item.code for e in found] == ["COVERED", "GEN"]  # lowest self-pay first
    covered, gen = found
    assert (gen.amount_fen, gen.self_pay_fen, gen.saving_per_unit_fen, gen.saving_fen, gen.self_pay_saving_fen) == (
        672, 67, 9514, 19028, 1970 - 67)
    assert (covered.saving_per_unit_fen, covered.saving_fen, covered.self_pay_saving_fen) == (-50, -100, 1970)
    assert cheaper(generic, 2, [brand, generic, dearer]) == ()  # nothing beats the cheapest
    assert cheaper(item("X", 100), 1, [generic]) == ()  # no group, no equivalents


def test_at_most_three_equivalents() -> None:
    brand = item("B", 10_000, group="g")
    others = [item(f"G{i}", 1000 + i, group="g") for i in range(5)]
    assert [e.item.code for e in cheaper(brand, 1, others)] == ["G0", "G1", "G2"]
