"""The patient's triage guidance page (智能导诊, /me/triage): describe the symptoms in one's own
words (or tap an example), with the age, sex and pregnancy the profile fills in, and get the
answer on the same page — a red flag first as a full-width red panel with a 120 call link and
nothing else; otherwise the suggested departments with the words that led there, a "去挂号"
link into the booking pages for each of the hospital's departments, and clinicians with open
sessions. Always the disclaimer: it is guidance for choosing a department, never a diagnosis.

Signed in only (the patient pages have no anonymous content pages). The same service and
permission as POST /api/v1/triage (triage:ask), the same per-caller rate limit; the text is
posted, never put in a URL, and nothing of it is stored or logged. A patient acting for a
family member (代办) asks as themself: the form then starts empty instead of from a profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from pydantic import ValidationError

from carepoints.config import get_settings
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.ratelimit import limiter
from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, Page, PageRule, form_errors, reading, writing
from carepoints.services.triage import service as triage
from carepoints.services.triage.schemas import MAX_TEXT, TriageAsk

router = APIRouter(include_in_schema=False)

# about the signed-in patient themself, even while acting for someone (PageRule itself=True)
Ask = Annotated[Page, Depends(PageRule(PATIENT, ("triage:ask",), itself=True))]

EXAMPLES = (("头痛", "Headache"), ("咳嗽发热", "Cough and fever"), ("肚子疼", "Stomach ache"))
SEXES = (("", "不填", "Not given"), ("female", "女", "Female"), ("male", "男", "Male"))
FORM_ERRORS = (404, 422, 429)
FIELD_WORDS = {
    "text": f"请用1到{MAX_TEXT}个字描述您的症状 / Describe your symptoms in 1 to {MAX_TEXT} characters",
    "age": "年龄请填0到130之间的整数 / Age is a whole number from 0 to 130",
    "sex": "请选择性别 / Choose a sex",
    "pregnant": "男性不能选择怀孕 / A man cannot be pregnant",
}


def _defaults(page: Page) -> dict[str, Any]:
    """The form's start: the patient's own age and sex (none while acting for someone else)."""
    if page.acting:
        return {"text": "", "age": "", "sex": "", "pregnant": False}
    assert page.principal is not None  # noqa: S101 - signed in (PageRule)
    with reading() as session:
        found = triage.profile_defaults(session, page.principal.id, utc_now())
    return {"text": "", "age": "" if found["age"] is None else str(found["age"]), "sex": found["sex"] or "",
            "pregnant": False}


def _render(page: Page, form: dict[str, Any], status: int = 200, **values: Any) -> Response:
    return page.render("patient/triage/index.html", status=status, tab="home", back="/", form=form,
                       examples=[(zh, page.tr(zh, en)) for zh, en in EXAMPLES],
                       sexes=[(v, page.tr(zh, en)) for v, zh, en in SEXES], max_text=MAX_TEXT, **values)


@router.get("/me/triage")
def triage_page(page: Ask) -> Response:
    """The symptom form with its examples, prefilled from the profile."""
    return _render(page, _defaults(page), result=None, errors={}, error=None)


def _invalid(err: ValidationError) -> ValidationFailedError:
    fields = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ())]
        name = loc[-1] if loc else "pregnant"  # a model-level refusal: pregnant with sex male
        fields.append({"loc": [name], "msg": FIELD_WORDS.get(name, FIELD_WORDS["text"])})
    return ValidationFailedError(fields=fields)


def _age(raw: str) -> int | str | None:
    value = raw.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value  # a non-number is refused by the schema


@router.post("/me/triage")
def triage_ask(page: Ask, text: Annotated[str, Form(max_length=2000)] = "",
               example: Annotated[str, Form(max_length=20)] = "", age: Annotated[str, Form(max_length=8)] = "",
               sex: Annotated[str, Form(max_length=8)] = "", pregnant: Annotated[str, Form(max_length=4)] = ""
               ) -> Response:
    """Answer the description (services.triage.ask, as POST /api/v1/triage); an example button
    asks with its words. Refusals re-render the form with the reason beside the field."""
    assert page.principal is not None  # noqa: S101 - signed in (PageRule)
    if example in {zh for zh, _ in EXAMPLES}:
        text = example
    form = {"text": text, "age": age, "sex": sex, "pregnant": pregnant == "1"}
    try:
        try:
            body = TriageAsk.model_validate({
                "text": text, "age": _age(age), "sex": sex or None, "pregnant": pregnant == "1" or None,
                "patient_id": None if page.acting else page.principal.id})
        except ValidationError as err:
            raise _invalid(err) from None
        limiter.check("triage:" + page.principal.id, get_settings().rate_limit_triage_per_minute)
        with writing() as session:
            result = triage.ask(session, body, utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _render(page, form, err.status_code, result=None, error=err.to_dict(),
                       errors=form_errors(err, page.lang))
    return _render(page, form, result=result, errors={}, error=None)
