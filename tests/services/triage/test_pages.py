"""The triage pages over real HTTP (SQLite and PostgreSQL): the patient's /me/triage (the form
prefilled from the profile, the urgent panel first and alone, department cards with their
reason and a booking link, the example buttons, refusals beside the field, the rate limit)
and the admin's /admin/triage (counts, red flags on / off, the department mapping, term edits
used by the next triage; auditors read only)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import proxies
from carepoints.services.triage import service
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.helpers import patient_client, staff_client
from tests.services.triage.world import TriageHospital

_CHILD_CONSENT = {"version": "1.0", "source": "guardian", "guardian": {"relation": "parent", "name": "王妈妈"}}


def main_of(html: str) -> str:
    m = re.search(r'<main id="main"[^>]*>(.*)</main>', html, re.S)
    assert m, html[:500]
    return m.group(1)


def answer(client: Any, text: str = "", status: int = 200, **form: str) -> str:
    r = client.submit("/me/triage", {"text": text, **form})
    assert r.status_code == status, r.text[:1500]
    return str(r.text)


def test_the_form_starts_from_the_profile(db: Db) -> None:
    born = (utc_now() - timedelta(days=365 * 70 + 40)).date().isoformat()
    client = patient_client(enrol(utc_now(), birth_date=born, sex="male"))
    r = client.get("/me/triage")
    assert r.status_code == 200, r.text[:800]
    assert 'name="age" type="text" value="70"' in r.text
    assert '<option value="male" selected>' in r.text
    for example in ("头痛", "咳嗽发热", "肚子疼"):
        assert f'data-example="{example}"' in r.text
    assert "本建议仅供挂号参考,不能代替医生诊断" in r.text
    assert "data-urgent" not in r.text
    assert "data-result" not in r.text


def test_a_red_flag_shows_the_urgent_panel_first_and_nothing_else(db: Db) -> None:
    TriageHospital(("神经内科", "Neurology"))
    client = patient_client(enrol(utc_now()), elderly=True)
    html = answer(client, "我妈刚才突然嘴歪了，说话也不清楚")
    main = main_of(html)
    assert 'class="elderly"' in html
    assert main.index("data-urgent") < main.index("data-triage-form")
    assert re.match(r'\s*<div id="flash"[^>]*>\s*</div>\s*<section class="cp-tr-urgent"', main), main[:300]
    assert 'href="tel:120"' in main
    assert 'data-red-flag="stroke_signs"' in main
    assert "data-kind=" not in main
    assert "/me/book/departments/" not in main
    assert "不能代替医生诊断" in main


def test_departments_with_the_reason_and_a_link_into_booking(db: Db) -> None:
    h = TriageHospital(("呼吸内科", "Respiratory medicine"))
    h.open_session("呼吸内科")
    client = patient_client(enrol(utc_now(), birth_date="1980-02-02"))
    main = main_of(answer(client, "咳嗽发热三天了"))
    assert 'data-kind="respiratory"' in main
    assert "因为您提到“咳嗽”“发热”" in main
    dept = h.departments["呼吸内科"]
    assert f'href="/me/book/departments/{dept}" data-book-department="{dept}"' in main
    assert f'href="/me/book/clinicians/{h.clinicians[h.doctors["呼吸内科"]]}"' in main
    assert "data-safety" in main
    booking = client.get(f"/me/book/departments/{dept}")
    assert booking.status_code == 200
    assert "呼吸" in booking.text


def test_an_example_button_asks_with_its_words(db: Db) -> None:
    client = patient_client(enrol(utc_now(), birth_date="1980-02-02"))
    main = main_of(answer(client, "", example="咳嗽发热"))
    assert 'data-kind="respiratory"' in main
    assert ">咳嗽发热</textarea>" in main


def test_a_child_sees_paediatrics_first(db: Db) -> None:
    born = (utc_now() - timedelta(days=365 * 5)).date().isoformat()
    client = patient_client(enrol(utc_now(), birth_date=born, consent={
        **_CHILD_CONSENT, "accepted_at": (utc_now() - timedelta(days=1)).isoformat()}))
    main = main_of(answer(client, "肚子疼，拉肚子", age="5"))
    assert main.index('data-kind="pediatrics"') < main.index('data-kind="gastroenterology"')
    assert "14岁以下的孩子建议先看儿科" in main


def test_refusals_are_shown_beside_the_field_and_nothing_is_counted(db: Db) -> None:
    client = patient_client(enrol(utc_now()))
    html = answer(client, "   ", 422)
    assert 'id="e-text"' in html
    assert "请用1到500个字描述您的症状" in html
    html = answer(client, "头疼", 422, age="七十")
    assert "年龄请填0到130之间的整数" in html
    assert ">头疼</textarea>" in html  # what was typed stays
    html = answer(client, "头疼", 422, sex="male", pregnant="1")
    assert "男性不能选择怀孕" in html
    with read_tx() as session:
        assert service.repo.counts(session.connection(), utc_now().date() - timedelta(days=2),
                                   utc_now().date() + timedelta(days=2)) == []


def test_the_page_is_rate_limited_like_the_api(db: Db) -> None:
    client = patient_client(enrol(utc_now()))
    limit = get_settings().rate_limit_triage_per_minute
    statuses = [client.submit("/me/triage", {"text": "牙疼"}).status_code for _ in range(limit + 10)]
    assert 429 in statuses
    r = client.submit("/me/triage", {"text": "牙疼"})
    assert r.status_code == 429
    assert 'data-error="rate.limited"' in r.text


def test_acting_for_someone_starts_from_an_empty_form(db: Db) -> None:
    mother = enrol(utc_now(), birth_date="1950-01-01", sex="female")
    son = enrol(utc_now(), birth_date="1980-01-01", sex="male")
    with write_tx() as session:
        proxies.authorise(session, mother, proxies.Proxy(son), ["view"], utc_now())
    client = patient_client(son, acting_for=mother)
    r = client.get("/me/triage")
    assert r.status_code == 200, r.text[:800]
    assert 'name="age" type="text" value=""' in r.text
    assert 'data-kind="gastroenterology"' in main_of(answer(client, "胃疼"))


# --- the admin's page ----------------------------------------------------------------------------

def test_the_admin_page_lists_counts_flags_kinds_and_terms(db: Db) -> None:
    TriageHospital(("呼吸内科", "Respiratory medicine"))
    patient = patient_client(enrol(utc_now()))
    answer(patient, "胸口疼，一直冒冷汗")
    answer(patient, "咳嗽")
    admin, _ = staff_client("admin")
    r = admin.get("/admin/triage")
    assert r.status_code == 200, r.text[:800]
    assert 'data-total>2<' in r.text
    assert 'data-count-flag="chest_pain_alarm"' in r.text
    assert 'data-count-kind="respiratory"' in r.text
    assert 'data-flag="stroke_signs"' in r.text
    assert 'data-term="cough"' in r.text
    assert 'data-mapped="' in r.text
    assert "按名称" in r.text
    found = admin.get("/admin/triage", params={"q": "拉肚子"})
    assert 'data-term="diarrhea"' in found.text
    assert 'data-term="cough"' not in found.text
    auditor, _ = staff_client("auditor")
    r = auditor.get("/admin/triage")
    assert r.status_code == 200
    assert "data-term-edit" not in r.text
    assert "data-flag-toggle" not in r.text
    assert auditor.get("/admin/triage/terms/cough").status_code == 403


def test_a_term_edited_on_the_page_is_used_by_the_next_triage(db: Db) -> None:
    admin, _ = staff_client("admin")
    patient = patient_client(enrol(utc_now()))
    assert "data-unmatched" in answer(patient, "眼珠子咕噜咕噜的")
    page = admin.get("/admin/triage/terms/red_eye")
    assert page.status_code == 200
    assert 'name="w_ophthalmology"' in page.text
    synonyms = re.search(r'<textarea id="f-synonyms" name="synonyms"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert synonyms
    form = {"name_zh": "眼睛红", "name_en": "a red eye", "synonyms": synonyms.group(1) + "\n眼珠子…咕噜",
            "w_ophthalmology": "7", "enabled": "1"}
    r = admin.submit("/admin/triage/terms/red_eye", form)
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"].startswith("/admin/triage?done=term_saved")
    assert 'data-kind="ophthalmology"' in main_of(answer(patient, "眼珠子咕噜咕噜的"))
    refused = admin.submit("/admin/triage/terms/red_eye", {**form, "synonyms": "咳嗽"})
    assert refused.status_code == 409
    assert 'data-error="triage.synonym_taken"' in refused.text
    bad = admin.submit("/admin/triage/terms/red_eye", {**form, "w_ophthalmology": "99"})
    assert bad.status_code == 422
    assert 'id="e-w_ophthalmology"' in bad.text


def test_terms_are_added_and_red_flags_turned_off_on_the_page(db: Db) -> None:
    admin, _ = staff_client("admin")
    patient = patient_client(enrol(utc_now()))
    r = admin.submit("/admin/triage/terms", {"id": "hiccups", "name_zh": "打嗝", "name_en": "hiccups",
                                             "synonyms": "嗝打个没完、打嗝停不下来", "w_gastroenterology": "5"})
    assert r.status_code == 303, r.text[:800]
    assert 'data-kind="gastroenterology"' in main_of(answer(patient, "嗝打个没完"))
    again = admin.submit("/admin/triage/terms", {"id": "hiccups", "name_zh": "打嗝", "name_en": "hiccups",
                                                 "synonyms": "嗝嗝嗝"})
    assert again.status_code == 409
    assert 'data-error="triage.term_exists"' in again.text
    r = admin.submit("/admin/triage/red-flags/breathing_difficulty/enabled", {"enabled": "0"})
    assert r.status_code == 303
    assert "data-urgent" not in answer(patient, "喘不上气")
    admin.submit("/admin/triage/red-flags/breathing_difficulty/enabled", {"enabled": "1"})
    assert "data-urgent" in answer(patient, "喘不上气")


def test_a_kind_is_mapped_to_departments_on_the_page(db: Db) -> None:
    h = TriageHospital(("呼吸内科", "Respiratory medicine"))
    admin, _ = staff_client("admin")
    page = admin.get("/admin/triage/kinds/respiratory")
    assert page.status_code == 200
    assert f'value="{h.departments["呼吸内科"]}" checked' in page.text
    r = admin.submit("/admin/triage/kinds/respiratory", {"department_id": h.department})
    assert r.status_code == 303, r.text[:800]
    patient = patient_client(enrol(utc_now(), birth_date="1980-02-02"))
    main = main_of(answer(patient, "咳嗽有痰"))
    assert f'data-book-department="{h.department}"' in main
    assert f'data-book-department="{h.departments["呼吸内科"]}"' not in main
    assert admin.submit("/admin/triage/kinds-match", {}).status_code == 303


def test_the_page_speaks_english_too(db: Db) -> None:
    h = TriageHospital(("呼吸内科", "Respiratory medicine"))
    client = patient_client(enrol(utc_now(), birth_date="1980-02-02"), lang="en")
    assert "Find my department" in client.get("/me/triage").text
    main = main_of(answer(client, "咳嗽发热"))
    assert "Because you mentioned: cough, fever" in main
    assert "Respiratory medicine" in main
    assert f'data-book-department="{h.departments["呼吸内科"]}">Book' in main
    urgent = main_of(answer(client, "喘不上气"))
    assert "Go to the emergency department now, or call 120" in urgent
