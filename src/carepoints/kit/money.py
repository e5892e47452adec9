"""Money: CNY amounts arrive as Decimal, are stored as integer fen and answered as
decimal strings with two places ("15.00")."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal


def to_fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def cny(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def points_to_fen(points: int, value_points: int, value_cny: Decimal) -> int:
    """The CNY value (fen, rounded down) of `points` at a point value of `value_points` = `value_cny`."""
    return int((Decimal(points) * to_fen(value_cny) / value_points).to_integral_value(ROUND_FLOOR))
