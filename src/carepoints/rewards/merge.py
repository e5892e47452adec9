"""Rewards' part in merging a duplicate record (enrolment.merge): the duplicate's
redemptions, coupons and fee offsets move to the survivor (their ledger entries stay in the
duplicate's wallet, where they were posted), and its per-period reward usage is added to the
survivor's, so that a per-patient limit counts both records. Open fee offsets never get
here: a duplicate with open holds is refused. The programme's yearly budget is not per
patient and does not change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.enrolment import merge
from carepoints.kit.db import table
from carepoints.rewards.models import Coupon, FeeOffset, Redemption, RewardUsage

_usage = table(RewardUsage)


def _merge_usage(session: Session, survivor_id: str, duplicate_id: str) -> int:
    conn = session.connection()
    u = _usage
    mine = {(r.reward_id, r.period_key) for r in conn.execute(
        select(u.c.reward_id, u.c.period_key).where(u.c.patient_id == survivor_id))}
    rows = conn.execute(select(u.c.reward_id, u.c.period_key, u.c.used).where(u.c.patient_id == duplicate_id)
                        .order_by(u.c.reward_id, u.c.period_key)).all()
    for r in rows:
        key = (u.c.reward_id == r.reward_id, u.c.period_key == r.period_key)
        if (r.reward_id, r.period_key) in mine:
            conn.execute(update(u).where(u.c.patient_id == survivor_id, *key).values(used=u.c.used + r.used))
            conn.execute(delete(u).where(u.c.patient_id == duplicate_id, *key))
        else:
            conn.execute(update(u).where(u.c.patient_id == duplicate_id, *key).values(patient_id=survivor_id))
    return len(rows)


def move(session: Session, survivor_id: str, duplicate_id: str, _actor: Actor, _now: datetime) -> dict[str, int]:
    out = {"reward_usage": _merge_usage(session, survivor_id, duplicate_id)}
    out["redemptions"], _ = merge.move_rows(session, Redemption, survivor_id, duplicate_id)
    out["coupons"], _ = merge.move_rows(session, Coupon, survivor_id, duplicate_id)
    out["fee_offsets"], _ = merge.move_rows(session, FeeOffset, survivor_id, duplicate_id)
    return out


def connect() -> None:
    merge.on_merge("rewards", move)
