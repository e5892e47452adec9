"""The consultation pages over real HTTP on SQLite and PostgreSQL: the patient's notice before the
first message (acceptance time on the thread), the thread with polling for new messages only, a
reply with an image, close and rate; every patient page route refuses another patient's thread;
the staff queue, the audited thread page, claim and answer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from carepoints.kit.db import read_tx
from carepoints.services.consult.models import ConsultThread
from tests.pages.helpers import patient_client, staff_client
from tests.services.consult.kit import Clinic, audit, open_thread, patient_token, png

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _put_on_roster(api: Api, staff_id: str, department: str) -> None:
    r = api.request("PUT", f"/consultations/advisers/{staff_id}", {
        "department_id": department, "profession": "clinician", "display_name": "王医生", "title": "主治医师"})
    assert r.status_code == 200, r.text


def test_the_patient_accepts_the_notice_then_asks_replies_closes_and_rates(api: Api) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("wang")
    pid = api.enrol()
    client = patient_client(pid, elderly=True)
    assert 'href="/me/consult"' in client.get("/me").text
    new = client.get("/me/consult/new")
    assert new.status_code == 200
    assert "不能替代面诊" in new.text
    assert 'href="tel:120"' in new.text
    assert "data-ask" not in new.text  # no question before the notice is accepted
    refused = client.submit("/me/consult/new", {"target": f"department:{clinic.department}", "subject": "血糖",
                                                 "text": "饮食怎么注意", "key": "k1"})
    assert refused.status_code == 422
    assert 'data-error="consult.disclaimer_required"' in refused.text
    accepted = client.submit("/me/consult/new/accept")
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/me/consult/new?step=ask")
    form = client.get("/me/consult/new?step=ask")
    assert "data-ask" in form.text
    assert f'value="department:{clinic.department}"' in form.text
    assert f'value="adviser:{adviser.id}"' in form.text
    created = client.submit("/me/consult/new", {"target": f"department:{clinic.department}", "subject": "血糖",
                                                 "text": "饮食怎么注意", "key": "k1"})
    assert created.status_code == 303, created.text[:800]
    tid = created.headers["location"].rsplit("/", 1)[1]
    with read_tx() as s:
        assert s.execute(select(ConsultThread.disclaimer_accepted_at).where(ConsultThread.id == tid)).scalar_one()
    page = client.get(f"/me/consult/{tid}")
    assert page.status_code == 200
    assert "饮食怎么注意" in page.text
    assert f'hx-get="/me/consult/{tid}/messages?after=1&amp;state=open"' in page.text
    assert 'hx-trigger="every 5s"' in page.text
    assert 'class="elderly"' in page.text
    assert client.get("/me/consult/new").text.count("data-ask") == 0  # the next consultation: the notice again

    nothing = client.get(f"/me/consult/{tid}/messages?after=1&state=open")
    assert nothing.status_code == 200
    assert "data-seq" not in nothing.text
    assert 'data-last="1"' in nothing.text
    r = api.post(f"/consultations/{tid}/messages", {"text": "主食定量,少吃甜食。"}, key=adviser.token)
    assert r.status_code == 201
    polled = client.get(f"/me/consult/{tid}/messages?after=1&state=open")
    assert 'hx-swap-oob="beforeend:#consult-messages"' in polled.text
    assert re.findall(r'data-seq="(\d+)"', polled.text) == ["2"]  # only the new one
    assert "主食定量" in polled.text
    assert "wang老师" in polled.text
    assert 'data-last="2"' in polled.text

    sent = client.submit(f"/me/consult/{tid}/messages", {"text": "药盒照片", "key": "m1"},
                         files={"file": ("box.png", png(), "image/png")})
    assert sent.status_code == 303, sent.text[:800]
    page = client.get(f"/me/consult/{tid}")
    img = re.search(rf'src="(/me/consult/{tid}/images/[^"]+)"', page.text)
    assert img, page.text[-2000:]
    got = client.get(img.group(1))
    assert (got.status_code, got.headers["content-type"]) == (200, "image/png")
    bad = client.submit(f"/me/consult/{tid}/messages", {"text": "", "key": "m2"},
                        files={"file": ("x.png", b"not an image", "image/png")})
    assert bad.status_code == 415
    assert 'data-error="engagement.photo_type"' in bad.text

    closed = client.submit(f"/me/consult/{tid}/close")
    assert closed.status_code == 303
    reload = client.get(f"/me/consult/{tid}/messages?after=3&state=open")
    assert reload.headers.get("hx-refresh") == "true"  # closed meanwhile: the page reloads for the rating
    page = client.get(f"/me/consult/{tid}")
    assert "data-rating" in page.text
    assert "data-composer" not in page.text
    assert client.submit(f"/me/consult/{tid}/rating", {"stars": "7"}).status_code == 422
    assert client.submit(f"/me/consult/{tid}/rating", {"stars": "4", "comment": "很好"}).status_code == 303
    assert 'data-rated="4"' in client.get(f"/me/consult/{tid}").text
    again = client.submit(f"/me/consult/{tid}/rating", {"stars": "1"})
    assert again.status_code == 409
    assert 'data-error="consult.already_rated"' in again.text
    listed = client.get("/me/consult")
    assert f'data-thread="{tid}"' in listed.text
    assert 'data-state="closed"' in listed.text


def test_no_patient_page_reaches_another_patients_thread(api: Api) -> None:
    clinic = Clinic(api)
    clinic.adviser("li")
    mine, theirs = api.enrol(), api.enrol()
    t = open_thread(api, theirs, department_id=clinic.department)
    up = api.post(f"/consultations/{t['id']}/images", key=patient_token(theirs),
                  files={"file": ("a.png", png(), "image/png")}).json()
    client = patient_client(mine)
    base = f"/me/consult/{t['id']}"
    for path in (base, f"{base}/messages?after=0", f"{base}/images/{up['image_id']}"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "血糖" not in r.text
    posts: list[tuple[str, dict[str, str]]] = [(f"{base}/messages", {"text": "偷看"}), (f"{base}/close", {}),
                                              (f"{base}/rating", {"stars": "1"})]
    for path, data in posts:
        r = client.submit(path, data)
        assert r.status_code == 404, (path, r.status_code)
    assert f'data-thread="{t["id"]}"' not in client.get("/me/consult").text
    with read_tx() as s:
        assert s.execute(select(ConsultThread.state).where(ConsultThread.id == t["id"])).scalar_one() == "open"
    assert patient_client(theirs).get(base).status_code == 200


def test_an_adviser_works_the_queue_in_the_console(api: Api) -> None:
    clinic = Clinic(api)
    client, user = staff_client("clinician")
    outsider, other = staff_client("nurse")
    _put_on_roster(api, user["id"], clinic.department)
    _put_on_roster(api, other["id"], clinic.other_department)
    pid = api.enrol()
    t = open_thread(api, pid, department_id=clinic.department)
    nav = client.get("/staff/consult")
    assert nav.status_code == 200
    assert 'href="/staff/consult"' in nav.text
    row = re.search(rf'<tr data-thread="{t["id"]}".*?</tr>', nav.text, re.S)
    assert row, nav.text[-3000:]
    assert "待接诊" in row.group(0)
    assert "血糖" not in nav.text  # the queue shows no content
    assert outsider.get(f"/staff/consult/{t['id']}").status_code == 404  # another department's adviser
    page = client.get(f"/staff/consult/{t['id']}")
    assert page.status_code == 200
    assert "餐后血糖偏高" in page.text
    assert "data-claim" in page.text
    assert [a["actor_id"] for a in audit("consult:thread:view", t["id"])] == [user["id"]]
    assert client.submit(f"/staff/consult/{t['id']}/claim").status_code == 303
    answered = client.submit(f"/staff/consult/{t['id']}/messages", {"text": "请注意主食定量。", "key": "s1"})
    assert answered.status_code == 303
    doc = api.get(f"/consultations/{t['id']}", key=patient_token(pid)).json()
    assert (doc["state"], doc["messages"][-1]["text"]) == ("answered", "请注意主食定量。")
    api.post(f"/consultations/{t['id']}/messages", {"text": "明白了"}, key=patient_token(pid))
    polled = client.get(f"/staff/consult/{t['id']}/messages?after=2&state=answered")
    assert re.findall(r'data-seq="(\d+)"', polled.text) == ["3"]
    assert "明白了" in polled.text
    assert client.submit(f"/staff/consult/{t['id']}/close").status_code == 303
    assert 'data-closed="staff"' in client.get(f"/staff/consult/{t['id']}").text
