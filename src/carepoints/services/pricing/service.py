"""The price catalogue's use cases: importing a file (dry run or for real), the admin page's staged
upload, the institution's 乙 share, and what patients and staff read — items, packages and the
estimate. Services flush, never commit.

A real import is all or nothing: any row error refuses the whole file (422 with every error) and
stores nothing; imports of one institution take turns (an advisory lock on PostgreSQL, SQLite's
single writer), each planned against the catalogue as the previous one left it; the same file
twice changes nothing the second time. An import that changes something leaves one audit row
(`pricing:catalogue:import`, counts and the file's sha256 only)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from importlib import resources
from typing import IO, Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit import uploads
from carepoints.kit.db import serialise
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.money import cny
from carepoints.kit.time import local_date
from carepoints.patients import institutions as institution_links
from carepoints.scheduling import service as scheduling
from carepoints.security import scope
from carepoints.security.errors import InstitutionOutOfScopeError
from carepoints.services.pricing import estimate as calc
from carepoints.services.pricing import parsing
from carepoints.services.pricing import repository as repo
from carepoints.services.pricing.errors import (
    FileTooLargeError,
    InstitutionNotFoundError,
    InvalidCatalogueError,
    InvalidQuantityError,
    NothingToEstimateError,
    UnknownItemError,
    UploadNotFoundError,
)
from carepoints.services.pricing.plan import Plan, StoredItem, StoredPackage, plan
from carepoints.services.pricing.schemas import (
    CLASS_B_DEFAULT_BP,
    CLASS_FIXED_BP,
    MAX_QTY,
    EstimateCreate,
    SettingsUpdate,
)

STAGED_FOR = timedelta(days=1)
SAMPLES = ("sample_catalogue.csv", "sample_packages.csv")  # the demo's catalogue, then its packages
NOTICES = {"bill": "实际费用以医院收费为准 / The hospital's bill is final",
           "insurance": "医保报销比例以当地政策为准 / Insurance reimbursement follows local policy"}


def today(now: datetime) -> date:
    return local_date(now, get_settings().tz)


def _institution(session: Session, institution_id: str) -> dict[str, Any]:
    found = scheduling.catalogue_entry(session, "institution", institution_id)
    if found is None:
        raise InstitutionNotFoundError()
    return found


def _may_write(institution_id: str) -> None:
    """A key or staff user bound to institutions changes only their catalogues (403)."""
    bound = scope.current_institutions()
    if bound is not None and institution_id not in bound:
        raise InstitutionOutOfScopeError()


def institution_id_of(session: Session, code: str) -> str:
    """The institution with this code (the CLI names it so), 404 otherwise."""
    found = institution_links.ids_by_code(session, [code]).get(code)
    if found is None:
        raise InstitutionNotFoundError()
    return found


def institutions(session: Session, *, with_items: bool = True) -> list[dict[str, Any]]:
    """The institutions with an active catalogue (or all): {id, code, name_zh, name_en}, by code."""
    return [dict(r) for r in repo.institutions(session.connection(), with_items)]


# --- the 乙 share ---------------------------------------------------------------------------------

def class_b_share(session: Session, institution_id: str) -> int:
    found = repo.class_b_bp(session.connection(), institution_id)
    return CLASS_B_DEFAULT_BP if found is None else found


def settings_doc(session: Session, institution_id: str) -> dict[str, Any]:
    """The self-pay share of each class (basis points) at the institution."""
    _institution(session, institution_id)
    stored = repo.class_b_bp(session.connection(), institution_id)
    b = CLASS_B_DEFAULT_BP if stored is None else stored
    return {"institution_id": institution_id, "class_b_self_pay_bp": b, "default": stored is None,
            "self_pay_bp": {"a": CLASS_FIXED_BP["a"], "b": b, "c": CLASS_FIXED_BP["c"]}}


def set_settings(session: Session, body: SettingsUpdate, actor: Actor, now: datetime) -> dict[str, Any]:
    """Set the institution's 乙 share (audited when it changes); items with their own share keep it."""
    _institution(session, body.institution_id)
    _may_write(body.institution_id)
    conn = session.connection()
    if repo.class_b_bp(conn, body.institution_id) != body.class_b_self_pay_bp:
        repo.set_class_b_bp(conn, body.institution_id, body.class_b_self_pay_bp, now)
        record(session, actor, "pricing:settings:update", now, subject_id=body.institution_id,
               class_b_self_pay_bp=body.class_b_self_pay_bp)
    return settings_doc(session, body.institution_id)


# --- import -------------------------------------------------------------------------------------

def read_limited(stream: IO[bytes], declared: str = "", limit: int = parsing.MAX_BYTES) -> bytes:
    """At most `limit` bytes of an upload, read in chunks; 413 beyond (the rest unread), or at once
    when the request's declared Content-Length is already too large."""
    return uploads.read_limited(stream, limit, lambda: FileTooLargeError(limit_mb=limit // (1024 * 1024)),
                                declared=declared)


def _stored(session: Session, institution_id: str) -> tuple[dict[str, StoredItem], dict[str, StoredPackage]]:
    conn = session.connection()
    items = {r["code"]: StoredItem(r["id"], r["code"], {k: r[k] for k in repo.ITEM_FIELDS})
             for r in repo.all_items(conn, institution_id)}
    pkgs, rows = repo.all_packages(conn, institution_id)
    contents: dict[str, list[tuple[str, int]]] = {}
    for r in rows:
        contents.setdefault(r["package_id"], []).append((r["code"], int(r["qty"])))
    packages = {p["code"]: StoredPackage(p["id"], p["code"], p["name_zh"], p["name_en"], bool(p["active"]),
                                         tuple(contents.get(p["id"], ()))) for p in pkgs}
    return items, packages


def _apply(session: Session, institution_id: str, p: Plan, now: datetime) -> None:
    conn = session.connection()
    repo.insert_items(conn, [{"id": new_id(), "institution_id": institution_id, "code": r.code, **r.values(),
                              "created_at": now, "updated_at": now} for r in p.create_items])
    for stored, _row, changes in p.update_items:
        repo.update_item(conn, stored.id, {k: new for k, (_old, new) in changes.items()}, now)
    repo.deactivate_items(conn, [s.id for s in p.deactivate_items], now)
    ids = repo.item_ids(conn, institution_id) if p.create_packages or p.update_packages else {}
    for row in p.create_packages:
        pid = new_id()
        repo.insert_package(conn, {"id": pid, "institution_id": institution_id, "code": row.code,
                                   "name_zh": row.name_zh, "name_en": row.name_en, "active": row.active,
                                   "created_at": now, "updated_at": now})
        repo.replace_package_items(conn, pid, [(ids[c], q) for c, q, _n in row.items])
    for stored_pkg, row, changes in p.update_packages:
        repo.update_package(conn, stored_pkg.id, {k: changes[k][1] for k in ("name_zh", "name_en", "active")
                                                  if k in changes}, now)
        if "items" in changes:
            repo.replace_package_items(conn, stored_pkg.id, [(ids[c], q) for c, q, _n in row.items])
    repo.deactivate_packages(conn, [s.id for s in p.deactivate_packages], now)


def import_catalogue(session: Session, institution_id: str, content: bytes, actor: Actor, now: datetime, *,
                     dry_run: bool) -> dict[str, Any]:
    """Plan the file against the stored catalogue; a dry run answers the plan (with its row
    errors) and stores nothing, a real import applies it or, with any error, raises
    InvalidCatalogueError (422). See the module docstring for the guarantees."""
    _institution(session, institution_id)
    _may_write(institution_id)
    parsed = parsing.read(content)
    if not dry_run:
        serialise(session.connection(), f"pricing:catalogue:{institution_id}")
    stored_items, stored_packages = _stored(session, institution_id)
    p = plan(parsed, stored_items, stored_packages)
    digest = hashlib.sha256(content).hexdigest()
    if not dry_run:
        if p.errors:
            raise InvalidCatalogueError(count=len(p.errors), fields=[e.as_field() for e in p.errors])
        if p.changed:
            _apply(session, institution_id, p, now)
            counts = p.counts()
            record(session, actor, "pricing:catalogue:import", now, subject_id=institution_id, digest=digest,
                   created=counts["created"], updated=counts["updated"], deactivated=counts["deactivated"])
    return {"institution_id": institution_id, "dry_run": dry_run, "applied": not dry_run and p.changed,
            "file": {"kind": parsed.kind, "encoding": parsed.encoding, "rows": parsed.rows, "sha256": digest},
            **p.report()}


def stage_upload(session: Session, institution_id: str, content: bytes, actor: Actor,
                 now: datetime) -> tuple[str | None, dict[str, Any]]:
    """The admin page's preview: the dry run, and when the file has no errors it is kept (a day) for
    the confirm, which imports exactly these bytes. (upload id or None, the dry run's answer)."""
    report = import_catalogue(session, institution_id, content, actor, now, dry_run=True)
    if report["errors"]:
        return None, report
    conn = session.connection()
    repo.purge_staged(conn, now - STAGED_FOR)
    upload_id = new_id()
    repo.stage(conn, {"id": upload_id, "institution_id": institution_id, "digest": report["file"]["sha256"],
                      "content": content, "created_by": actor.id, "created_at": now})
    return upload_id, report


def load_samples(session: Session, institution_id: str, actor: Actor, now: datetime) -> dict[str, int]:
    """Import the sample catalogue shipped with the package (the demo hospital's); idempotent.
    The counts of both files added up."""
    total = {"created": 0, "updated": 0, "deactivated": 0}
    for name in SAMPLES:
        content = resources.files("carepoints.services.pricing").joinpath(name).read_bytes()
        counts = import_catalogue(session, institution_id, content, actor, now, dry_run=False)["counts"]
        total = {k: total[k] + counts[k] for k in total}
    return total


def import_staged(session: Session, upload_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Import a staged upload for real (once: it is dropped in the same transaction); only its
    uploader may, within a day (404 otherwise)."""
    conn = session.connection()
    row = repo.staged(conn, upload_id) if is_id(upload_id) else None
    if row is None or row["created_by"] != actor.id or row["created_at"] < now - STAGED_FOR:
        raise UploadNotFoundError()
    if repo.drop_staged(conn, upload_id) != 1:  # a second confirm racing this one
        raise UploadNotFoundError()
    return import_catalogue(session, row["institution_id"], bytes(row["content"]), actor, now, dry_run=False)


# --- reads --------------------------------------------------------------------------------------

def _priced(row: RowMapping, class_b: int) -> calc.Priced:
    return calc.Priced(row["code"], row["name_zh"], row["name_en"], row["category"], row["unit"],
                       int(row["price_fen"]), row["insurance_class"],
                       calc.self_pay_bp(row["insurance_class"], row["self_pay_bp"], class_b),
                       row["equivalent_group"])


def _effective(row: RowMapping, day: date) -> bool:
    return calc.in_effect(bool(row["active"]), row["valid_from"], row["valid_to"], day)


def item_doc(row: RowMapping, class_b: int) -> dict[str, Any]:
    return {"code": row["code"], "name": {"zh": row["name_zh"], "en": row["name_en"]}, "category": row["category"],
            "unit": row["unit"], "price": cny(int(row["price_fen"])), "insurance_class": row["insurance_class"],
            "self_pay_bp": calc.self_pay_bp(row["insurance_class"], row["self_pay_bp"], class_b),
            "self_pay_bp_item": row["self_pay_bp"], "equivalent_group": row["equivalent_group"],
            "active": bool(row["active"]), "valid_from": row["valid_from"], "valid_to": row["valid_to"]}


def items(session: Session, institution_id: str, now: datetime, *, q: str | None = None,
          category: str | None = None, include_inactive: bool = False, limit: int = 20,
          offset: int = 0) -> dict[str, Any]:
    """The catalogue (items in effect today unless `include_inactive`), searched by code or name."""
    _institution(session, institution_id)
    conn = session.connection()
    rows, total = repo.search_items(conn, institution_id, q=(q or "").strip() or None, category=category,
                                    day=today(now), include_inactive=include_inactive, limit=limit, offset=offset)
    class_b = class_b_share(session, institution_id)
    return {"institution_id": institution_id, "items": [item_doc(r, class_b) for r in rows], "total": total,
            "limit": limit, "offset": offset,
            "next_offset": offset + limit if offset + limit < total else None}


def packages(session: Session, institution_id: str, now: datetime, *,
             include_inactive: bool = False) -> dict[str, Any]:
    """The packages with their items and the list price (total, self-pay) today; a package with an
    item not in effect today is `available: false`."""
    _institution(session, institution_id)
    day, class_b = today(now), class_b_share(session, institution_id)
    pkgs, rows = repo.packages_by_code(session.connection(), institution_id, None, include_inactive)
    by_package: dict[str, list[RowMapping]] = {}
    for r in rows:
        by_package.setdefault(r["package_id"], []).append(r)
    out = []
    for p in pkgs:
        lines = [calc.line(_priced(r, class_b), int(r["qty"]), []) for r in by_package.get(p["id"], [])]
        t = calc.totals(lines)
        out.append({"code": p["code"], "name": {"zh": p["name_zh"], "en": p["name_en"]}, "active": bool(p["active"]),
                    "available": bool(p["active"]) and all(_effective(r, day) for r in by_package.get(p["id"], [])),
                    "items": [{"code": ln.item.code, "name": {"zh": ln.item.name_zh, "en": ln.item.name_en},
                               "unit": ln.item.unit, "qty": ln.qty, "unit_price": cny(ln.item.price_fen),
                               "amount": cny(ln.amount_fen), "insurance_class": ln.item.insurance_class,
                               "self_pay": cny(ln.self_pay_fen)} for ln in lines],
                    "total": cny(t.total_fen), "self_pay": cny(t.self_pay_fen)})
    return {"institution_id": institution_id, "items": out}


# --- the estimate ---------------------------------------------------------------------------------

def _wanted(body: EstimateCreate) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The explicit items (a code twice adds up) and the quantity problems, as fields."""
    merged: dict[str, int] = {}
    bad: list[dict[str, Any]] = []
    for n, ln in enumerate(body.items):
        if not 1 <= ln.qty <= MAX_QTY:
            bad.append({"loc": ["items", n, "qty"], "msg": InvalidQuantityError.message.format(codes=ln.code),
                        "code": ln.code})
        merged[ln.code] = merged.get(ln.code, 0) + ln.qty
    flagged = {f["code"] for f in bad}
    bad.extend({"loc": ["items", "qty"], "msg": InvalidQuantityError.message.format(codes=code), "code": code}
               for code, qty in merged.items() if qty > MAX_QTY and code not in flagged)
    return merged, bad


def _unknown(loc: list[Any], code: str) -> dict[str, Any]:
    return {"loc": loc, "msg": UnknownItemError.message.format(codes=code), "code": code}


def _codes(fields: list[dict[str, Any]]) -> str:
    codes = list(dict.fromkeys(str(f["code"]) for f in fields))
    return ", ".join(codes[:10]) + (" …" if len(codes) > 10 else "")


def _refuse(body: EstimateCreate, found: dict[str, RowMapping], packages: dict[str, RowMapping],
            contents: dict[str, list[RowMapping]], bad_qty: list[dict[str, Any]], day: date) -> None:
    """422 for unknown or inactive codes (every problem in `fields`), then for bad quantities."""
    wanted = body.package_codes()
    unknown = [_unknown(["items", n, "code"], ln.code) for n, ln in enumerate(body.items)
               if ln.code not in found or not _effective(found[ln.code], day)]
    for n, code in enumerate(wanted):
        if code not in packages:
            unknown.append(_unknown(["packages", n], code))
            continue
        unknown.extend(_unknown(["packages", n], r["code"]) for r in contents.get(packages[code]["id"], [])
                       if not _effective(r, day))
    if unknown:
        raise UnknownItemError(codes=_codes(unknown), fields=unknown + bad_qty)
    if bad_qty:
        raise InvalidQuantityError(codes=_codes(bad_qty), fields=bad_qty)
    if not body.items and not packages:
        raise NothingToEstimateError()


def estimate(session: Session, body: EstimateCreate, now: datetime) -> dict[str, Any]:
    """Price the chosen items and packages (the arithmetic: pricing.estimate). Unknown or inactive
    codes and quantities outside 1–999 are refused (422) with every code named. Reads only."""
    _institution(session, body.institution_id)
    conn, day = session.connection(), today(now)
    class_b = class_b_share(session, body.institution_id)
    merged, bad_qty = _wanted(body)
    found = repo.items_by_code(conn, body.institution_id, merged)
    pkgs, pkg_rows = repo.packages_by_code(conn, body.institution_id, body.package_codes())
    packages = {p["code"]: p for p in pkgs}
    contents: dict[str, list[RowMapping]] = {}
    for r in pkg_rows:
        contents.setdefault(r["package_id"], []).append(r)
    _refuse(body, found, packages, contents, bad_qty, day)
    groups = {r["equivalent_group"] for r in [*(found[c] for c in merged), *pkg_rows] if r["equivalent_group"]}
    candidates = [_priced(r, class_b) for r in repo.items_in_groups(conn, body.institution_id, groups, day)]
    lines = [calc.line(_priced(found[c], class_b), q, candidates) for c, q in merged.items()]
    for code in body.package_codes():
        lines.extend(calc.line(_priced(r, class_b), int(r["qty"]), candidates, package=code)
                     for r in contents.get(packages[code]["id"], []))
    t = calc.totals(lines)
    subtotal = {c: t.by_package.get(c, (0, 0)) for c in packages}
    return {"institution_id": body.institution_id, "as_of": day, "lines": [_line_doc(ln) for ln in lines],
            "packages": [{"code": c, "name": {"zh": packages[c]["name_zh"], "en": packages[c]["name_en"]},
                          "total": cny(subtotal[c][0]), "self_pay": cny(subtotal[c][1])} for c in body.package_codes()],
            "totals": {"total": cny(t.total_fen), "insured": cny(t.insured_fen), "self_pay": cny(t.self_pay_fen),
                       "lines": t.lines},
            "notices": NOTICES}


def _name(item: calc.Priced) -> dict[str, str | None]:
    return {"zh": item.name_zh, "en": item.name_en}


def _line_doc(ln: calc.Line) -> dict[str, Any]:
    item = ln.item
    return {"code": item.code, "name": _name(item), "category": item.category, "unit": item.unit,
            "unit_price": cny(item.price_fen), "qty": ln.qty, "amount": cny(ln.amount_fen),
            "insurance_class": item.insurance_class, "self_pay_bp": item.self_pay_bp,
            "self_pay": cny(ln.self_pay_fen), "insured": cny(ln.insured_fen), "package": ln.package,
            "equivalents": [{"code": e.item.code, "name": _name(e.item), "unit_price": cny(e.item.price_fen),
                             "insurance_class": e.item.insurance_class, "self_pay_bp": e.item.self_pay_bp,
                             "amount": cny(e.amount_fen), "self_pay": cny(e.self_pay_fen),
                             "saving_per_unit": cny(e.saving_per_unit_fen), "saving": cny(e.saving_fen),
                             "self_pay_saving": cny(e.self_pay_saving_fen)} for e in ln.equivalents]}
