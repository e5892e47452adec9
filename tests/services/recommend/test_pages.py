"""The recommendation pages over real HTTP on SQLite and PostgreSQL: the home page loads the 为您推荐
block (each suggestion with 为什么推荐 and its reason; fewer in elderly mode; hidden when switched
off), the full list with the careful note, the settings page's switch (stored, audited, a bad value
422, the way back kept on our pages), and a patient seeing only their own suggestions — or, acting
for someone who authorised them, that person's, while the switch stays their own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import proxies
from tests.pages.helpers import patient_client
from tests.services.recommend.kit import audits, condition, item, switch_rows

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _recs(html: str) -> list[str]:
    return re.findall(r'data-rec="([a-z_]+)"', html)


def test_the_home_page_shows_suggestions_with_their_reasons(api: Api) -> None:
    pid = api.enrol()
    condition(api, pid, "hypertension")
    item(api, "高血压的日常管理", conditions=("hypertension",))
    client = patient_client(pid)
    home = client.get("/")
    assert home.status_code == 200
    assert 'hx-get="/me/recommendations/card"' in home.text
    card = client.get("/me/recommendations/card")
    assert card.status_code == 200, card.text[:500]
    assert "为您推荐" in card.text
    assert _recs(card.text) == ["hypertension_bp", "hypertension_content", "online_services_lecture"]
    bp = re.search(r'<li data-rec="hypertension_bp".*?</li>', card.text, re.S)
    assert bp, card.text[:2000]
    assert 'href="/me/health#h-bp"' in bp.group(0)
    assert "为什么推荐" in bp.group(0)
    assert "因为您登记了高血压" in bp.group(0)
    english = patient_client(pid, lang="en").get("/me/recommendations/card")
    assert "Why this?" in english.text
    assert "Because hypertension is registered for you" in english.text
    elderly = patient_client(pid, elderly=True).get("/me/recommendations/card")
    assert _recs(elderly.text) == ["hypertension_bp", "hypertension_content"]
    full = client.get("/me/recommendations")
    assert full.status_code == 200
    assert _recs(full.text)[:3] == ["hypertension_bp", "hypertension_content", "online_services_lecture"]
    assert "为什么推荐:" in full.text
    assert "data-disclaimer" in full.text
    assert "不能代替医生的意见" in full.text
    assert 'data-recommend-switch data-enabled="true"' in full.text


def test_the_settings_switch_turns_them_off_and_on(api: Api) -> None:
    pid = api.enrol()
    condition(api, pid, "hypertension")
    client = patient_client(pid)
    settings = client.get("/me/settings")
    assert 'hx-get="/me/recommendations/switch"' in settings.text
    form = client.get("/me/recommendations/switch")
    assert form.status_code == 200
    assert "现在:已打开" in form.text
    off = client.submit("/me/recommendations/switch", {"enabled": "0", "next": "/me/settings"})
    assert (off.status_code, off.headers["location"]) == (303, "/me/settings")
    assert switch_rows() == [{"patient_id": pid, "enabled": False}]
    assert [(a["actor_kind"], a["details"]) for a in audits("recommend:settings:update")] == [
        ("patient", {"enabled": False})]
    assert "现在:已关闭" in client.get("/me/recommendations/switch").text
    card = client.get("/me/recommendations/card")
    assert "data-recommendations-empty" in card.text
    assert "hidden" in card.text
    assert _recs(card.text) == []
    assert "data-recommendations-off" in client.get("/me/recommendations").text
    bad = client.submit("/me/recommendations/switch", {"enabled": "2"})
    assert bad.status_code == 422
    assert "请选择打开或关闭推荐" in bad.text
    assert client.submit("/me/recommendations/switch", {"enabled": "maybe"}).status_code == 422
    assert switch_rows() == [{"patient_id": pid, "enabled": False}]
    on = client.submit("/me/recommendations/switch", {"enabled": "1", "next": "//evil.example/x"})
    assert (on.status_code, on.headers["location"]) == (303, "/me/settings")
    assert _recs(client.get("/me/recommendations/card").text)[0] == "hypertension_bp"
    back = client.submit("/me/recommendations/switch", {"enabled": "0", "next": "/me/recommendations"})
    assert back.headers["location"] == "/me/recommendations"


def test_a_patient_sees_only_their_own_or_whom_they_act_for(api: Api) -> None:
    mine, theirs = api.enrol(), api.enrol()
    condition(api, theirs, "hypertension")
    # naming someone who never authorised me: my own page, never theirs
    uninvited = patient_client(mine, acting_for=theirs)
    for path in ("/me/recommendations/card", "/me/recommendations"):
        r = uninvited.get(path)
        assert r.status_code == 200
        assert "hypertension_bp" not in _recs(r.text), path
    with write_tx() as s:
        proxies.authorise(s, theirs, proxies.Proxy(mine), ["view"], utc_now())
    acting = patient_client(mine, acting_for=theirs)
    assert _recs(acting.get("/me/recommendations/card").text)[0] == "hypertension_bp"
    full = acting.get("/me/recommendations")
    assert "data-recommend-switch" not in full.text  # their switch is theirs
    # the switch page is always the signed-in patient's own: acting for them changes mine only
    r = acting.submit("/me/recommendations/switch", {"enabled": "0"})
    assert r.status_code == 303
    assert switch_rows() == [{"patient_id": mine, "enabled": False}]
    assert _recs(acting.get("/me/recommendations/card").text)[0] == "hypertension_bp"
