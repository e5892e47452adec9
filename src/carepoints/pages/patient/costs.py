"""费用估算 for the patient (/me/costs, pricing:read): search the hospital's price list or pick a
package (套餐), and see the running estimate — each line's amount and self-pay part, the totals,
and a cheaper equivalent where the catalogue marks one ("同类可选: XX 便宜 ¥12.00", with a switch).

The choice lives in the page's address (`item=CODE:QTY`, `package=CODE`, the search and the
hospital), so every add, +/−, remove and switch is a plain link and the back button works; each
render asks `pricing.service.estimate`, the API's use case. The estimate is informational (the
hospital's bill is final) and is about no patient: a proxy sees it as for themself.
`Selection` and `costs_view` serve the staff desk's page (/staff/costs) too."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, Page, PageRule, reading
from carepoints.services.pricing import service
from carepoints.services.pricing.schemas import CATEGORY_NAMES, CLASS_NAMES, CODE_PATTERN, MAX_QTY, EstimateCreate

router = APIRouter(include_in_schema=False)

# the catalogue is nobody's record: a patient acting for someone (代办) sees it as for themself
Costs = Annotated[Page, Depends(PageRule(PATIENT, ("pricing:read",), itself=True))]

_CODE = re.compile(CODE_PATTERN)
MAX_LINES, MAX_PACKAGES = 100, 20


@dataclass(frozen=True)
class Selection:
    """What the page's address holds: the hospital, the chosen items and packages, the search."""

    institution_id: str = ""
    items: dict[str, int] = field(default_factory=dict)
    packages: tuple[str, ...] = ()
    q: str = ""
    category: str = ""
    offset: int = 0

    @classmethod
    def of(cls, request: Request) -> Selection:
        """From the query; malformed entries are left out (an address typed by hand)."""
        params = request.query_params
        chosen: dict[str, int] = {}
        for raw in params.getlist("item")[:MAX_LINES]:
            code, _, qty = raw.partition(":")
            if _CODE.match(code) and re.fullmatch(r"-?\d{1,7}", qty or "1"):
                chosen[code] = int(qty or "1")
        packages = tuple(dict.fromkeys(p for p in params.getlist("package")[:MAX_PACKAGES] if _CODE.match(p)))
        category = params.get("category", "")
        offset = params.get("offset", "0")
        return cls(params.get("institution_id", "")[:36], chosen, packages, params.get("q", "").strip()[:50],
                   category if category in CATEGORY_NAMES else "",
                   min(int(offset), 100_000) if offset.isdigit() else 0)

    def query(self, **changes: Any) -> str:
        s = replace(self, **changes)
        pairs = [("institution_id", s.institution_id)] if s.institution_id else []
        pairs += [("item", f"{c}:{q}") for c, q in s.items.items()] + [("package", p) for p in s.packages]
        pairs += [(k, str(v)) for k, v in (("q", s.q), ("category", s.category), ("offset", s.offset)) if v]
        return urlencode(pairs)

    def qty(self, code: str, qty: int) -> str:
        """The address with `code` at `qty` (0 removes it), back on the search's first page kept."""
        items = dict(self.items)
        if qty <= 0:
            items.pop(code, None)
        else:
            items[code] = min(qty, MAX_QTY)
        return self.query(items=items)

    def swap(self, code: str, to: str) -> str:
        """`code` replaced by its equivalent `to`, same quantity and place."""
        items = {(to if c == code else c): q for c, q in self.items.items()}
        return self.query(items=items)

    def toggle_package(self, code: str) -> str:
        packages = tuple(p for p in self.packages if p != code) if code in self.packages \
            else (*self.packages, code)
        return self.query(packages=packages)


def _cny(value: str) -> str:
    return f"¥{value}"


def _name(page: Page, name: dict[str, Any]) -> str:
    return page.tr(str(name["zh"]), str(name.get("en") or name["zh"]))


def _hint(page: Page, eq: dict[str, Any]) -> str:
    """"同类可选: XX 便宜 ¥12.00" (cheaper), or "… 自付少 ¥3.00" when only the self-pay part is lower."""
    name = _name(page, eq["name"])
    if not eq["saving"].startswith("-") and eq["saving"] != "0.00":
        return page.tr(f"同类可选: {name} 便宜 ¥{eq['saving']}", f"Equivalent: {name}, ¥{eq['saving']} cheaper")
    return page.tr(f"同类可选: {name} 自付少 ¥{eq['self_pay_saving']}",
                   f"Equivalent: {name}, ¥{eq['self_pay_saving']} less to pay yourself")


def _lines(page: Page, sel: Selection, base: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ln in doc["lines"]:
        code, own = ln["code"], ln["package"] is None
        eq = ln["equivalents"][0] if ln["equivalents"] else None
        out.append({**ln, "shown_name": _name(page, ln["name"]), "share": f"{ln['self_pay_bp'] / 100:g}%",
                    "class_name": page.tr(*CLASS_NAMES[ln["insurance_class"]]),
                    "inc": f"{base}?{sel.qty(code, ln['qty'] + 1)}" if own else None,
                    "dec": f"{base}?{sel.qty(code, ln['qty'] - 1)}" if own else None,
                    "remove": f"{base}?{sel.qty(code, 0)}" if own else None,
                    "hint": _hint(page, eq) if eq else None,
                    "swap": f"{base}?{sel.swap(code, eq['code'])}" if eq and own and eq["code"] not in sel.items
                    else None})
    return out


def costs_view(page: Page, request: Request, base: str, now: datetime, per_page: int) -> dict[str, Any]:
    """Everything the cost pages show for the address's selection (the template's context)."""
    sel = Selection.of(request)
    shared = {"base": base, "cny": _cny, "notices": {k: page.say(v) for k, v in service.NOTICES.items()}}
    with reading() as session:
        hospitals = service.institutions(session)
        ids = [str(h["id"]) for h in hospitals]
        inst = sel.institution_id if sel.institution_id in ids else (ids[0] if ids else "")
        sel = replace(sel, institution_id=inst) if inst else sel
        if not inst:
            return {"sel": sel, "hospitals": [], **shared}
        found = service.items(session, inst, now, q=sel.q or None, category=sel.category or None, limit=per_page,
                              offset=sel.offset)
        packages = service.packages(session, inst, now)["items"]
        doc, error = None, None
        if sel.items or sel.packages:
            try:
                body = EstimateCreate.model_validate({
                    "institution_id": inst, "items": [{"code": c, "qty": q} for c, q in sel.items.items()],
                    "packages": list(sel.packages)})
                doc = service.estimate(session, body, now)
            except AppError as err:
                if err.status_code != 422:
                    raise
                error = err.to_dict()
    results = [{**r, "shown_name": _name(page, r["name"]), "chosen": r["code"] in sel.items,
                "class_name": page.tr(*CLASS_NAMES[r["insurance_class"]]),
                "add": f"{base}?{sel.qty(r['code'], sel.items.get(r['code'], 0) + 1)}"} for r in found["items"]]
    return {
        "sel": sel, **shared,
        "hospitals": [{**h, "shown": page.tr(h["name_zh"], h["name_en"])} for h in hospitals],
        "hospital": next(page.tr(h["name_zh"], h["name_en"]) for h in hospitals if h["id"] == inst),
        "results": results, "total": found["total"],
        "next_href": f"{base}?{sel.query(offset=found['next_offset'])}" if found["next_offset"] else None,
        "prev_href": f"{base}?{sel.query(offset=max(sel.offset - per_page, 0))}" if sel.offset else None,
        "packages": [{**p, "shown_name": _name(page, p["name"]), "chosen": p["code"] in sel.packages,
                      "toggle": f"{base}?{sel.toggle_package(p['code'])}"} for p in packages],
        "estimate": doc, "lines": _lines(page, sel, base, doc) if doc else [], "error": error,
        "clear": f"{base}?{sel.query(items={}, packages=())}",
        "categories": [(k, page.tr(*v)) for k, v in CATEGORY_NAMES.items()],
    }


@router.get("/me/costs")
def costs(page: Costs, request: Request) -> Response:
    """The cost estimate: the running estimate, packages, and the price list to search and add from."""
    view = costs_view(page, request, "/me/costs", utc_now(), 5 if page.elderly else 10)
    return page.render("patient/costs/index.html", tab="me", back="/me", **view)
