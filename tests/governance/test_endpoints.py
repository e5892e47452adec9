"""The governance API over HTTP: drafts (maker-checker), terms and versions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from carepoints.kit.time import utc_now
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

SUMMARY = {"zh": "健康讲座积分调整为40分", "en": "Health lectures earn 40 points"}


def _body(**extra: Any) -> dict[str, Any]:
    return {"changes": {"rules": [{"code": "lecture", "points": 40}]}, "summary": SUMMARY,
            "activate_at": (utc_now() + timedelta(days=3)).isoformat(), **extra}


def test_draft_approve_by_another_admin(api: Api) -> None:
    checker = api.make_key("admin", "checker")
    r = api.post("/programme/drafts", _body())
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["status"] == "draft"
    assert draft["change_kinds"] == ["rules"]
    assert draft["diff"]["rules"] == [{"code": "lecture", "change": "changed",
                                       "fields": [{"field": "points", "old": 30, "new": 40}]}]
    did = draft["id"]

    r = api.post(f"/programme/drafts/{did}/approve", {"note": "自己批准"})
    assert r.status_code == 409
    assert r.json()["error"] == "programme.approver_is_author"
    r = api.post(f"/programme/drafts/{did}/approve", {"note": "同意"}, key=checker)
    assert r.status_code == 200, r.text
    assert r.json()["installed_version"] == 2
    assert r.json()["status"] == "approved"
    r = api.post(f"/programme/drafts/{did}/approve", key=checker)
    assert r.status_code == 409
    assert r.json()["error"] == "programme.draft_not_open"

    r = api.get("/programme/drafts", params={"status": "approved"})
    assert [d["id"] for d in r.json()["items"]] == [did]

    # public: the history shows the new version with its summary, the terms the upcoming change
    r = api.get("/programme/versions", auth=False)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [v["version"] for v in items] == [2, 1]
    assert items[0]["summary"] == SUMMARY
    assert items[1]["summary"] is None
    terms = api.get("/programme/terms", auth=False).json()
    assert terms["version"] == 1
    assert terms["upcoming"]["version"] == 2
    assert terms["upcoming"]["summary"] == SUMMARY["zh"]
    lecture = next(r for r in terms["upcoming"]["rules"] if r["code"] == "lecture")
    assert lecture["points"] == 40
    assert lecture["text"] == "健康讲座:+40积分(每场讲座限一次)"


def test_bad_drafts_are_clear_4xx(api: Api) -> None:
    r = api.post("/programme/drafts", _body(changes={"settings": {"annual_cap": -1}}))
    assert r.status_code == 422
    assert r.json()["error"] == "programme.invalid"
    assert r.json()["fields"][0]["loc"] == ["document", "settings", "annual_cap"]
    r = api.post("/programme/drafts", _body(changes={"rules": [{"code": "lecture", "points": 30}]}))
    assert r.status_code == 400
    assert r.json()["error"] == "programme.no_changes"
    r = api.post("/programme/drafts", _body(activate_at=(utc_now() - timedelta(hours=1)).isoformat()))
    assert r.status_code == 400
    assert r.json()["error"] == "programme.activate_at_past"
    r = api.post("/programme/drafts", _body(document={"name": {"zh": "x", "en": "x"}, "rules": []}))
    assert r.status_code == 422
    assert r.json()["error"] == "request.invalid"
    r = api.post("/programme/drafts", {"summary": SUMMARY, "activate_at": "2030-01-01T00:00:00"})
    assert r.status_code == 422  # naive time, no source
    r = api.get("/programme/drafts/not-an-id")
    assert r.status_code == 404
    assert r.json()["error"] == "programme.draft_not_found"


def test_whole_document_reject_and_withdraw(api: Api) -> None:
    checker = api.make_key("admin", "checker")
    doc = api.get("/programme/drafts").json()  # empty list first
    assert doc == {"items": []}
    with_doc = api.post("/programme/drafts", {
        "document": {"name": {"zh": "精简方案", "en": "Lean programme"},
                     "rules": [{"code": "welcome", "names": {"zh": "新用户注册", "en": "Welcome"},
                                "event": "account.registered", "points": 100, "limits": {"lifetime": 1}}]},
        "summary": SUMMARY, "activate_at": (utc_now() + timedelta(days=3)).isoformat()})
    assert with_doc.status_code == 201, with_doc.text
    assert set(with_doc.json()["change_kinds"]) >= {"rules", "settings"}
    assert "rewards" not in with_doc.json()["change_kinds"]  # a whole document keeps the catalogue
    refused = api.post("/programme/drafts", {"changes": {"rewards": [{"code": "fee_offset", "points": 120}]},
                                             "summary": SUMMARY,
                                             "activate_at": (utc_now() + timedelta(days=3)).isoformat()})
    error(refused, 400, "programme.rewards_not_in_drafts")
    did = with_doc.json()["id"]
    r = api.post(f"/programme/drafts/{did}/reject", {"note": "too lean"}, key=checker)
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    other = api.post("/programme/drafts", _body()).json()["id"]
    r = api.post(f"/programme/drafts/{other}/withdraw", key=checker)
    assert r.status_code == 409
    assert r.json()["error"] == "programme.not_author"
    r = api.post(f"/programme/drafts/{other}/withdraw")
    assert r.status_code == 200
    assert r.json()["status"] == "withdrawn"
    r = api.post(f"/programme/drafts/{other}/reject", {"note": "late"}, key=checker)
    assert r.status_code == 409
    assert r.json()["error"] == "programme.draft_not_open"


def test_permissions(api: Api) -> None:
    did = api.post("/programme/drafts", _body()).json()["id"]
    api.make_staff("gov.auditor", "correct horse battery", "auditor")
    token = api.client.post("/api/v1/auth/token", json={"username": "gov.auditor",
                                                        "password": "correct horse battery"}).json()["access_token"]
    assert api.get(f"/programme/drafts/{did}", key=token).status_code == 200
    assert api.post(f"/programme/drafts/{did}/approve", key=token).status_code == 403
    integration = api.make_key("integration", "his")
    assert api.get("/programme/drafts", key=integration).status_code == 403
    assert api.post("/programme/drafts", _body(), key=integration).status_code == 403
    assert api.get("/programme/drafts", auth=False).status_code == 401


def test_terms_api_content(api: Api) -> None:
    zh = api.get("/programme/terms", auth=False).json()
    assert zh["version"] == 1
    assert zh["upcoming"] is None
    assert zh["name"] == "默认积分方案"
    assert zh["effective_date"] == api.now().date().isoformat()  # version 1: the day it was loaded
    assert [r["code"] for r in zh["core"]] == ["book_ahead", "on_time", "cancel_early", "health_checkin", "no_show"]
    assert zh["core"][4]["text"] == "爽约:扣50积分(每次预约限一次)"
    assert zh["settings"]["annual_cap"]["points"] == 10000
    assert zh["settings"]["point_value"] == {"points": 100, "cny": "10", "text": "100积分可抵10元"}
    en = api.get("/programme/terms", params={"lang": "en"}, auth=False).json()
    assert en["core"][0]["name"] == "Booked ahead"
    assert api.get("/programme/terms", params={"lang": "fr"}, auth=False).status_code == 422


def test_terms_page(api: Api) -> None:
    r = api.client.get("/terms")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "积分规则" in html
    assert "提前预约" in html
    assert "爽约" in html
    assert "第 1 版" in html
    assert html.index("提前预约") < html.index("新用户注册")  # core rules first
    en = api.client.get("/terms?lang=en").text
    assert "Points rules" in en
    assert "Booked ahead" in en
    bad = api.client.get("/terms?lang=fr")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
