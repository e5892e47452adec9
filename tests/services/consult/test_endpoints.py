"""The consultation API over HTTP on SQLite and PostgreSQL: a routed thread from the notice to the
rating (queue, claim, answer, the patient's reply, polling for new messages only, close, one rating),
a named adviser's thread, every bad input as a clear 4xx storing nothing, idempotent retries,
images checked by content and stripped, patient isolation per route (and proxies by scope), audited
staff reads without any text, the roster."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from PIL import Image
from sqlalchemy import func, select

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import proxies
from carepoints.services.consult.models import ConsultImage, ConsultMessage, ConsultRating, ConsultThread
from tests.helpers import error
from tests.services.consult.kit import Clinic, audit, open_body, open_thread, outbox, patient_token, png

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def counts() -> tuple[int, int, int, int]:
    with read_tx() as s:
        return tuple(int(s.execute(select(func.count()).select_from(m)).scalar_one())  # type: ignore[return-value]
                     for m in (ConsultThread, ConsultMessage, ConsultImage, ConsultRating))


def test_a_routed_consultation_from_question_to_rating(api: Api) -> None:
    clinic = Clinic(api)
    doc_a, nurse = clinic.adviser("wang"), clinic.adviser("li", "nurse")
    pid = api.enrol()
    token = patient_token(pid)
    notice = api.get("/consultations/disclaimer", key=token).json()
    assert notice["points"][0]["zh"].startswith("在线咨询不能替代面诊")
    assert any("120" in p["zh"] for p in notice["points"])
    t = open_thread(api, pid, department_id=clinic.department)
    assert (t["state"], t["target"], t["adviser"], t["message_count"]) == ("open", "department", None, 1)
    assert t["disclaimer_accepted_at"] is not None
    assert t["waiting_since"] == t["created_at"]
    assert [m["text"] for m in t["messages"]] == ["餐后血糖偏高,饮食上要注意什么?"]

    for adviser in (doc_a, nurse):  # a routed thread without a profession is on every adviser's queue
        q = api.get("/consultations/queue", key=adviser.token).json()
        [item] = q["items"]
        assert (item["id"], item["overdue"], item["response_target_minutes"]) == (t["id"], False, 120)
        assert "subject" not in item  # the queue shows no content; opening the thread is the audited read
        assert "*" in item["patient_name"]
    claimed = api.post(f"/consultations/{t['id']}/claim", key=doc_a.token)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["adviser"]["display_name"] == "wang老师"
    error(api.post(f"/consultations/{t['id']}/claim", key=nurse.token), 409, "consult.already_claimed")
    assert api.get("/consultations/queue", key=nurse.token).json()["items"] == []  # taken: off the others' queue
    error(api.get(f"/consultations/{t['id']}", key=nurse.token), 404, "consult.not_found")

    answer = api.post(f"/consultations/{t['id']}/messages", {"text": "少食多餐,主食定量。"}, key=doc_a.token)
    assert (answer.status_code, answer.json()["seq"], answer.json()["author"]) == (201, 2, "staff")
    assert outbox("consult.reply") == [{"patient_id": pid, "thread_id": t["id"]}]
    after = api.get(f"/consultations/{t['id']}", key=token).json()
    assert (after["state"], after["waiting_since"], after["overdue"]) == ("answered", None, False)
    assert after["first_response_seconds"] is not None
    assert after["first_response_seconds"] >= 0
    back = api.post(f"/consultations/{t['id']}/messages", {"text": "好的,谢谢。水果可以吃吗?"}, key=token)
    assert back.status_code == 201, back.text
    polled = api.get(f"/consultations/{t['id']}", params={"after": 2}, key=token).json()
    assert [(m["seq"], m["author"]) for m in polled["messages"]] == [(3, "patient")]  # only what is new
    assert polled["state"] == "waiting"
    assert api.get("/consultations/queue", key=doc_a.token).json()["items"][0]["mine"] is True

    error(api.post(f"/consultations/{t['id']}/rating", {"stars": 5}, key=token), 409, "consult.not_closed")
    closed = api.post(f"/consultations/{t['id']}/close", key=token)
    assert (closed.status_code, closed.json()["state"], closed.json()["closed_by"]) == (200, "closed", "patient")
    error(api.post(f"/consultations/{t['id']}/close", key=doc_a.token), 409, "consult.closed")
    error(api.post(f"/consultations/{t['id']}/messages", {"text": "还在吗"}, key=token), 409, "consult.closed")
    rated = api.post(f"/consultations/{t['id']}/rating", {"stars": 4, "comment": "回复很及时"}, key=token)
    assert rated.status_code == 201, rated.text
    assert rated.json()["rating"] == {"stars": 4, "comment": "回复很及时"}
    error(api.post(f"/consultations/{t['id']}/rating", {"stars": 1}, key=token), 409, "consult.already_rated")
    listed = api.get("/consultations", params={"patient_id": pid}, key=token).json()["items"]
    assert [(i["id"], i["state"], i["rating"]["stars"]) for i in listed] == [(t["id"], "closed", 4)]
    assert outbox("consult.closed") == []  # the patient closed it: nobody to tell


def test_a_named_adviser_gets_the_thread_and_nobody_else(api: Api) -> None:
    clinic = Clinic(api)
    pharmacist, other = clinic.adviser("zhao", "pharmacist"), clinic.adviser("qian", "pharmacist")
    pid = api.enrol()
    t = open_thread(api, pid, adviser_id=pharmacist.id)
    assert (t["target"], t["adviser"]["staff_user_id"], t["profession"]) == ("adviser", pharmacist.id, "pharmacist")
    assert [i["id"] for i in api.get("/consultations/queue", key=pharmacist.token).json()["items"]] == [t["id"]]
    assert api.get("/consultations/queue", key=other.token).json()["items"] == []
    error(api.get(f"/consultations/{t['id']}", key=other.token), 404, "consult.not_found")
    error(api.post(f"/consultations/{t['id']}/messages", {"text": "我来答"}, key=other.token), 404, "consult.not_found")
    r = api.post(f"/consultations/{t['id']}/messages", {"text": "饭后半小时服用。"}, key=pharmacist.token)
    assert r.status_code == 201, r.text
    # a department thread asking for a nurse is not on a clinician's queue
    doctor, nurse = clinic.adviser("sun"), clinic.adviser("zhou", "nurse")
    n = open_thread(api, pid, department_id=clinic.department, profession="nurse")
    assert n["id"] not in [i["id"] for i in api.get("/consultations/queue", key=doctor.token).json()["items"]]
    assert n["id"] in [i["id"] for i in api.get("/consultations/queue", key=nurse.token).json()["items"]]
    error(api.post(f"/consultations/{n['id']}/claim", key=doctor.token), 404, "consult.not_found")
    # the admin sees every thread (audited) but answers none without being on the roster
    assert api.get(f"/consultations/{n['id']}").status_code == 200
    error(api.post(f"/consultations/{n['id']}/messages", {"text": "x"}), 403, "consult.not_adviser")


BAD_OPENINGS: list[tuple[dict[str, Any], int, str]] = [
    ({"disclaimer_version": "0.9"}, 422, "consult.disclaimer_required"),
    ({"disclaimer_accepted_at": "2020-01-01T00:00:00+00:00"}, 422, "consult.disclaimer_required"),
    ({"disclaimer_accepted_at": None}, 422, "request.invalid"),
    ({"department_id": None}, 422, "consult.target_required"),
    ({"adviser_id": "0190a0a0-0000-7000-8000-000000000000"}, 422, "consult.target_required"),
    ({"department_id": "0190a0a0-0000-7000-8000-000000000000"}, 404, "consult.department_not_found"),
    ({"department_id": None, "adviser_id": "0190a0a0-0000-7000-8000-000000000000"}, 404,
     "consult.adviser_not_found"),
    ({"text": "   "}, 422, "request.invalid"),
    ({"text": "长" * 2001}, 422, "request.invalid"),
    ({"subject": ""}, 422, "request.invalid"),
    ({"profession": "dentist"}, 422, "request.invalid"),
    ({"idempotency_key": "has space"}, 422, "request.invalid"),
    ({"extra": 1}, 422, "request.invalid"),
]


def test_bad_openings_are_refused_and_store_nothing(api: Api) -> None:
    clinic = Clinic(api)
    clinic.adviser("wu")
    pid = api.enrol()
    token = patient_token(pid)
    for change, status, code in BAD_OPENINGS:
        body = open_body(pid, department_id=clinic.department)
        body.update(change)
        body = {k: v for k, v in body.items() if v is not None}
        err = error(api.post("/consultations", body, key=token), status, code)
        assert err["detail"], change
        assert counts() == (0, 0, 0, 0), change
    bad_messages: list[tuple[dict[str, Any], str]] = [({"text": ""}, "request.invalid"),
                                                      ({"text": "x" * 2001}, "request.invalid"),
                                                      ({"text": "ok", "idempotency_key": "a b"}, "request.invalid")]
    t = open_thread(api, pid, department_id=clinic.department)
    for body, code in bad_messages:
        error(api.post(f"/consultations/{t['id']}/messages", body, key=token), 422, code)
    error(api.post(f"/consultations/{t['id']}/rating", {"stars": 6}, key=token), 422, "request.invalid")
    assert counts() == (1, 1, 0, 0)


def test_department_without_advisers_and_missing_consent_are_conflicts(api: Api) -> None:
    clinic = Clinic(api)
    clinic.adviser("zheng")
    pid = api.enrol()
    r = api.post("/consultations", open_body(pid, department_id=clinic.other_department), key=patient_token(pid))
    error(r, 409, "consult.no_advisers")
    r = api.post("/consultations", open_body(pid, department_id=clinic.department, profession="pharmacist"),
                 key=patient_token(pid))
    error(r, 409, "consult.no_advisers")
    when = api.patient_body()["consent"]["accepted_at"]
    no_health = api.enrol(consent={"version": "1.0", "accepted_at": when, "purposes": ["points_programme"]})
    r = api.post("/consultations", open_body(no_health, department_id=clinic.department),
                 key=patient_token(no_health))
    error(r, 409, "consult.consent_required")
    assert counts() == (0, 0, 0, 0)


def test_retries_with_the_same_key_change_nothing(api: Api) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("feng")
    pid = api.enrol()
    token = patient_token(pid)
    body = open_body(pid, department_id=clinic.department)
    first = api.post("/consultations", body, key=token)
    again = api.post("/consultations", body, key=token)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    error(api.post("/consultations", {**body, "subject": "别的问题"}, key=token), 409, "consult.idempotency_conflict")
    tid = first.json()["id"]
    one = api.post(f"/consultations/{tid}/messages", {"text": "补充一下", "idempotency_key": "m1"}, key=token)
    two = api.post(f"/consultations/{tid}/messages", {"text": "补充一下", "idempotency_key": "m1"}, key=token)
    assert (one.status_code, two.status_code, two.json()["seq"]) == (201, 200, one.json()["seq"])
    staff = api.post(f"/consultations/{tid}/messages", {"text": "收到", "idempotency_key": "s1"}, key=adviser.token)
    staff2 = api.post(f"/consultations/{tid}/messages", {"text": "收到", "idempotency_key": "s1"}, key=adviser.token)
    assert (staff.status_code, staff2.status_code) == (201, 200)
    assert len(outbox("consult.reply")) == 1
    assert counts()[:2] == (1, 3)


def test_images_are_checked_by_content_stripped_and_served_to_the_thread_only(api: Api, monkeypatch: Any) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("chen")
    pid, other = api.enrol(), api.enrol()
    token = patient_token(pid)
    t = open_thread(api, pid, department_id=clinic.department)
    up = api.post(f"/consultations/{t['id']}/images", key=token, data={"text": "这是药盒"},
                  files={"file": ("photo.jpg", png(64, 48, "JPEG", exif=True), "image/jpeg")})
    assert up.status_code == 201, up.text
    msg = up.json()
    assert (msg["text"], msg["width"], msg["height"]) == ("这是药盒", 64, 48)
    got = api.get(f"/consultations/{t['id']}/images/{msg['image_id']}", key=token)
    assert (got.status_code, got.headers["content-type"]) == (200, "image/jpeg")
    with Image.open(io.BytesIO(got.content)) as img:
        assert img.getexif() == {}  # the camera's metadata is gone
    staff = api.get(f"/consultations/{t['id']}/images/{msg['image_id']}", key=adviser.token)
    assert staff.status_code == 200
    assert audit("consult:image:view", t["id"])[0]["actor_id"] == adviser.id
    error(api.get(f"/consultations/{t['id']}/images/{msg['image_id']}", key=patient_token(other)), 404,
          "patients.not_found")
    before = counts()
    error(api.post(f"/consultations/{t['id']}/images", key=token,
                   files={"file": ("x.png", b"%PDF-1.4 not an image", "image/png")}), 415, "engagement.photo_type")
    error(api.post(f"/consultations/{t['id']}/images", key=token,
                   files={"file": ("x.png", b"", "image/png")}), 422, "engagement.photo_invalid")
    monkeypatch.setenv("CAREPOINTS_CONSULT_IMAGE_MAX_BYTES", "10000")
    monkeypatch.setenv("CAREPOINTS_CONSULT_MAX_IMAGES", "1")
    from carepoints.config import reset_settings

    reset_settings()
    big = png(400, 400)  # a PNG of solid colour compresses: make it noisy
    big = Image.effect_noise((300, 300), 80).convert("RGB").tobytes() + big
    error(api.post(f"/consultations/{t['id']}/images", key=token,
                   files={"file": ("big.png", big, "image/png")}), 413, "consult.image_too_large")
    error(api.post(f"/consultations/{t['id']}/images", key=token,
                   files={"file": ("b.png", png(), "image/png")}), 409, "consult.too_many_images")
    assert counts() == before


def test_a_patient_never_reaches_another_patients_consultation(api: Api) -> None:
    clinic = Clinic(api)
    clinic.adviser("he")
    mine, theirs = api.enrol(), api.enrol()
    t = open_thread(api, theirs, department_id=clinic.department)
    up = api.post(f"/consultations/{t['id']}/images", key=patient_token(theirs),
                  files={"file": ("a.png", png(), "image/png")}).json()
    token = patient_token(mine)
    tid = t["id"]
    for method, path, body in [
        ("GET", f"/consultations/{tid}", None),
        ("GET", f"/consultations/{tid}?after=1", None),
        ("POST", f"/consultations/{tid}/messages", {"text": "偷看"}),
        ("GET", f"/consultations/{tid}/images/{up['image_id']}", None),
        ("POST", f"/consultations/{tid}/close", None),
        ("POST", f"/consultations/{tid}/rating", {"stars": 1}),
        ("GET", f"/consultations?patient_id={theirs}", None),
    ]:
        r = api.request(method, path, body, key=token)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "血糖" not in r.text
    r = api.post(f"/consultations/{tid}/images", key=token, files={"file": ("a.png", png(), "image/png")})
    assert r.status_code == 404
    r = api.post("/consultations", open_body(theirs, department_id=clinic.department), key=token)
    error(r, 404, "patients.not_found")  # opening one for someone else
    with read_tx() as s:
        assert s.execute(select(ConsultThread.state).where(ConsultThread.id == tid)).scalar_one() == "open"
        assert s.execute(select(func.count()).select_from(ConsultThread)).scalar_one() == 1


def test_proxies_read_with_view_and_ask_with_book(api: Api) -> None:
    clinic = Clinic(api)
    clinic.adviser("lin")
    elder, viewer, carer = api.enrol(), api.enrol(), api.enrol()
    with write_tx() as s:
        proxies.authorise(s, elder, proxies.Proxy(viewer), ["view"], utc_now())
        proxies.authorise(s, elder, proxies.Proxy(carer), ["view", "book"], utc_now())
    t = open_thread(api, elder, token=patient_token(carer), department_id=clinic.department)
    assert t["opened_by"] == carer
    assert audit("consult:thread:open", t["id"])[0]["on_behalf_of"] == elder
    v = patient_token(viewer)
    assert api.get(f"/consultations/{t['id']}", key=v).status_code == 200
    assert api.get("/consultations", params={"patient_id": elder}, key=v).status_code == 200
    error(api.post(f"/consultations/{t['id']}/messages", {"text": "x"}, key=v), 403, "auth.forbidden")
    error(api.post("/consultations", open_body(elder, department_id=clinic.department), key=v), 403,
          "auth.forbidden")
    r = api.post(f"/consultations/{t['id']}/messages", {"text": "替老人补充"}, key=patient_token(carer))
    assert r.status_code == 201, r.text
    assert r.json()["author_id"] == carer


def test_staff_reads_are_audited_with_ids_only(api: Api) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("luo")
    pid = api.enrol()
    t = open_thread(api, pid, department_id=clinic.department)
    api.get(f"/consultations/{t['id']}", key=adviser.token)
    api.get(f"/consultations/{t['id']}", params={"after": 1}, key=adviser.token)  # nothing new: no read
    [view] = audit("consult:thread:view", t["id"])
    assert (view["actor_id"], view["patient_id"]) == (adviser.id, pid)
    api.post(f"/consultations/{t['id']}/messages", {"text": "请按时监测血糖"}, key=adviser.token)
    with read_tx() as s:
        from carepoints.audit.models import AuditEntry

        rows = s.execute(select(AuditEntry.details).where(AuditEntry.subject_id == t["id"])).scalars().all()
    dumped = json.dumps(list(rows), ensure_ascii=False)
    for word in ("血糖", "监测", "饮食"):
        assert word not in dumped
    access = api.get(f"/patients/{pid}/access-report", key=patient_token(pid)).json()
    assert any(e["action"] == "consult:thread:view" for g in access["groups"] for e in g["entries"])


def test_the_roster_refuses_other_roles_and_unknown_ids(api: Api) -> None:
    clinic = Clinic(api)
    desk = api.make_staff(f"desk-{utc_now().timestamp()}", "pw-123456789", "frontdesk")
    body = {"department_id": clinic.department, "profession": "nurse", "display_name": "前台"}
    error(api.request("PUT", f"/consultations/advisers/{desk}", body), 403, "consult.not_adviser")
    error(api.request("PUT", "/consultations/advisers/nope", body), 404, "staff.not_found")
    nurse = api.make_staff(f"n-{utc_now().timestamp()}", "pw-123456789", "nurse")
    error(api.request("PUT", f"/consultations/advisers/{nurse}", {**body, "department_id": "x"}), 404,
          "consult.department_not_found")
    ok = api.request("PUT", f"/consultations/advisers/{nurse}", {**body, "display_name": "李护士"})
    assert ok.status_code == 200, ok.text
    pid = api.enrol()
    listed = api.get("/consultations/advisers", key=patient_token(pid)).json()
    assert [a["display_name"] for a in listed["items"]] == ["李护士"]
    assert [d["id"] for d in listed["departments"]] == [clinic.department]
    off = api.request("PUT", f"/consultations/advisers/{nurse}", {**body, "display_name": "李护士", "active": False})
    assert off.json()["active"] is False
    assert api.get("/consultations/advisers", key=patient_token(pid)).json()["items"] == []
    assert audit("consult:adviser:set", nurse)[-1]["details"]["active"] is False
