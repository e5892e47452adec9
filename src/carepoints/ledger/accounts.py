"""System accounts have fixed ids so that no lookup is needed on the hot path."""

from __future__ import annotations

from enum import StrEnum


class System(StrEnum):
    issuance = "issuance"
    penalties = "penalties"
    redemptions = "redemptions"
    expiry = "expiry"
    adjustments = "adjustments"
    households = "households"  # clearing account: a leaving member's share passes through it
    transfers = "transfers"  # clearing account: lots moved between wallets (record merges, closures)


SYSTEM_IDS: dict[str, str] = {
    System.issuance: "00000000-0000-7000-8000-000000000001",
    System.penalties: "00000000-0000-7000-8000-000000000002",
    System.redemptions: "00000000-0000-7000-8000-000000000003",
    System.expiry: "00000000-0000-7000-8000-000000000004",
    System.adjustments: "00000000-0000-7000-8000-000000000005",
    System.households: "00000000-0000-7000-8000-000000000006",
    System.transfers: "00000000-0000-7000-8000-000000000007",
}
SYSTEM_BY_ID = {v: k for k, v in SYSTEM_IDS.items()}
