"""The programme's terms as a page (积分规则): server-rendered, Chinese by default
(`?lang=en`), phone first, large type, no JavaScript. Public, like the API resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.templating import environment
from carepoints.kit.time import utc_now
from carepoints.rules import governance
from carepoints.rules.engine import EPOCH

router = APIRouter(include_in_schema=False)

_WORDS: dict[str, dict[str, str]] = {
    "zh": {"title": "积分规则", "version": "第 {n} 版", "effective": "生效日期", "core": "主要规则",
           "important": "重要说明", "more": "其他积分规则", "history": "规则版本记录", "tiers": "会员等级",
           "in_force": "现行版本", "scheduled": "即将生效", "other_lang": "English", "sep": ";",
           "upcoming_before": "积分规则将于 ", "upcoming_after": " 更新", "upcoming_rules": "查看新规则",
           "help": "如有疑问,请咨询医院积分服务窗口。"},
    "en": {"title": "Points rules", "version": "Version {n}", "effective": "In effect from", "core": "Main rules",
           "important": "Good to know", "more": "More ways to earn", "history": "Version history", "tiers": "Tiers",
           "in_force": "in force", "scheduled": "coming soon", "other_lang": "中文", "sep": "; ",
           "upcoming_before": "The points rules change on ", "upcoming_after": "",
           "upcoming_rules": "See the new rules",
           "help": "Questions? Ask at the hospital's points service desk."},
}


def _day(at: datetime) -> str:
    return at.astimezone(get_settings().tz).date().isoformat()


def _since(version: dict[str, Any]) -> str:
    """The local day a version took effect; the first version (in force "since ever") shows
    the day it was loaded."""
    at = version["effective_from"]
    return _day(version["loaded_at"] if at <= EPOCH else at)


def render_error(body: dict[str, Any], status: int, headers: dict[str, str] | None,
                 request: Any = None) -> Response:
    """Errors under /terms as a page (kit.web.error_surface)."""
    html = environment().get_template("error.html").render(lang="zh", title="无法显示此页面 / Cannot show this page",
                                                           detail=body.get("detail"))
    return HTMLResponse(html, status_code=status, headers=headers)


@router.get("/terms", response_class=HTMLResponse)
def terms_page(lang: Literal["zh", "en"] = Query("zh")) -> HTMLResponse:
    """The current points rules in plain words: the main rules first, then the rest, the
    upcoming change highlighted, and the version history."""
    now = utc_now()
    with read_tx() as session:
        terms = governance.current_terms(session, lang, now)
        history = governance.versions(session)
    for v in history:
        v["effective_date"] = _since(v)
        v["scheduled"] = v["effective_from"] > now
        if v["summary"]:
            v["summary"] = v["summary"][lang]
    other = "zh" if lang == "en" else "en"
    html = environment().get_template("rules/terms.html").render(
        lang=lang, t=_WORDS[lang], terms=terms, s=terms["settings"], upcoming=terms["upcoming"], history=history,
        effective_date=terms["effective_date"], other_lang=other,
        other_lang_href="/terms" if other == "zh" else "/terms?lang=en")
    return HTMLResponse(html)
