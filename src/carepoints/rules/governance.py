"""Programme governance (maker-checker): a new rule version, point value, tier
threshold or budget is a draft until a second admin approves it.

- A draft holds the full validated programme document, built from the newest
  version's document plus a patch (or given whole), and the kinds of change found
  by diffing it against that base.
- Approval is one guarded UPDATE (`status = 'draft'`), taken after the newest
  version's row is locked (`service.lock_versions`): of two approvals of one draft
  only one installs, and a draft whose base is no longer the newest version is
  stale (409). The database refuses an approver who is the author (CHECK).
- Approval installs the document as the next version from `activate_at`, queues one
  outbox message (the admins' inbox, webhooks) and marks the announcement pending;
  the `announce-programme` job then tells consenting active patients in batches, the
  cursor kept on the draft row (locked per batch), so a re-run or a second worker
  tells nobody twice.
- Every step is audited (`rules:programme_draft:<action>`) with ids and codes only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import exists, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit import outbox
from carepoints.kit.db import table, write_tx
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import as_utc
from carepoints.patients.models import Consent, Patient
from carepoints.rules import service, terms
from carepoints.rules.engine import EPOCH
from carepoints.rules.errors import (
    ActivationBeforeScheduledError,
    ActivationPastError,
    ApproverIsAuthorError,
    DraftInvalidError,
    DraftNotFoundError,
    DraftNotOpenError,
    DraftStaleError,
    NoChangesError,
    NotAuthorError,
    RewardsNotGovernedError,
)
from carepoints.rules.models import ProgrammeDraft, ProgramVersion
from carepoints.rules.programme import Programme

_drafts = table(ProgrammeDraft)
_versions = table(ProgramVersion)
_patients = table(Patient)
_consents = table(Consent)

STATUSES = ("draft", "approved", "rejected", "withdrawn")
APPROVED_TOPIC = "programme.approved"  # one message per approval: admins' inbox and webhooks
PATIENT_TOPIC = "programme.changed"  # one per patient told (announce-programme)
_SETTINGS_KINDS = {"point_value": "point_value", "tiers": "tiers", "tier_benefits": "tiers", "budget": "budget"}
KINDS = ("rules", "point_value", "tiers", "budget", "settings", "rewards")

Installed = Callable[[Session, Programme, int, datetime], None]
_on_install: list[Installed] = []


def on_install(hook: Installed) -> None:
    """Register `hook(session, programme, version, now)`, run in the approving transaction
    after a draft is installed (a higher domain's follow-up, e.g. the rewards catalogue)."""
    _on_install.append(hook)


# --- the pure core: patch, diff, kinds ----------------------------------------------------

def _merge(base: Any, patch: Any) -> Any:
    """Dicts merge key by key (recursively); anything else in the patch replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def _by_code(items: list[dict[str, Any]], patches: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    out = [dict(i) for i in items]
    index = {str(i.get("code")): n for n, i in enumerate(out)}
    for n, patch in enumerate(patches):
        if not isinstance(patch, dict) or not isinstance(patch.get("code"), str):
            raise DraftInvalidError(fields=[{"loc": ["changes", where, n, "code"], "msg": "a code is required"}])
        code = patch["code"]
        if code in index:
            out[index[code]] = _merge(out[index[code]], patch)  # a partial rule changes only what it names
        else:
            index[code] = len(out)
            out.append(copy.deepcopy(patch))  # a new one must be whole (validated below)
    return out


def apply_changes(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The base document with `changes` applied: `settings` merged, `rules` and `rewards`
    by code (a known code is patched, a new one appended; retire a rule with
    `status: retired`), `name` replaced."""
    doc = copy.deepcopy(base)
    if "name" in changes:
        doc["name"] = changes["name"]
    if "settings" in changes:
        doc["settings"] = _merge(doc.get("settings") or {}, changes["settings"])
    for key in ("rules", "rewards"):
        if key in changes:
            doc[key] = _by_code(list(doc.get(key) or []), list(changes[key] or []), key)
    return doc


def validate(doc: dict[str, Any]) -> Programme:
    try:
        return Programme.model_validate({**doc, "effective_from": None})
    except ValidationError as exc:
        fields = [{"loc": ["document", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise DraftInvalidError(fields=fields) from None


def _normal(p: Programme) -> dict[str, Any]:
    return p.model_dump(mode="json", by_alias=True, exclude={"effective_from"})


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    a, b = _flat(old, prefix), _flat(new, prefix)
    return [{"field": k, "old": a.get(k), "new": b.get(k)} for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def _items(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    before, after = {i["code"]: i for i in old}, {i["code"]: i for i in new}
    out: list[dict[str, Any]] = []
    for code in [*before, *(c for c in after if c not in before)]:
        if code not in after:
            out.append({"code": code, "change": "removed", "fields": []})
        elif code not in before:
            out.append({"code": code, "change": "added", "fields": _changed({}, after[code])})
        elif before[code] != after[code]:
            out.append({"code": code, "change": "changed", "fields": _changed(before[code], after[code])})
    return out


def diff(old: Programme, new: Programme) -> dict[str, Any]:
    """What a draft changes, old → new: settings by dotted path, rules and rewards by code."""
    a, b = _normal(old), _normal(new)
    return {"name": None if a["name"] == b["name"] else {"old": a["name"], "new": b["name"]},
            "settings": _changed(a["settings"], b["settings"]),
            "rules": _items(a["rules"], b["rules"]), "rewards": _items(a["rewards"], b["rewards"])}


def change_kinds(old: Programme, new: Programme) -> list[str]:
    a, b = _normal(old), _normal(new)
    kinds: set[str] = set()
    if a["rules"] != b["rules"]:
        kinds.add("rules")
    if a["rewards"] != b["rewards"]:
        kinds.add("rewards")
    if a["name"] != b["name"]:
        kinds.add("settings")
    for key in a["settings"].keys() | b["settings"].keys():
        if a["settings"].get(key) != b["settings"].get(key):
            kinds.add(_SETTINGS_KINDS.get(key, "settings"))
    return [k for k in KINDS if k in kinds]


# --- drafts -------------------------------------------------------------------------------

def _newest(conn: Connection) -> RowMapping:
    row = conn.execute(select(_versions).order_by(_versions.c.version.desc()).limit(1)).mappings().first()
    if row is None:  # bootstrap installs version 1 before anything runs
        raise RuntimeError("no programme version installed")
    return row


def _scheduled_after(conn: Connection, activate_at: datetime) -> int | None:
    """The newest version that takes effect after `activate_at`, if any (a draft may not
    take effect before an already scheduled version: the later one would undo it)."""
    return conn.execute(select(_versions.c.version).where(_versions.c.effective_from > activate_at)
                        .order_by(_versions.c.version.desc()).limit(1)).scalar()


def _check_activation(conn: Connection, activate_at: datetime, now: datetime) -> None:
    if activate_at < now:
        raise ActivationPastError()
    later = _scheduled_after(conn, activate_at)
    if later is not None:
        raise ActivationBeforeScheduledError(version=later)


def propose(session: Session, actor: Actor, *, summary: dict[str, str], activate_at: datetime, now: datetime,
            document: dict[str, Any] | None = None, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create a draft from a whole document or from `changes` to the newest version."""
    conn = session.connection()
    activate_at = as_utc(activate_at)
    base = _newest(conn)
    base_programme = Programme.model_validate(base["document"])
    raw = copy.deepcopy(document) if document is not None else apply_changes(base["document"], changes or {})
    if document is not None and "rewards" not in raw:  # a whole document keeps the catalogue as it is
        raw["rewards"] = copy.deepcopy(base["document"].get("rewards", []))
    programme = validate(raw)
    kinds = change_kinds(base_programme, programme)
    if not kinds:
        raise NoChangesError()
    if "rewards" in kinds:
        # The live catalogue is the rewards table, edited through the rewards API; a draft that
        # changed rewards would be installed without them reaching the mall, so it is refused.
        raise RewardsNotGovernedError()
    _check_activation(conn, activate_at, now)
    did = new_id()
    conn.execute(_drafts.insert(), [{
        "id": did, "base_version": base["version"], "document": _normal(programme),
        "summary_zh": summary["zh"], "summary_en": summary["en"], "change_kinds": kinds,
        "created_by_kind": actor.kind, "created_by_id": actor.id, "created_at": now, "status": "draft",
        "activate_at": activate_at, "decided_by_kind": None, "decided_by_id": None, "decided_at": None,
        "decision_note": None, "installed_version": None, "announcement": "none", "announce_cursor": None,
        "announced_count": 0, "announced_at": None}])
    audit.record(session, actor, "rules:programme_draft:create", now, subject_id=did,
                 base_version=base["version"], kinds=kinds)
    return draft(session, did)


def _row(conn: Connection, draft_id: str) -> RowMapping:
    row = conn.execute(select(_drafts).where(_drafts.c.id == draft_id)).mappings().first() if is_id(draft_id) else None
    if row is None:
        raise DraftNotFoundError()
    return row


def _doc(row: RowMapping) -> dict[str, Any]:
    decided = ({"kind": row["decided_by_kind"], "id": row["decided_by_id"]}
               if row["decided_by_id"] is not None else None)
    return {"id": row["id"], "status": row["status"], "base_version": row["base_version"],
            "summary": {"zh": row["summary_zh"], "en": row["summary_en"]}, "change_kinds": row["change_kinds"],
            "created_by": {"kind": row["created_by_kind"], "id": row["created_by_id"]},
            "created_at": row["created_at"], "activate_at": row["activate_at"], "decided_by": decided,
            "decided_at": row["decided_at"], "decision_note": row["decision_note"],
            "installed_version": row["installed_version"],
            "announcement": {"state": row["announcement"], "patients": row["announced_count"],
                             "finished_at": row["announced_at"]}}


def draft(session: Session, draft_id: str) -> dict[str, Any]:
    """One draft with its document and a readable diff against its base version."""
    conn = session.connection()
    row = _row(conn, draft_id)
    base = conn.execute(select(_versions.c.document).where(_versions.c.version == row["base_version"])).scalar()
    new = Programme.model_validate(row["document"])
    changes = diff(Programme.model_validate(base), new) if base is not None else None
    return {**_doc(row), "diff": changes, "document": row["document"]}


def drafts(session: Session, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(_drafts).order_by(_drafts.c.created_at.desc(), _drafts.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(_drafts.c.status == status)
    return [_doc(r) for r in session.connection().execute(stmt).mappings()]


def _same(actor: Actor, row: RowMapping) -> bool:
    return bool(actor.kind == row["created_by_kind"] and actor.id == row["created_by_id"])


def _decide(conn: Connection, row: RowMapping, values: dict[str, Any]) -> None:
    """The guarded transition out of `draft`: of two deciders only one changes the row."""
    done = conn.execute(update(_drafts).where(_drafts.c.id == row["id"], _drafts.c.status == "draft")
                        .values(**values)).rowcount
    if done != 1:
        current = conn.execute(select(_drafts.c.status).where(_drafts.c.id == row["id"])).scalar()
        raise DraftNotOpenError(status=current)


def approve(session: Session, draft_id: str, actor: Actor, now: datetime, note: str | None = None) -> dict[str, Any]:
    """Install the draft as the next version from its `activate_at` (a different admin from
    the author). Locks the newest version first, so concurrent approvals and installs queue;
    answers the draft with its `installed_version`."""
    conn = session.connection()
    row = _row(conn, draft_id)
    if _same(actor, row):
        raise ApproverIsAuthorError()
    if row["status"] != "draft":
        raise DraftNotOpenError(status=row["status"])
    newest = service.lock_versions(session)
    _decide(conn, row, {"status": "approved", "decided_by_kind": actor.kind, "decided_by_id": actor.id,
                        "decided_at": now, "decision_note": note, "installed_version": newest + 1,
                        "announcement": "pending"})
    if row["base_version"] != newest:
        raise DraftStaleError(base=row["base_version"], current=newest)
    _check_activation(conn, row["activate_at"], now)
    programme = Programme.model_validate(row["document"])
    version = service.install(session, programme, effective_from=row["activate_at"], now=now)
    for hook in _on_install:
        hook(session, programme, version, now)
    tz = get_settings().tz
    outbox.enqueue_many(conn, [(APPROVED_TOPIC, row["id"], {
        "draft_id": row["id"], "version": version, "kinds": ",".join(row["change_kinds"]),
        "effective_date": row["activate_at"].astimezone(tz).date().isoformat()})], now)
    audit.record(session, actor, "rules:programme_draft:approve", now, subject_id=row["id"], version=version,
                 activate_at=row["activate_at"].isoformat())
    return draft(session, draft_id)


def reject(session: Session, draft_id: str, actor: Actor, now: datetime, note: str) -> dict[str, Any]:
    conn = session.connection()
    row = _row(conn, draft_id)
    if _same(actor, row):
        raise ApproverIsAuthorError()  # the author withdraws instead
    _decide(conn, row, {"status": "rejected", "decided_by_kind": actor.kind, "decided_by_id": actor.id,
                        "decided_at": now, "decision_note": note})
    audit.record(session, actor, "rules:programme_draft:reject", now, subject_id=row["id"])
    return draft(session, draft_id)


def withdraw(session: Session, draft_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    conn = session.connection()
    row = _row(conn, draft_id)
    if not _same(actor, row):
        raise NotAuthorError()
    _decide(conn, row, {"status": "withdrawn", "decided_at": now})
    audit.record(session, actor, "rules:programme_draft:withdraw", now, subject_id=row["id"])
    return draft(session, draft_id)


def approved_summaries(session: Session) -> dict[int, dict[str, str]]:
    """Installed version → its draft's summary (for the version history)."""
    rows = session.connection().execute(select(_drafts.c.installed_version, _drafts.c.summary_zh,
                                               _drafts.c.summary_en).where(_drafts.c.installed_version.is_not(None)))
    return {int(v): {"zh": zh, "en": en} for v, zh, en in rows}


# --- the announcement (announce-programme) ----------------------------------------------

def announce_batch(session: Session, now: datetime, size: int) -> tuple[int, bool]:
    """Tell the next `size` consenting active patients of the oldest pending announcement
    (one inbox message each, through the outbox); answers (how many were told, whether an
    announcement was pending). The draft's row is locked and re-read, so a concurrent run
    continues after this batch's cursor and nobody is told twice."""
    conn = session.connection()
    stmt = (select(_drafts).where(_drafts.c.announcement == "pending")
            .order_by(_drafts.c.decided_at, _drafts.c.id).limit(1))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return 0, False
    consented = exists().where(_consents.c.patient_id == _patients.c.id, _consents.c.purpose == "points_programme",
                               _consents.c.withdrawn_at.is_(None))
    pick = select(_patients.c.id).where(_patients.c.status == "active", consented)
    if row["announce_cursor"] is not None:
        pick = pick.where(_patients.c.id > row["announce_cursor"])
    pids = list(conn.execute(pick.order_by(_patients.c.id).limit(size)).scalars())
    date = row["activate_at"].astimezone(get_settings().tz).date().isoformat()
    outbox.enqueue_many(conn, [(PATIENT_TOPIC, pid, {
        "patient_id": pid, "draft_id": row["id"], "version": row["installed_version"], "effective_date": date})
        for pid in pids], now)
    finished = len(pids) < size
    conn.execute(update(_drafts).where(_drafts.c.id == row["id"]).values(
        announce_cursor=pids[-1] if pids else row["announce_cursor"],
        announced_count=_drafts.c.announced_count + len(pids),
        announcement="done" if finished else "pending", announced_at=now if finished else None))
    if finished:
        audit.record(session, Actor.system("announce-programme"), "rules:programme_draft:announced", now,
                     subject_id=row["id"], patients=row["announced_count"] + len(pids))
    return len(pids), True


def announce_programme(now: datetime) -> dict[str, Any]:
    """`announce-programme`: every pending announcement, one batch per transaction."""
    size = get_settings().programme_announce_batch
    told = batches = 0
    while True:
        with write_tx() as session:
            n, pending = announce_batch(session, now, size)
        if not pending:
            return {"patients": told, "batches": batches}
        told, batches = told + n, batches + 1


# --- published terms and version history ------------------------------------------------

def versions(session: Session) -> list[dict[str, Any]]:
    """Every version, newest first, with its draft's summary when it came from one."""
    summaries = approved_summaries(session)
    rows = session.connection().execute(select(_versions.c.version, _versions.c.name, _versions.c.effective_from,
                                               _versions.c.loaded_at).order_by(_versions.c.version.desc()))
    return [{"version": v, "name": name, "effective_from": eff, "loaded_at": loaded,
             "summary": summaries.get(v)} for v, name, eff, loaded in rows]


def current_terms(session: Session, lang: terms.Lang, now: datetime) -> dict[str, Any]:
    """The version in force now, in plain words, and the next scheduled one (if any)."""
    pset = service.programmes(session)
    current = pset.at(now)
    tz = get_settings().tz
    summaries = approved_summaries(session)
    upcoming = [v for v in pset.versions if v.effective_from > now]
    since = current.effective_from
    if since <= EPOCH:  # the first version is in force "since ever": show the day it was loaded
        since = session.connection().execute(select(_versions.c.loaded_at).where(
            _versions.c.version == current.version)).scalar() or since
    doc = {"version": current.version, "effective_from": current.effective_from,
           "effective_date": since.astimezone(tz).date().isoformat(),
           **terms.describe(current.programme, lang, now.astimezone(tz).date()), "upcoming": None}
    if upcoming:
        nxt = upcoming[0]
        summary = summaries.get(nxt.version)
        doc["upcoming"] = {
            "version": nxt.version, "effective_from": nxt.effective_from,
            "effective_date": nxt.effective_from.astimezone(tz).date().isoformat(),
            "summary": (summary["en"] if lang == "en" else summary["zh"]) if summary else None,
            **terms.describe(nxt.programme, lang, nxt.effective_from.astimezone(tz).date())}
    return doc
