"""The cost estimate pages over real HTTP on SQLite and PostgreSQL: the patient's /me/costs (the
estimate from the address, the cheaper-equivalent hint and its switch, elderly mode, refusals shown
in the page, a proxy), the desk's printable /staff/costs, and the admin's /admin/pricing (upload →
preview → confirm, a file with errors imports nothing, the 乙 share form), with who may open which."""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

from sqlalchemy import text

from carepoints.kit.db import get_engine, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import proxies
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.helpers import patient_client, staff_client
from tests.services.pricing.kit import ITEMS, csv_bytes, institution, load_all

CSV = "text/csv"


def _count(sql: str) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _href(page: str, marker: str) -> str:
    m = re.search(r'href="([^"]+)"[^>]*' + marker, page)
    assert m, marker
    return html.unescape(m.group(1))


def test_the_patient_sees_a_running_estimate(db: Db) -> None:
    now = utc_now()
    inst = institution(now)
    pid = enrol(now, phone="13900005501")
    client = patient_client(pid)
    empty = client.get("/me/costs")
    assert empty.status_code == 200
    assert "data-no-catalogue" in empty.text
    load_all(inst, now)

    page = client.get("/me/costs")
    assert page.status_code == 200, page.text[:500]
    assert "实际费用以医院收费为准" in page.text
    assert "医保报销比例以当地政策为准" in page.text
    assert "data-empty" in page.text
    assert page.text.count("data-item=") == 9  # one page of 10 holds the whole list
    assert 'data-package="PKG1"' in page.text

    found = client.get("/me/costs", params={"q": "氨氯"})
    assert found.text.count("data-item=") == 3
    add = _href(found.text, 'data-add aria-label="加入 氨氯地平片\\(原研\\)"')
    assert "item=D-BRAND%3A1" in add
    one = client.get(add)
    assert 'data-line="D-BRAND"' in one.text
    assert "data-amount>¥98.50<" in one.text
    assert "同类可选: 氨氯地平片(国产) 便宜 ¥86.50" in one.text  # the 甲 one: nothing to pay oneself
    two = client.get(_href(one.text, "data-inc"))
    assert "data-amount>¥197.00<" in two.text
    assert "便宜 ¥173.00" in two.text  # the saving for the quantity
    assert 'data-self-pay-total>¥19.70<' in two.text
    swapped = client.get(_href(two.text, "data-swap"))
    assert 'data-line="D-GEN2"' in swapped.text
    assert 'data-line="D-BRAND"' not in swapped.text
    assert "data-amount>¥24.00<" in swapped.text  # the same quantity, switched
    assert "data-self-pay-total>¥0.00<" in swapped.text

    with_pkg = client.get(_href(swapped.text, 'data-toggle-package aria-label="选择 白内障套餐"'))
    assert 'data-chosen-package="PKG1"' in with_pkg.text
    assert "data-total>¥3464.00<" in with_pkg.text  # 24.00 + 3440.00
    assert "data-self-pay-total>¥1160.00<" in with_pkg.text
    gone = client.get(_href(with_pkg.text, "data-remove"))
    assert 'data-line="D-GEN2"' not in gone.text
    assert "data-total>¥3440.00<" in gone.text
    cleared = client.get(_href(gone.text, "data-clear"))
    assert "data-empty" in cleared.text


def test_the_patient_page_in_elderly_mode_english_and_with_refusals(db: Db) -> None:
    now = utc_now()
    inst = institution(now)
    load_all(inst, now)
    pid = enrol(now, phone="13900005502")
    elderly = patient_client(pid, elderly=True).get("/me/costs")
    assert 'class="elderly"' in elderly.text
    assert elderly.text.count("data-item=") == 5  # fewer results at a time
    assert "data-next" in elderly.text
    en = patient_client(pid, lang="en").get("/me/costs", params={"item": "D-BRAND:1"})
    assert "The hospital&#39;s bill is final" in en.text
    assert "Equivalent: Amlodipine (local), ¥86.50 cheaper" in en.text
    client = patient_client(pid)
    unknown = client.get("/me/costs", params={"item": ["CT01:1", "NOPE:1"]})
    assert unknown.status_code == 200
    assert 'data-error="pricing.unknown_item"' in unknown.text
    assert "NOPE" in unknown.text
    too_many = client.get("/me/costs", params={"item": "CT01:1000"})
    assert 'data-error="pricing.invalid_quantity"' in too_many.text
    junk = client.get("/me/costs", params={"item": ["<script>:1", "CT01:x"], "category": "bogus", "offset": "-1"})
    assert junk.status_code == 200  # malformed parts of a typed address are left out
    assert "data-empty" in junk.text
    assert "<script>" not in junk.text


def test_a_proxy_sees_the_estimate_as_for_themself(db: Db) -> None:
    now = utc_now()
    inst = institution(now)
    load_all(inst, now)
    owner, helper = enrol(now, phone="13900005503"), enrol(now, phone="13900005504")
    with write_tx() as session:
        proxies.authorise(session, owner, proxies.Proxy(helper), ["book"], now)  # no view scope
    r = patient_client(helper, acting_for=owner).get("/me/costs", params={"item": "CT01:1"})
    assert r.status_code == 200
    assert "data-total>¥280.00<" in r.text
    me = patient_client(helper).get("/me")
    assert 'href="/me/costs"' in me.text  # the menu entry


def test_the_desk_prints_an_estimate(db: Db) -> None:
    now = utc_now()
    inst = institution(now)
    load_all(inst, now)
    desk, _ = staff_client("frontdesk")
    home = desk.get("/staff")
    assert 'href="/staff/costs"' in home.text
    r = desk.get("/staff/costs", params={"item": ["CT01:2", "TINY:1"], "package": "PKG1"})
    assert r.status_code == 200, r.text[:500]
    assert "data-print" in r.text
    assert "pages-pricing.js" in r.text
    assert 'data-line="CT01"' in r.text
    assert "data-total>¥4000.05<" in r.text  # 560.00 + 0.05 + 3440.00
    assert "data-self-pay-total>¥1216.01<" in r.text  # 56.00 + 0.01 + 1160.00
    assert "实际费用以医院收费为准" in r.text
    nurse, _ = staff_client("nurse")
    assert nurse.get("/staff/costs").status_code == 200
    moderator, _ = staff_client("moderator")
    assert moderator.get("/staff/costs").status_code == 403
    patient = patient_client(enrol(now, phone="13900005505"))
    assert patient.get("/staff/costs", follow_redirects=False).status_code == 303


def test_the_admin_previews_then_confirms_an_import(db: Db) -> None:
    now = utc_now()
    inst = institution(now)
    admin, _ = staff_client("admin")
    page = admin.get("/admin/pricing")
    assert page.status_code == 200
    assert f'value="{inst}"' in page.text
    assert 'href="/admin/pricing"' in page.text  # the menu entry

    bad = csv_bytes([*ITEMS, ["BAD", "坏行", "", "检查", "次", "abc", "甲", "", "", ""]])
    r = admin.submit("/admin/pricing/preview", {"institution_id": inst}, files={"file": ("bad.csv", bad, CSV)})
    assert r.status_code == 200, r.text[:500]
    assert 'data-error="pricing.invalid_rows"' in r.text
    assert '<tr data-row="11">' in r.text
    assert "data-confirm" not in r.text  # nothing to confirm
    assert _count("SELECT count(*) FROM price_import_uploads") == 0

    r = admin.submit("/admin/pricing/preview", {"institution_id": inst},
                     files={"file": ("目录.csv", csv_bytes(ITEMS, bom=True), CSV)})
    assert r.status_code == 200
    assert 'data-count="created">新增 9<' in r.text
    assert 'data-change="created" data-code="CT01"' in r.text
    assert _count("SELECT count(*) FROM price_items") == 0  # only a preview
    upload_id = re.search(r'name="upload_id" value="([^"]+)"', r.text)
    assert upload_id
    done = admin.submit("/admin/pricing/import", {"upload_id": upload_id.group(1)})
    assert done.status_code == 303
    assert unquote(done.headers["location"]) == f"/admin/pricing?institution_id={inst}&done=imported"
    listed = admin.get(done.headers["location"])
    assert "导入完成" in listed.text
    assert listed.text.count('data-item="') == 9
    assert _count("SELECT count(*) FROM price_items") == 9
    again = admin.submit("/admin/pricing/import", {"upload_id": upload_id.group(1)})  # once only
    assert again.status_code == 404
    assert 'data-error="pricing.upload_not_found"' in again.text

    changed = [list(r) for r in ITEMS if r[0] != "ROOM"]
    changed[0][5] = "300"
    r = admin.submit("/admin/pricing/preview", {"institution_id": inst}, files={"file": ("v2.csv", csv_bytes(changed),
                                                                                          CSV)})
    assert 'data-change="updated" data-code="CT01"' in r.text
    assert "280.00</del> → <ins class=\"cp-diff\">300.00" in r.text
    assert 'data-change="deactivated" data-code="ROOM"' in r.text
    missing = admin.submit("/admin/pricing/preview", {"institution_id": inst})
    assert missing.status_code == 422
    assert 'id="e-file"' in missing.text


def test_the_admin_sets_the_class_b_share(db: Db) -> None:
    now = utc_now()
    inst = institution(now)
    load_all(inst, now)
    admin, _ = staff_client("admin")
    r = admin.submit("/admin/pricing/settings", {"institution_id": inst, "class_b_percent": "25"})
    assert r.status_code == 303
    page = admin.get(r.headers["location"])
    assert "乙类自付比例已保存" in page.text
    assert 'value="25"' in page.text
    assert _count("SELECT class_b_self_pay_bp FROM pricing_settings") == 2500
    for bad in ("abc", "101", "12.345", "-1"):
        refused = admin.submit("/admin/pricing/settings", {"institution_id": inst, "class_b_percent": bad})
        assert refused.status_code == 422, bad
        assert 'id="e-class_b_percent"' in refused.text
    assert _count("SELECT class_b_self_pay_bp FROM pricing_settings") == 2500
    desk, _ = staff_client("frontdesk")
    assert desk.get("/admin/pricing").status_code == 403
    assert desk.submit("/admin/pricing/settings", {"institution_id": inst, "class_b_percent": "0"}).status_code == 403
    assert _count("SELECT class_b_self_pay_bp FROM pricing_settings") == 2500
