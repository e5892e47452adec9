"""Settings from CAREPOINTS_* environment variables.

With SQLite, secrets that are not set are generated once into a key file
beside the database (mode 0600) so that `carepoints serve` just works on a
fresh machine; with PostgreSQL they must come from the environment."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_GENERATED = ("secret_key", "pii_key", "checkpoint_key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREPOINTS_", extra="ignore")

    database_url: str = "sqlite:///./carepoints.db"
    secret_key: str = ""
    pii_key: str = ""
    checkpoint_key: str = ""
    timezone: str = "Asia/Shanghai"
    scheduler: str = "on"
    dev_otp: bool = False
    token_ttl_seconds: int = 8 * 3600
    checkpoint_dir: str = ""
    db_pool_size: int = Field(default=10, ge=1)
    # Page cache per SQLite connection, in MiB (used as pages are read; a warm cache keeps the
    # ingest path's index lookups off the file).
    sqlite_cache_mb: int = Field(default=64, ge=2, le=4096)
    # SQLite's PRAGMA synchronous: FULL (the default) flushes the WAL at every commit, so a power cut loses
    # nothing committed; NORMAL may lose the last commits on a power cut (never on a crash of the app)
    sqlite_synchronous: str = Field(default="FULL", pattern=r"^(FULL|NORMAL)$")
    log_level: str = "info"
    # Scheduling (预约挂号): per-patient limits, release and cancellation rules, check-in window.
    booking_max_per_day: int = Field(default=3, ge=1, le=20)
    booking_one_per_clinician_day: bool = True
    booking_release_days: int = Field(default=7, ge=0, le=90)
    booking_release_time: str = Field(default="08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    booking_referral_share: str = Field(default="0.2", pattern=r"^0(\.[0-9]{1,4})?$|^1(\.0{1,4})?$")
    booking_referral_release_hours: int = Field(default=24, ge=0, le=24 * 90)
    booking_pattern: str = "online,onsite"
    cancel_cutoff_hours: int = Field(default=2, ge=0, le=24 * 30)
    check_in_open_minutes: int = Field(default=120, ge=0, le=24 * 60)
    priority_age: int = Field(default=65, ge=0, le=150)
    no_show_grace_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # a waitlist assignment this close to the slot needs the patient's confirmation within the offer time
    waitlist_confirm_hours: int = Field(default=24, ge=0, le=24 * 30)
    waitlist_offer_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # a cashier fee offset's hold lives this long unless the HIS commits or voids it
    fee_offset_hold_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # the HIS should give up on an offset answer after this long and take the full fee
    fee_offset_timeout_ms: int = Field(default=2000, ge=100, le=60000)
    # Engagement: health readings (abnormal thresholds), medication, follow-ups, uploads.
    # (engagement.health settings)
    # abnormal readings (inclusive): a care alert for the team and one advice message to the patient
    alert_sbp: int = Field(default=180, ge=100, le=300)
    alert_dbp: int = Field(default=110, ge=60, le=200)
    alert_glucose_high: float = Field(default=16.7, ge=5.0, le=33.3)
    alert_glucose_low: float = Field(default=3.9, ge=1.1, le=10.0)
    # readings taken longer ago than this (an HIS backfill) are stored and flagged but alert nobody
    alert_reading_max_age_hours: int = Field(default=72, ge=1, le=24 * 365)
    # a dose check-in without scheduled_for takes the nearest planned time within this window
    medication_window_minutes: int = Field(default=120, ge=5, le=12 * 60)
    # inactivity care alerts: readings on >= min_days of the lookback days, then none for gap days
    inactivity_min_days: int = Field(default=10, ge=1, le=366)
    inactivity_lookback_days: int = Field(default=30, ge=1, le=366)
    inactivity_gap_days: int = Field(default=3, ge=1, le=90)
    # critical lab values also message the patient (approved wording) only when enabled
    critical_value_notify_patient: bool = False
    # (engagement.learning settings)
    # a review whose normalised text is at least this similar (difflib ratio) to one of the
    # same patient's earlier reviews is stored but earns nothing
    review_repeat_similarity: float = Field(default=0.8, ge=0.5, le=1.0)
    # lecture sign-in at the door opens this long before the start and closes this long after the end
    lecture_sign_in_before_minutes: int = Field(default=60, ge=0, le=24 * 60)
    lecture_sign_in_after_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # (engagement.followups settings)
    # follow-up steps after a discharge or surgery, in days (a plan may give its own)
    followup_offsets: str = Field(default="3,7,30", pattern=r"^([1-9][0-9]{0,2})(,[1-9][0-9]{0,2}){0,9}$")
    # a step is due on its day and this many days after; then overdue (a care alert)
    followup_due_window_days: int = Field(default=2, ge=0, le=30)
    # (engagement.community settings)
    # photo check-ins: the largest accepted upload (bytes) and image (pixels)
    photo_max_bytes: int = Field(default=5 * 1024 * 1024, ge=10_000, le=50 * 1024 * 1024)
    photo_max_pixels: int = Field(default=40_000_000, ge=10_000, le=200_000_000)
    # an invite code can be accepted only by a patient enrolled at most this many days ago
    invite_window_days: int = Field(default=30, ge=1, le=365)
    # Notifications: gateways, retries, quiet hours.
    # (notifications settings)
    # in-app inbox wording overrides: a YAML file of approved templates (see notifications/templates.py)
    notification_templates: str = Field(default="", max_length=500)
    # SMS / WeChat template-message gateways (HTTP, JSON); unset = the channel is not offered
    sms_gateway_url: str = Field(default="", max_length=500)
    sms_gateway_token: str = Field(default="", max_length=500)
    wechat_gateway_url: str = Field(default="", max_length=500)
    wechat_gateway_token: str = Field(default="", max_length=500)
    # WeChat template ids by template key: "points.changed=TPL_ID,appointment.reminder=TPL_ID2"
    wechat_template_ids: str = Field(default="", max_length=4000)
    notify_http_timeout_seconds: float = Field(default=10.0, ge=0.5, le=120)
    notify_max_attempts: int = Field(default=8, ge=1, le=50)
    notify_backoff_base_seconds: int = Field(default=30, ge=1, le=3600)
    notify_backoff_cap_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    # a claimed delivery not finished within this long (a crashed worker) is claimed again
    notify_lease_seconds: int = Field(default=120, ge=10, le=3600)
    notify_batch_size: int = Field(default=100, ge=1, le=1000)
    # at most this many outbox rows and deliveries per `send-notifications` run
    notify_max_per_run: int = Field(default=5000, ge=1, le=1_000_000)
    # default quiet hours (local, HH:MM-HH:MM; empty = none): SMS/WeChat wait until the end
    notify_quiet_hours: str = Field(default="21:30-07:30",
                                    pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$")
    # Trust (issue 6): each helper adds its settings under its own heading only.
    # (trust.pii settings)
    # earlier PII master keys, readable until `keys rotate` moved their values (comma-separated "kid:secret")
    pii_old_keys: str = Field(default="", max_length=20000)
    # cipher of new PII values: aes-gcm (blind indexes HMAC-SHA256) or sm4-gcm (national standard, HMAC-SM3)
    pii_cipher: str = Field(default="aes-gcm", pattern=r"^(aes-gcm|sm4-gcm)$")
    # (trust.audit settings)
    # audit rows are sealed once their id is older than this (s): a writer still holding an older id
    # must have committed by then, so nothing lands inside a sealed block (0 only in tests)
    audit_seal_margin_seconds: int = Field(default=120, ge=0, le=3600)
    # at most this many audit rows per sealed block
    audit_seal_block_rows: int = Field(default=1000, ge=10, le=100_000)
    # (trust.privacy settings)
    # retention periods per kind of record, "kind=days,kind=days" (kit/retention.py; unset kinds keep their default)
    retention_days: str = Field(default="", max_length=2000,
                                pattern=r"^\s*$|^\s*[a-z][a-z0-9_.]*\s*=\s*\d{1,6}\s*(,\s*[a-z][a-z0-9_.]*\s*=\s*\d{1,6}\s*)*,?\s*$")
    # (analytics settings)
    # lower bounds of the age bands after the first (<18, 18-29, ..., >=80), comma-separated years
    analytics_age_bands: str = Field(default="18,30,40,50,60,70,80", pattern=r"^\s*\d{1,3}(\s*,\s*\d{1,3})*\s*$")
    # `rollup-analytics` re-rolls this many closed days before today on every run (late events, status
    # changes), besides any older day that new ledger entries touched
    analytics_rerun_days: int = Field(default=7, ge=1, le=400)
    # a dashboard range may span at most this many days
    analytics_max_range_days: int = Field(default=1100, ge=31, le=3700)
    # today's live figures are computed at most this often per process and shared meanwhile
    # (analytics/live.py; 0: every request computes its own)
    analytics_live_seconds: int = Field(default=60, ge=0, le=3600)
    # the cost-benefit panel's unit values in CNY: a no-show avoided, a follow-up completed
    analytics_value_no_show_avoided: str = Field(default="50", pattern=r"^\d{1,7}(\.\d{1,2})?$")
    analytics_value_followup_completed: str = Field(default="30", pattern=r"^\d{1,7}(\.\d{1,2})?$")
    # (trust.auth settings)
    # patient tokens (phone + one-time code) live this long (staff: token_ttl_seconds)
    patient_token_ttl_seconds: int = Field(default=2 * 3600, ge=60, le=24 * 3600)
    # a login code is valid this long and for this many wrong tries
    otp_ttl_seconds: int = Field(default=300, ge=60, le=1800)
    otp_max_attempts: int = Field(default=5, ge=1, le=20)
    # codes sent per phone per minute / per hour, and per caller address per hour (429 rate.limited)
    otp_per_phone_per_minute: int = Field(default=1, ge=1, le=10)
    otp_per_phone_per_hour: int = Field(default=5, ge=1, le=100)
    otp_per_ip_per_hour: int = Field(default=30, ge=1, le=100_000)
    # staff lockout: this many failed logins within the window lock the account for lockout minutes
    staff_lockout_attempts: int = Field(default=5, ge=1, le=100)
    staff_lockout_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    staff_lockout_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60)
    # a staff session unused this long ends (auth.session_expired); the token TTL still applies
    staff_idle_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # (trust.signing settings)
    # unauthenticated auth endpoints (POST /auth/token, /auth/otp): requests per minute per client IP; 0 = off
    rate_limit_auth_per_ip_per_minute: int = Field(default=60, ge=0, le=100_000)
    # POST /appointments attempts per patient per minute (each worker process counts on its own); 0 = off
    rate_limit_booking_per_minute: int = Field(default=20, ge=0, le=10_000)
    # triage questions (services.triage) per caller (patient, staff member or key) a minute
    rate_limit_triage_per_minute: int = Field(default=30, ge=1, le=10_000)
    # (ops.identity settings)
    # real-name checks by an external service (identity.checker_unavailable while "none"): "http" POSTs
    # {name, id_number} to the URL with the bearer token and reads {"result": "verified" | "mismatch"}
    identity_checker: str = Field(default="none", pattern=r"^(none|http)$")
    identity_checker_url: str = Field(default="", max_length=500)
    identity_checker_token: str = Field(default="", max_length=500, repr=False)
    identity_checker_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # a deceased or closed account's remaining points: "expire", or "household" (moved to the household
    # wallet of a member; expired when not in a household)
    closure_points_policy: str = Field(default="expire", pattern=r"^(expire|household)$")
    # detect-duplicates: groups of records sharing a national id (or phone + birth date) per transaction
    duplicate_batch_size: int = Field(default=500, ge=1, le=10_000)
    # (ops.merge settings)
    # (ops.adjustments settings)
    # a pending manual adjustment not approved within this many days expires (job expire-adjustments)
    adjustment_pending_days: int = Field(default=7, ge=1, le=90)
    # (ops.appeals settings)
    # a penalty or suspension may be appealed within this many days of being applied (appeals.too_late);
    # staff are asked to decide an appeal within the decision days (its `deadline`)
    appeal_window_days: int = Field(default=30, ge=1, le=366)
    appeal_decision_days: int = Field(default=15, ge=1, le=90)
    # (ops.governance settings)
    # announce-programme: patients told of an approved programme change per transaction
    programme_announce_batch: int = Field(default=500, ge=1, le=10_000)
    # (ops.fraud settings)
    # detect-fraud reads events in id order, this many per transaction, only ids older than the margin (s):
    # an ingest that took an id before it has committed by then (0 only in tests)
    fraud_batch_size: int = Field(default=2000, ge=10, le=50_000)
    fraud_scan_margin_seconds: int = Field(default=120, ge=0, le=3600)
    # events received this long before a batch are read with it (windows spanning two runs, late uploads)
    fraud_lookback_hours: int = Field(default=36, ge=1, le=24 * 14)
    # velocity: more than N events of one patient occurring within M minutes
    fraud_velocity_events: int = Field(default=30, ge=2, le=10_000)
    fraud_velocity_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # repeated_reading: the same device / self-reported values this many times in a row
    fraud_repeated_readings: int = Field(default=5, ge=2, le=1000)
    # implausible_reading: more than N device / self readings in a local day, or a jump between two
    # readings of one kind at most M minutes apart (systolic mmHg, glucose mmol/L)
    fraud_daily_readings: int = Field(default=12, ge=1, le=1000)
    fraud_jump_minutes: int = Field(default=10, ge=1, le=24 * 60)
    fraud_jump_systolic: int = Field(default=60, ge=10, le=250)
    fraud_jump_glucose: float = Field(default=10.0, ge=1.0, le=30.0)
    # staff_outlier: more than N entries by one staff member in a local day, or more than X times the
    # median of all staff who entered anything that day (and at least the minimum)
    fraud_staff_daily_entries: int = Field(default=50, ge=1, le=100_000)
    fraud_staff_median_factor: float = Field(default=5.0, ge=1.5, le=1000)
    fraud_staff_median_min_entries: int = Field(default=10, ge=1, le=100_000)
    # shared_phone: more than N active patients on one phone; shared_device: more than N patients on one
    # device id in a local day (self-service kiosks are shared by design: a separate, higher threshold)
    fraud_shared_phone_patients: int = Field(default=5, ge=1, le=1000)
    fraud_shared_device_patients: int = Field(default=5, ge=1, le=1000)
    fraud_shared_kiosk_patients: int = Field(default=200, ge=1, le=100_000)
    # (ops.wechat settings)
    # WeChat web authorisation (网页授权) of the hospital's official account: binding and login are off
    # (404 wechat.not_configured) until both the app id and the app secret are set; the secret is never logged
    wechat_app_id: str = Field(default="", max_length=64)
    wechat_app_secret: str = Field(default="", max_length=200, repr=False)
    wechat_api_base: str = Field(default="https://api.weixin.qq.com", max_length=500)
    wechat_authorize_url: str = Field(default="https://open.weixin.qq.com/connect/oauth2/authorize", max_length=500)
    wechat_scope: str = Field(default="snsapi_base", pattern=r"^(snsapi_base|snsapi_userinfo)$")
    # the code exchange: seconds to connect / to wait for the answer (then 424 wechat.unavailable)
    wechat_timeout_seconds: float = Field(default=5.0, ge=0.1, le=60)
    # an authorisation `state` is valid this long, once
    wechat_state_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    # the pages WeChat may send the patient back to: exact URLs, comma-separated (others: 400)
    wechat_redirect_allow: str = Field(default="", max_length=4000)
    # (ops.alliance settings)
    # (trust.fhir settings)
    # POST /fhir and /fhir/<Type>: largest accepted body in bytes (413 above)
    fhir_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    # most entries in one ingested Bundle (413 above)
    fhir_max_bundle_entries: int = Field(default=1000, ge=1, le=10_000)
    # identifier system under which a FHIR Patient's own id is kept as an external id
    fhir_patient_id_system: str = Field(default="urn:carepoints:fhir:Patient", min_length=1, max_length=200)
    # (pages settings)
    # page session cookies only over HTTPS (set behind a TLS proxy that forwards plain HTTP); over
    # an https request they are marked Secure anyway
    cookie_secure: bool = False
    # (pages.patient settings)
    # the consent text version a patient accepts when granting a purpose on /me/privacy
    pages_consent_version: str = Field(default="1.0", min_length=1, max_length=32)
    # (pages.booking settings)
    # (pages.health settings)
    # (pages.mall settings)
    # (pages.staff settings)
    # the external identifier system of the hospital's medical card (就诊卡) number, for the front desk's
    # patient lookup (/staff/patients); the HIS MRN system of the sending hospital
    desk_card_system: str = Field(default="urn:demo:his:mrn", min_length=1, max_length=200)
    # (pages.queues settings)
    # (services.queue settings)
    # a waiting patient is told "还有N位就到您了" when a call leaves exactly this many ahead of them
    queue_notice_ahead: int = Field(default=3, ge=1, le=20)
    # the wait estimate needs at least this many calls of the session today (else none)
    queue_estimate_min_calls: int = Field(default=3, ge=2, le=50)
    # (services.reports settings)
    # a report with a critical result is held from the patient until a clinician acknowledges its care
    # alert; with a delay > 0 it is also released this many hours after it was issued (0 = only after
    # acknowledgement)
    reports_release_delay_hours: int = Field(default=0, ge=0, le=24 * 30)
    # the careful note shown with every report (hospitals may replace it with their approved wording)
    reports_patient_note: str = Field(default="结果异常不一定代表疾病,请遵医嘱/咨询医生。 / An abnormal result does "
                                      "not necessarily mean illness: follow your doctor's advice or ask a "
                                      "doctor.", min_length=1, max_length=500)
    # (services.satisfaction settings)
    # a visit review is negative at this many stars or fewer; a survey response is low when a level
    # answer scores this or less (5 非常满意 … 2 不满意, 1 非常不满意) or its 0–10 `recommend` answer is at
    # most satisfaction_survey_low_recommend (-1: not used)
    satisfaction_review_low_rating: int = Field(default=2, ge=1, le=4)
    satisfaction_survey_low_level: int = Field(default=2, ge=1, le=4)
    satisfaction_survey_low_recommend: int = Field(default=4, ge=-1, le=9)
    # a survey response counts for the department of the patient's latest attended visit up to this many
    # days before it (none: not attributed)
    satisfaction_survey_attribution_days: int = Field(default=31, ge=1, le=366)
    # department alert: the average of the last N whole days against the N days before, raised when it
    # fell by at least the drop (on the 1–5 scale) with at least min_samples scores in each window
    satisfaction_alert_window_days: int = Field(default=14, ge=1, le=90)
    satisfaction_alert_drop: float = Field(default=0.5, gt=0, le=4)
    satisfaction_alert_min_samples: int = Field(default=5, ge=1, le=10000)
    # detect-improvements reads reviews and survey responses older than this margin (their writers
    # have committed), in batches
    satisfaction_scan_margin_seconds: int = Field(default=120, ge=0, le=3600)
    satisfaction_batch_size: int = Field(default=500, ge=1, le=10000)
    # (services.consult settings)
    # the response-time target of online consultations: a thread waiting longer is overdue on the queue
    consult_response_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    # an answered consultation with no message for this many hours is closed by `close-consultations`
    consult_idle_hours: int = Field(default=72, ge=1, le=24 * 90)
    # the version of the consultation notice (不能替代面诊…) a patient accepts; a new version asks again
    consult_disclaimer_version: str = Field(default="1.0", min_length=1, max_length=32)
    # images a patient or adviser attaches: at most this size each and this many per consultation
    consult_image_max_bytes: int = Field(default=5 * 1024 * 1024, ge=10_000, le=20 * 1024 * 1024)
    consult_max_images: int = Field(default=20, ge=1, le=200)
    # (services.admissions settings)
    # a patient books, moves or cancels an admission online until this many hours before the ward's
    # arrival time that day, and moves it at most this many times (the ward at any time before arrival)
    admissions_cutoff_hours: int = Field(default=24, ge=0, le=24 * 14)
    admissions_max_reschedules: int = Field(default=2, ge=0, le=20)
    # an admission order (住院证) is bookable this many days from its earliest date; a date at most this
    # many days ahead
    admissions_order_valid_days: int = Field(default=30, ge=1, le=180)
    admissions_book_ahead_days: int = Field(default=60, ge=1, le=365)
    # surgery: a day surgery at the earliest this many days after the request (elective: the second),
    # at most this many minutes long, and any surgery at most this many days ahead
    surgery_day_min_days: int = Field(default=2, ge=0, le=60)
    surgery_elective_min_days: int = Field(default=1, ge=0, le=60)
    surgery_day_max_minutes: int = Field(default=120, ge=10, le=720)
    surgery_horizon_days: int = Field(default=90, ge=1, le=365)
    # pre-visit exams (预就诊): how many days ahead the exam and the follow-up are searched for
    previsit_search_days: int = Field(default=30, ge=1, le=120)
    # (services.recommend settings)
    # the hospital's own recommendation rules (a YAML file like services/recommend/rules.yaml) instead of
    # the shipped ones; empty = the shipped file
    recommend_rules: str = Field(default="", max_length=1000)
    # (services.forecast settings)
    # suggested session capacity = forecast demand × this headroom, rounded up to a whole slot
    forecast_headroom: float = Field(default=1.1, ge=1.0, le=2.0)
    # weeks of booking history read (ending yesterday); the last 28 days of it are held back to choose the model
    forecast_history_weeks: int = Field(default=26, ge=4, le=104)
    # an hour whose forecast demand is below this share of its slots is an off-peak window
    forecast_offpeak_ratio: float = Field(default=0.6, gt=0.0, le=1.0)
    # (pages.admin settings)
    # (pages.admin2 settings)
    # (trust.observability settings)
    # log lines as JSON objects ({"ts", "level", "logger", "msg", "request_id", ...}) or plain text
    log_format: str = Field(default="json", pattern=r"^(json|text)$")
    # one access-log line per request at info (method, route template, status, duration, request id)
    access_log: bool = True
    # GET /metrics only from these client addresses: comma-separated CIDRs; empty = from anywhere
    metrics_allow: str = Field(default="", max_length=2000, pattern=r"^[0-9A-Fa-f:.,/ ]*$")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        raw = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        if not raw or raw == ":memory:":
            return None
        return Path(raw).expanduser().resolve()

    def key_dir(self) -> Path:
        path = self.sqlite_path()
        return path.parent if path else Path.cwd()

    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else self.key_dir() / "checkpoints"


def _fill_secrets(settings: Settings) -> Settings:
    if settings.dev_otp and not settings.is_sqlite:
        raise RuntimeError("CAREPOINTS_DEV_OTP=1 is for local development on SQLite; it is refused with PostgreSQL")
    missing = [name for name in _GENERATED if not getattr(settings, name)]
    if not missing:
        return settings
    if not settings.is_sqlite:
        if "checkpoint_key" in missing and settings.secret_key:
            # Derived, not equal: whoever verifies checkpoints must not be able to sign tokens.
            settings.checkpoint_key = hmac.new(settings.secret_key.encode(), b"carepoints-checkpoint",
                                               hashlib.sha256).hexdigest()
            missing.remove("checkpoint_key")
        if missing:
            names = ", ".join(f"CAREPOINTS_{m.upper()}" for m in missing)
            raise RuntimeError(f"{names} must be set when the database is not SQLite")
        return settings
    key_file = settings.key_dir() / "carepoints.keys.json"
    stored: dict[str, str] = {}
    if key_file.exists():
        stored = json.loads(key_file.read_text())
    changed = False
    for name in missing:
        if name not in stored:
            stored[name] = secrets.token_urlsafe(32)
            changed = True
        setattr(settings, name, stored[name])
    if changed:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return _fill_secrets(Settings())


def reset_settings() -> None:
    """Forget cached settings (tests and CLI commands that change the environment)."""
    get_settings.cache_clear()
