"""Bring a database to a usable state: migrations, system accounts and the
default programme (version 1). Idempotent; `serve` runs it at start."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from carepoints.kit import migrate
from carepoints.kit.db import get_engine, write_tx
from carepoints.kit.time import utc_now
from carepoints.ledger import service as ledger
from carepoints.rewards import service as rewards
from carepoints.rules import service as rules
from carepoints.services.triage import service as triage


def seed(engine: Engine | None = None) -> None:
    with write_tx(engine) as session:
        ledger.ensure_system_accounts(session, utc_now())
        rules.ensure_default(session)
        rewards.sync_catalogue(session, rules.parse_programme(rules.default_programme_text()), utc_now(),
                               only_missing=True)
        triage.ensure_knowledge(session, utc_now())  # (services.triage) what the knowledge base file adds


def prepare(engine: Engine | None = None) -> None:
    engine = engine or get_engine()
    migrate.upgrade(engine)
    seed(engine)
