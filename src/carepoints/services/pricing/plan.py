"""What importing a parsed file would change, pure: the file's list against the stored catalogue.

- An item list names the institution's whole catalogue: codes not stored are created, stored
  ones whose fields differ are updated, and stored active items the file leaves out are
  deactivated (never deleted). A package list does the same for packages. A file with only one
  of the lists leaves the other as it is.
- A package's items must be active items after the import (those of the file's item list when it
  has one, else the stored ones).
- The same file twice changes nothing the second time: only differences are written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carepoints.kit.money import cny
from carepoints.services.pricing.parsing import ItemRow, PackageRow, Parsed, RowError


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: str
    code: str
    values: dict[str, Any]  # ItemRow.values() keys


@dataclass(frozen=True, slots=True)
class StoredPackage:
    id: str
    code: str
    name_zh: str
    name_en: str | None
    active: bool
    items: tuple[tuple[str, int], ...]  # (item code, qty) in order


Changes = dict[str, tuple[Any, Any]]  # field → (stored, file)


@dataclass
class Plan:
    items_listed: bool
    packages_listed: bool
    create_items: list[ItemRow] = field(default_factory=list)
    update_items: list[tuple[StoredItem, ItemRow, Changes]] = field(default_factory=list)
    deactivate_items: list[StoredItem] = field(default_factory=list)
    unchanged_items: int = 0
    create_packages: list[PackageRow] = field(default_factory=list)
    update_packages: list[tuple[StoredPackage, PackageRow, Changes]] = field(default_factory=list)
    deactivate_packages: list[StoredPackage] = field(default_factory=list)
    unchanged_packages: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.create_items or self.update_items or self.deactivate_items or self.create_packages
                    or self.update_packages or self.deactivate_packages)

    def counts(self) -> dict[str, int]:
        return {"created": len(self.create_items) + len(self.create_packages),
                "updated": len(self.update_items) + len(self.update_packages),
                "deactivated": len(self.deactivate_items) + len(self.deactivate_packages),
                "unchanged": self.unchanged_items + self.unchanged_packages, "errors": len(self.errors)}

    def report(self) -> dict[str, Any]:
        """The answer of a dry run (and of a real import): the changes by list, with each update's
        fields as {from, to} (prices in yuan), and the row errors."""
        items = {"created": [_item_doc(r) for r in self.create_items],
                 "updated": [{"code": s.code, "changes": _shown(c)} for s, _r, c in self.update_items],
                 "deactivated": [s.code for s in self.deactivate_items],
                 "unchanged": self.unchanged_items} if self.items_listed else None
        packages = {"created": [{"code": p.code, "name_zh": p.name_zh, "items": len(p.items)}
                                for p in self.create_packages],
                    "updated": [{"code": s.code, "changes": _shown(c)} for s, _r, c in self.update_packages],
                    "deactivated": [s.code for s in self.deactivate_packages],
                    "unchanged": self.unchanged_packages} if self.packages_listed else None
        return {"counts": self.counts(), "items": items, "packages": packages,
                "errors": [e.as_field() for e in self.errors]}


def _money(key: str, value: Any) -> Any:
    return cny(value) if key == "price_fen" and isinstance(value, int) else value


def _shown(changes: Changes) -> dict[str, dict[str, Any]]:
    return {("price" if k == "price_fen" else k): {"from": _money(k, old), "to": _money(k, new)}
            for k, (old, new) in changes.items()}


def _item_doc(r: ItemRow) -> dict[str, Any]:
    return {"code": r.code, "name_zh": r.name_zh, "category": r.category, "price": cny(r.price_fen),
            "insurance_class": r.insurance_class, "active": r.active}


def _diff(stored: dict[str, Any], wanted: dict[str, Any]) -> Changes:
    return {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}


def plan(parsed: Parsed, items: dict[str, StoredItem], packages: dict[str, StoredPackage]) -> Plan:
    out = Plan(parsed.items is not None, parsed.packages is not None, errors=list(parsed.errors))
    if parsed.items is not None:
        listed = set()
        for row in parsed.items:
            listed.add(row.code)
            found = items.get(row.code)
            if found is None:
                out.create_items.append(row)
                continue
            changes = _diff(found.values, row.values())
            if changes:
                out.update_items.append((found, row, changes))
            else:
                out.unchanged_items += 1
        # a row with an error keeps its stored item as it is (the import is refused anyway)
        for code, stored in sorted(items.items()):
            if code not in listed and code not in parsed.bad_items and stored.values["active"]:
                out.deactivate_items.append(stored)
        active = {r.code for r in parsed.items if r.active}
    else:
        active = {code for code, s in items.items() if s.values["active"]}
    if parsed.packages is not None:
        _plan_packages(out, parsed, packages, active)
    return out


def _plan_packages(out: Plan, parsed: Parsed, packages: dict[str, StoredPackage], active: set[str]) -> None:
    assert parsed.packages is not None  # noqa: S101 - the caller checked
    listed = set()
    for row in parsed.packages:
        listed.add(row.code)
        missing = [(code, n) for code, _qty, n in row.items if code not in active]
        if missing:
            out.errors.extend(RowError(n, row.item_column, row.code,
                                       f"项目 {code} 不在目录中或已停用 / Item {code} is not an active catalogue item",
                                       row.sheet) for code, n in missing)
            continue
        found = packages.get(row.code)
        wanted: dict[str, Any] = {"name_zh": row.name_zh, "name_en": row.name_en, "active": row.active,
                  "items": tuple((code, qty) for code, qty, _n in row.items)}
        if found is None:
            out.create_packages.append(row)
            continue
        stored: dict[str, Any] = {"name_zh": found.name_zh, "name_en": found.name_en, "active": found.active,
                                  "items": found.items}
        changes = _diff(stored, wanted)
        if changes:
            if "items" in changes:
                changes["items"] = [f"{c}×{q}" for c, q in found.items], [f"{c}×{q}" for c, q in wanted["items"]]
            out.update_packages.append((found, row, changes))
        else:
            out.unchanged_packages += 1
    for code, stored_pkg in sorted(packages.items()):
        if code not in listed and code not in parsed.bad_packages and stored_pkg.active:
            out.deactivate_packages.append(stored_pkg)
