"""Education content and quizzes over HTTP, on SQLite and PostgreSQL: staff manage
items, patients see quizzes without answers, a pass earns 20 once per item (the
default `education` rule), a fail earns nothing and may be retried."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Table, func, select

from carepoints.audit.models import AuditEntry
from carepoints.engagement.learning import education
from carepoints.engagement.learning.models import EducationCompletion, QuizAttempt
from carepoints.engagement.learning.schemas import AttemptCreate
from carepoints.events.models import Event
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients.models import Patient
from tests.conftest import Db
from tests.helpers import error
from tests.locks import oks, race

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
RIGHT = [[1], [0, 2], [0]]
TWO_RIGHT = [[1], [0, 2], [1]]  # 66%
ONE_RIGHT = [[1], [0], [1]]  # 33%
_patients: Table = Patient.__table__  # type: ignore[assignment]


def item_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "video", "title": {"zh": "高血压的日常管理", "en": "Living with hypertension"},
        "body_url": "https://videos.example.org/bp.mp4", "duration_seconds": 600,
        "tags": ["blood_pressure"], "conditions": ["hypertension"], "status": "published",
        "quiz": {"pass_mark": 60, "questions": [
            {"text": "每天应测几次血压?", "choices": ["不用测", "早晚各一次", "每小时"], "correct": [1]},
            {"text": "哪些有助于降压?", "choices": ["少盐", "熬夜", "运动", "吸烟"], "correct": [0, 2], "multi": True},
            {"text": "头晕时应?", "choices": ["坐下休息并测量", "继续运动"], "correct": [0]},
        ]}}
    body.update(extra)
    return body


def new_item(api: Api, **extra: Any) -> dict[str, Any]:
    r = api.post("/education/items", item_body(**extra))
    assert r.status_code == 201, r.text
    return dict(r.json())


def submit(api: Api, item_id: str, pid: str, answers: list[list[int]], key: str | None = None, **extra: Any
           ) -> Any:
    return api.post(f"/education/items/{item_id}/attempts", {"patient_id": pid, "answers": answers, **extra},
                    key=key)


def count(model: Any, **where: Any) -> int:
    t = model.__table__
    with read_tx() as session:
        stmt = select(func.count()).select_from(t)
        for k, v in where.items():
            stmt = stmt.where(t.c[k] == v)
        return int(session.connection().execute(stmt).scalar_one())


# --- content -------------------------------------------------------------------------------

def test_create_publish_and_read_without_answers(api: Api) -> None:
    doc = new_item(api, status="draft")
    assert doc["status"] == "draft"
    assert doc["quiz"]["questions"][1]["correct"] == [0, 2]  # staff see the answers
    assert [q["id"] for q in doc["quiz"]["questions"]] == ["q1", "q2", "q3"]
    assert api.get("/education/items").json()["items"] == []  # a draft is not listed
    r = api.post(f"/education/items/{doc['id']}/publish")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published"
    assert r.json()["published_at"]
    got = api.get(f"/education/items/{doc['id']}")
    assert got.status_code == 200, got.text
    assert all("correct" not in q for q in got.json()["quiz"]["questions"])
    assert got.json()["quiz"]["questions"][1]["multi"] is True
    assert (got.json()["tags"], got.json()["conditions"]) == (["blood_pressure"], ["hypertension"])
    listed = api.get("/education/items").json()["items"]
    assert [i["id"] for i in listed] == [doc["id"]]
    assert all("correct" not in q for q in listed[0]["quiz"]["questions"])
    with read_tx() as session:
        actions = [e["action"] for e in session.connection().execute(
            select(AuditEntry.__table__.c.action).where(AuditEntry.__table__.c.subject_id == doc["id"])).mappings()]
    # the use cases' rows; the admin key's read of the item is a request-level row (http:GET:...)
    assert sorted(a for a in actions if not a.startswith("http:")) == ["engagement:education:create",
                                                                        "engagement:education:publish"]
    assert "http:GET:/api/v1/education/items/{item_id}" in actions


def test_list_filters_by_tag_and_condition(api: Api) -> None:
    bp = new_item(api)
    sugar = new_item(api, tags=["diet"], conditions=["diabetes"], kind="article", body_url=None,
                     body_text="少吃多餐……")
    assert [i["id"] for i in api.get("/education/items", params={"tag": "diet"}).json()["items"]] == [sugar["id"]]
    assert [i["id"] for i in api.get("/education/items", params={"condition": "hypertension"}).json()["items"]] == [
        bp["id"]]
    assert api.get("/education/items", params={"tag": "diet", "condition": "hypertension"}).json()["items"] == []
    assert {i["id"] for i in api.get("/education/items").json()["items"]} == {bp["id"], sugar["id"]}
    page = api.get("/education/items", params={"limit": 1}).json()
    assert [i["id"] for i in page["items"]] == [sugar["id"]]
    rest = api.get("/education/items", params={"limit": 1, "before": page["next"]}).json()
    assert ([i["id"] for i in rest["items"]], rest["next"]) == ([bp["id"]], None)


def test_patch_changes_the_quiz_and_bumps_the_version_retire_is_final(api: Api) -> None:
    doc = new_item(api)
    quiz = {"pass_mark": 100, "questions": [{"text": "?", "choices": ["是", "否"], "correct": [0]}]}
    r = api.request("PATCH", f"/education/items/{doc['id']}", {"quiz": quiz, "tags": ["new"]})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["quiz"]["pass_mark"], r.json()["tags"]) == (2, 100, ["new"])
    assert r.json()["conditions"] == ["hypertension"]  # left out: stays
    assert api.post(f"/education/items/{doc['id']}/retire").json()["status"] == "retired"
    assert api.get("/education/items").json()["items"] == []
    error(api.request("PATCH", f"/education/items/{doc['id']}", {"duration_seconds": 60}), 409,
          "engagement.content_retired")
    error(api.post(f"/education/items/{doc['id']}/publish"), 409, "engagement.content_retired")
    pid = api.enrol()
    error(submit(api, doc["id"], pid, [[0]]), 409, "engagement.content_not_published")


# --- attempts ------------------------------------------------------------------------------

def test_a_pass_earns_20_once_later_passes_earn_nothing(api: Api) -> None:
    item = new_item(api)
    pid = api.enrol()
    r = submit(api, item["id"], pid, RIGHT, watched_seconds=600)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["passed"], doc["score"], doc["pass_mark"], doc["right"], doc["questions"]) == (True, 100, 60, 3, 3)
    assert [(a["rule"], a["points"]) for a in doc["outcome"]["awards"]] == [("education", 20)]
    assert doc["outcome"]["balance"] == 120
    assert api.balance(pid) == 120
    again = submit(api, item["id"], pid, TWO_RIGHT)
    assert again.status_code == 201, again.text
    assert again.json()["passed"] is True
    assert again.json()["outcome"]["awards"] == []
    assert again.json()["outcome"]["duplicate"] is True
    assert again.json()["outcome"]["event_id"] == doc["outcome"]["event_id"]
    assert [n["code"] for n in again.json()["outcome"]["notices"]] == ["engagement.already_completed"]
    assert api.balance(pid) == 120
    assert count(Event, type="education.completed") == 1
    assert count(QuizAttempt, patient_id=pid) == 2


def test_a_fail_earns_nothing_says_how_many_were_right_and_a_retry_can_pass(api: Api) -> None:
    item = new_item(api)
    pid = api.enrol()
    r = submit(api, item["id"], pid, ONE_RIGHT)
    assert r.status_code == 201, r.text
    assert (r.json()["passed"], r.json()["right"], r.json()["questions"], r.json()["score"]) == (False, 1, 3, 33)
    assert r.json()["outcome"]["awards"] == []
    assert [n["code"] for n in r.json()["outcome"]["notices"]] == ["engagement.quiz_not_passed"]
    assert "answers" not in r.json()  # how many were right, not which
    assert count(Event, type="education.completed") == 0
    assert api.balance(pid) == 100
    passed = submit(api, item["id"], pid, TWO_RIGHT)  # 66% ≥ 60%
    assert passed.json()["passed"] is True
    assert [(a["rule"], a["points"]) for a in passed.json()["outcome"]["awards"]] == [("education", 20)]
    assert api.balance(pid) == 120
    history = api.get(f"/education/items/{item['id']}/attempts", params={"patient_id": pid}).json()["items"]
    assert [h["passed"] for h in history] == [True, False]


def test_each_item_earns_for_each_patient(api: Api) -> None:
    one, two = new_item(api), new_item(api)
    a, b = api.enrol(), api.enrol()
    for item in (one, two):
        for pid in (a, b):
            assert submit(api, item["id"], pid, RIGHT).json()["outcome"]["awards"][0]["points"] == 20
    assert (api.balance(a), api.balance(b)) == (140, 140)


def test_the_same_idempotency_key_answers_the_stored_attempt(api: Api) -> None:
    item = new_item(api)
    pid = api.enrol()
    first = submit(api, item["id"], pid, RIGHT, idempotency_key="k1")
    assert first.status_code == 201, first.text
    replay = submit(api, item["id"], pid, RIGHT, idempotency_key="k1")
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    error(submit(api, item["id"], pid, ONE_RIGHT, idempotency_key="k1"), 409, "engagement.idempotency_conflict")
    assert count(QuizAttempt, patient_id=pid) == 1
    assert api.balance(pid) == 120


def test_a_patient_by_external_reference(api: Api) -> None:
    item = new_item(api)
    pid = api.enrol(external_ids=[{"system": "his:h1", "value": "MRN-7"}])
    r = api.post(f"/education/items/{item['id']}/attempts",
                 {"patient": {"system": "his:h1", "value": "MRN-7"}, "answers": RIGHT})
    assert r.status_code == 201, r.text
    assert r.json()["patient_id"] == pid
    error(api.post(f"/education/items/{item['id']}/attempts",
                   {"patient": {"system": "his:h1", "value": "nobody"}, "answers": RIGHT}), 404, "patients.not_found")


def test_double_submit_with_one_key_races_to_one_attempt(racing: Db, api: Api) -> None:
    item = new_item(api)
    pid = api.enrol()
    body = AttemptCreate(patient_id=pid, answers=RIGHT, idempotency_key="tap-twice")

    def go() -> tuple[dict[str, Any], bool]:
        with write_tx() as session:
            return education.attempt(session, item["id"], body, utc_now())

    results = race(racing, [go] * 6, lock=(_patients, [pid]))
    done = oks(results)
    assert len(done) == 6, results
    assert sorted(created for _doc, created in done) == [False] * 5 + [True]
    assert len({doc["id"] for doc, _created in done}) == 1
    assert count(QuizAttempt, patient_id=pid) == 1
    assert count(EducationCompletion, patient_id=pid) == 1
    assert api.balance(pid) == 120


def test_racing_passes_with_different_keys_earn_once(racing: Db, api: Api) -> None:
    item = new_item(api)
    pid = api.enrol()

    def go(key: str) -> tuple[dict[str, Any], bool]:
        with write_tx() as session:
            return education.attempt(session, item["id"], AttemptCreate(patient_id=pid, answers=RIGHT,
                                                                        idempotency_key=key), utc_now())

    results = race(racing, [lambda k=k: go(k) for k in "abcde"], lock=(_patients, [pid]))  # type: ignore[misc]
    done = oks(results)
    assert len(done) == 5, results
    assert sorted(len(doc["outcome"]["awards"]) for doc, _c in done) == [0, 0, 0, 0, 1]
    assert count(Event, type="education.completed") == 1
    assert api.balance(pid) == 120


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"kind": "podcast"},
    {"title": {"zh": ""}},
    {"title": {"zh": "x" * 201}},
    {"duration_seconds": 0},
    {"duration_seconds": 4 * 3600 + 1},
    {"body_url": None},  # neither body
    {"body_text": "both bodies"},
    {"body_url": "ftp://x"},
    {"status": "retired"},
    {"tags": ["has space"]},
    {"conditions": ["x" * 65]},
    {"quiz": {"pass_mark": 0, "questions": [{"text": "?", "choices": ["a", "b"], "correct": [0]}]}},
    {"quiz": {"pass_mark": 101, "questions": [{"text": "?", "choices": ["a", "b"], "correct": [0]}]}},
    {"quiz": {"pass_mark": 50, "questions": []}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": ["a", "b"], "correct": [0]}] * 21}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": ["a"], "correct": [0]}]}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": list("abcdefg"), "correct": [0]}]}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": ["a", "b"], "correct": [2]}]}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": ["a", "b"], "correct": [0, 1]}]}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": ["a", "b"], "correct": []}]}},
    {"quiz": {"pass_mark": 50, "questions": [{"text": "?", "choices": ["a", " "], "correct": [0]}]}},
    {"quiz": {"pass_mark": 50, "questions": [{"id": "x", "text": "?", "choices": ["a", "b"], "correct": [0]},
                                             {"id": "x", "text": "?", "choices": ["a", "b"], "correct": [0]}]}},
    {"extra": 1},
])
def test_bad_content_is_422(api: Api, change: dict[str, Any]) -> None:
    error(api.post("/education/items", item_body(**change)), 422, "request.invalid")


@pytest.mark.parametrize("body", [
    {"answers": RIGHT},  # no patient
    {"patient_id": "p", "patient": {"id": "p"}, "answers": RIGHT},
    {"patient_id": "p"},
    {"patient_id": "p", "answers": [[7]]},
    {"patient_id": "p", "answers": [[-1]]},
    {"patient_id": "p", "answers": [[0]] * 21},
    {"patient_id": "p", "answers": RIGHT, "watched_seconds": -1},
    {"patient_id": "p", "answers": RIGHT, "idempotency_key": ""},
    {"patient_id": "p", "answers": RIGHT, "score": 100},
])
def test_bad_attempts_are_422(api: Api, body: dict[str, Any]) -> None:
    item = new_item(api)
    error(api.post(f"/education/items/{item['id']}/attempts", body), 422, "request.invalid")


@pytest.mark.parametrize("answers", [[[1], [0, 2]], [[1], [0, 2], [0], [0]], [[5], [0, 2], [0]],
                                     [[0, 1], [0, 2], [0]], [[1], [0, 0], [0]]])
def test_answers_that_do_not_fit_the_quiz_are_422_with_a_code(api: Api, answers: list[list[int]]) -> None:
    item = new_item(api)
    pid = api.enrol()
    error(submit(api, item["id"], pid, answers), 422, "engagement.quiz_answers_invalid")
    assert count(QuizAttempt) == 0


def test_unknown_ids_are_404(api: Api) -> None:
    item = new_item(api)
    pid = api.enrol()
    error(api.get(f"/education/items/{UNKNOWN}"), 404, "engagement.content_not_found")
    error(api.get("/education/items/not-an-id"), 404, "engagement.content_not_found")
    error(submit(api, UNKNOWN, pid, RIGHT), 404, "engagement.content_not_found")
    error(api.post(f"/education/items/{UNKNOWN}/publish"), 404, "engagement.content_not_found")
    error(api.request("PATCH", f"/education/items/{UNKNOWN}", {"duration_seconds": 5}), 404,
          "engagement.content_not_found")
    error(submit(api, item["id"], UNKNOWN, RIGHT), 404, "patients.not_found")
    error(api.get(f"/education/items/{UNKNOWN}/attempts", params={"patient_id": pid}), 404,
          "engagement.content_not_found")


def test_a_draft_cannot_be_attempted(api: Api) -> None:
    item = new_item(api, status="draft")
    error(submit(api, item["id"], api.enrol(), RIGHT), 409, "engagement.content_not_published")


def test_permissions(api: Api) -> None:
    item = new_item(api)
    desk = api.make_key("integration", "app")
    error(api.post("/education/items", item_body(), key=desk), 403, "auth.forbidden")
    error(api.post(f"/education/items/{item['id']}/retire", key=desk), 403, "auth.forbidden")
    assert api.get("/education/items", key=desk).status_code == 200
    assert submit(api, item["id"], api.enrol(), RIGHT, key=desk).status_code == 201
    error(api.get("/education/items", auth=False), 401, "auth.unauthenticated")
