"""Programme versions in the database, and the compiled set the engine uses.

The compiled set is cached per process and revalidated on every use by one
cheap query for the newest version, so a version loaded by another process is
seen at once."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.experiments import service as experiments
from carepoints.kit.bulk import fetch
from carepoints.kit.time import utc_now
from carepoints.rules.engine import EPOCH, CompiledProgramme, ProgrammeSet
from carepoints.rules.errors import ProgrammeInvalidError
from carepoints.rules.models import ProgramRule, ProgramVersion
from carepoints.rules.programme import Programme


def default_programme_text() -> bytes:
    return resources.files("carepoints.programmes").joinpath("default.yaml").read_bytes()


def parse_programme(raw: bytes) -> Programme:
    try:
        doc = yaml.safe_load(raw)
        return Programme.model_validate(doc)
    except yaml.YAMLError as exc:
        raise ProgrammeInvalidError(f"YAML: {exc}") from exc
    except ValidationError as exc:
        fields = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise ProgrammeInvalidError(fields=fields) from exc


def lock_versions(session: Session) -> int:
    """Serialise installs: lock the newest version's row (PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises writers) and answer the newest version number as of the lock."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(select(ProgramVersion.version).order_by(ProgramVersion.version.desc()).limit(1)
                     .with_for_update())
    return int(conn.execute(select(func.max(ProgramVersion.version))).scalar() or 0)


def install(session: Session, raw: bytes | Programme, *, effective_from: datetime | None = None,
            now: datetime | None = None) -> int:
    """Store a programme file (or an already validated document) as the next version;
    returns the version number. Concurrent installs queue on the newest version's row."""
    programme = raw if isinstance(raw, Programme) else parse_programme(raw)
    now = now or utc_now()
    conn = session.connection()
    version = lock_versions(session) + 1
    start = effective_from or programme.effective_from or (EPOCH if version == 1 else now)
    document: dict[str, Any] = programme.model_dump(mode="json", by_alias=True)
    source = raw if isinstance(raw, bytes) else orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    conn.execute(insert(ProgramVersion), [{
        "version": version, "name": programme.name.zh, "effective_from": start, "loaded_at": now,
        "source_sha256": hashlib.sha256(source).hexdigest(), "document": document}])
    conn.execute(insert(ProgramRule), [
        {"version": version, "code": r["code"], "event_type": ",".join(r["event"]), "status": r["status"],
         "definition": r} for r in document["rules"]])
    _cache.clear()
    return version


def ensure_default(session: Session) -> None:
    if session.connection().execute(select(func.count()).select_from(ProgramVersion)).scalar() == 0:
        install(session, default_programme_text())


def load_file(session: Session, path: Path) -> int:
    return install(session, path.read_bytes())


_cache: dict[str, tuple[int, ProgrammeSet]] = {}
_cache_lock = threading.Lock()


def programmes(session: Session) -> ProgrammeSet:
    """Every version, compiled; revalidated against the newest version number."""
    conn = session.connection()
    newest = fetch(conn, "SELECT max(version) FROM program_versions")[0][0] or 0
    url = str(conn.engine.url)
    hit = _cache.get(url)
    if hit is not None and hit[0] == newest:
        return hit[1]
    tz = get_settings().tz
    rows = conn.execute(select(ProgramVersion.version, ProgramVersion.effective_from, ProgramVersion.document))
    compiled = [CompiledProgramme(v, Programme.model_validate(doc), tz, eff) for v, eff, doc in rows]
    pset = ProgrammeSet(compiled)
    with _cache_lock:
        _cache[url] = (newest, pset)
    return pset


def current_settings(session: Session, at: datetime | None = None) -> CompiledProgramme:
    return programmes(session).at(at or utc_now())


def rule_shapes(session: Session) -> dict[str, experiments.RuleShape]:
    """The active rules of the newest version, as experiments may override them."""
    return {r.code: experiments.RuleShape(r.points, r.multiplier is not None, r.limits.daily_points is not None)
            for r in programmes(session).latest.programme.rules if r.status == "active"}


experiments.use_rule_catalogue(rule_shapes)  # experiments sit below rules: they ask through this
