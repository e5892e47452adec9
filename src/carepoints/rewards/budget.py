"""The programme's money side: the yearly budget against the CNY cost redeemed,
the outstanding liability, and the alliance settlement report (积分结算).

The year's redeemed cost is one row per local calendar year, changed by a
guarded update in the redeeming transaction (always the last row it locks);
with the hard stop on, that update refuses to pass 100% of the budget, so the
database decides the last redemption that fits. Alerts at 80% and 100% go
out once each through the outbox."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.kit.money import cny, points_to_fen, to_fen
from carepoints.kit.outbox import enqueue
from carepoints.kit.time import day_start_utc, local_date
from carepoints.ledger import service as ledger
from carepoints.rewards import repository as repo
from carepoints.rewards.errors import BudgetExhaustedError
from carepoints.rules.programme import Budget
from carepoints.rules.service import current_settings
from carepoints.scheduling import service as scheduling

UNATTRIBUTED = "unattributed"


def _budget(session: Session, now: datetime) -> Budget:
    return current_settings(session, now).programme.settings.budget


def charge(session: Session, cost_fen: int, now: datetime, *, year_of: datetime | None = None,
           enforce: bool = True) -> None:
    """Count a redemption's CNY cost against the budget of the local year of `year_of`
    (default now); a negative cost (a refund) gives it back to the year it was counted in.
    With the hard stop on and `enforce`, refuses to pass 100%. Raises the alerts."""
    if cost_fen == 0:
        return
    conn = session.connection()
    plan = _budget(session, now)
    annual = plan.annual_cny()
    cap = to_fen(annual) if annual is not None and plan.hard_stop and enforce else None
    year = local_date(year_of or now, get_settings().tz).year
    total = repo.add_budget(conn, year, cost_fen, cap)
    if total is None:
        raise BudgetExhaustedError()
    if cost_fen < 0 or not annual:
        return
    share = total * 100 / to_fen(annual)
    for percent in sorted(plan.alerts):
        if share >= percent and repo.raise_alert(conn, year, percent):
            enqueue(conn, "rewards.budget_alert", {"year": year, "percent": percent}, key=f"budget:{year}")


def institution_budget(session: Session, reward: dict[str, Any], patient_codes: set[str], now: datetime
                       ) -> str | None:
    """(ops.alliance) The institution (code) whose budget a scoped reward's cost counts against: the
    first, by code, of the reward's institutions that the patient belongs to and that has a budget."""
    scoped = reward.get("institution_codes") or []
    if not scoped:
        return None
    budgets = current_settings(session, now).programme.settings.budgets
    found = sorted(set(scoped) & patient_codes & set(budgets))
    return found[0] if found else None


def charge_institution(session: Session, code: str, cost_fen: int, now: datetime, *,
                       year_of: datetime | None = None) -> None:
    """(ops.alliance) Count a scoped redemption's cost against the institution's budget of the local
    year (a refund gives it back); refuses to pass the budget (409 `rewards.budget_exhausted`)."""
    if cost_fen == 0:
        return
    annual = current_settings(session, now).programme.settings.budgets.get(code)
    cap = to_fen(annual) if annual is not None else 0
    year = local_date(year_of or now, get_settings().tz).year
    if not repo.add_institution_budget(session.connection(), code, year, cost_fen, cap) and cost_fen > 0:
        raise BudgetExhaustedError()


def room(session: Session, cost_fen: int, now: datetime) -> bool:
    """Whether `cost_fen` more still fits this year's budget when the hard stop is on (a
    quote's check: the HIS's commit later is never refused, the payment went through)."""
    plan = _budget(session, now)
    annual = plan.annual_cny()
    if annual is None or not plan.hard_stop or cost_fen <= 0:
        return True
    used, _alerted = repo.budget_used(session.connection(), local_date(now, get_settings().tz).year)
    return used + cost_fen <= to_fen(annual)


def status(session: Session, now: datetime) -> dict[str, Any]:
    """This year's budget, cost redeemed, alerts sent and the outstanding liability."""
    conn = session.connection()
    programme = current_settings(session, now).programme.settings
    plan = programme.budget
    annual = plan.annual_cny()
    year = local_date(now, get_settings().tz).year
    used, alerted = repo.budget_used(conn, year)
    points = ledger.outstanding_points(session)
    value = programme.point_value
    liability_fen = points_to_fen(points, value.points, value.cny)
    return {
        "year": year, "budget_cny": cny(to_fen(annual)) if annual is not None else None,
        "used_cny": cny(used), "used_share": (str((Decimal(used) / to_fen(annual)).quantize(Decimal("0.0001")))
                                               if annual else None),
        "remaining_cny": cny(to_fen(annual) - used) if annual is not None else None,
        "alerts": [p for p in sorted(plan.alerts) if p <= alerted], "hard_stop": plan.hard_stop,
        "liability": {"points": points, "cny": cny(liability_fen)},
    }


def settlement(session: Session, start: date, end: date) -> dict[str, Any]:
    """Points redeemed between two local dates (inclusive), by the institution where they
    were earned and the one where they were redeemed; cross-institution rows are what
    the alliance settles. An earning is placed by its event (department or appointment)."""
    conn = session.connection()
    tz = get_settings().tz
    lo, hi = day_start_utc(start, tz), day_start_utc(date.fromordinal(end.toordinal() + 1), tz)
    spends = [(r["transfer_id"], r["institution_id"], -1 if r["status"] == "refunded" else 1)
              for r in conn.execute(select(repo.redemptions.c.transfer_id, repo.redemptions.c.institution_id,
                                           repo.redemptions.c.status)
                                    .where(repo.redemptions.c.created_at >= lo, repo.redemptions.c.created_at < hi))
              .mappings()]
    offsets = [r for r in repo.offsets_between(conn, lo, hi, None) if r["status"] == "committed"]
    hold_rows = ledger.holds(session, [o["hold_id"] for o in offsets if o["hold_id"]])
    spends += [(hold_rows[o["hold_id"]]["transfer_id"], o["institution_id"], 1) for o in offsets
               if o["hold_id"] in hold_rows and hold_rows[o["hold_id"]]["transfer_id"]]
    origins = ledger.spend_origins(session, [t for t, _, _ in spends if t])
    attrs = events.attributes_of(session, sorted({e for o in origins.values() for _, e in o if e}))
    depts = {str(a["department"]) for a in attrs.values() if a.get("department")}
    appts = {str(a["appointment_id"]) for a in attrs.values() if a.get("appointment_id")}
    by_dept, by_appt = scheduling.institutions_of(session, sorted(depts), sorted(appts))

    def place(event_id: str | None) -> str:
        a = attrs.get(event_id or "", {})
        found = (a.get("institution_id") or by_dept.get(str(a.get("department", "")))
                 or by_appt.get(str(a.get("appointment_id", ""))))
        return str(found) if found else UNATTRIBUTED

    cells: dict[tuple[str, str], int] = defaultdict(int)
    for transfer_id, redeemed_at, sign in spends:
        if sign < 0:
            continue  # refunded: the points went back, nothing to settle
        for points, event_id in origins.get(transfer_id, []):
            cells[(place(event_id), redeemed_at or UNATTRIBUTED)] += points
    point_value = current_settings(session).programme.settings.point_value
    rows = [{"earned_at": e, "redeemed_at": r, "points": p,
             "cny": cny(points_to_fen(p, point_value.points, point_value.cny)), "cross": e != r}
            for (e, r), p in sorted(cells.items())]
    return {"from": start, "to": end, "rows": rows,
            "cross_points": sum(x["points"] for x in rows if x["cross"])}
