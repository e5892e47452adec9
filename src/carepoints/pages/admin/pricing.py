"""The price catalogue for the programme admin (/admin/pricing, pricing:write): an institution's
items and packages as stored (inactive ones too), its 乙 self-pay share, and the import of a CSV or
Excel file in two steps — upload → a preview of what would be created, updated and deactivated
with every row error (`pricing.service.stage_upload`, the API's dry run; a clean file is kept for a
day) → confirm, which imports exactly the previewed bytes (`import_staged`: all or nothing, once)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.patient.costs import Selection
from carepoints.pages.web import Page, form_errors, invalid, reading, staff_page, writing
from carepoints.services.pricing import parsing, service
from carepoints.services.pricing.schemas import CATEGORY_NAMES, CLASS_NAMES, SettingsUpdate

router = APIRouter(include_in_schema=False)

Admin = Annotated[Page, Depends(staff_page("pricing:write"))]
BASE = "/admin/pricing"
PER_PAGE = 50
FORM_ERRORS = (400, 403, 404, 413, 422)
DONE: dict[str, tuple[str, str]] = {
    "imported": ("导入完成", "Imported"),
    "unchanged": ("文件与现有目录相同,没有变化", "The file matches the catalogue: nothing changed"),
    "settings": ("乙类自付比例已保存", "The Class B self-pay share is saved"),
}
FIELD_NAMES = {"row": ("行", "Row"), "column": ("列", "Column"), "code": ("编码", "Code")}


def _percent(bp: int) -> str:
    return f"{Decimal(bp) / 100:f}".rstrip("0").rstrip(".") if bp % 100 else str(bp // 100)


def _institutions(page: Page) -> list[dict[str, Any]]:
    with reading() as session:
        found = service.institutions(session, with_items=False)
    return [{**h, "shown": page.tr(h["name_zh"], h["name_en"])} for h in found]


def _index(page: Page, request: Request, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    hospitals = _institutions(page)
    sel = Selection.of(request)
    wanted = str(values.pop("institution_id", "") or sel.institution_id)
    inst = wanted if any(h["id"] == wanted for h in hospitals) else (hospitals[0]["id"] if hospitals else "")
    inactive = request.query_params.get("inactive") == "1"
    ctx: dict[str, Any] = {"hospitals": hospitals, "institution_id": inst, "sel": sel, "inactive": inactive,
                           "categories": [(k, page.tr(*v)) for k, v in CATEGORY_NAMES.items()],
                           "category_names": {k: page.tr(*v) for k, v in CATEGORY_NAMES.items()},
                           "class_names": {k: page.tr(*v) for k, v in CLASS_NAMES.items()}, "percent": _percent,
                           "max_mb": parsing.MAX_BYTES // (1024 * 1024), "errors": {}, "error": None}
    done = DONE.get(request.query_params.get("done") or "")
    if done:
        ctx.update(flash=page.tr(*done), message=page.tr(*done), kind="ok")
    if inst:
        with reading() as session:
            found = service.items(session, inst, now, q=sel.q or None, category=sel.category or None,
                                  include_inactive=inactive, limit=PER_PAGE, offset=sel.offset)
            ctx.update(items=found["items"], total=found["total"], settings=service.settings_doc(session, inst),
                       packages=service.packages(session, inst, now, include_inactive=True)["items"])
        extra = {"inactive": "1"} if inactive else {}

        def href(offset: int) -> str:
            query = Selection(inst, q=sel.q, category=sel.category, offset=offset).query()
            return f"{BASE}?{query}" + "".join(f"&{k}={v}" for k, v in extra.items())

        ctx.update(next_href=href(found["next_offset"]) if found["next_offset"] else None,
                   prev_href=href(max(sel.offset - PER_PAGE, 0)) if sel.offset else None)
    ctx.update(values)
    return page.render("admin/pricing/index.html", status=status, **ctx)


@router.get("/admin/pricing")
def catalogue(page: Admin, request: Request) -> Response:
    """The catalogue of one institution (search, category, inactive ones), its packages, the 乙
    share and the import form."""
    return _index(page, request)


@router.post("/admin/pricing/preview")
def preview(page: Admin, request: Request, institution_id: Annotated[str, Form(max_length=36)] = "",
            file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Upload a catalogue file: what importing it would change, with every row error; a file
    without errors can then be confirmed."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        if file is None or not file.filename:
            raise invalid("file", "请选择CSV或Excel文件 / Choose a CSV or Excel file")
        content = service.read_limited(file.file, request.headers.get("content-length", ""))
        with writing() as session:
            upload_id, report = service.stage_upload(session, institution_id, content, page.principal.actor(),
                                                     utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _index(page, request, err.status_code, institution_id=institution_id, error=err.to_dict(),
                      errors=form_errors(err, page.lang))
    hospital = next((h["shown"] for h in _institutions(page) if h["id"] == institution_id), institution_id)
    return page.render("admin/pricing/preview.html", report=report, upload_id=upload_id, hospital=hospital,
                       filename=file.filename[:100], institution_id=institution_id,
                       category_names={k: page.tr(*v) for k, v in CATEGORY_NAMES.items()},
                       class_names={k: page.tr(*v) for k, v in CLASS_NAMES.items()}, field_names={
                           "price": page.tr("单价", "Price"), "name_zh": page.tr("名称", "Name"),
                           "active": page.tr("启用", "Active"), "insurance_class": page.tr("医保类别", "Class"),
                           "self_pay_bp": page.tr("自付比例(基点)", "Self-pay (bp)"),
                           "equivalent_group": page.tr("同类组", "Group"), "items": page.tr("项目", "Items")})


@router.post("/admin/pricing/import")
def confirm(page: Admin, request: Request, upload_id: Annotated[str, Form(max_length=36)] = "") -> Response:
    """Import the previewed file for real (all or nothing); back to the catalogue with the result."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        with writing() as session:
            report = service.import_staged(session, upload_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _index(page, request, err.status_code, error=err.to_dict())
    done = "imported" if report["applied"] else "unchanged"
    return page.redirect(f"{BASE}?{Selection(report['institution_id']).query()}&done={done}")


@router.post("/admin/pricing/settings")
def save_settings(page: Admin, request: Request, institution_id: Annotated[str, Form(max_length=36)] = "",
                  class_b_percent: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Set the institution's 乙 self-pay share (a percentage, up to two decimals)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        if not institution_id:
            raise invalid("institution_id", "请选择医院 / Choose a hospital")
        try:
            bp = Decimal(class_b_percent.strip().removesuffix("%")) * 100
        except InvalidOperation:
            bp = Decimal(-1)
        if not bp.is_finite() or bp != bp.to_integral_value() or not 0 <= bp <= 10_000:
            raise invalid("class_b_percent", "请填写 0 到 100 的百分数,最多两位小数 / Enter a percentage from 0 to 100")
        with writing() as session:
            service.set_settings(session, SettingsUpdate(institution_id=institution_id, class_b_self_pay_bp=int(bp)),
                                 page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _index(page, request, err.status_code, institution_id=institution_id, error=err.to_dict(),
                      errors=form_errors(err, page.lang))
    return page.redirect(f"{BASE}?{Selection(institution_id).query()}&done=settings")
