"""Photo check-ins: content-checked type, size limit, EXIF stripped, paid once a day, family only."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from PIL import Image

from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (8, 8), (10, 200, 10))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (30.0, 15.0, 0.0)}  # GPS info
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def task(api: Api, code: str = "brush", **extra: Any) -> str:
    r = api.post("/photo-tasks", {"code": code, "title": {"zh": "刷牙打卡", "en": "Brushing"}, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def checkin(api: Api, task_id: str, pid: str, data: bytes, name: str = "p.png", **form: str) -> Any:
    return api.post(f"/photo-tasks/{task_id}/checkins", files={"file": (name, data, "image/jpeg")},
                    data={"patient_id": pid, **form})


def test_png_accepted_stored_and_paid_once_a_day(api: Api) -> None:
    pid, tid = api.enrol(), task(api, per_day=2)
    before = api.balance(pid)
    r = checkin(api, tid, pid, png())
    assert r.status_code == 201, r.text
    assert r.json()["media_type"] == "image/png"
    assert api.balance(pid) == before + 10
    assert checkin(api, tid, pid, png()).status_code == 201
    assert api.balance(pid) == before + 10  # the default rule pays 10 a day
    error(checkin(api, tid, pid, png()), 409, "engagement.photo_daily_limit")
    got = api.get(f"/photos/{r.json()['photo_id']}")
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).format == "PNG"
    assert api.get(f"/photos/{r.json()['photo_id']}", auth=False).status_code == 401


def test_exif_is_stripped(api: Api) -> None:
    raw = jpeg_with_exif()
    assert b"SecretCam" in raw
    pid, tid = api.enrol(), task(api)
    r = checkin(api, tid, pid, raw, "x.jpg")
    assert r.status_code == 201, r.text
    stored = api.get(f"/photos/{r.json()['photo_id']}").content
    assert b"SecretCam" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()


def test_type_is_judged_by_content(api: Api) -> None:
    pid, tid = api.enrol(), task(api)
    error(checkin(api, tid, pid, b"just some text, not an image", "fake.jpg"), 415, "engagement.photo_type")
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    error(checkin(api, tid, pid, gif.getvalue(), "a.png"), 415, "engagement.photo_type")
    error(checkin(api, tid, pid, png()[:60], "cut.png"), 422, "engagement.photo_invalid")
    error(checkin(api, tid, pid, b"", "empty.png"), 422, "engagement.photo_invalid")


def test_oversize_is_413(api: Api) -> None:
    from carepoints.config import get_settings

    pid, tid = api.enrol(), task(api)
    limit = get_settings().photo_max_bytes
    error(checkin(api, tid, pid, png() + b"\0" * limit), 413, "engagement.photo_too_large")


def test_family_member_for_child_allowed_stranger_refused(api: Api) -> None:
    child = api.enrol(birth_date="2020-05-01",  # under 14: a guardian's consent (PIPL)
                      consent={"version": "1.0", "accepted_at": "2026-01-01T00:00:00+08:00", "source": "guardian"})
    parent, stranger = api.enrol(), api.enrol()
    hh = api.post("/households", {"name": "家", "head": {"id": parent}})
    assert hh.status_code == 201, hh.text
    r = api.post(f"/households/{hh.json()['id']}/members", {"patient_id": child})
    assert r.status_code in (200, 201), r.text
    tid = task(api, target="child")
    assert checkin(api, tid, child, png(), done_by_patient_id=parent).status_code == 201
    error(checkin(api, tid, child, png(), done_by_patient_id=stranger), 403, "engagement.photo_done_by_not_family")
    error(checkin(api, tid, parent, png()), 422, "engagement.photo_task_not_for_patient")


def test_bad_input_is_4xx_with_a_code(api: Api) -> None:
    pid, tid = api.enrol(), task(api)
    error(api.post("/photo-tasks", {"code": "brush", "title": {"zh": "x"}}), 409, "engagement.photo_task_exists")
    for body in ({"code": "x", "title": {"zh": "x"}, "per_day": 4}, {"code": "Bad Code", "title": {"zh": "x"}},
                 {"code": "x", "title": {}}, {"code": "x", "title": {"zh": "x"}, "target": "adult"}):
        r = api.post("/photo-tasks", body)
        assert r.status_code == 422, body
        assert r.json()["error"], body
    error(checkin(api, "nope", pid, png()), 404, "engagement.photo_task_not_found")
    assert checkin(api, tid, "nobody", png()).status_code == 404
    r = api.post(f"/photo-tasks/{tid}/checkins", data={"patient_id": pid})
    assert r.status_code == 422
    assert r.json()["error"]
    r = checkin(api, tid, pid, png(), taken_at="yesterday")
    assert r.status_code == 422
    assert r.json()["error"]
    error(api.get("/photos/nope"), 404, "engagement.photo_not_found")
    off = task(api, "off", active=False)
    error(checkin(api, off, pid, png()), 409, "engagement.photo_task_inactive")
