"""Every query of the price catalogue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.kit.bulk import upsert
from carepoints.kit.db import table
from carepoints.scheduling.models import Institution
from carepoints.services.pricing.models import (
    PriceImportUpload,
    PriceItem,
    PricePackage,
    PricePackageItem,
    PricingSetting,
)

items = table(PriceItem)
packages = table(PricePackage)
package_items = table(PricePackageItem)
settings = table(PricingSetting)
uploads = table(PriceImportUpload)
_institutions = table(Institution)

ITEM_FIELDS = ("name_zh", "name_en", "category", "unit", "price_fen", "insurance_class", "self_pay_bp",
               "equivalent_group", "active", "valid_from", "valid_to")


def in_effect(day: date) -> ColumnElement[bool]:
    """Active and within its optional validity on `day` (both ends inclusive)."""
    return and_(items.c.active.is_(True), or_(items.c.valid_from.is_(None), items.c.valid_from <= day),
                or_(items.c.valid_to.is_(None), items.c.valid_to >= day))


# --- the catalogue as stored ------------------------------------------------------------------

def all_items(conn: Connection, institution_id: str) -> list[RowMapping]:
    return list(conn.execute(select(items).where(items.c.institution_id == institution_id)).mappings())


def all_packages(conn: Connection, institution_id: str) -> tuple[list[RowMapping], list[RowMapping]]:
    """(packages, their items with the item's code, in order)."""
    pkgs = list(conn.execute(select(packages).where(packages.c.institution_id == institution_id)
                             .order_by(packages.c.code)).mappings())
    return pkgs, _package_items(conn, [p["id"] for p in pkgs])


def _package_items(conn: Connection, package_ids: Sequence[str]) -> list[RowMapping]:
    if not package_ids:
        return []
    return list(conn.execute(
        select(package_items.c.package_id, package_items.c.qty, package_items.c.position, items)
        .join(items, items.c.id == package_items.c.item_id)
        .where(package_items.c.package_id.in_(sorted(package_ids)))
        .order_by(package_items.c.package_id, package_items.c.position)).mappings())


def item_ids(conn: Connection, institution_id: str) -> dict[str, str]:
    return {str(c): str(i) for i, c in conn.execute(
        select(items.c.id, items.c.code).where(items.c.institution_id == institution_id))}


# --- writes (the import) -------------------------------------------------------------------------

def insert_items(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(items), rows)


def update_item(conn: Connection, item_id: str, values: dict[str, Any], now: datetime) -> None:
    conn.execute(update(items).where(items.c.id == item_id).values(**values, updated_at=now))


def deactivate_items(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        conn.execute(update(items).where(items.c.id.in_(sorted(ids))).values(active=False, updated_at=now))


def insert_package(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(packages), [row])


def update_package(conn: Connection, package_id: str, values: dict[str, Any], now: datetime) -> None:
    conn.execute(update(packages).where(packages.c.id == package_id).values(**values, updated_at=now))


def replace_package_items(conn: Connection, package_id: str, rows: list[tuple[str, int]]) -> None:
    """The package's items become `rows` (item id, qty) in this order."""
    conn.execute(delete(package_items).where(package_items.c.package_id == package_id))
    if rows:
        conn.execute(insert(package_items), [{"package_id": package_id, "item_id": i, "qty": q, "position": n}
                                             for n, (i, q) in enumerate(rows, start=1)])


def deactivate_packages(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        conn.execute(update(packages).where(packages.c.id.in_(sorted(ids))).values(active=False, updated_at=now))


# --- reads (estimates, lists) --------------------------------------------------------------------

def items_by_code(conn: Connection, institution_id: str, codes: Iterable[str]) -> dict[str, RowMapping]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {r["code"]: r for r in conn.execute(select(items).where(
        items.c.institution_id == institution_id, items.c.code.in_(wanted))).mappings()}


def items_in_groups(conn: Connection, institution_id: str, groups: Iterable[str], day: date) -> list[RowMapping]:
    wanted = sorted(set(groups))
    if not wanted:
        return []
    return list(conn.execute(select(items).where(
        items.c.institution_id == institution_id, items.c.equivalent_group.in_(wanted), in_effect(day))
        .order_by(items.c.code)).mappings())


def search_items(conn: Connection, institution_id: str, *, q: str | None, category: str | None, day: date,
                 include_inactive: bool, limit: int, offset: int) -> tuple[list[RowMapping], int]:
    """Items whose code or name (Chinese or English, any case) holds `q`, by category then code."""
    where: list[ColumnElement[bool]] = [items.c.institution_id == institution_id]
    if q:
        low = q.lower()
        where.append(or_(items.c.name_zh.contains(q, autoescape=True),
                         func.lower(items.c.name_en).contains(low, autoescape=True),
                         func.lower(items.c.code).contains(low, autoescape=True)))
    if category:
        where.append(items.c.category == category)
    if not include_inactive:
        where.append(in_effect(day))
    total = int(conn.execute(select(func.count()).select_from(items).where(*where)).scalar_one())
    rows = list(conn.execute(select(items).where(*where).order_by(items.c.category, items.c.code)
                             .limit(limit).offset(offset)).mappings())
    return rows, total


def packages_by_code(conn: Connection, institution_id: str, codes: Iterable[str] | None,
                     include_inactive: bool = False) -> tuple[list[RowMapping], list[RowMapping]]:
    """Packages (all, or those of `codes`) with their items, as `all_packages`."""
    stmt = select(packages).where(packages.c.institution_id == institution_id).order_by(packages.c.code)
    if codes is not None:
        stmt = stmt.where(packages.c.code.in_(sorted(set(codes))))
    if not include_inactive:
        stmt = stmt.where(packages.c.active.is_(True))
    pkgs = list(conn.execute(stmt).mappings())
    return pkgs, _package_items(conn, [p["id"] for p in pkgs])


def institutions(conn: Connection, with_items: bool) -> list[RowMapping]:
    """Institutions (scheduling's) by code: all, or those with an active item."""
    stmt = select(_institutions.c.id, _institutions.c.code, _institutions.c.name_zh, _institutions.c.name_en)
    if with_items:
        stmt = stmt.where(_institutions.c.id.in_(select(items.c.institution_id).where(items.c.active.is_(True))))
    return list(conn.execute(stmt.order_by(_institutions.c.code)).mappings())


# --- settings ------------------------------------------------------------------------------------

def class_b_bp(conn: Connection, institution_id: str) -> int | None:
    found = conn.execute(select(settings.c.class_b_self_pay_bp).where(
        settings.c.institution_id == institution_id)).scalar()
    return None if found is None else int(found)


def set_class_b_bp(conn: Connection, institution_id: str, bp: int, now: datetime) -> None:
    stmt = upsert(conn, settings).values(institution_id=institution_id, class_b_self_pay_bp=bp, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["institution_id"],
                                            set_={"class_b_self_pay_bp": bp, "updated_at": now}))


# --- staged uploads (the admin page's preview → confirm) -----------------------------------------

def stage(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(uploads), [row])


def staged(conn: Connection, upload_id: str) -> RowMapping | None:
    return conn.execute(select(uploads).where(uploads.c.id == upload_id)).mappings().first()


def drop_staged(conn: Connection, upload_id: str) -> int:
    return int(conn.execute(delete(uploads).where(uploads.c.id == upload_id)).rowcount)


def purge_staged(conn: Connection, before: datetime) -> int:
    return int(conn.execute(delete(uploads).where(uploads.c.created_at < before)).rowcount)
