"""The programme admin's experiments pages over real HTTP (SQLite and PostgreSQL): the create form
(ethics reference required, typed variant and override fields, refusals re-rendered in place
with the values kept), start and stop through the guarded moves (a repeated or overlapping move
is a 409 on the page), and the results of a hand-computed experiment as the shared table with
its charts and export; who may read and who may change."""

from __future__ import annotations

import html
import io
import json
import math
import re
import uuid
from typing import Any

from openpyxl import load_workbook

from carepoints.audit.service import Actor
from carepoints.enrolment import privacy
from carepoints.experiments import service
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from tests.conftest import Db
from tests.experiments.support import variant_of
from tests.helpers import enrol, event, ingest_one
from tests.pages.analytics_world import born, report_table
from tests.pages.helpers import PageClient, staff_client

Z = 1.959963984540054
FORM = {"code": "lecture_points", "name_zh": "讲座积分翻倍", "name_en": "Double lecture points",
        "ethics_ref": "2026-伦审-017", "v0_code": "control", "v0_weight": "1", "v1_code": "double",
        "v1_weight": "1", "v1_o0_rule": "lecture", "v1_o0_points": "60"}


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:800]


def field_error(r: Any, name: str) -> str:
    m = re.search(rf'id="e-{name}">([^<]*)<', r.text)
    assert m, f"no error next to {name}: {r.text[:1500]}"
    return m.group(1)


def create(client: PageClient, **changes: str) -> str:
    r = client.submit("/admin/experiments", {**FORM, **changes})
    assert r.status_code == 303, r.text[:1500]
    m = re.match(r"/admin/experiments/([0-9a-f-]{36})\?done=created$", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def test_the_form_refuses_in_place_and_keeps_the_values(db: Db) -> None:
    client, _ = staff_client("admin")
    form = client.get("/admin/experiments/new")
    assert form.status_code == 200
    assert re.search(r'<option value="lecture" *>', form.text)  # the active rules to override
    r = client.submit("/admin/experiments", {**FORM, "ethics_ref": "  "})
    refused(r, 422, "experiments.ethics_ref_required")
    assert "伦理审批号" in field_error(r, "ethics_ref")
    assert 'value="讲座积分翻倍"' in r.text
    assert 'value="60"' in r.text
    r = client.submit("/admin/experiments", {**FORM, "code": "Bad Code"})
    refused(r, 422, "request.invalid")
    assert "小写字母" in field_error(r, "code")
    r = client.submit("/admin/experiments", {**FORM, "v1_o0_points": "abc"})
    refused(r, 422, "request.invalid")
    assert "整数" in field_error(r, "v1_o0_points")
    r = client.submit("/admin/experiments", {**FORM, "v1_o0_rule": ""})  # nothing overridden
    refused(r, 422, "request.invalid")
    assert "至少一个组别须调整一条规则" in r.text
    r = client.submit("/admin/experiments", {**FORM, "v1_o0_rule": "no_such_rule"})
    refused(r, 422, "experiments.unknown_rule")
    r = client.submit("/admin/experiments", {**FORM, "v1_o0_points": "-5"})  # a reward cannot become a penalty
    refused(r, 422, "experiments.bad_override")
    r = client.submit("/admin/experiments", {**FORM, "v1_code": "control"})
    assert "组别编码不能重复" in r.text
    with read_tx() as session:
        assert service.listing(session) == []  # no refusal stored anything


def test_create_start_and_stop(db: Db) -> None:
    client, user = staff_client("admin")
    eid = create(client)
    page = client.get(f"/admin/experiments/{eid}?done=created")
    assert 'data-status="draft"' in page.text
    assert "试验已创建" in page.text
    assert 'data-ethics-ref>2026-伦审-017<' in page.text
    assert "data-no-results" in page.text  # no results before the start
    with read_tx() as session:
        doc = service.get(session, eid)
    assert [v["code"] for v in doc["variants"]] == ["control", "double"]
    assert doc["variants"][1]["overrides"] == [{"rule": "lecture", "points": 60}]
    again = client.submit("/admin/experiments", FORM)  # the same design again: the stored one
    assert again.headers["location"] == f"/admin/experiments/{eid}?done=exists"
    refused(client.submit("/admin/experiments", {**FORM, "v1_o0_points": "90"}), 409, "experiments.code_taken")
    listing = client.get("/admin/experiments")
    assert 'data-experiment="lecture_points"' in listing.text

    r = client.submit(f"/admin/experiments/{eid}/start", {})
    assert r.headers["location"] == f"/admin/experiments/{eid}?done=started"
    refused(client.submit(f"/admin/experiments/{eid}/start", {}), 409, "experiments.not_draft")
    other = create(client, code="lecture_again")  # overrides the same rule
    r = client.submit(f"/admin/experiments/{other}/start", {})
    refused(r, 409, "experiments.overlap")
    assert 'data-status="draft"' in r.text  # the page re-rendered with the refusal
    r = client.submit(f"/admin/experiments/{eid}/stop", {})
    assert r.headers["location"] == f"/admin/experiments/{eid}?done=stopped"
    refused(client.submit(f"/admin/experiments/{eid}/stop", {}), 409, "experiments.not_running")
    with read_tx() as session:
        assert service.get(session, eid)["status"] == "stopped"
        assert service.get(session, other)["status"] == "draft"
    refused(client.get(f"/admin/experiments/{uuid.uuid4()}"), 404, "experiments.not_found")
    refused(client.submit(f"/admin/experiments/{uuid.uuid4()}/start", {}), 404, "experiments.not_found")
    assert user["id"]


def _in(doc: dict[str, Any], variant: str, **extra: Any) -> str:
    """A patient in `variant` with a research consent (enrolled without one until the hash fits)."""
    for _ in range(64):
        pid = enrol(utc_now(), consent={"version": "1.0", "accepted_at": utc_now().isoformat(),
                                        "purposes": ["points_programme", "health_data"]}, **extra)
        if variant_of(doc, pid) == variant:
            with write_tx() as session:
                privacy.grant(session, pid, "research", "1.0", Actor("patient", pid), utc_now())
            return pid
    raise AssertionError(variant)


def test_results_table_charts_and_export(db: Db) -> None:
    client, _ = staff_client("admin")
    eid = create(client)
    client.submit(f"/admin/experiments/{eid}/start", {})
    with read_tx() as session:
        doc = service.get(session, eid)
    # control: c1 attends a lecture, c2 does not → 1/2; double: d1, d2 both attend → 2/2
    c1, _c2 = _in(doc, "control"), _in(doc, "control")
    d1, d2 = _in(doc, "double"), _in(doc, "double")
    for pid in (c1, d1, d2):
        ingest_one(utc_now(), event(pid, "lecture.attended", utc_now(), {"lecture_id": uuid.uuid4().hex}))
    r = client.get(f"/admin/experiments/{eid}")
    assert r.status_code == 200, r.text[:800]
    rows = {(row["variant"][0], row["age_band"][0]): row for row in report_table(r.text)}
    control, double = rows[("control", "全部")], rows[("double", "全部")]
    assert control["value"] == ("50.0%", "0.5")
    assert control["n"][0] == "2"
    assert double["value"] == ("100.0%", "1.0")
    assert double["diff"] == ("50.0%", "0.5")
    se = math.sqrt(0.5 * 0.5 / 2)  # the treated variance 1·0 = 0
    assert float(double["ci_low"][1]) == round(0.5 - Z * se, 6)
    assert float(double["ci_high"][1]) == round(0.5 + Z * se, 6)
    assert double["effect"] == ("—", "")  # the CI holds 0: no effect
    options = [json.loads(html.unescape(o)) for o in re.findall(r"data-chart='([^']*)'", r.text)]
    bars = next(o for o in options if o["series"][0]["type"] == "bar")
    assert [s["name"] for s in bars["series"]] == ["control", "double"]
    assert bars["series"][1]["data"][bars["xAxis"]["data"].index("全部")] == 100.0
    ci = next(o for o in options if any(s["type"] == "boxplot" for s in o["series"]))
    box = ci["series"][0]["data"][0]
    assert box[2] == 50.0
    assert box[0] == round((0.5 - Z * se) * 100, 2)
    other = client.get(f"/admin/experiments/{eid}?outcome=no_show_rate")
    assert other.status_code == 200
    assert "爽约率" in other.text
    refused(client.get(f"/admin/experiments/{eid}?outcome=bogus"), 422, "experiments.unknown_outcome")
    export = re.search(r'href="(/admin/analytics/experiment_results/export\.xlsx\?[^"]+)"', r.text)
    assert export
    x = client.get(html.unescape(export.group(1)))
    assert x.status_code == 200, x.text[:500]
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None
    body = list(sheet.iter_rows(min_row=3, values_only=True))
    assert ("double", "all", 2, 2, 1.0, 0.5) in [tuple(row[:6]) for row in body]


def test_a_variant_helping_the_young_and_hurting_the_old_is_flagged(db: Db) -> None:
    """Participation, young (18-29): control 0/2, double 2/3 → +0.667, CI ±1.96·√(.667·.333/3) =
    [+0.13, +1.2]: better. Old (60-69): control 2/3, double 0/2 → −0.667, CI [−1.2, −0.13]: worse."""
    client, _ = staff_client("admin")
    eid = create(client)
    client.submit(f"/admin/experiments/{eid}/start", {})
    with read_tx() as session:
        doc = service.get(session, eid)
    young, old = born(25), born(65)
    attend = [_in(doc, "double", birth_date=young) for _ in range(2)] + [_in(doc, "control", birth_date=old)
                                                                        for _ in range(2)]
    for variant, birth in (("control", young), ("control", young), ("double", young), ("control", old),
                           ("double", old), ("double", old)):
        _in(doc, variant, birth_date=birth)
    for pid in attend:
        ingest_one(utc_now(), event(pid, "lecture.attended", utc_now(), {"lecture_id": uuid.uuid4().hex}))
    r = client.get(f"/admin/experiments/{eid}")
    rows = {(row["variant"][0], row["age_band"][0]): row for row in report_table(r.text)}
    assert rows[("double", "18-29岁")]["effect"] == ("更好", "better")
    assert rows[("double", "60-69岁")]["effect"] == ("更差", "worse")
    assert 'data-flag="double"' in r.text
    assert "有利于 18-29岁,不利于 60-69岁" in r.text


def test_readers_and_writers(db: Db) -> None:
    admin, _ = staff_client("admin")
    eid = create(admin)
    auditor, _ = staff_client("auditor")
    assert auditor.get("/admin/experiments").status_code == 200
    page = auditor.get(f"/admin/experiments/{eid}")
    assert page.status_code == 200
    assert "data-start" not in page.text
    assert "data-new-experiment" not in auditor.get("/admin/experiments").text
    refused(auditor.get("/admin/experiments/new"), 403, "auth.forbidden")
    refused(auditor.submit("/admin/experiments", FORM), 403, "auth.forbidden")
    refused(auditor.submit(f"/admin/experiments/{eid}/start", {}), 403, "auth.forbidden")
    nurse, _ = staff_client("nurse")
    refused(nurse.get("/admin/experiments"), 403, "auth.forbidden")
    refused(admin.submit(f"/admin/experiments/{eid}/start", {}, csrf=False), 403, "pages.csrf_failed")
    with read_tx() as session:
        assert service.get(session, eid)["status"] == "draft"
