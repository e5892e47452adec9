"""Shared set-up of the rewards tests: patients with points, and the rewards verbs
each in its own committed transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import func, select

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.rewards import offsets, service
from carepoints.rewards.models import Reward, RewardUsage
from carepoints.rewards.schemas import FeeOffsetCreate, RedemptionCreate, RewardCreate, RewardUpdate
from carepoints.rules import service as rules
from tests.helpers import enrol, event, ingest_one

DESK = Actor("staff", "00000000-0000-7000-8000-00000000d35c", "frontdesk")
HIS = Actor("api_key", "00000000-0000-7000-8000-0000000000a1", "integration")


def patient_with(now: datetime, points: int, *, at: datetime | None = None, **attrs: Any) -> str:
    """A patient holding 100 (welcome) + `points` (in 200-point referral visits at `at`)."""
    assert points % 200 == 0
    pid = enrol(now)
    for _ in range(points // 200):
        ingest_one(now, event(pid, "referral.visit", at or now - timedelta(days=1),
                              {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心", **attrs}))
    return pid


def redeem(pid: str, reward: str, now: datetime, *, quantity: int = 1, key: str | None = None,
           **extra: Any) -> dict[str, Any]:
    body = {"patient_id": pid, "reward": reward, "quantity": quantity,
            "idempotency_key": key or uuid.uuid4().hex, **extra}
    with write_tx() as session:
        doc, _created = service.redeem(session, RedemptionCreate.model_validate(body), HIS, now)
    return doc


def refund(redemption_id: str, now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return service.refund(session, redemption_id, DESK, now)


def verify(code: str, now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return service.verify(session, code, DESK, now)


def add_reward(now: datetime, **fields: Any) -> dict[str, Any]:
    body = {"code": f"r{uuid.uuid4().hex[:10]}", "kind": "coupon", "names": {"zh": "测试券", "en": "Test"},
            "points": 100, **fields}
    with write_tx() as session:
        return service.create_reward(session, RewardCreate.model_validate(body), DESK, now)


def change_reward(code: str, now: datetime, **fields: Any) -> dict[str, Any]:
    with write_tx() as session:
        return service.update_reward(session, code, RewardUpdate.model_validate(fields), DESK, now)


def offset(pid: str, fee: str, now: datetime, *, key: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"patient_id": pid, "fee_cny": fee, "idempotency_key": key or uuid.uuid4().hex, **extra}
    with write_tx() as session:
        doc, _created = offsets.create(session, FeeOffsetCreate.model_validate(body), HIS, now)
    return doc


def settle(verb: str, offset_id: str, now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        result: dict[str, Any] = getattr(offsets, verb)(session, offset_id, HIS, now)
        return result


def reward_row(code: str) -> dict[str, Any]:
    with read_tx() as session:
        return dict(session.connection().execute(select(Reward.__table__).where(
            Reward.__table__.c.code == code)).mappings().one())


def usage(code: str, pid: str) -> int:
    rid = reward_row(code)["id"]
    with read_tx() as session:
        t = RewardUsage.__table__
        return int(session.connection().execute(select(func.coalesce(func.sum(t.c.used), 0)).where(
            t.c.reward_id == rid, t.c.patient_id == pid)).scalar() or 0)


def audit_actions(subject_id: str) -> list[str]:
    with read_tx() as session:
        t = AuditEntry.__table__
        return [r[0] for r in session.connection().execute(
            select(t.c.action).where(t.c.subject_id == subject_id).order_by(t.c.at, t.c.id))]


def outbox(topic: str) -> list[dict[str, Any]]:
    with read_tx() as session:
        t = OutboxMessage.__table__
        return [dict(r[0]) for r in session.connection().execute(
            select(t.c.payload).where(t.c.topic == topic).order_by(t.c.created_at, t.c.id))]


def load_budget(now: datetime, **budget: Any) -> None:
    """A new programme version, in force from `now`, with these budget settings."""
    doc = yaml.safe_load(rules.default_programme_text())
    doc["settings"]["budget"] = budget
    with write_tx() as session:
        rules.install(session, yaml.safe_dump(doc, allow_unicode=True).encode(), effective_from=now, now=now)
