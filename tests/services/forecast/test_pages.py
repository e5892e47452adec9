"""The admin's 智能号源 page over HTTP on SQLite and PostgreSQL: run a forecast from the form, read
the models and the chart, apply a suggestion with the CSRF token, a refusal shown on the page, the
auditor reading without buttons, other staff refused (the sweep in tests/pages checks sign-in and
CSRF on every route)."""

from __future__ import annotations

import json
import re

from tests.conftest import Db
from tests.pages.helpers import staff_client
from tests.services.forecast.world import Demand, capacity_of


def test_run_and_apply_from_the_page(db: Db) -> None:
    w = Demand(weeks=5)
    admin, _user = staff_client("admin")
    r = admin.get("/admin/forecast")
    assert r.status_code == 200, r.text[:800]
    assert "还没有预测" in r.text
    assert '<a href="/admin/forecast" aria-current="page">' in r.text
    r = admin.submit("/admin/forecast/runs", {"weeks": "9"})
    assert r.status_code == 422
    assert "请选择 1 到 8 周" in r.text
    r = admin.submit("/admin/forecast/runs", {"weeks": "2", "headroom": "3"})
    assert r.status_code == 422
    assert "余量系数" in r.text
    r = admin.submit("/admin/forecast/runs", {"weeks": "2"})
    assert r.status_code == 303, r.text[:800]
    r = admin.get(r.headers["location"])
    assert "预测已完成" in r.text
    assert 'data-model="holt_winters"' in r.text
    assert "data-chosen" in r.text
    option = json.loads(re.search(r"data-chart='([^']+)'", r.text).group(1).replace("&#34;", '"'))  # type: ignore[union-attr]
    assert [s["name"] for s in option["series"]] == ["实际", "回测", "预测"]
    assert len(option["xAxis"]["data"]) == 35 + 14
    tue = re.search(r'data-suggestion="([^"]+)" data-status="pending">\s*<td>[^<]*周二', r.text)
    assert tue, r.text
    sid = tue.group(1)
    w.book(w.thursday["id"], 6)
    thu = re.search(r'data-suggestion="([^"]+)" data-status="pending">\s*<td>[^<]*周四', r.text)
    assert thu
    r = admin.submit(f"/admin/forecast/suggestions/{thu.group(1)}/apply", {"department": w.department})
    assert r.status_code == 409
    assert 'data-error="scheduling.capacity_below_booked"' in r.text
    r = admin.submit(f"/admin/forecast/suggestions/{sid}/apply", {"department": w.department})
    assert r.status_code == 303
    assert r.headers["location"] == f"/admin/forecast?done=applied&department={w.department}#s-{sid}"
    r = admin.get(r.headers["location"])
    assert "已按建议调整号源数量" in r.text
    assert f'data-suggestion="{sid}" data-status="applied"' in r.text
    assert capacity_of(w.tuesday["id"]) == (11, 11)
    auditor, _ = staff_client("auditor")
    r = auditor.get("/admin/forecast")
    assert r.status_code == 200
    assert "data-run-form" not in r.text
    assert "data-apply" not in r.text
    assert 'data-model="holt_winters"' in r.text
    assert auditor.submit("/admin/forecast/runs", {"weeks": "1"}).status_code == 403
    desk, _ = staff_client("frontdesk")
    assert desk.get("/admin/forecast").status_code == 403
    en = admin.get("/admin/forecast?lang=en")
    assert "Demand-driven quotas" in en.text
    assert "Held-back WAPE" in en.text
