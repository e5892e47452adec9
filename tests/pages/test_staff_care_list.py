"""The nurses' care list (/staff/care-list) over real HTTP (SQLite and PostgreSQL): the open care
alerts newest first with masked names linking to the record, codes in words, the filters (kind,
status, age band), the pages (cursor), bad parameters as error pages, and who may open it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from carepoints.audit.service import Actor
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind, AlertResolution
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.analytics_world import born
from tests.pages.helpers import PageClient, staff_client


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:800]


def alerts(html: str) -> list[str]:
    return re.findall(r'<tr data-alert="([0-9a-f-]{36})"', html)


def _world() -> dict[str, str]:
    """Old (70-79) has an inactivity flag (an hour ago) and a resolved abnormal reading; young
    (30-39) a critical abnormal reading (now)."""
    now = utc_now()
    old = enrol(now - timedelta(days=60), name="王老伯", birth_date=born(75), phone="13922220001")
    young = enrol(now - timedelta(days=60), name="李青", birth_date=born(35), phone="13922220002")
    with write_tx() as s:
        inactive = care.raise_alert(s, patient_id=old, kind=AlertKind.inactivity, source_ref=f"inactive:{old}",
                                    now=now - timedelta(hours=1))
        urgent = care.raise_alert(s, patient_id=young, kind=AlertKind.abnormal_reading, source_ref=f"r:{young}",
                                  now=now, severity="critical")
        done = care.raise_alert(s, patient_id=old, kind=AlertKind.abnormal_reading, source_ref=f"r:{old}",
                                now=now - timedelta(hours=2))
    assert inactive
    assert urgent
    assert done
    with write_tx() as s:
        care.resolve(s, done, AlertResolution.contacted, Actor("staff", "nurse-0", "nurse"), now)
    return {"old": old, "young": young, "inactive": inactive, "urgent": urgent, "done": done}


def test_the_care_list_filters_and_pages(db: Db) -> None:
    w = _world()
    nurse, _ = staff_client("nurse")
    r = nurse.get("/staff/care-list")
    assert r.status_code == 200, r.text[:800]
    assert alerts(r.text) == [w["urgent"], w["inactive"]]  # open ones, newest first
    assert 'data-total="2"' in r.text
    assert f'<a href="/staff/patients/{w["old"]}">王**</a>' in r.text  # masked, to the record
    assert "王老伯" not in r.text
    assert "李青" not in r.text
    assert "长期未活动" in r.text
    assert "紧急" in r.text
    assert "70-79岁" in r.text
    assert 'href="/staff/care-list"' in nurse.get("/staff").text  # the nav entry 关怀名单
    assert alerts(nurse.get("/staff/care-list?kind=inactivity").text) == [w["inactive"]]
    assert alerts(nurse.get("/staff/care-list?status=resolved").text) == [w["done"]]
    assert alerts(nurse.get("/staff/care-list?age_band=30-39").text) == [w["urgent"]]
    first = nurse.get("/staff/care-list?limit=1")
    assert alerts(first.text) == [w["urgent"]]
    more = re.search(r'<a class="cp-btn cp-secondary" href="([^"]+)" data-next>', first.text)
    assert more, first.text[-1500:]
    second = nurse.get(more.group(1).replace("&amp;", "&"))
    assert alerts(second.text) == [w["inactive"]]
    assert "data-next" not in second.text
    english = nurse.get("/staff/care-list?lang=en")
    assert "Inactive" in english.text
    assert "Care list" in english.text


def test_bad_parameters_and_who_may_open_it(db: Db) -> None:
    _world()
    nurse, _ = staff_client("nurse")
    refused(nurse.get("/staff/care-list?kind=bogus"), 422, "analytics.bad_parameter")
    refused(nurse.get("/staff/care-list?limit=0"), 422, "analytics.bad_parameter")
    refused(nurse.get("/staff/care-list?cursor=not-an-id"), 422, "analytics.bad_parameter")
    refused(nurse.get("/staff/care-list?age_band=bogus"), 422, "analytics.bad_filter")
    clinician, _ = staff_client("clinician")
    assert len(alerts(clinician.get("/staff/care-list").text)) == 2
    for role in ("frontdesk", "moderator", "auditor"):
        other, _ = staff_client(role)
        refused(other.get("/staff/care-list"), 403, "auth.forbidden")
    r = PageClient(nurse.app).get("/staff/care-list", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/login?next=")
