"""The pages' static assets (src/carepoints/static): our CSS and JS and the vendored front-end
packages (htmx, WeUI, ECharts; see static/vendor/README.md). Nothing is loaded from outside."""

from __future__ import annotations

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class StaticAssets(StaticFiles):
    """StaticFiles with a day's caching (URLs carry the release as ?v=) and nosniff."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=86400"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
