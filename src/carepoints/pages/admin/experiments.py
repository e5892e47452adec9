"""The programme admin's A/B experiments (/admin/experiments): the list (experiments:read), a
form to create one with its ethics approval reference (伦理审批号) and its variants' overrides of
active rules as typed fields, never raw JSON (experiments:write), start and stop buttons (the
service's guarded moves: a second start of the same experiment, or one overriding a rule a
running experiment overrides, is re-rendered here with its 409), and the results: the
`experiment_results` view for a chosen outcome as the shared analytics table, with the outcome
per variant and age band and the difference's 95% confidence intervals as charts, the flags of
a variant that helps one age band and hurts another, and the Excel / CSV export."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from carepoints.analytics import dims, views
from carepoints.analytics.experiments import ALL, OUTCOME_NAMES
from carepoints.analytics.report import Report
from carepoints.experiments import service as experiments
from carepoints.experiments.schemas import OUTCOMES, ExperimentCreate
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.pages.admin.analytics import PALETTE, Asked, chart_options, run, table_of
from carepoints.pages.web import Page, form_errors, reading, staff_page, writing
from carepoints.rules import service as rules

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("experiments:read"))]
Write = Annotated[Page, Depends(staff_page("experiments:write"))]

FORM_ERRORS = (400, 404, 409, 422)  # shown on the page instead of an error page
VARIANTS = 3  # variant blocks on the form (the first is the control); blank ones are left out
OVERRIDES = 3  # override rows per variant
STATUS_NAMES: dict[str, tuple[str, str]] = {"draft": ("草稿", "Draft"), "running": ("进行中", "Running"),
                                            "stopped": ("已结束", "Stopped")}
EFFECT_NAMES: dict[str, tuple[str, str]] = {"better": ("更好", "Better"), "worse": ("更差", "Worse")}
DONE: dict[str, tuple[str, str]] = {
    "created": ("试验已创建(草稿),开始后对有科研同意的患者生效",
                "Experiment created as a draft: once started it applies to patients with research consent"),
    "exists": ("该编码的试验已存在,内容相同", "An experiment with this code and the same design already exists"),
    "started": ("试验已开始", "Experiment started"), "stopped": ("试验已结束", "Experiment stopped"),
}
# model-level refusals of ExperimentCreate (English, from pydantic) in both languages
MODEL_ERRORS: dict[str, str] = {
    "no variant overrides any rule": "至少一个组别须调整一条规则 / At least one variant must override a rule",
    "variant codes must be distinct": "组别编码不能重复 / Variant codes must be distinct",
    "a variant overrides each rule at most once": "同一组别中每条规则只能调整一次 / A variant overrides each rule once",
    "an override changes points, enabled or daily_points":
        "请为所选规则填写积分、每日上限或启用/停用 / Give the chosen rule points, a daily cap or on/off",
    "points must not be zero": "积分不能为 0(停用请选“停用”) / Points cannot be 0 (choose Off instead)",
    "a disabled rule has no points or cap to change":
        "停用的规则不能再改积分或上限 / A rule turned off has no points or cap",
}
FIELD_ERRORS: dict[str, str] = {
    "code": "编码须以小写字母开头,只含小写字母、数字和下划线 / A code starts with a-z and has only a-z, 0-9 and _",
    "weight": "权重为 1 到 10000 的整数 / A weight is a whole number from 1 to 10000",
    "points": "积分为非零整数 / Points are a whole number other than 0",
    "daily_points": "每日上限为正整数 / A daily cap is a whole number above 0",
    "zh": "请填写中文名称 / Enter the Chinese name", "en": "请填写英文名称 / Enter the English name",
    "ethics_ref": "伦理审批号最多100个字符 / An ethics reference has at most 100 characters",
}
CODE_FIELDS = {"experiments.ethics_ref_required": "ethics_ref", "experiments.code_taken": "code"}


def _words(page: Page, table: dict[str, tuple[str, str]], key: str) -> str:
    words = table.get(key)
    return page.tr(*words) if words else key


def _context(page: Page, **values: Any) -> dict[str, Any]:
    flash = DONE.get(page.request.query_params.get("done") or "")
    return {"status_label": lambda s: _words(page, STATUS_NAMES, s),
            "flash": page.tr(*flash) if flash else None, "message": page.tr(*flash) if flash else None,
            "kind": "ok", **values}


def _active_rules(page: Page) -> list[tuple[str, str]]:
    """(code, label) of the rules an override may change: the newest version's active rules."""
    with reading() as session:
        found = rules.programmes(session).latest.programme.rules
    return [(r.code, f"{page.tr(r.names.zh, r.names.en)} ({r.code}, "
             + (f"×{r.multiplier}" if r.multiplier else f"{r.points:+d}") + ")")
            for r in found if r.status == "active"]


# --- the list ----------------------------------------------------------------------------

@router.get("/admin/experiments")
def experiment_list(page: Read) -> Response:
    """Every experiment, newest first, with its status, variants and ethics reference."""
    with reading() as session:
        items = experiments.listing(session)
    return page.render("admin/experiments/index.html", **_context(page, items=items))


# --- create ------------------------------------------------------------------------------

def _blank_form() -> dict[str, str]:
    return {"v0_code": "control", "v0_weight": "1", "v1_code": "treatment", "v1_weight": "1", "v2_weight": "1"}


def _render_form(page: Page, status: int = 200, **values: Any) -> Response:
    values.setdefault("form", _blank_form())
    values.setdefault("errors", {})
    return page.render("admin/experiments/new.html", status=status, **_context(
        page, rules=_active_rules(page), variants=range(VARIANTS), overrides=range(OVERRIDES), **values))


@router.get("/admin/experiments/new")
def new_experiment(page: Write) -> Response:
    """The form: code, names, ethics approval reference, variants with weights and overrides."""
    return _render_form(page)


class _Form:
    """The form's fields and the map from the body's variant / override positions back to them."""

    def __init__(self, raw: dict[str, str]) -> None:
        self.raw = raw
        self.places: dict[tuple[int, int | None], str] = {}  # (variant, override) in the body → field prefix

    def _int(self, prefix: str, kind: str, errors: dict[str, str]) -> int | None:
        name = f"{prefix}_{kind}"
        value = self.raw.get(name, "").strip()
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            errors[name] = FIELD_ERRORS[kind]
            return None

    def body(self) -> dict[str, Any]:
        """The ExperimentCreate body; blank variants and override rows are left out. Numbers that
        are not numbers are 422 with the field named."""
        f, errors = self.raw, dict[str, str]()
        variants: list[dict[str, Any]] = []
        for i in range(VARIANTS):
            code = f.get(f"v{i}_code", "").strip()
            if not code:
                continue
            overrides: list[dict[str, Any]] = []
            for j in range(OVERRIDES):
                p = f"v{i}_o{j}"
                rule = f.get(f"{p}_rule", "").strip()
                if not rule:
                    continue
                o: dict[str, Any] = {"rule": rule}
                points, cap = self._int(p, "points", errors), self._int(p, "daily_points", errors)
                if points is not None:
                    o["points"] = points
                if cap is not None:
                    o["daily_points"] = cap
                if f.get(f"{p}_enabled") in ("true", "false"):
                    o["enabled"] = f[f"{p}_enabled"] == "true"
                self.places[(len(variants), len(overrides))] = p
                overrides.append(o)
            self.places[(len(variants), None)] = f"v{i}"
            weight = self._int(f"v{i}", "weight", errors)
            variants.append({"code": code, "weight": 1 if weight is None else weight, "overrides": overrides})
        if errors:
            raise ValidationFailedError(fields=[{"loc": [k], "msg": v} for k, v in errors.items()])
        return {"code": f.get("code", "").strip(), "ethics_ref": f.get("ethics_ref", "").strip() or None,
                "names": {"zh": f.get("name_zh", "").strip(), "en": f.get("name_en", "").strip()},
                "variants": variants}

    def refusal(self, err: ValidationError) -> ValidationFailedError:
        """Pydantic's errors as the form's fields (Chinese first); model-level ones under ``."""
        fields = []
        for e in err.errors():
            loc = [p for p in e["loc"] if p not in ("function-after",)]
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            name, last = "", str(loc[-1]) if loc else ""
            if loc[:1] == ["variants"] and len(loc) >= 2 and isinstance(loc[1], int):
                override = loc[3] if len(loc) >= 4 and loc[2] == "overrides" and isinstance(loc[3], int) else None
                prefix = self.places.get((loc[1], override), "")
                name = f"{prefix}_{last}" if prefix and last in FIELD_ERRORS else ""
            elif loc[:1] == ["names"]:
                name = f"name_{last}"
            elif last in ("code", "ethics_ref"):
                name = last
            text = FIELD_ERRORS.get(last) if name else None
            known = next((v for k, v in MODEL_ERRORS.items() if k in msg), None)
            fields.append({"loc": [name], "msg": text or known or f"填写有误 / {msg}"})
        return ValidationFailedError(fields=fields)


@router.post("/admin/experiments")
async def create_experiment(page: Write, request: Request) -> Response:
    """Create the draft (experiments.service.create); refusals re-render the form with its values."""
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    parsed = _Form(raw)
    try:
        try:
            body = ExperimentCreate.model_validate(parsed.body())
        except ValidationError as err:
            raise parsed.refusal(err) from None
        assert page.principal is not None  # noqa: S101
        with writing() as session:
            doc, created = experiments.create(session, body, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        errors = form_errors(err, page.lang)
        if err.code in CODE_FIELDS:
            errors[CODE_FIELDS[err.code]] = page.say(err.detail)
        general = errors.pop("", None)
        return _render_form(page, status=err.status_code, form=raw, errors=errors,
                            error={**err.to_dict(), "detail": general or err.detail})
    return page.redirect(f"/admin/experiments/{doc['id']}?done={'created' if created else 'exists'}")


# --- one experiment: start / stop and the results -----------------------------------------

def _results(page: Page, experiment_id: str, outcome: str) -> tuple[Report | None, Asked]:
    a = Asked(params={"experiment_id": experiment_id, "outcome": outcome})
    try:
        v = views.get("experiment_results")
    except AppError:
        return None, a
    return run(page, v, a, utc_now())[1], a


def _result_charts(page: Page, report: Report) -> list[dict[str, Any]]:
    """The outcome per variant and age band (bars) and each variant's difference from the control
    with its 95% CI (a box from the CI's low to high around the difference), both in %."""
    rows = report.rows
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    bands = list(dict.fromkeys(r["age_band"] for r in rows))
    if not rows:
        return []

    def band_label(b: str) -> str:
        return page.tr("全部", "All") if b == ALL else page.tr(*dims.band_names(b))

    def pct(v: Any) -> float | None:
        return None if v is None else round(float(v) * 100, 2)

    cell = {(r["variant"], r["age_band"]): r for r in rows}
    common = {"animation": False, "color": PALETTE, "aria": {"enabled": True}, "tooltip": {"trigger": "axis"},
              "legend": {"top": 26, "left": 0, "textStyle": {"color": "#111827"}},
              "grid": {"left": 8, "right": 16, "top": 64, "bottom": 8, "containLabel": True},
              "xAxis": {"type": "category", "data": [band_label(b) for b in bands],
                        "axisLabel": {"color": "#374151", "hideOverlap": True}},
              "yAxis": {"type": "value", "name": "%", "axisLabel": {"color": "#374151"}}}
    title = page.tr(report.title_zh, report.title_en)
    bars = {**common, "title": {"text": title, "left": 0, "textStyle": {"fontSize": 15, "color": "#111827"}},
            "series": [{"type": "bar", "name": v, "data": [pct((cell.get((v, b)) or {}).get("value")) for b in bands]}
                       for v in variants]}
    out = [{"title": title, "type": "bar", "option": json.dumps(bars, ensure_ascii=False)}]
    treated = variants[1:]
    if treated:
        ci_title = page.tr("与对照组的差值及95%置信区间", "Difference from the control with its 95% CI")
        series: list[dict[str, Any]] = []
        for v in treated:
            boxes, points = [], []
            for b in bands:
                r = cell.get((v, b)) or {}
                lo, d, hi = pct(r.get("ci_low")), pct(r.get("diff")), pct(r.get("ci_high"))
                boxes.append([lo, lo, d, hi, hi] if lo is not None and hi is not None and d is not None else "-")
                points.append(d)
            series += [{"type": "boxplot", "name": f"{v} 95% CI", "data": boxes},
                       {"type": "scatter", "name": f"{v} {page.tr('差值', 'difference')}", "data": points,
                        "symbolSize": 10}]
        ci = {**common, "title": {"text": ci_title, "left": 0, "textStyle": {"fontSize": 15, "color": "#111827"}},
              "tooltip": {"trigger": "item"}, "series": series}
        out.append({"title": ci_title, "type": "ci", "option": json.dumps(ci, ensure_ascii=False)})
    return out


def _flag(page: Page, found: dict[str, Any]) -> dict[str, str]:
    """A variant with opposite effects in two age bands, in words."""
    sep = "、" if page.lang == "zh" else ", "
    helps, hurts = (sep.join(page.tr(*dims.band_names(b)) for b in found[k]) for k in ("helps", "hurts"))
    return {"variant": found["variant"],
            "text": page.tr(f"组别 {found['variant']} 在不同年龄段效果相反:有利于 {helps},不利于 {hurts}",
                            f"Variant {found['variant']} has opposite effects by age: helps {helps}, hurts {hurts}")}


def _detail(page: Page, experiment_id: str, status: int = 200, **values: Any) -> Response:
    outcome = page.request.query_params.get("outcome") or "participation"
    with reading() as session:
        doc = experiments.get(session, experiment_id)
    report, a = _results(page, doc["id"], outcome) if doc["started_at"] else (None, Asked())
    table = charts = flags = None
    if report is not None:
        table = table_of(page, report)
        for row in table["rows"]:  # the effect column in words
            for c in row["cells"]:
                if c["key"] == "effect" and c["raw"]:
                    c["text"] = _words(page, EFFECT_NAMES, c["raw"])
                if c["key"] == "age_band" and c["raw"]:
                    c["text"] = page.tr("全部", "All") if c["raw"] == ALL else page.tr(*dims.band_names(c["raw"]))
        charts = [*chart_options(page, report), *_result_charts(page, report)]
        flags = [_flag(page, f) for f in report.extra.get("flags") or []]
    return page.render("admin/experiments/detail.html", status=status, **_context(
        page, e=doc, report=report, table=table, charts=charts, flags=flags, outcome=outcome,
        outcomes=[(o, page.tr(*OUTCOME_NAMES[o])) for o in OUTCOMES],
        export=a.query_string(), **values))


@router.get("/admin/experiments/{experiment_id}")
def experiment_detail(page: Read, experiment_id: str) -> Response:
    """The experiment, its start / stop button and, once started, its results for an outcome."""
    return _detail(page, experiment_id)


def _move(page: Page, experiment_id: str, verb: str) -> Response:
    assert page.principal is not None  # noqa: S101
    move = experiments.start if verb == "start" else experiments.stop
    try:
        with writing() as session:
            move(session, experiment_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.status_code == 404:
            raise
        return _detail(page, experiment_id, status=err.status_code, error=err.to_dict())
    return page.redirect(f"/admin/experiments/{experiment_id}?done={'started' if verb == 'start' else 'stopped'}")


@router.post("/admin/experiments/{experiment_id}/start")
def start_experiment(page: Write, experiment_id: str) -> Response:
    """draft → running (409 re-rendered here when it is not a draft or overlaps a running one)."""
    return _move(page, experiment_id, "start")


@router.post("/admin/experiments/{experiment_id}/stop")
def stop_experiment(page: Write, experiment_id: str) -> Response:
    """running → stopped (409 re-rendered here when it is not running)."""
    return _move(page, experiment_id, "stop")
