"""Bad-input safety: schemathesis generates requests for every operation in
`/openapi.json` (valid and invalid bodies, parameters and ids) and no answer may
be a 5xx (API.md: "A 5xx is always a bug").

SQLite runs every operation (about 25 examples each, the hypothesis `ci` size,
no deadline); PostgreSQL runs a smoke subset of the spine's operations. The
requests carry an admin API key, so they reach the handlers instead of stopping
at 401. Each fuzzed operation shares one database per xdist worker (writes
accumulate, as on a real server); the ledger must still verify at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from carepoints.app import create_asgi
from carepoints.config import reset_settings
from carepoints.kit.db import dispose_engines, get_engine, write_tx
from carepoints.kit.time import utc_now
from carepoints.models import metadata
from carepoints.security import service as security
from tests.helpers import assert_ledger_intact

EXAMPLES = min(25, settings.default.max_examples)  # the `ci` profile's 25 in CI, the `dev` size elsewhere
PG_EXAMPLES = 8
# Nothing is skipped on SQLite: the photo upload (multipart) gets small generated bodies, which is cheap.
PG_SMOKE = ["POST /api/v1/patients", "GET /api/v1/patients/{patient_id}/points", "POST /api/v1/events",
            "POST /api/v1/events/revoke", "GET /api/v1/rewards", "POST /api/v1/redemptions",
            "POST /api/v1/appointments", "POST /api/v1/fee-offsets"]


def _load_schema() -> schemathesis.BaseSchema:
    """The app's OpenAPI document, read without touching a real database: the settings are
    pointed at a throwaway SQLite path while the app is built (no key file in the checkout)."""
    saved = os.environ.get("CAREPOINTS_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CAREPOINTS_DATABASE_URL"] = f"sqlite:///{tmp}/schema.db"
        reset_settings()
        try:
            return schemathesis.openapi.from_asgi("/openapi.json", create_asgi())
        finally:
            if saved is None:
                os.environ.pop("CAREPOINTS_DATABASE_URL", None)
            else:
                os.environ["CAREPOINTS_DATABASE_URL"] = saved
            reset_settings()
            dispose_engines()


schema = _load_schema()
pg_schema = schema.include(name=PG_SMOKE)


def _use(url: str) -> None:
    dispose_engines()
    os.environ["CAREPOINTS_DATABASE_URL"] = url
    reset_settings()


def _admin_key() -> str:
    with write_tx() as session:
        _kid, secret = security.create_api_key(session, "fuzz", "admin", utc_now())
    return secret


@pytest.fixture(scope="module")
def fuzz_sqlite(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One migrated SQLite database for this worker's fuzzed operations, and an admin key."""
    path = tmp_path_factory.mktemp("fuzz") / "carepoints.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    _use(url)
    key = _admin_key()
    yield url, key
    _use(url)
    assert_ledger_intact()
    dispose_engines()


@pytest.fixture(scope="module")
def fuzz_pg(pg_database: str) -> Iterator[str]:
    from sqlalchemy import text

    from carepoints import bootstrap

    _use(pg_database)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    bootstrap.seed()
    yield pg_database
    _use(pg_database)
    assert_ledger_intact()
    dispose_engines()


@pytest.fixture
def sqlite_key(fuzz_sqlite: tuple[str, str]) -> Iterator[str]:
    # Other modules' tests may run on this worker in between and repoint the settings.
    _use(fuzz_sqlite[0])
    yield fuzz_sqlite[1]
    dispose_engines()


@pytest.fixture
def pg_key(fuzz_pg: str) -> Iterator[str]:
    # This worker's PostgreSQL database is shared with other modules' tests, which truncate it.
    _use(fuzz_pg)
    yield _admin_key()
    dispose_engines()


_SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True}


@schema.parametrize()
@settings(max_examples=EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]
def test_no_operation_answers_5xx_on_sqlite(case: schemathesis.Case, sqlite_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {sqlite_key}"}, checks=[not_a_server_error])


@pg_schema.parametrize()
@settings(max_examples=PG_EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]
def test_spine_operations_answer_no_5xx_on_postgres(case: schemathesis.Case, pg_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {pg_key}"}, checks=[not_a_server_error])
