"""The one Jinja2 environment every server-rendered page uses (templates/ in the
package), with the helpers templates share: `tr(zh, en)` picks the page's
language (Chinese first), `say(message)` the half of a bilingual "中文 / English"
message, `local` / `day` show an instant in the hospital's time zone and
`static(path)` names a packaged asset with a cache-busting version."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from carepoints import __version__
from carepoints.config import get_settings

LANGS = ("zh", "en")


def pick(lang: str, zh: str, en: str) -> str:
    """The text for `lang` (Chinese unless English is asked for)."""
    return en if lang == "en" else zh


def say(message: str | None, lang: str) -> str:
    """One language's half of a bilingual message ("中文 / English", as AppError messages are)."""
    if not message:
        return ""
    zh, sep, en = message.partition(" / ")
    if not sep:
        return message
    return en.strip() if lang == "en" else zh.strip()


@pass_context
def _tr(ctx: Context, zh: str, en: str) -> str:
    return pick(str(ctx.get("lang", "zh")), zh, en)


@pass_context
def _say(ctx: Context, message: str | None) -> str:
    return say(message, str(ctx.get("lang", "zh")))


def local(at: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant (aware datetime or ISO text) in the hospital's time zone."""
    if at is None or at == "":
        return ""
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if at.tzinfo is None:
        return at.strftime(fmt)
    return at.astimezone(get_settings().tz).strftime(fmt)


def day(at: datetime | date | str | None) -> str:
    if isinstance(at, date) and not isinstance(at, datetime):
        return at.isoformat()
    return local(at, "%Y-%m-%d")


def points(value: Any) -> str:
    """Points with a sign for movements: +10, −5 (a real minus sign), 0."""
    n = int(value or 0)
    return f"+{n}" if n > 0 else (f"−{-n}" if n < 0 else "0")


def static(path: str) -> str:
    return f"/static/{path}?v={__version__}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("carepoints", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(tr=_tr, say=_say, static=static)
    env.filters.update(local=local, day=day, points=points)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
