"""Pure parts of notifications, without a database: quiet hours, backoff,
template lookup, rendering and the hospital's override file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from carepoints.notifications import channels
from carepoints.notifications import templates as tpl
from carepoints.notifications.dispatch import after_quiet, backoff, parse_window
from carepoints.security import signing

CST = ZoneInfo("Asia/Shanghai")
NIGHT = (time(21, 30), time(7, 30))


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 6, day, hh, mm, ss, tzinfo=CST)


@pytest.mark.parametrize(("moment", "expected"), [
    (at(15, 21, 29, 59), at(15, 21, 29, 59)),  # just before: sent now
    (at(15, 21, 30), at(16, 7, 30)),  # the window starts: wait for its end tomorrow
    (at(15, 23, 59), at(16, 7, 30)),
    (at(16, 0, 1), at(16, 7, 30)),  # after midnight: the end is the same day
    (at(16, 7, 29, 59), at(16, 7, 30)),
    (at(16, 7, 30), at(16, 7, 30)),  # the end itself is outside
    (at(16, 12, 0), at(16, 12, 0)),
])
def test_quiet_hours_wrapping_midnight(moment: datetime, expected: datetime) -> None:
    assert after_quiet(moment.astimezone(UTC), NIGHT, CST) == expected.astimezone(UTC)


def test_quiet_hours_within_a_day_and_none() -> None:
    lunch = (time(12, 0), time(14, 0))
    assert after_quiet(at(15, 11, 59), lunch, CST) == at(15, 11, 59)
    assert after_quiet(at(15, 12, 0), lunch, CST) == at(15, 14, 0)
    assert after_quiet(at(15, 13, 59), lunch, CST) == at(15, 14, 0)
    assert after_quiet(at(15, 14, 0), lunch, CST) == at(15, 14, 0)
    assert after_quiet(at(15, 22, 0), None, CST) == at(15, 22, 0)
    assert parse_window("08:00", "08:00") is None
    assert parse_window(None, None) is None
    assert parse_window("21:30", "07:30") == NIGHT


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 30, 3600).total_seconds() for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert backoff(1000, 30, 3600) == timedelta(seconds=3600)


def test_variant_first_then_topic() -> None:
    reg = tpl.BUILTIN
    assert tpl.lookup(reg, "health.advice", "bp_high") is reg["health.advice.bp_high"]
    assert tpl.lookup(reg, "health.advice", "something_new") is reg["health.advice"]
    assert tpl.lookup(reg, "education.quiz_failed", None) is None
    assert tpl.variant_of("points.changed", {"points": 50}) == "earned"
    assert tpl.variant_of("points.changed", {"points": -50}) == "deducted"
    assert tpl.variant_of("appointment.waitlist", {"event": "offered"}) == "offered"
    assert tpl.variant_of("health.advice", {"variant": "glucose_low"}) == "glucose_low"
    assert tpl.variant_of("care.inactivity", {}) is None


def test_render_fills_payload_and_derived_values() -> None:
    params = tpl.params_of({"patient_id": "p", "points": 120, "expires_at": "2026-07-01T15:59:00.000000Z"}, CST)
    out = tpl.render(tpl.BUILTIN["points.expiring"], params)
    assert out.body_zh == "您有 120 积分将于 2026-07-01 到期,请及时使用。"  # 23:59 local on 1 July
    assert "2026-07-01" in out.body_en
    reminder = tpl.render(tpl.BUILTIN["appointment.reminder"],
                          tpl.params_of({"slot_start": "2026-06-16T01:00:00+00:00"}, CST))
    assert "2026-06-16 09:00" in reminder.body_zh
    tier = tpl.render(tpl.BUILTIN["tiers.changed"], tpl.params_of({"to": "gold"}, CST))
    assert tier.body_zh == "您的会员等级已变更为金卡。"
    assert tier.body_en == "Your tier is now Gold."
    with pytest.raises(tpl.RenderError):
        tpl.render(tpl.BUILTIN["points.expiring"], tpl.params_of({"points": 1}, CST))


def test_sms_templates_carry_no_health_wording() -> None:
    """What may go by SMS says nothing about readings, diagnoses or departments."""
    words = re.compile(r"血压|血糖|诊断|科|危急|检验|病|blood|glucose|diagnos|critical|lab", re.IGNORECASE)
    for t in tpl.BUILTIN.values():
        if "sms" in t.channels:
            assert not words.search(t.zh[1] + t.en[1]), t.key
    for name in ("health.advice.bp_high", "health.advice.glucose_high", "health.advice.glucose_low"):
        assert tpl.BUILTIN[name].channels == ("inbox",)


def test_every_template_has_both_languages_and_known_channels() -> None:
    for t in tpl.BUILTIN.values():
        assert all(t.zh), t.key
        assert all(t.en), t.key
        assert set(t.channels) <= set(tpl.CHANNELS)
        placeholders = set(tpl.PLACEHOLDER.findall(t.zh[1]))
        assert placeholders == set(tpl.PLACEHOLDER.findall(t.en[1])) or t.key in {"tiers.changed", "care.alert"}


def test_hospital_override_file(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text("""
templates:
  lab.critical_value.patient:
    zh: {title: 请联系医院, body: "请您尽快与主管医生联系。"}
    channels: [inbox]
  education.quiz_failed:
    audience: patient
    zh: {title: 测验未通过, body: "再试一次吧!"}
    en: {title: Quiz, body: "Try again!"}
""", encoding="utf-8")
    reg = tpl.registry(str(path))
    assert reg["lab.critical_value.patient"].zh == ("请联系医院", "请您尽快与主管医生联系。")
    assert reg["lab.critical_value.patient"].en == tpl.BUILTIN["lab.critical_value.patient"].en
    assert reg["lab.critical_value.patient"].channels == ("inbox",)
    assert reg["education.quiz_failed"].audience == tpl.Audience.patient
    assert tpl.registry("") is tpl.BUILTIN


@pytest.mark.parametrize("body", [
    "templates:\n  care.inactivity:\n    zh: {title: x, body: '{patient_id.__class__}'}\n",  # attribute access
    "templates:\n  care.inactivity:\n    zh: {title: x, body: '{points:>10}'}\n",  # format spec
    "templates:\n  care.inactivity:\n    channels: [fax]\n",
    "templates:\n  brand.new:\n    zh: {title: x, body: y}\n",  # a new key needs audience and en
    "templates: [1, 2]\n",
    "not: yaml: at: all: [",
])
def test_bad_override_files_are_refused(tmp_path: Path, body: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(tpl.TemplateFileError):
        tpl.registry(str(path))
    with pytest.raises(tpl.TemplateFileError):
        tpl.registry(str(tmp_path / "missing.yaml"))


def test_response_classes_and_signature() -> None:
    assert channels.classify(200).ok
    assert channels.classify(204).ok
    assert channels.classify(500) == channels.Result("retry", "http_500")
    assert channels.classify(503).outcome == "retry"
    assert channels.classify(429).outcome == "retry"
    assert channels.classify(400) == channels.Result("dead", "http_400")
    assert channels.classify(404).outcome == "dead"
    assert channels.classify(301).outcome == "dead"
    signed = signing.sign("k", "POST", "/h", "1", "n" * 16, b"{}")
    assert signed == signing.sign("k", "POST", "/h", "1", "n" * 16, b"{}")
    assert signed != signing.sign("k", "POST", "/h", "2", "n" * 16, b"{}")
    assert channels.parse_template_ids(" a.b=T1, c=T2,broken,=x") == {"a.b": "T1", "c": "T2"}
    assert channels.template_id_for({"points.changed": "T"}, "points.changed.earned") == "T"
    assert channels.template_id_for({"points.changed.earned": "E", "points.changed": "T"},
                                    "points.changed.earned") == "E"
    assert channels.template_id_for({}, "care.inactivity") is None


@pytest.mark.parametrize(("topic", "payload"), [
    ("points.changed", {"patient_id": "p", "event_id": "e", "points": 10, "balance": 110}),
    ("appointment.booked", {"patient_id": "p", "appointment_id": "a"}),
    ("appointment.cancelled", {"patient_id": "p", "appointment_id": "a"}),
    ("appointment.cancelled_by_hospital", {"patient_id": "p", "appointment_id": "a"}),
    ("appointment.no_show", {"patient_id": "p", "appointment_id": "a"}),
    ("appointment.waitlist", {"patient_id": "p", "entry_id": "w", "event": "offered"}),
    ("appointment.waitlist", {"patient_id": "p", "entry_id": "w", "event": "expired"}),
    ("appointment.reminder", {"patient_id": "p", "appointment_id": "a", "slot_start": "2026-06-16T01:00:00Z"}),
    ("checkup.booked", {"patient_id": "p", "booking_id": "b"}),
    ("rewards.redeemed", {"patient_id": "p", "redemption_id": "r"}),
    ("rewards.budget_alert", {"year": 2026, "percent": 100}),
    ("tiers.changed", {"patient_id": "p", "change_id": "c", "from": "standard", "to": "silver", "reason": "earned"}),
    ("tiers.advisor_changed", {"patient_id": "p"}),
    ("care.alert", {"alert_id": "a", "patient_id": "p", "kind": "critical_value", "severity": "critical"}),
    ("health.advice", {"patient_id": "p", "event_id": "e", "variant": "glucose_high"}),
    ("care.inactivity", {"patient_id": "p"}),
    ("lab.critical_value", {"alert_id": "a", "patient_id": "p"}),
    ("lab.critical_value.patient", {"patient_id": "p", "alert_id": "a"}),
    ("medication.reminder", {"patient_id": "p", "plan_id": "m", "scheduled_for": "2026-06-16T00:00:00+00:00"}),
    ("followup.due", {"patient_id": "p", "plan_id": "f", "step": 2, "due_at": "2026-06-20T15:00:00Z"}),
    ("community.post_rejected", {"patient_id": "p", "post_id": "x", "reason_code": "ads"}),
    ("lecture.registered", {"patient_id": "p", "lecture_id": "l", "registration_id": "r"}),
    ("lecture.registration_cancelled", {"patient_id": "p", "lecture_id": "l", "registration_id": "r"}),
    ("points.expiring", {"patient_id": "p", "points": 5, "expires_at": "2026-07-01T00:00:00Z"}),
])
def test_every_producer_topic_renders_from_its_payload(topic: str, payload: dict[str, object]) -> None:
    template = tpl.lookup(tpl.BUILTIN, topic, tpl.variant_of(topic, payload))
    assert template is not None
    out = tpl.render(template, tpl.params_of(payload, CST))
    assert out.title_zh
    assert out.body_zh
    assert out.body_en
    assert "{" not in out.body_zh + out.body_en


def test_derived_times_are_local() -> None:
    params = tpl.params_of({"scheduled_for": "2026-06-16T00:00:00+00:00", "due_at": "2026-06-20T16:00:00Z",
                            "slot_start": "not a time", "expires_at": "2026-07-01T00:00:00"}, CST)
    assert params["scheduled_time"] == "08:00"
    assert params["due_date"] == "2026-06-21"  # 00:00 local on the 21st
    assert "slot_time" not in params
    assert "expires_date" not in params  # a naive time is not trusted
