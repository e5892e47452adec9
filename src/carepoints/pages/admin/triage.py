"""The programme admin's triage knowledge base (/admin/triage): the last 30 days' counts (per red
flag raised, first department kind suggested, unmatched), the red flags with on / off, the
department kinds with the hospital departments each stands for (edit: tick the departments;
or match by name again), and the symptom terms — searchable, each with an edit form for its
names, synonyms, department weights and on / off — plus a form to add one.

Reads need triage:read (admins, auditors), changes triage:write (admins); each change goes
through services.triage.curation like the API (PUT /api/v1/triage/terms/{id}, …) and is
audited there. The next triage uses the change."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from carepoints.config import get_settings
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import local_date, utc_now
from carepoints.pages.web import Page, form_errors, reading, staff_page, writing
from carepoints.scheduling import service as scheduling
from carepoints.services.triage import curation
from carepoints.services.triage.schemas import KindDepartments, RedFlagUpdate, TermCreate, TermUpdate

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("triage:read"))]
Write = Annotated[Page, Depends(staff_page("triage:write"))]

FORM_ERRORS = (404, 409, 422)
_SPLIT = re.compile(r"[\s,,、;;]+")
DONE: dict[str, tuple[str, str]] = {
    "term_saved": ("词条已保存,下一次导诊即按新内容判断", "Term saved: the next triage uses it"),
    "term_added": ("词条已添加", "Term added"),
    "flag_on": ("危险信号已启用", "Red flag enabled"), "flag_off": ("危险信号已停用", "Red flag disabled"),
    "kind_saved": ("科室对应关系已保存", "Departments saved"),
    "matched": ("已按名称匹配科室", "Departments matched by name"),
}


def _principal(page: Page) -> Any:
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    return page.principal


def _flash(page: Page) -> dict[str, Any]:
    words = DONE.get(page.request.query_params.get("done") or "")
    message = page.tr(*words) if words else None
    return {"flash": message, "message": message, "kind": "ok"}


def _index(page: Page, status: int = 200, **values: Any) -> Response:
    q = (page.request.query_params.get("q") or "").strip()[:32] or None
    today = local_date(utc_now(), get_settings().tz)
    with reading() as session:
        terms = curation.terms(session, q=q)
        flags = curation.red_flags(session)
        kinds = curation.kinds(session)
        stats = curation.stats(session, today - timedelta(days=29), today)
    kind_names = {k["code"]: page.tr(k["name_zh"], k["name_en"]) for k in kinds}
    flag_names = {f["id"]: page.tr(f["name_zh"], f["name_en"]) for f in flags}
    values.setdefault("form", {})
    values.setdefault("errors", {})
    values.setdefault("error", None)
    return page.render("admin/triage/index.html", status=status, terms=terms, flags=flags, kinds=kinds, stats=stats,
                       q=q or "", kind_names=kind_names, flag_names=flag_names,
                       can_write=_principal(page).can("triage:write"), **{**_flash(page), **values})


@router.get("/admin/triage")
def triage_admin(page: Read) -> Response:
    """Counts, red flags, department kinds and terms (?q= searches the terms)."""
    return _index(page)


def _invalid(err: ValidationError) -> ValidationFailedError:
    fields = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ())]
        name = loc[0] if loc else ""
        if name == "weights" and len(loc) > 1:
            name = f"w_{loc[1]}"
        fields.append({"loc": [name], "msg": f"填写有误 / {e.get('msg', 'invalid')}"})
    return ValidationFailedError(fields=fields)


def _weights(form: Any, kinds: list[dict[str, Any]]) -> dict[str, Any]:
    """The weight fields (`w_<kind>`): blank or 0 leaves the kind out; not a number is refused."""
    out: dict[str, Any] = {}
    for k in kinds:
        raw = str(form.get(f"w_{k['code']}") or "").strip()
        if raw and raw != "0":
            out[k["code"]] = int(raw) if raw.isdigit() else raw
    return out


def _synonyms(raw: str) -> list[str]:
    return [s for s in _SPLIT.split(raw.replace(",", ",")) if s]


def _kinds() -> list[dict[str, Any]]:
    with reading() as session:
        return curation.kinds(session)


def _term_page(page: Page, term_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        term = curation.term(session, term_id)
        kinds = curation.kinds(session)
    values.setdefault("form", {"name_zh": term["name_zh"], "name_en": term["name_en"],
                               "synonyms": "\n".join(term["synonyms"]), "enabled": term["enabled"],
                               **{f"w_{k}": v for k, v in term["weights"].items()}})
    values.setdefault("errors", {})
    values.setdefault("error", None)
    return page.render("admin/triage/term.html", status=status, term=term, kinds=kinds,
                       back="/admin/triage", **values)


@router.get("/admin/triage/terms/{term_id}")
def term_edit(page: Write, term_id: str) -> Response:
    """One term's form: names, synonyms (one a line), a weight per department kind, on / off."""
    return _term_page(page, term_id)


@router.post("/admin/triage/terms/{term_id}")
async def term_save(page: Write, term_id: str, request: Request) -> Response:
    """Save a term (curation.update_term, as PUT /api/v1/triage/terms/{id}); refusals re-render the form."""
    form = await request.form()  # the weight fields are one per kind: read the form whole
    return await run_in_threadpool(_save_term_sync, page, term_id, form)


def _save_term_sync(page: Page, term_id: str, form: Any) -> Response:
    kinds = _kinds()
    raw = {k: str(form.get(k) or "") for k in ("name_zh", "name_en", "synonyms")}
    shown = {**raw, "enabled": form.get("enabled") == "1",
             **{f"w_{k['code']}": str(form.get(f"w_{k['code']}") or "") for k in kinds}}
    try:
        try:
            body = TermUpdate.model_validate({"name_zh": raw["name_zh"], "name_en": raw["name_en"],
                                              "synonyms": _synonyms(raw["synonyms"]),
                                              "weights": _weights(form, kinds), "enabled": shown["enabled"]})
        except ValidationError as err:
            raise _invalid(err) from None
        with writing() as session:
            curation.update_term(session, term_id, body, _principal(page).actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "triage.term_not_found":
            raise
        return _term_page(page, term_id, err.status_code, form=shown, error=err.to_dict(),
                          errors=form_errors(err, page.lang))
    return page.redirect(f"/admin/triage?done=term_saved#term-{term_id}")


@router.post("/admin/triage/terms")
async def term_add(page: Write, request: Request) -> Response:
    """Add a term (curation.create_term, as POST /api/v1/triage/terms)."""
    form = await request.form()
    return await run_in_threadpool(_add_term_sync, page, form)


def _add_term_sync(page: Page, form: Any) -> Response:
    kinds = _kinds()
    shown = {k: str(form.get(k) or "") for k in ("id", "name_zh", "name_en", "synonyms")}
    shown.update({f"w_{k['code']}": str(form.get(f"w_{k['code']}") or "") for k in kinds})
    try:
        try:
            body = TermCreate.model_validate({"id": shown["id"].strip(), "name_zh": shown["name_zh"],
                                              "name_en": shown["name_en"], "synonyms": _synonyms(shown["synonyms"]),
                                              "weights": _weights(form, kinds)})
        except ValidationError as err:
            raise _invalid(err) from None
        with writing() as session:
            curation.create_term(session, body, _principal(page).actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _index(page, err.status_code, form=shown, error=err.to_dict(), errors=form_errors(err, page.lang))
    return page.redirect(f"/admin/triage?done=term_added#term-{body.id}")


@router.post("/admin/triage/red-flags/{flag_id}/enabled")
def flag_enabled(page: Write, flag_id: str, enabled: Annotated[str, Form(pattern="^[01]$")]) -> Response:
    """Turn a red flag on or off (curation.update_red_flag, as PUT /api/v1/triage/red-flags/{id})."""
    with writing() as session:
        curation.update_red_flag(session, flag_id, RedFlagUpdate(enabled=enabled == "1"), _principal(page).actor(),
                                 utc_now())
    return page.redirect("/admin/triage?done=" + ("flag_on" if enabled == "1" else "flag_off") + f"#flag-{flag_id}")


def _kind_page(page: Page, code: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        kind = curation.kind(session, code)
        departments = scheduling.departments(session)
        institutions = {d["institution_id"]: scheduling.catalogue_entry(session, "institution", d["institution_id"])
                        for d in departments}
    names = {i: page.tr(row["name_zh"], row["name_en"]) if row else i for i, row in institutions.items()}
    chosen = values.pop("chosen", None) or {d["id"] for d in kind["departments"]}
    return page.render("admin/triage/kind.html", status=status, kind=kind, departments=departments,
                       institution_names=names, chosen=chosen, back="/admin/triage",
                       error=values.pop("error", None), **values)


@router.get("/admin/triage/kinds/{code}")
def kind_edit(page: Write, code: str) -> Response:
    """The hospital departments a kind stands for, as ticks over every department."""
    return _kind_page(page, code)


@router.post("/admin/triage/kinds/{code}")
async def kind_save(page: Write, code: str, request: Request) -> Response:
    """Save the ticked departments (curation.set_kind_departments, as PUT …/kinds/{code}/departments)."""
    form = await request.form()
    chosen = [str(v) for v in form.getlist("department_id") if isinstance(v, str)]
    return await run_in_threadpool(_kind_save_sync, page, code, chosen)


def _kind_save_sync(page: Page, code: str, chosen: list[str]) -> Response:
    try:
        body = KindDepartments(department_ids=chosen)
        with writing() as session:
            curation.set_kind_departments(session, code, body, _principal(page).actor(), utc_now())
    except (AppError, ValidationError) as err:
        if isinstance(err, ValidationError):
            err = _invalid(err)
        if err.status_code not in FORM_ERRORS or err.code == "triage.kind_not_found":
            raise err from None
        return _kind_page(page, code, err.status_code, chosen=set(chosen), error=err.to_dict())
    return page.redirect(f"/admin/triage?done=kind_saved#kind-{code}")


@router.post("/admin/triage/kinds-match")
def kinds_match(page: Write) -> Response:
    """Map by name the departments no row covers yet (curation.match_by_name)."""
    with writing() as session:
        curation.match_by_name(session, _principal(page).actor(), utc_now())
    return page.redirect("/admin/triage?done=matched#kinds")
