"""Base data for the analytics benchmark: a medical alliance with `--patients` patients and
about `--entries` ledger entries over the 730 local days ending yesterday (plus today up to
now), written straight into a fresh PostgreSQL database with COPY (psycopg 3), in the shape
the application writes each table.

Every patient's history is simulated in one go, in arrival order, and scored with the default
programme's rules (welcome, check-ins with the daily cap, 7/30-day streaks, booked ahead, on
time, off-peak ×2, early cancellation, no-show penalties and the 3-in-90-days suspension,
self-service, education, lectures, reviews, surveys, follow-ups, health-record items,
referrals, public health, misconduct), then posted as the ledger posts it: one transfer per
award, a lot per earning with FIFO spending, debt, fee offsets (holds committed at the
cashier), redemptions with coupons, the expiry job, `balance_after` per wallet and real hash
chains (`carepoints.ledger.chain`). What is left out: households, medication reminders that
were never taken, quiz attempts, photo tasks, community posts, invites, notification rows
and the rules' state tables (counters, streak runs, suspensions); analytics reads none of them.

Rates are per patient and year; one activity factor scales the repeated behaviours so that the
ledger ends near `--entries` (calibrated on a dry run of a sample of patients). Clinic
capacity (clinicians, sessions, slots) is sized from the calibrated visit count, so that about
three slots in four are taken."""

from __future__ import annotations

import hashlib
import math
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
import uuid_utils

from carepoints.config import get_settings
from carepoints.experiments.assign import variant_index
from carepoints.ledger.accounts import SYSTEM_IDS, System
from carepoints.ledger.chain import link
from carepoints.scheduling.slots import pools as slot_pools

N = "\\N"  # COPY text format NULL
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
DAY_US = 86_400 * US
HOUR_US = 3_600 * US
MIN_US = 60 * US
SELF = ("self_reported", "device")


# --------------------------------------------------------------------------- formatting


def dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def pg(us: int) -> str:
    """A timestamptz literal for COPY."""
    return (EPOCH + timedelta(microseconds=us)).isoformat(" ")


def iso(us: int) -> str:
    """What the events' schemas store: `value.astimezone(UTC).isoformat()`."""
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def iso_z(us: int) -> str:
    u = EPOCH + timedelta(microseconds=us)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}Z")


def js(obj: Any) -> str:
    """JSON for a COPY text field (backslashes doubled; orjson never writes a raw tab or newline)."""
    return orjson.dumps(obj).decode().replace("\\", "\\\\")


def b(flag: bool) -> str:
    return "t" if flag else "f"


def uid(us: int) -> str:
    """A UUIDv7 whose time is `us` (ids are time-ordered by when the row was written)."""
    return str(uuid_utils.uuid7(nanoseconds=us * 1000))


def hexdigest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- the calendar


@dataclass
class Clock:
    """Local days 0..n_days-1 are the closed days (n_days-1 = yesterday); day n_days is today,
    which has data up to `now_us`; sessions exist up to a week ahead."""

    now_us: int
    tz: ZoneInfo
    n_days: int
    first: date = field(init=False)
    starts: list[int] = field(init=False)  # UTC start (µs) of local day index i (i = -1 .. n_days + 98)

    def __post_init__(self) -> None:
        today = dt(self.now_us).astimezone(self.tz).date()
        self.first = today - timedelta(days=self.n_days)
        self.starts = []
        for i in range(-1, self.n_days + 100):
            d = self.first + timedelta(days=i)
            self.starts.append(int((datetime(d.year, d.month, d.day, tzinfo=self.tz) - EPOCH).total_seconds() * US))
        self._dates = [self.first + timedelta(days=i) for i in range(-1, self.n_days + 100)]
        self._iso = [d.isoformat() for d in self._dates]

    @property
    def today(self) -> int:
        return self.n_days

    def at(self, day: int, seconds: float) -> int:
        """The instant `seconds` after local midnight of day index `day`."""
        return self.starts[day + 1] + int(seconds * US)

    def day_of(self, us: int) -> int:
        return bisect_right(self.starts, us) - 2

    def date(self, day: int) -> date:
        return self._dates[day + 1]

    def iso_day(self, day: int) -> str:
        return self._iso[day + 1]

    def weekday(self, day: int) -> int:
        """ISO weekday 1..7."""
        return self._dates[day + 1].isoweekday()

    def local_seconds(self, us: int) -> float:
        return (us - self.starts[self.day_of(us) + 1]) / US


def add_months_us(clock: Clock, us: int, months: int) -> int:
    """`kit.time.add_months` in the hospital's calendar (a lot's expiry)."""
    local = dt(us).astimezone(clock.tz)
    m0 = local.month - 1 + months
    year, month = local.year + m0 // 12, m0 % 12 + 1
    day = min(local.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30,
                          31, 31, 30, 31, 30, 31][month - 1])
    return int((local.replace(year=year, month=month, day=day) - EPOCH).total_seconds() * US)


def ensure_experiment(conn: psycopg.Connection[Any], c: Clock, staff_id: str) -> tuple[str, str, int] | None:
    """The bench's A/B test of the check-in award (running for the last 120 days; patients with a
    research consent only): (id, code, start) when the schema has experiments, else None. Creates
    it unless it exists, so that a database generated before the experiments table gets it later."""
    if not (conn.execute("SELECT to_regclass('experiments') IS NOT NULL").fetchone() or (False,))[0]:
        return None
    started = c.at(c.n_days - 120, 9 * 3600)
    exp_id = uid(started - 7 * DAY_US)
    found = conn.execute("SELECT id, started_at FROM experiments WHERE code = 'checkin_20'").fetchone()
    if found is not None:
        return found[0], "checkin_20", int((found[1] - EPOCH) // timedelta(microseconds=1))
    variants = [{"code": "control", "weight": 1, "overrides": []},
                {"code": "checkin_20", "weight": 1, "overrides": [{"rule": "health_checkin", "points": 20}]}]
    conn.execute("INSERT INTO experiments (id, code, name_zh, name_en, ethics_ref, variants, request_hash, status, "
                 "created_at, created_by_kind, created_by_id, started_at, stopped_at) VALUES "
                 "(%s, %s, %s, %s, %s, %s, %s, 'running', %s, 'staff', %s, %s, NULL)",
                 (exp_id, "checkin_20", "打卡奖励加倍试验", "Double check-in award", "IRB-2026-017",
                  orjson.dumps(variants).decode(), hexdigest(exp_id), dt(started - 7 * DAY_US), staff_id,
                  dt(started)))
    conn.commit()
    return exp_id, "checkin_20", started


# --------------------------------------------------------------------------- COPY buffers


class Tables:
    """Rows per table, written with one COPY per table at every flush."""

    def __init__(self, columns: dict[str, Sequence[str]]) -> None:
        self.columns = columns
        self.rows: dict[str, list[str]] = {t: [] for t in columns}
        self.counts: dict[str, int] = dict.fromkeys(columns, 0)

    def add(self, table: str, *values: str) -> None:
        self.rows[table].append("\t".join(values))

    def flush(self, conn: psycopg.Connection[Any], only: Sequence[str] | None = None) -> None:
        with conn.cursor() as cur:
            for t in only or list(self.rows):
                rows = self.rows[t]
                if not rows:
                    continue
                with cur.copy(f"COPY {t} ({', '.join(self.columns[t])}) FROM STDIN") as copy:
                    for i in range(0, len(rows), 20000):
                        copy.write("\n".join(rows[i:i + 20000]) + "\n")
                self.counts[t] += len(rows)
                self.rows[t] = []
        conn.commit()


COLUMNS: dict[str, Sequence[str]] = {
    "patients": ("id", "name_enc", "phone_enc", "phone_index", "pii_kid", "birth_date", "sex", "status", "tier",
                 "elderly_mode", "created_at"),
    "patient_keys": ("patient_id", "salt", "created_at"),
    "consents": ("id", "patient_id", "purpose", "version", "accepted_at", "source", "guardian_relation"),
    "patient_institutions": ("patient_id", "institution_id", "first_seen_at"),
    "patient_conditions": ("id", "patient_id", "code", "source", "diagnosed_on", "active", "created_at",
                           "updated_at"),
    "accounts": ("id", "kind", "patient_id", "balance", "debt", "held", "chain_seq", "chain_head", "created_at"),
    "events": ("id", "type", "patient_id", "source", "source_event_id", "payload_hash", "occurred_at",
               "received_at", "attributes", "status", "outcome", "effects"),
    "transfers": ("id", "wallet_id", "seq", "from_account_id", "to_account_id", "amount", "kind", "rule_code",
                  "rule_version", "event_id", "hold_id", "message", "balance_after", "at", "created_at",
                  "prev_hash", "hash"),
    "lots": ("id", "wallet_id", "amount", "remaining", "held", "earned_at", "expires_at"),
    "lot_allocations": ("transfer_id", "lot_id", "amount"),
    "holds": ("id", "wallet_id", "amount", "status", "reference", "idempotency_key", "expires_at", "created_at",
              "settled_at", "transfer_id"),
    "hold_lots": ("hold_id", "lot_id", "amount"),
    "fee_offsets": ("id", "patient_id", "wallet_id", "hold_id", "institution_id", "reference", "tier", "fee_fen",
                    "tier_discount_fen", "offset_fen", "points", "status", "idempotency_key", "request_hash",
                    "created_at", "expires_at", "settled_at"),
    "redemptions": ("id", "patient_id", "wallet_id", "reward_id", "quantity", "points", "cost_fen", "status",
                    "period_key", "transfer_id", "actor_kind", "actor_id", "idempotency_key", "request_hash",
                    "created_at"),
    "coupons": ("id", "code", "redemption_id", "patient_id", "reward_id", "status", "valid_from", "expires_at",
                "used_at", "used_by", "created_at"),
    "appointments": ("id", "patient_id", "session_id", "slot_id", "clinician_id", "resource_id", "clinician_guard",
                     "day", "day_rank", "seq", "slot_start", "slot_end", "channel", "referral_id", "booked_by",
                     "status", "idempotency_key", "request_hash", "booked_at", "checked_in_at", "late", "priority",
                     "attended_at", "cancelled_at", "cancelled_by", "no_show_at", "history"),
    "clinic_sessions": ("id", "department_id", "clinician_id", "resource_id", "day", "starts_at", "ends_at",
                        "slot_minutes", "capacity", "level", "fee_fen", "release_at", "referral_release_at",
                        "pattern", "referral_share", "status", "created_at"),
    "slots": ("id", "session_id", "seq", "starts_at", "ends_at", "pool", "appointment_id"),
    "measurements": ("id", "event_id", "patient_id", "kind", "systolic", "diastolic", "pulse", "glucose_mmol_l",
                     "provenance", "self_monitored", "taken_at", "local_day", "abnormal", "reasons", "created_at"),
    "medication_plans": ("id", "patient_id", "medicine_name", "dose_text", "times", "start_date", "end_date",
                         "status", "created_at"),
    "medication_doses": ("id", "plan_id", "patient_id", "scheduled_for", "reminded_at", "taken_at", "event_id"),
    "followup_plans": ("id", "patient_id", "trigger", "occurred_on", "questionnaire_code", "kind", "channel",
                       "encounter_id", "status", "created_at"),
    "followup_steps": ("id", "plan_id", "patient_id", "offset_days", "position", "channel", "due_on", "overdue_on",
                       "status", "response_id", "completed_at", "due_notified_at", "overdue_flagged_at"),
    "questionnaire_responses": ("id", "patient_id", "questionnaire_id", "step_id", "survey_period", "answers",
                                "answers_digest", "channel", "recorded_by", "actor_kind", "actor_id", "abnormal",
                                "created_at"),
    "care_alerts": ("id", "patient_id", "kind", "severity", "source_ref", "details", "status", "assigned_to",
                    "created_at", "updated_at", "acknowledged_at", "resolved_at", "resolution"),
    "reviews": ("id", "appointment_id", "patient_id", "rating", "text", "outcome", "created_at"),
    "lecture_attendances": ("id", "lecture_id", "patient_id", "walk_in", "signed_in_at", "outcome", "created_at"),
}

# The big tables: their secondary indexes are dropped before COPY and built afterwards.
BULK_TABLES = tuple(t for t in COLUMNS if t not in ("clinic_sessions",))


# --------------------------------------------------------------------------- reference data

DEPARTMENTS_LEAD = [  # code, zh, en, share of general visits
    ("cardiology", "心血管内科", "Cardiology", 8), ("endocrinology", "内分泌科", "Endocrinology", 6),
    ("respiratory", "呼吸内科", "Respiratory medicine", 6), ("neurology", "神经内科", "Neurology", 5),
    ("gastro", "消化内科", "Gastroenterology", 6), ("nephrology", "肾内科", "Nephrology", 3),
    ("geriatrics", "老年医学科", "Geriatrics", 4), ("general_surgery", "普通外科", "General surgery", 5),
    ("orthopaedics", "骨科", "Orthopaedics", 6), ("urology", "泌尿外科", "Urology", 3),
    ("gynaecology", "妇产科", "Obstetrics and gynaecology", 7), ("paediatrics", "儿科", "Paediatrics", 8),
    ("ophthalmology", "眼科", "Ophthalmology", 4), ("ent", "耳鼻喉科", "ENT", 4),
    ("dermatology", "皮肤科", "Dermatology", 4), ("stomatology", "口腔科", "Stomatology", 4),
    ("tcm", "中医科", "Traditional Chinese medicine", 4), ("rehabilitation", "康复医学科", "Rehabilitation", 3),
    ("oncology", "肿瘤科", "Oncology", 3), ("psychiatry", "心理科", "Psychology", 2),
    ("imaging", "医学影像科", "Medical imaging", 0),
]
DEPARTMENTS_COMMUNITY = [
    ("general", "全科", "General practice", 10), ("tcm", "中医科", "Traditional Chinese medicine", 3),
    ("prevention", "预防保健科", "Preventive care", 2), ("rehabilitation", "康复科", "Rehabilitation", 2),
    ("stomatology", "口腔科", "Stomatology", 2),
]
CONDITIONS = [  # code, share among chronic patients, the lead department that treats it
    ("hypertension", 45, "cardiology"), ("diabetes", 28, "endocrinology"), ("hyperlipidemia", 8, "cardiology"),
    ("coronary_heart_disease", 6, "cardiology"), ("copd", 4, "respiratory"), ("stroke", 3, "neurology"),
    ("ckd", 2, "nephrology"), ("osteoporosis", 2, "orthopaedics"), ("asthma", 1, "respiratory"),
    ("heart_failure", 1, "cardiology"),
]
AGE_BANDS = [  # lowest age, highest age, share of patients (skewed older)
    (0, 17, 8), (18, 29, 8), (30, 39, 11), (40, 49, 12), (50, 59, 16), (60, 69, 20), (70, 79, 17), (80, 95, 8),
]
REVIEW_TEXT = ("医生很耐心,详细解释了病情和用药注意事项,护士也很热情,候诊时间比以前短了很多,"
               "预约流程方便,整体就诊体验很好,会推荐给家人朋友。")
PROFILE_ITEMS = ("allergies", "family_history", "medications", "lifestyle", "emergency_contact", "surgeries")
KIOSK_ACTIONS = ("pay", "print_report", "register", "query")
MEDICINES = ("氨氯地平片", "二甲双胍缓释片", "阿托伐他汀钙片", "缬沙坦胶囊", "阿卡波糖片")


@dataclass
class Dept:
    id: str
    inst: int
    code: str
    weight: int
    clinicians: list[int] = field(default_factory=list)


@dataclass
class Session:
    id: str
    dept: int
    owner: str  # clinician or resource id
    is_resource: bool
    day: int
    start_us: int
    minutes: int
    capacity: int
    level: str
    fee_fen: int
    pools: list[str]
    free: dict[str, list[int]]  # pool -> free seqs, popped from the end (lowest seq last)
    holder: list[str | None]  # seq-1 -> appointment id holding the slot


# Messages exactly as the default programme renders them ({points} filled in).
MESSAGES = {
    "welcome": "新用户注册即送{p}积分", "first_checkin": "首次完成健康打卡,额外奖励{p}积分!",
    "health_checkin": "健康打卡,奖励{p}积分", "checkin_streak_7": "连续7天健康打卡,奖励{p}积分!",
    "checkin_streak_30": "连续30天健康打卡,额外奖励{p}积分!", "medication": "按时服药打卡,奖励{p}积分",
    "book_ahead": "提前3天预约并按约就诊,奖励{p}积分", "on_time": "准时就诊,奖励{p}积分",
    "exam_attended": "按约完成检查,奖励{p}积分", "cancel_early": "提前24小时取消预约,释放号源,奖励{p}积分",
    "no_show": "预约未就诊(爽约),扣除{p}积分", "self_service": "使用自助服务,奖励{p}积分",
    "education": "完成健康学习并通过测验,奖励{p}积分", "lecture": "参加健康讲座,奖励{p}积分",
    "review": "感谢您的评价,奖励{p}积分", "survey": "完成月度满意度调查,奖励{p}积分",
    "followup": "完成随访反馈,奖励{p}积分", "rehab_questionnaire": "完成术后康复问卷,奖励{p}积分",
    "profile_item": "完善健康档案,奖励{p}积分", "referral": "基层首诊转诊就诊,奖励{p}积分",
    "public_health": "完成公共卫生项目,奖励{p}积分", "misconduct": "违反就诊秩序,扣除{p}积分",
}
NAMES = {"health_checkin": "健康打卡", "medication": "服药打卡", "self_service": "自助服务",
         "education": "健康学习"}
UNMET_CLINIC = "门诊测量的数据已记录,自我监测的数据才计积分"
NO_RULE = {"code": "rules.no_rule", "message": "该行为暂不计积分"}


def message(rule: str, points: int) -> str:
    return MESSAGES[rule].format(p=abs(points))


# --------------------------------------------------------------------------- a patient's events


@dataclass(slots=True)
class Ev:
    """One behaviour event of a patient before it is scored."""

    occurred: int
    received: int
    type: str
    source: str
    key: str
    attrs: dict[str, Any]
    day: int  # local day of `occurred`
    inner: str = ""  # the behaviour a staff.offline_entry stands for
    after: Callable[[str, dict[str, Any]], None] | None = None  # rows that depend on the event id / outcome
    redeem: bool = False  # not an event: a chance to redeem in the mall at `received`


@dataclass
class Wallet:
    """A wallet as the ledger keeps it while one patient's history is posted."""

    id: str
    seq: int = 0
    head: str = ""
    balance: int = 0
    debt: int = 0
    lots: list[list[Any]] = field(default_factory=list)  # [id, amount, remaining, earned_us, expires_us], FIFO
    lot0: int = 0  # lots before this index are spent or expired
    done_lots: list[list[Any]] = field(default_factory=list)

    @property
    def available(self) -> int:
        return max(0, self.balance)


class Generator:
    """Writes one bench database's base data; `run()` answers the row counts."""

    def __init__(self, conn: psycopg.Connection[Any], patients: int, entries: int, seed: int, now: datetime,
                 tz: ZoneInfo, days: int = 730, chunk: int = 2000, log: Callable[[str], None] = print) -> None:
        self.conn, self.n_patients, self.target_entries = conn, patients, entries
        self.rng = random.Random(seed)
        self.seed = seed
        self.clock = Clock(int((now - EPOCH).total_seconds() * US), tz, days)
        self.chunk = chunk
        self.log = log
        self.t = Tables(COLUMNS)
        self.activity = 1.0
        self.dry = False
        self.counts: dict[str, int] = {}
        self.entries = 0
        self.budget_fen: dict[int, int] = {}
        self._demand: dict[int, int] = {}  # visits per department in the calibration's dry run
        settings = get_settings()
        self.max_per_day = settings.booking_max_per_day
        self.guard_clinician = settings.booking_one_per_clinician_day

    # ----------------------------------------------------------------- reference data

    def reference(self) -> None:
        """The alliance, institutions, departments, staff, education items, lectures,
        questionnaires (plain INSERTs: small tables) and the mall the seed created."""
        c, rng, now = self.clock, self.rng, self.clock.now_us
        setup = c.starts[0] - 30 * DAY_US
        n_inst = 1 + max(2, min(12, self.n_patients // 90_000))
        cur = self.conn.cursor()
        alliance = uid(setup)
        cur.execute("INSERT INTO alliances (id, code, name_zh, name_en, created_at) VALUES (%s, %s, %s, %s, %s)",
                    (alliance, "bench", "示范医联体", "Bench medical alliance", dt(setup)))
        self.institutions: list[str] = []
        self.inst_codes: list[str] = []
        self.depts: list[Dept] = []
        for i in range(n_inst):
            iid, code = uid(setup + i), ("H01" if i == 0 else f"C{i:02d}")
            self.institutions.append(iid)
            self.inst_codes.append(code)
            cur.execute("INSERT INTO institutions (id, code, name_zh, name_en, created_at, alliance_id) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        (iid, code, "市第一人民医院" if i == 0 else f"第{i}社区卫生服务中心",
                         "City First People's Hospital" if i == 0 else f"Community health centre {i}",
                         dt(setup), alliance))
            cur.execute("INSERT INTO institution_systems (system, institution_id) VALUES (%s, %s)",
                        (f"urn:his:{code.lower()}:mrn", iid))
            for code_, zh, en, w in DEPARTMENTS_LEAD if i == 0 else DEPARTMENTS_COMMUNITY:
                did = uid(setup + 100 + len(self.depts))
                self.depts.append(Dept(did, i, code_, w))
                cur.execute("INSERT INTO departments (id, institution_id, code, name_zh, name_en, created_at) "
                            "VALUES (%s, %s, %s, %s, %s, %s)", (did, iid, code_, zh, en, dt(setup)))
        self.dept_by_code = {(d.inst, d.code): k for k, d in enumerate(self.depts)}
        # staff: front desk and nurses at every institution (sources of offline entries, care-alert owners)
        self.staff: list[list[str]] = []
        for i, iid in enumerate(self.institutions):
            ids = []
            for k in range(6 if i == 0 else 3):
                sid = uid(setup + 1000 + i * 10 + k)
                role = "frontdesk" if k % 2 == 0 else "nurse"
                cur.execute("INSERT INTO staff_users (id, username, password_hash, role, active, created_at, "
                            "failed_logins, institution_id, alliance_wide) VALUES (%s, %s, %s, %s, true, %s, 0, %s, "
                            "false)", (sid, f"{self.inst_codes[i].lower()}-{role}-{k}", "!bench", role, dt(setup),
                                       iid))
                ids.append(sid)
            self.staff.append(ids)
        self.education = []
        for k in range(60):
            eid = uid(setup + 2000 + k)
            self.education.append(eid)
            cur.execute("INSERT INTO education_items (id, kind, title, body_url, duration_seconds, quiz, status, "
                        "version, created_at, updated_at, published_at) VALUES (%s, %s, %s, NULL, %s, %s, "
                        "'published', 1, %s, %s, %s)",
                        (eid, "video" if k % 3 else "article", orjson.dumps({"zh": f"健康课堂第{k + 1}课"}).decode(),
                         300 + 30 * (k % 10), orjson.dumps({"pass_mark": 60, "questions": []}).decode(),
                         dt(setup), dt(setup), dt(setup)))
        # a health lecture every week at every institution
        self.lectures: list[tuple[str, int, int]] = []  # (id, institution, day)
        for i, iid in enumerate(self.institutions):
            for day in range((3 + i) % 7, c.n_days + 1, 7):
                lid = uid(c.at(day, 14.5 * 3600) - 14 * DAY_US)
                self.lectures.append((lid, i, day))
                cur.execute("INSERT INTO lectures (id, title, place, starts_at, ends_at, seats, taken, "
                            "institution_id, created_at) VALUES (%s, %s, %s, %s, %s, 200, 0, %s, %s)",
                            (lid, orjson.dumps({"zh": "慢病健康讲座"}).decode(), "门诊楼三楼报告厅",
                             dt(c.at(day, 14.5 * 3600)), dt(c.at(day, 16 * 3600)), iid,
                             dt(c.at(day, 14.5 * 3600) - 14 * DAY_US)))
        self.lectures_by_inst: dict[int, list[tuple[str, int, int]]] = {}
        for lec in self.lectures:
            self.lectures_by_inst.setdefault(lec[1], []).append(lec)
        self.questionnaires = {}
        for code, purpose in (("followup_general", "followup"), ("rehab_post_op", "rehab"),
                              ("monthly_satisfaction", "satisfaction")):
            qid = uid(setup + 3000 + len(self.questionnaires))
            self.questionnaires[code] = qid
            questions = [{"id": "q1", "type": "single", "required": True,
                          "choices": [{"value": "good"}, {"value": "fair"}, {"value": "poor"}],
                          "alerts": [{"any_of": ["poor"], "severity": "high"}]}]
            cur.execute("INSERT INTO questionnaires (id, code, version, title, purpose, questions, digest, created_at) "
                        "VALUES (%s, %s, 1, %s, %s, %s, %s, %s)",
                        (qid, code, orjson.dumps({"zh": code}).decode(), purpose, orjson.dumps(questions).decode(),
                         hexdigest(code), dt(setup)))
        self.experiment = ensure_experiment(self.conn, c, self.staff[0][0])
        cur.execute("SELECT id, code, kind, names, points, cost_fen, limit_count, limit_period, code_valid_days "
                    "FROM rewards WHERE active")
        self.rewards = {r[1]: r for r in cur.fetchall()}
        cur.execute("UPDATE rewards SET institution_id = NULL")
        self.conn.commit()
        _ = now, rng

    def clinics(self, visits_per_day: float, exams_per_day: float, demand: dict[int, int]) -> None:
        """Clinicians and weekly sessions (mornings Monday to Friday, some afternoons and Saturday
        mornings at the lead hospital) and exam resources (CT, MRI, ultrasound) at the lead
        hospital's imaging department, sized from the calibration's visits per department so
        that at the end of the two years (the most patients enrolled) about 85% of the slots are
        taken. Clinicians join over the two years as the programme's patients grow in number
        (enrolled patients grow as (t / T)^1.25), so earlier days are about as full."""
        c, rng = self.clock, self.rng
        setup = c.starts[0] - 30 * DAY_US
        cur = self.conn.cursor()
        total = sum(demand.values()) or 1
        peak = 2.25 / 0.85  # end-of-window demand over the average, over the fill aimed at
        self.clinicians: list[tuple[str, int, str]] = []  # (id, dept, level)
        self.clinic_days: dict[int, int] = {}  # department -> weekdays with sessions (Monday first)
        self.joined: dict[str, int] = {}  # clinician or resource -> first day with sessions
        slots_per_clinician_day = 24 * 5 / 7 * 1.25  # 24 ten-minute slots a morning, 5 days a week, some afternoons
        for k, d in enumerate(self.depts):
            if not d.weight:
                continue
            need = visits_per_day * peak * demand.get(k, 0) / total
            n = max(1, math.ceil(need / slots_per_clinician_day))
            # a small clinic: its one clinician sees patients on fewer weekdays
            self.clinic_days[k] = max(1, min(5, math.ceil(5 * need / slots_per_clinician_day)))
            for j in range(n):
                cid = uid(setup + 5000 + len(self.clinicians))
                level = "expert" if j % 4 == 0 else "general"
                self.joined[cid] = int(c.n_days * (j / n) ** 0.8)
                self.clinicians.append((cid, k, level))
                d.clinicians.append(len(self.clinicians) - 1)
                cur.execute("INSERT INTO clinicians (id, department_id, code, name, title, created_at) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            (cid, d.id, f"D{len(self.clinicians):04d}", f"医生{len(self.clinicians):04d}",
                             "主任医师" if level == "expert" else "主治医师", dt(setup)))
        imaging = self.dept_by_code[(0, "imaging")]
        n_res = max(3, round(exams_per_day * peak / 36))
        self.resources: list[tuple[str, str]] = []
        for j in range(n_res):
            modality = ("CT", "MRI", "US")[j % 3]
            rid = uid(setup + 9000 + j)
            self.joined[rid] = int(c.n_days * (j / n_res) ** 0.8)
            self.resources.append((rid, modality))
            cur.execute("INSERT INTO resources (id, department_id, code, modality, name, created_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        (rid, self.depts[imaging].id, f"{modality}{j + 1}", modality, f"{modality}-{j + 1}", dt(setup)))
        self.conn.commit()
        # sessions: days -1 .. today + 7
        self.sessions: list[Session] = []
        self.by_dept_day: dict[tuple[int, int], list[int]] = {}
        seen: set[str] = set()
        for day in range(0, c.n_days + 8):
            wd = c.weekday(day)
            for ci, (cid, dk, level) in enumerate(self.clinicians):
                if day < self.joined[cid]:
                    continue
                lead = self.depts[dk].inst == 0
                halves = []
                if wd <= self.clinic_days.get(dk, 5):
                    halves.append((8, 12))
                    if lead and (ci + wd) % 3 == 0:
                        halves.append((14, 17))
                elif wd == 6 and lead and ci % 3 == 0:
                    halves.append((8, 12))
                for h0, h1 in halves:
                    minutes = 15 if level == "expert" else 10
                    self._session(dk, cid, False, day, h0, h1, minutes, level,
                                  5000 if level == "expert" else (1000 if lead else 500), seen)
            for rid, modality in self.resources:
                if day < self.joined[rid]:
                    continue
                self._session(imaging, rid, True, day, 8, 17, 20 if modality == "MRI" else 15, "general",
                              {"CT": 20000, "MRI": 50000, "US": 10000}[modality], seen)
        self.log(f"  clinics: {len(self.clinicians)} clinicians, {len(self.resources)} exam resources, "
                 f"{len(self.sessions):,} sessions, {sum(s.capacity for s in self.sessions):,} slots")
        _ = rng

    def _session(self, dept: int, owner: str, is_resource: bool, day: int, h0: int, h1: int, minutes: int,
                 level: str, fee: int, seen: set[str]) -> None:
        c = self.clock
        start = c.at(day, h0 * 3600)
        capacity = (h1 - h0) * 60 // minutes
        created = start - 14 * DAY_US
        sid = uid(created)
        while sid[:24] in seen:  # slot ids are the session id's first 24 characters + the seq
            created += 1
            sid = uid(created)
        seen.add(sid[:24])
        pattern = ["online", "onsite"]
        share = "0.2" if not is_resource and self.depts[dept].inst == 0 else "0"
        pools = slot_pools(capacity, pattern, Decimal(share))
        free: dict[str, list[int]] = {"online": [], "onsite": [], "referral": []}
        for seq in range(capacity, 0, -1):
            free[pools[seq - 1]].append(seq)
        k = len(self.sessions)
        self.sessions.append(Session(sid, dept, owner, is_resource, day, start, minutes, capacity, level, fee, pools,
                                     free, [None] * capacity))
        self.by_dept_day.setdefault((dept, day), []).append(k)
        release = c.at(day, 8 * 3600) - 7 * DAY_US
        self.t.add("clinic_sessions", sid, self.depts[dept].id, N if is_resource else owner,
                   owner if is_resource else N, c.iso_day(day), pg(start), pg(c.at(day, h1 * 3600)), str(minutes),
                   str(capacity), level, str(fee), pg(release), pg(start - 24 * HOUR_US), js(pattern), share, "open",
                   pg(created))

    # ----------------------------------------------------------------- booking

    def take_slot(self, dept: int, day: int, channel: str, rng: random.Random) -> tuple[int, int] | None:
        """A free slot of `dept` on `day` (or the next days with sessions) in the channel's pool
        (any pool on the day itself); (session index, seq)."""
        if self.dry:
            self._demand[dept] = self._demand.get(dept, 0) + 1
            return (-1, rng.randint(1, 24))
        last = self.clock.n_days + 7
        later = list(range(day + 1, min(day + 7, last + 1)))
        rng.shuffle(later)  # no session that day (a weekend) or full: another day of the week
        for d in (day, *later):
            options = self.by_dept_day.get((dept, d))
            if not options:
                continue
            start = rng.randrange(len(options))
            for j in range(len(options)):
                s = self.sessions[options[(start + j) % len(options)]]
                for pool in (channel, "online", "onsite", "referral"):
                    if s.free[pool]:
                        return options[(start + j) % len(options)], s.free[pool].pop()
        return None

    def slot_id(self, s: Session, seq: int) -> str:
        return f"{s.id[:24]}{seq:012x}"

    # ----------------------------------------------------------------- one patient

    def patient(self, rng: random.Random) -> tuple[int, int]:
        """Simulate and write one patient; answers (events, ledger entries)."""
        c, act = self.clock, self.activity
        end_day = c.n_days  # today (partial, up to now)
        # enrolment day: more patients join as the programme grows
        day0 = min(end_day, int(c.n_days * rng.random() ** 0.8))
        created = c.at(day0, rng.uniform(8, 17.5) * 3600)
        if created >= c.now_us:
            day0 -= 1
            created -= DAY_US
        lo, hi, _w = rng.choices(AGE_BANDS, weights=[a[2] for a in AGE_BANDS])[0]
        age = rng.randint(lo, hi)
        birth: date | None = c.date(day0) - timedelta(days=365 * age + rng.randrange(365))
        if rng.random() < 0.01:
            birth = None
        sex = rng.choices(("female", "male", "unknown"), weights=(52, 47, 1))[0]
        elderly = age >= 60
        app = rng.random() < (0.9 if age < 60 else 0.65 if age < 70 else 0.4 if age < 80 else 0.18)
        chronic_p = 0.04 if age < 40 else 0.22 if age < 60 else 0.5 if age < 70 else 0.62
        conditions: list[str] = []
        if rng.random() < chronic_p:
            conditions.append(rng.choices([x[0] for x in CONDITIONS], weights=[x[1] for x in CONDITIONS])[0])
            if rng.random() < 0.3:
                extra = rng.choices([x[0] for x in CONDITIONS], weights=[x[1] for x in CONDITIONS])[0]
                if extra not in conditions:
                    conditions.append(extra)
        engage = min(4.0, rng.lognormvariate(0, 0.7))
        home = 0 if rng.random() < 0.5 else rng.randrange(1, len(self.institutions))
        pid = uid(created)
        wallet = Wallet(uid(created + 1))
        self._research = rng.random() < 0.3
        self._arm: tuple[str, int] | None = None
        if self._research and self.experiment is not None:
            exp_id, _code, started = self.experiment
            variant = variant_index(exp_id, [1, 1], pid)
            self._arm = (("control", "checkin_20")[variant], max(started, created))
        evs: list[Ev] = []
        span = end_day - day0 + 1  # days enrolled (today included)
        years = span / 365.0

        # -- enrolment
        channel = "fhir" if rng.random() < 0.15 else "api"
        evs.append(Ev(created, created + 20_000, "account.registered", "carepoints.enrolment", f"registered:{pid}",
                      {"channel": channel}, day0))

        def when(day: int, h0: float, h1: float) -> int:
            return c.at(day, rng.uniform(h0, h1) * 3600)

        def cap(day: int) -> int:
            """A day after today is tomorrow: still to come, so the guards on `now` leave it out."""
            return day if day <= end_day else end_day + 1

        def staff_of(inst: int) -> str:
            return rng.choice(self.staff[inst])

        def offline(inner: str, at: int, day: int, attrs: dict[str, Any], ref: str, inst: int) -> None:
            """A paper-sheet line typed in by the front desk one to five days later."""
            staff = staff_of(inst)
            typed = at + rng.randint(1, 5) * DAY_US + rng.randint(0, 8 * 3600) * US
            if typed >= c.now_us:  # not typed in yet
                return
            evs.append(Ev(at, typed, "staff.offline_entry", f"staff:{staff}", f"sheet:{ref}:{inner}:{pid}",
                          {"behaviour": inner, "attributes": attrs, "sheet_ref": ref, "staff_id": staff}, day,
                          inner=inner))

        # -- visits (appointments), with kiosk use, clinic readings, exams, reviews, referrals
        visits_rate = (2.2 + 2.2 * bool(conditions) + 1.0 * elderly) * min(engage, 2.0)  # not scaled: clinic use
        n_visits = self._poisson(rng, visits_rate * years)
        visit_days = sorted(rng.randrange(day0, end_day + 8) for _ in range(n_visits))
        if rng.random() < 0.4:
            visit_days.insert(0, day0)  # many enrol at the desk on the day of a visit
        appts = []
        for vday in visit_days:
            inst = home if rng.random() < 0.75 else 0
            if conditions and rng.random() < 0.6:
                code = next(x[2] for x in CONDITIONS if x[0] == conditions[0])
                dk = self.dept_by_code.get((inst, code)) or self.dept_by_code.get((inst, "general")) \
                    or self.dept_by_code[(0, code)]
            else:
                options = [k for k, d in enumerate(self.depts) if d.inst == inst and d.weight]
                dk = rng.choices(options, weights=[self.depts[k].weight for k in options])[0]
            if self.depts[dk].code == "paediatrics" and age >= 18:
                dk = self.dept_by_code[(0, "gastro")]
            if app:
                channel = rng.choices(("online", "onsite", "referral"),
                                      weights=(75, 20, 6 if inst == 0 and home != 0 else 0))[0]
            else:
                channel = rng.choices(("online", "onsite", "referral"),
                                      weights=(8, 80, 12 if inst == 0 and home != 0 else 0))[0]
            appts.append((vday, dk, channel, False))
        for vday, dk, channel, _exam in appts:
            self._appointment(rng, pid, wallet, evs, vday, dk, channel, False, day0, created, conditions, app,
                              elderly, home, offline, when)

        # -- self-monitoring: readings in runs of consecutive days (hypertension / diabetes)
        monitored = [x for x in conditions if x in ("hypertension", "diabetes")]
        if monitored and rng.random() < (0.62 if app else 0.25) * min(1.0, act):
            kind = "blood_pressure" if monitored[0] == "hypertension" else "blood_glucose"
            provenance = "self_reported" if app and rng.random() < 0.7 else "device"
            device = f"dev-{rng.randrange(10 ** 8):08d}" if provenance == "device" else None
            d = day0 + rng.randrange(0, 10)
            per_day = 2 if rng.random() < 0.45 else 1
            mean_run = 9 * engage * act
            mean_gap = 9 / max(0.2, engage * act)
            last_reading_days: list[int] = []
            flagged: set[int] = set()
            while d <= end_day:
                run = 1 + int(rng.expovariate(1 / mean_run))
                for dd in range(d, min(end_day + 1, d + run)):
                    if rng.random() < 0.05:
                        continue
                    n = per_day + (1 if rng.random() < 0.06 else 0)
                    for k in range(n):
                        at = when(dd, 6.5 + 11 * k, 9 + 12 * k)
                        if at >= c.now_us - 5 * MIN_US:
                            continue
                        self._reading(rng, evs, pid, kind, provenance, device, at, dd)
                    last_reading_days.append(dd)
                d += run
                gap = 1 + int(rng.expovariate(1 / mean_gap))
                # inactivity: readings on >= 10 of the 30 days before a gap of >= 3 full days
                if gap >= 4 and d + 3 <= end_day:
                    recent = [x for x in last_reading_days if x >= d - 31]
                    if len(set(recent)) >= 10 and max(recent) not in flagged:
                        last = max(recent)
                        flagged.add(last)
                        self._alert(rng, pid, "inactivity", f"inactivity:{pid}:{c.iso_day(last)}",
                                    c.at(last + 4, 9 * 3600), {"last_reading_day": c.iso_day(last)}, "normal", home)
                d += gap

        # -- medication check-ins
        if conditions and app and rng.random() < 0.35 * min(1.0, act * engage):
            plan_id = uid(created + 3 * HOUR_US)
            times = ["08:00"] if rng.random() < 0.6 else ["08:00", "20:00"]
            start = day0 + rng.randrange(0, 5)
            self.t.add("medication_plans", plan_id, pid, rng.choice(MEDICINES), "1片", js(times), c.iso_day(start),
                       N, "active", pg(c.at(start, 9 * 3600)))
            adherence = min(0.95, 0.35 * engage * act)
            dd = start
            while dd <= end_day:
                for t in times:
                    h = int(t[:2])
                    scheduled = c.at(dd, h * 3600)
                    taken = scheduled + rng.randint(0, 50) * MIN_US
                    if taken >= c.now_us - MIN_US or rng.random() > adherence:
                        continue
                    dose_id = uid(scheduled - 12 * HOUR_US)

                    def dose_rows(event_id: str, _outcome: dict[str, Any], dose_id: str = dose_id,
                                  scheduled: int = scheduled, taken: int = taken) -> None:
                        self.t.add("medication_doses", dose_id, plan_id, pid, pg(scheduled),
                                   pg(scheduled - 10 * MIN_US), pg(taken), event_id)

                    evs.append(Ev(taken, taken + 300_000, "medication.taken", "carepoints.engagement",
                                  f"medication:{plan_id}:{iso_z(scheduled)}",
                                  {"plan_id": plan_id, "scheduled_for": iso(scheduled)}, dd, after=dose_rows))
                dd += 1 if rng.random() < 0.9 else rng.randint(2, 15)

        # -- online engagement: education, surveys, health-record items
        if app:
            n_edu = min(len(self.education), self._poisson(rng, 3.0 * engage * act * years))
            for item in rng.sample(self.education, n_edu):
                dd = rng.randint(day0, end_day)
                at = when(dd, 8, 22.5)
                if at >= c.now_us - MIN_US:
                    continue
                score = rng.choice((40, 60, 80, 100, 100, 80))
                evs.append(Ev(at, at + 50_000, "education.completed", "carepoints.engagement",
                              f"education:{pid}:{item}:{uid(at)[-12:]}",
                              {"content_id": item, "score": score, "pass_mark": 60}, dd))
            p_survey = min(0.9, 0.12 * engage * act)
            for m in self._months(day0, end_day):
                if rng.random() < p_survey:
                    dd = cap(m + rng.randrange(0, 25))
                    at = when(dd, 9, 21)
                    if at >= c.now_us - MIN_US:
                        continue
                    period = c.iso_day(m)[:7]
                    rid = uid(at)

                    def survey_rows(event_id: str, _o: dict[str, Any], rid: str = rid, at: int = at,
                                    period: str = period) -> None:
                        answers = {"q1": "good"}
                        self.t.add("questionnaire_responses", rid, pid, self.questionnaires["monthly_satisfaction"],
                                   N, period, js(answers), hexdigest(rid), "app", N, "patient", pid, "[]", pg(at))

                    evs.append(Ev(at, at + 80_000, "survey.completed", "carepoints.engagement",
                                  f"survey:{pid}:{period}", {"survey_id": "monthly_satisfaction", "period": period},
                                  dd, after=survey_rows))
            for item in rng.sample(PROFILE_ITEMS, min(len(PROFILE_ITEMS), self._poisson(rng, 2.5 * min(2, engage)))):
                dd = cap(day0 + rng.randrange(0, 30))
                at = when(dd, 9, 22)
                if at < c.now_us - MIN_US:
                    evs.append(Ev(at, at + 40_000, "profile.item_completed", "carepoints.engagement",
                                  f"profile:{pid}:{item}", {"item": item}, dd))

        # -- lectures (signed in at the door, or on a paper sheet)
        if elderly or conditions:
            attended_lectures: set[str] = set()
            for _ in range(self._poisson(rng, 0.8 * engage * act * years)):
                mine = self.lectures_by_inst.get(home, [])
                options = [x for x in mine if day0 <= x[2] <= end_day]
                if not options:
                    break
                lid, inst, dd = rng.choice(options)
                at = c.at(dd, 14.4 * 3600) + rng.randint(0, 20) * MIN_US
                if at >= c.now_us or lid in attended_lectures:
                    continue
                attended_lectures.add(lid)
                if not app or rng.random() < 0.4:
                    offline("lecture.attended", at, dd, {"lecture_id": lid}, f"L{dd}-{inst}", inst)
                else:
                    att_id = uid(at)

                    def attendance(event_id: str, outcome: dict[str, Any], att_id: str = att_id, lid: str = lid,
                                   at: int = at) -> None:
                        self.t.add("lecture_attendances", att_id, lid, pid, "f", pg(at), js(outcome), pg(at))

                    evs.append(Ev(at, at + 30_000, "lecture.attended", "carepoints.engagement",
                                  f"lecture:{lid}:{pid}", {"lecture_id": lid}, dd, after=attendance))

        # -- public health (HIS, or the front desk's paper sheet)
        for year_start in self._years(day0, end_day):
            if age >= 65 and rng.random() < 0.55:
                dd = cap(max(day0, year_start + rng.randrange(0, 330)))
                self._public_health(rng, evs, pid, "elderly_checkup", f"{c.date(dd).year}", dd, home, app, offline)
            if age < 7:
                for k in range(rng.randint(1, 3)):
                    dd = cap(max(day0, year_start + rng.randrange(0, 360)))
                    self._public_health(rng, evs, pid, "vaccination", f"child-{age}-{k}", dd, home, app, offline)
            elif (age >= 60 or conditions) and rng.random() < 0.25:
                dd = cap(max(day0, year_start + rng.randrange(240, 360)))
                self._public_health(rng, evs, pid, "vaccination", f"flu-{c.date(dd).year}", dd, home, app, offline)
        if sex == "female" and 22 <= age <= 40 and rng.random() < 0.06:
            for k in range(rng.randint(2, 5)):
                dd = cap(day0 + 20 + 35 * k)
                self._public_health(rng, evs, pid, "prenatal", f"visit-{k + 1}", dd, home, app, offline)

        # -- follow-up plans after a discharge or an operation
        for _ in range(self._poisson(rng, (0.05 + 0.1 * elderly + 0.08 * bool(conditions)) * years)):
            self._followup(rng, evs, pid, day0, end_day, home, app)

        # -- critical lab values, misconduct
        if conditions and rng.random() < 0.02 * years:
            dd = rng.randint(day0, end_day)
            at = when(dd, 8, 18)
            if at < c.now_us - HOUR_US:
                clin = self.clinicians[rng.randrange(len(self.clinicians))][0]

                def critical(event_id: str, _o: dict[str, Any], at: int = at, clin: str = clin) -> None:
                    self._alert(rng, pid, "critical_value", event_id, at + 2 * MIN_US,
                                {"event_id": event_id, "clinician": clin}, "critical", 0)

                evs.append(Ev(at, at + 2 * MIN_US, "lab.critical_value", "his:H01", f"lis:{uid(at)}",
                              {"test": "K", "value": 6.9, "unit": "mmol/L", "clinician": clin}, dd, after=critical))
        if rng.random() < 0.004 * years:
            dd = rng.randint(day0, end_day)
            at = when(dd, 8, 17)
            if at < c.now_us - HOUR_US:
                staff = staff_of(home)
                evs.append(Ev(at, at + 10 * MIN_US, "conduct.violation", f"staff:{staff}", f"conduct:{uid(at)}",
                              {"reason": "插队并与工作人员争执", "staff_id": staff}, dd))

        # -- chances to redeem in the mall
        p_mall = 0.08 * engage if app else 0.02
        for m in self._months(day0, end_day):
            if rng.random() < p_mall:
                dd = cap(m + rng.randrange(0, 28))
                at = when(dd, 9, 21)
                if at < c.now_us - MIN_US:
                    evs.append(Ev(at, at, "", "", "", {}, dd, redeem=True))

        return self._post(rng, pid, wallet, evs, created, day0, birth, sex, conditions, home, elderly)

    def _poisson(self, rng: random.Random, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(rng.gauss(lam, math.sqrt(lam))))
        k, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1

    def _months(self, day0: int, end_day: int) -> Iterator[int]:
        """Day indices of the first of each month from the month of day0 (clamped to day0)."""
        c = self.clock
        d = c.date(day0)
        first = d.replace(day=1)
        while True:
            idx = (first - c.first).days
            if idx > end_day:
                return
            yield max(day0, idx)
            first = (first + timedelta(days=32)).replace(day=1)

    def _years(self, day0: int, end_day: int) -> Iterator[int]:
        c = self.clock
        y = c.date(day0).year
        while True:
            idx = (date(y, 1, 1) - c.first).days
            if idx > end_day:
                return
            yield max(day0, idx)
            y += 1

    def _reading(self, rng: random.Random, evs: list[Ev], pid: str, kind: str, provenance: str, device: str | None,
                 at: int, day: int, source: str = "carepoints.engagement") -> None:
        if kind == "blood_pressure":
            sbp = int(rng.gauss(142, 14))
            sbp = max(95, min(230, sbp))
            dbp = max(55, min(sbp - 20, int(rng.gauss(86, 9))))
            attrs: dict[str, Any] = {"kind": kind, "provenance": provenance, "systolic": sbp, "diastolic": dbp}
            if rng.random() < 0.6:
                attrs["pulse"] = rng.randint(58, 96)
            reasons = (["sbp_high"] if sbp >= 180 else []) + (["dbp_high"] if dbp >= 110 else [])
        else:
            g = round(max(2.5, min(25.0, rng.gauss(8.0, 2.4))), 1)
            attrs = {"kind": kind, "provenance": provenance, "glucose_mmol_l": g}
            reasons = (["glucose_high"] if g >= 16.7 else []) + (["glucose_low"] if g <= 3.9 else [])
        if device:
            attrs["device_id"] = device
        received = at + (rng.randint(1, 600) * US if provenance == "device" else 40_000)
        key = f"measurement:{uid(at)}" if source == "carepoints.engagement" else f"obs:{uid(at)}"
        measurement_id = uid(received)

        def rows(event_id: str, _o: dict[str, Any]) -> None:
            v = attrs
            self.t.add("measurements", measurement_id, event_id, pid, kind, str(v.get("systolic", N)),
                       str(v.get("diastolic", N)), str(v.get("pulse", N)), str(v.get("glucose_mmol_l", N)),
                       provenance, b(provenance in SELF), pg(at), self.clock.iso_day(day), b(bool(reasons)),
                       ",".join(reasons) or N, pg(received))
            if reasons:
                self._alert(rng, pid, "abnormal_reading", event_id, received, {"event_id": event_id,
                                                                                "reasons": reasons}, "high", 0)

        evs.append(Ev(at, received, "health.measurement", source, key, attrs, day, after=rows))

    def _public_health(self, rng: random.Random, evs: list[Ev], pid: str, programme: str, item: str, day: int,
                       inst: int, app: bool, offline: Callable[..., None]) -> None:
        c = self.clock
        at = c.at(day, rng.uniform(8.5, 16) * 3600)
        if at >= c.now_us - HOUR_US:
            return
        attrs = {"programme": programme, "item": item}
        if rng.random() < (0.2 if app else 0.45):
            offline("public_health.completed", at, day, attrs, f"PH{day}-{inst}", inst)
        else:
            code = self.inst_codes[inst]
            evs.append(Ev(at, at + rng.randint(5, 120) * MIN_US, "public_health.completed", f"his:{code}",
                          f"ph:{pid}:{programme}:{item}", attrs, day))

    def _alert(self, rng: random.Random, pid: str, kind: str, source_ref: str, at: int, details: dict[str, Any],
               severity: str, inst: int) -> None:
        """A care alert as `engagement.care.service.raise_alert` opens it, then worked by the team."""
        c = self.clock
        if at >= c.now_us:
            return
        age_days = (c.now_us - at) / DAY_US
        status = rng.choices(("open", "acknowledged", "resolved"),
                             weights=(8, 4, 88) if age_days > 14 else (55, 25, 20))[0]
        assigned = rng.choice(self.staff[inst]) if status != "open" or rng.random() < 0.3 else None
        ack = at + rng.randint(1, 48) * HOUR_US if status != "open" else None
        res = (ack or at) + rng.randint(1, 72) * HOUR_US if status == "resolved" else None
        if ack and ack >= c.now_us:
            ack, res, status = None, None, "open"
        if res and res >= c.now_us:
            res, status = None, "acknowledged"
        self.t.add("care_alerts", uid(at), pid, kind, severity, source_ref, js(details), status, assigned or N,
                   pg(at), pg(res or ack or at), pg(ack) if ack else N, pg(res) if res else N,
                   rng.choice(("contacted", "referred", "no_action", "false_alarm")) if res else N)

    def _followup(self, rng: random.Random, evs: list[Ev], pid: str, day0: int, end_day: int, inst: int,
                  app: bool) -> None:
        c = self.clock
        trigger = "surgery" if rng.random() < 0.35 else "discharge"
        kind = "rehab" if trigger == "surgery" and rng.random() < 0.8 else "routine"
        occurred = rng.randint(day0, end_day)
        if c.at(occurred, 10 * 3600) >= c.now_us:
            return
        channel = rng.choices(("app", "phone", "sms"), weights=(60, 30, 10) if app else (0, 80, 20))[0]
        code = "rehab_post_op" if kind == "rehab" else "followup_general"
        plan_id = uid(c.at(occurred, 10 * 3600))
        self.t.add("followup_plans", plan_id, pid, trigger, c.iso_day(occurred), code, kind, channel,
                   f"ENC{rng.randrange(10 ** 9):09d}", "active", pg(c.at(occurred, 10 * 3600)))
        for pos, offset in enumerate((3, 7, 30), start=1):
            due = occurred + offset
            overdue = due + 3  # the due day and the two after it (followup_due_window_days = 2)
            step_id = uid(c.at(occurred, 10 * 3600) + pos)
            notified = c.at(due, 9 * 3600) if channel in ("app", "sms") and c.at(due, 9 * 3600) < c.now_us else None
            done = rng.random() < (0.85 if channel == "phone" else 0.7)
            answer_day = due + rng.randint(0, 2)
            answered = c.at(answer_day, rng.uniform(9, 20) * 3600)
            if done and answered < c.now_us - MIN_US:
                rid = uid(answered)
                nurse = rng.choice(self.staff[inst]) if channel == "phone" else None
                poor = rng.random() < 0.04
                self.t.add("followup_steps", step_id, plan_id, pid, str(offset), str(pos), channel, c.iso_day(due),
                           c.iso_day(overdue), "completed", rid, pg(answered), pg(notified) if notified else N, N)
                self.t.add("questionnaire_responses", rid, pid, self.questionnaires[code], step_id, N,
                           js({"q1": "poor" if poor else "good"}), hexdigest(rid), channel, nurse or N,
                           "staff" if nurse else "patient", nurse or pid, '["q1"]' if poor else "[]", pg(answered))
                if poor:
                    self._alert(rng, pid, "abnormal_answer", f"answer:{rid}:q1", answered,
                                {"questionnaire": code, "version": 1, "question_id": "q1", "response_id": rid},
                                "high", inst)
                evs.append(Ev(answered, answered + 30_000, "followup.completed", "carepoints.engagement",
                              f"followup:{step_id}", {"plan_id": plan_id, "step": offset, "kind": kind,
                                                      "channel": channel}, answer_day))
            else:
                flagged = c.at(overdue, 8 * 3600)
                is_overdue = flagged < c.now_us
                self.t.add("followup_steps", step_id, plan_id, pid, str(offset), str(pos), channel, c.iso_day(due),
                           c.iso_day(overdue), "pending", N, N, pg(notified) if notified else N,
                           pg(flagged) if is_overdue else N)
                if is_overdue:
                    self._alert(rng, pid, "overdue_followup", f"overdue:{step_id}", flagged,
                                {"plan_id": plan_id, "step_id": step_id, "step": offset}, "normal", inst)

    def _appointment(self, rng: random.Random, pid: str, wallet: Wallet, evs: list[Ev], vday: int, dk: int,
                     channel: str, exam: bool, day0: int, created: int, conditions: list[str], app: bool,
                     elderly: bool, home: int, offline: Callable[..., None], when: Callable[[int, float, float], int],
                     resource: int | None = None) -> None:
        c = self.clock
        got = self.take_slot(dk, vday, channel, rng)
        if got is None:
            return
        if self.dry:
            s_day, seq, minutes = vday, got[1], 10
            slot_start = c.at(vday, 8 * 3600 + (seq - 1) * 600)
            sess = None
        else:
            sess = self.sessions[got[0]]
            seq, s_day, minutes = got[1], sess.day, sess.minutes
            slot_start = sess.start_us + (seq - 1) * minutes * MIN_US
        slot_end = slot_start + minutes * MIN_US
        # when it was booked: online up to 7 days ahead (release at 08:00), on-site on the day
        if channel == "onsite":
            booked = slot_start - rng.randint(10, 150) * MIN_US
            booked_by = "staff"
        elif channel == "referral":
            booked = slot_start - rng.randint(1, 6) * DAY_US - rng.randint(0, 600) * MIN_US
            booked_by = "staff"
        else:
            lead_days = rng.choices(range(8), weights=(18, 16, 14, 12, 12, 10, 9, 9))[0]
            booked = slot_start - lead_days * DAY_US - rng.randint(10, 600) * MIN_US
            booked_by = "clinician" if rng.random() < 0.1 else "patient"
        if exam:
            booked_by, channel = "clinician", "onsite"
        booked = max(booked, created + MIN_US, c.at(s_day, 8 * 3600) - 7 * DAY_US)
        if booked >= slot_start - 5 * MIN_US:
            booked = slot_start - 5 * MIN_US
        owner = sess.owner if sess else (self.clinicians[0][0] if self.clinicians else "x")
        rank = self._ranks.get(s_day, 0) + 1
        if booked >= c.now_us or booked <= created or rank > self.max_per_day or (s_day, owner) in self._guards:
            if sess is not None:
                sess.free[sess.pools[seq - 1]].append(seq)
            return
        self._ranks[s_day] = rank
        self._guards.add((s_day, owner))
        if exam:
            self._count.exams += 1
        else:
            self._count.visits += 1
        aid = uid(booked)
        past = slot_end + 2 * HOUR_US < c.now_us
        # what happened
        if not past:
            status = "booked" if slot_start > c.now_us else rng.choice(("booked", "checked_in", "checked_in"))
        else:
            cancel_p = 0.09
            noshow_p = 0.02 if channel == "onsite" else 0.075 - 0.02 * elderly
            r = rng.random()
            status = "cancelled" if r < cancel_p else "no_show" if r < cancel_p + noshow_p else "attended"
        history = [{"status": "booked", "at": iso(booked), "by": booked_by}]
        checked_in = attended = cancelled_at = no_show_at = None
        cancelled_by = None
        late = None
        referral_id = f"REF{aid[-12:].upper()}" if channel == "referral" else None
        inst = self.depts[dk].inst
        source = "carepoints.scheduling"
        dept_id = self.depts[dk].id
        is_res = exam if sess is None else sess.is_resource
        booked_attrs: dict[str, Any] = {"appointment_id": aid, "slot_start": iso(slot_start), "booked_at": iso(booked),
                                        "booked_by": booked_by, "department": dept_id}
        if not is_res:
            booked_attrs["clinician"] = owner
        evs.append(Ev(booked, booked + 30_000, "appointment.booked", source, f"appointment:{aid}:booked", booked_attrs,
                      c.day_of(booked)))
        if status == "cancelled":
            by = "patient" if rng.random() < 0.85 and slot_start - booked > 3 * HOUR_US else "hospital"
            latest = slot_start - (2 * HOUR_US if by == "patient" else 10 * MIN_US)
            cancelled_at = booked + int((latest - booked) * rng.random())
            cancelled_by = by
            history.append({"status": "cancelled", "at": iso(cancelled_at), "by": by})
            evs.append(Ev(cancelled_at, cancelled_at + 30_000, "appointment.cancelled", source,
                          f"appointment:{aid}:cancelled", {"appointment_id": aid, "slot_start": iso(slot_start),
                                                           "cancelled_at": iso(cancelled_at), "by": by},
                          c.day_of(cancelled_at)))
            if sess is not None:
                sess.free[sess.pools[seq - 1]].append(seq)  # freed; a later patient may take it
        if status in ("attended", "checked_in") and rng.random() < 0.97:
            on_time = rng.random() < 0.78
            early = rng.randint(1, 30) * MIN_US
            checked_in = slot_start - early if on_time else slot_start + rng.randint(1, 40) * MIN_US
            if checked_in >= c.now_us:
                checked_in = None
        if status == "checked_in" and checked_in is None:
            status = "booked"
        if checked_in is not None:
            late = checked_in > slot_start
            history.append({"status": "checked_in", "at": iso(checked_in), "channel": "kiosk" if rng.random() < 0.5
                            else "desk"})
            evs.append(Ev(checked_in, checked_in + 30_000, "appointment.checked_in", source,
                          f"appointment:{aid}:checked_in", {"appointment_id": aid, "slot_start": iso(slot_start),
                                                            "checked_in_at": iso(checked_in)},
                          c.day_of(checked_in)))
        if status == "attended":
            attended = max(checked_in or slot_start, slot_start) + rng.randint(3, 40) * MIN_US
            history.append({"status": "attended", "at": iso(attended)})
            received = attended + rng.randint(1, 30) * MIN_US  # the HIS reports the visit
            if is_res:
                modality = next((m for r, m in self.resources if r == owner), "CT")
                evs.append(Ev(attended, received, "exam.attended", source, f"appointment:{aid}:attended",
                              {"exam_id": aid, "modality": modality, "slot_start": iso(slot_start)},
                              c.day_of(attended)))
            else:
                attrs: dict[str, Any] = {"appointment_id": aid, "slot_start": iso(slot_start), "booked_at": iso(booked),
                                         "booked_by": booked_by}
                if checked_in is not None:
                    attrs["checked_in_at"] = iso(checked_in)
                fee = sess.fee_fen if sess else 1000
                evs.append(Ev(attended, received, "appointment.attended", source, f"appointment:{aid}:attended",
                              attrs, c.day_of(attended), after=self._cashier(rng, wallet, pid, fee, attended, inst)))
                vd = c.day_of(attended)
                # kiosk self-service on the day (payment, report printing): HIS kiosks, or the paper sheet
                for _k in range(rng.choices((0, 1, 2, 3), weights=(55, 25, 14, 6))[0]):
                    at = attended + rng.randint(5, 120) * MIN_US
                    if at >= c.now_us - MIN_US:
                        continue
                    action = rng.choice(KIOSK_ACTIONS)
                    kiosk = f"K{inst:02d}{rng.randint(1, 12):02d}"
                    if not app and elderly and rng.random() < 0.3:
                        offline("selfservice.used", at, vd, {"action": action, "kiosk_id": kiosk},
                                f"SS{vd}-{inst}-{rng.randrange(999)}", inst)
                    else:
                        evs.append(Ev(at, at + rng.randint(1, 20) * US, "selfservice.used",
                                      f"kiosk:{self.inst_codes[inst]}", f"kiosk:{kiosk}:{uid(at)}",
                                      {"action": action, "kiosk_id": kiosk}, vd))
                # a reading taken in clinic (recorded, not rewarded)
                if conditions and rng.random() < 0.5 and checked_in is not None:
                    kind = "blood_glucose" if "diabetes" in conditions and "hypertension" not in conditions \
                        else "blood_pressure"
                    self._reading(rng, evs, pid, kind, "clinic", None, checked_in + 5 * MIN_US, c.day_of(checked_in),
                                  source=f"his:{self.inst_codes[inst]}")
                # the patient's review of the visit
                if app and rng.random() < 0.12:
                    at = attended + rng.randint(1, 72) * HOUR_US
                    if at < c.now_us - MIN_US:
                        n = rng.choice((20, 30, 55, 62, 75))
                        text = REVIEW_TEXT[:n]
                        rating = rng.choices((5, 4, 3, 2, 1), weights=(60, 25, 9, 4, 2))[0]
                        review_id = uid(at)

                        def review_rows(event_id: str, outcome: dict[str, Any], review_id: str = review_id,
                                        text: str = text, rating: int = rating, at: int = at) -> None:
                            self.t.add("reviews", review_id, aid, pid, str(rating), text, js(outcome), pg(at))

                        evs.append(Ev(at, at + 40_000, "review.submitted", "carepoints.engagement", f"review:{aid}",
                                      {"appointment_id": aid, "rating": rating, "text": text}, c.day_of(at),
                                      after=review_rows))
                if referral_id is not None:
                    evs.append(Ev(attended, received + MIN_US, "referral.visit", "his:H01", f"referral:{referral_id}",
                                  {"referral_id": referral_id, "from_institution": self.inst_codes[home]},
                                  c.day_of(attended)))
                # an exam ordered at the visit
                if not exam and inst == 0 and rng.random() < 0.12 and self.resources:
                    imaging = self.dept_by_code[(0, "imaging")]
                    self._appointment(rng, pid, wallet, evs, c.day_of(attended) + rng.randint(0, 5), imaging,
                                      "onsite", True, day0, created, conditions, app, elderly, home, offline, when)
        if status == "no_show":
            no_show_at = slot_end + 30 * MIN_US + rng.randint(0, 300) * US  # the sweep after the grace period
            history.append({"status": "no_show", "at": iso(no_show_at)})
            evs.append(Ev(slot_end, no_show_at, "appointment.no_show", source, f"appointment:{aid}:no_show",
                          {"appointment_id": aid, "slot_start": iso(slot_start)}, c.day_of(slot_end)))
        if sess is not None and status != "cancelled":
            sess.holder[seq - 1] = aid
        if not self.dry:
            assert sess is not None
            self.t.add("appointments", aid, pid, sess.id, self.slot_id(sess, seq), N if is_res else owner,
                       owner if is_res else N, N if is_res or not self.guard_clinician else owner, c.iso_day(s_day),
                       str(rank), str(seq), pg(slot_start), pg(slot_end),
                       channel, referral_id or N, booked_by, status, f"bench-{aid}", hexdigest(aid), pg(booked),
                       pg(checked_in) if checked_in else N, N if late is None else b(late),
                       b(bool(elderly and checked_in)), pg(attended) if attended else N,
                       pg(cancelled_at) if cancelled_at else N, cancelled_by or N,
                       pg(no_show_at) if no_show_at else N, js(history))
        self._seen_inst.setdefault(inst, booked)

    def _cashier(self, rng: random.Random, wallet: Wallet, pid: str, fee_fen: int, attended: int,
                 inst: int) -> Callable[[str, dict[str, Any]], None] | None:
        """After a visit, a fee offset at the cashier for patients who use their points."""
        if not self._uses_offsets or rng.random() > 0.7:
            return None

        def pay(_event_id: str, _outcome: dict[str, Any]) -> None:
            at = attended + rng.randint(5, 40) * MIN_US
            if at >= self.clock.now_us - 5 * MIN_US or wallet.available < 10:
                return
            ceiling = fee_fen // 2  # at most 50% of the fee; 100 points = 10 CNY, in steps of 10 points
            points = min(wallet.available // 10, ceiling // 100) * 10
            if points <= 0:
                return
            self._pending.append(("offset", at, points, fee_fen, inst))

        return pay

    # ----------------------------------------------------------------- scoring and posting

    def _post(self, rng: random.Random, pid: str, wallet: Wallet, evs: list[Ev], created: int, day0: int,
              birth: date | None, sex: str, conditions: list[str], home: int, elderly: bool) -> tuple[int, int]:
        """Score the events in arrival order, post their awards, run the cashier, the mall and
        the expiry job, then write the patient's rows."""
        c, t = self.clock, self.t
        evs.sort(key=lambda e: e.received)
        keys: set[tuple[str, str]] = set()
        st = _RuleState(arm=self._arm)
        entries = 0
        n_events = 0
        for ev in evs:
            self._expire(wallet, ev.received)
            if ev.redeem:
                entries += self._mall(rng, pid, wallet, ev.received)
                continue
            if (ev.source, ev.key) in keys:  # a source key is accepted once (events.service)
                continue
            keys.add((ev.source, ev.key))
            eid = uid(ev.received)
            awards, notices, counters, extra = self._score(st, ev)
            transfers: list[str] = []
            for rule, pts in awards:
                entries += 1
                transfers.append(self._transfer(wallet, pts, "earn" if pts > 0 else "penalty", ev.occurred,
                                                ev.received, rule=rule, event_id=eid, message=message(rule, pts),
                                                earn_expiry=add_months_us(c, ev.occurred, 24)))
                if pts > 0:
                    y = c.date(ev.day).year
                    st.year_points[y] = st.year_points.get(y, 0) + pts
            outcome = {"event_id": eid, "duplicate": False,
                       "awards": [{"rule": r, "points": p, "message": message(r, p)} for r, p in awards],
                       "notices": notices, "balance": wallet.balance}
            if "experiments" in extra:
                outcome["experiments"] = extra["experiments"]
            effects = {"event_id": eid, "version": 1, "transfers": transfers, "counters": counters,
                       "days": extra.get("days", []), "no_show_updates": {}, "suspension_created": extra.get("susp"),
                       "suspension_extended": None, "streak_units": extra.get("units", {}),
                       "judged": {"suspended": extra.get("suspended", False), "tier": "standard"}}
            n_events += 1
            if not self.dry:
                ph = hashlib.sha256(orjson.dumps({"type": ev.type, "patient": pid, "occurred_at": ev.occurred / US,
                                                  "attributes": ev.attrs}, option=orjson.OPT_SORT_KEYS)).hexdigest()
                t.add("events", eid, ev.type, pid, ev.source, ev.key, ph, pg(ev.occurred), pg(ev.received),
                      js(ev.attrs), "accepted", js(outcome), js(effects))
                if ev.after is not None:
                    ev.after(eid, outcome)
            elif ev.after is not None and ev.type == "appointment.attended":
                ev.after(eid, outcome)
            while self._pending:
                kind, at, points, fee, inst = self._pending.pop(0)
                if kind == "offset":
                    entries += self._offset(rng, pid, wallet, at, points, fee, inst)
        self._expire(wallet, c.now_us)
        if self.dry:
            return n_events, entries
        # the patient's own rows
        earned_12m = sum(p for y, p in st.year_points.items() if y >= c.date(c.n_days).year - 1) // 2
        tier = "gold" if earned_12m >= 5000 else "silver" if earned_12m >= 2000 else "standard"
        t.add("patients", pid, f"a1:bench:{pid[-12:]}", f"a1:bench:{pid[-8:]}", hexdigest("phone", pid), "a1:bench",
              birth.isoformat() if birth else N, sex, "active", tier, b(elderly and rng.random() < 0.3), pg(created))
        t.add("patient_keys", pid, "\\\\x" + hashlib.sha256(pid.encode()).hexdigest(), pg(created))
        guardian = birth is not None and (c.date(day0) - birth).days < 14 * 365
        for k, purpose in enumerate(("points_programme", "health_data")):
            t.add("consents", uid(created - 60 * US + k), pid, purpose, "1.0", pg(created - 60 * US),
                  "guardian" if guardian else "patient", "parent" if guardian else N)
        if self._research:  # research consent (experiments)
            t.add("consents", uid(created - 59 * US), pid, "research", "1.0", pg(created - 59 * US), "patient", N)
        for inst, first in sorted(self._seen_inst.items()):
            t.add("patient_institutions", pid, self.institutions[inst], pg(min(first, created)))
        if home not in self._seen_inst:
            t.add("patient_institutions", pid, self.institutions[home], pg(created))
        for code in conditions:
            diagnosed = c.date(day0) - timedelta(days=rng.randint(30, 3650))
            t.add("patient_conditions", uid(created + 2 * US), pid, code, rng.choice(("his", "staff")),
                  diagnosed.isoformat(), "t", pg(created + HOUR_US), pg(created + HOUR_US))
        t.add("accounts", wallet.id, "wallet", pid, str(wallet.balance), str(wallet.debt), "0", str(wallet.seq),
              wallet.head, pg(created))
        for lot in wallet.done_lots + wallet.lots[wallet.lot0:]:
            t.add("lots", lot[0], wallet.id, str(lot[1]), str(lot[2]), "0", pg(lot[3]), pg(lot[4]))
        return n_events, entries

    def _transfer(self, w: Wallet, delta: int, kind: str, at: int, created: int, *, rule: str | None = None,
                  event_id: str | None = None, message: str | None = None, hold_id: str | None = None,
                  earn_expiry: int = 0, counterparty: str | None = None) -> str:
        """`ledger.posting.Poster` in miniature: one transfer, its lot (credit) or the lots it
        consumes first-expiring first (debit; what they cannot cover becomes debt)."""
        cp = counterparty or SYSTEM_IDS[System.issuance if kind == "earn" else System.penalties
                                        if kind == "penalty" else System.redemptions if kind == "redeem"
                                        else System.expiry]
        tid = uid(created)
        w.balance += delta
        w.seq += 1
        version = "1" if rule else N
        body = orjson.dumps({"amount": delta, "at": iso_z(at), "counterparty": cp, "created_at": iso_z(created),
                             "event_id": event_id, "id": tid, "kind": kind, "prev_hash": w.head,
                             "rule_version": 1 if rule else None, "wallet": w.id}, option=orjson.OPT_SORT_KEYS)
        digest = "0" * 64 if self.dry else link(w.head, body)
        if not self.dry:
            self.t.add("transfers", tid, w.id, str(w.seq), cp if delta > 0 else w.id, w.id if delta > 0 else cp,
                       str(abs(delta)), kind, rule or N, version, event_id or N, hold_id or N, message or N,
                       str(w.balance), pg(at), pg(created), w.head, digest)
        w.head = digest
        if delta > 0:
            repaid = min(w.debt, delta)
            w.debt -= repaid
            w.lots.append([tid, delta, delta - repaid, at, earn_expiry])
            if repaid and not self.dry:
                self.t.add("lot_allocations", tid, tid, str(repaid))
        else:
            left = -delta
            while left and w.lot0 < len(w.lots):
                lot = w.lots[w.lot0]
                take = min(lot[2], left)
                lot[2] -= take
                left -= take
                if take and not self.dry:
                    self.t.add("lot_allocations", tid, lot[0], str(take))
                if lot[2] == 0:
                    w.done_lots.append(lot)
                    w.lot0 += 1
            if left:
                w.debt += left
        self.entries += 1
        return tid

    def _expire(self, w: Wallet, until: int) -> None:
        """The expiry job (02:00 local, daily) for every run up to `until`."""
        while w.lot0 < len(w.lots):
            first = w.lots[w.lot0]
            if first[2] == 0:
                w.done_lots.append(first)
                w.lot0 += 1
                continue
            if first[4] > until:
                return
            d = self.clock.day_of(first[4])
            run = self.clock.at(d, 2 * 3600)
            if run < first[4]:
                run += DAY_US
            if run > until:
                return
            total = sum(lot[2] for lot in w.lots[w.lot0:] if lot[4] <= run)
            self._transfer(w, -total, "expiry", run, run)

    def _offset(self, rng: random.Random, pid: str, w: Wallet, at: int, points: int, fee: int, inst: int) -> int:
        """`rewards.offsets`: a hold on the lots at the cashier, committed when the payment goes through."""
        oid, hid = uid(at), uid(at + 1)
        settled = at + rng.randint(20, 180) * US
        lots = []
        left = points
        for lot in w.lots[w.lot0:]:
            if not left:
                break
            take = min(lot[2], left)
            if take:
                lots.append((lot[0], take))
                left -= take
        tid = self._transfer(w, -points, "redeem", settled, settled, message="挂号费抵扣", hold_id=hid,
                             counterparty=SYSTEM_IDS[System.redemptions])
        if self.dry:
            return 1
        t = self.t
        t.add("holds", hid, w.id, str(points), "committed", oid, f"offset-hold:{oid}", pg(at + 15 * MIN_US), pg(at),
              pg(settled), tid)
        for lot_id, amount in lots:
            t.add("hold_lots", hid, lot_id, str(amount))
        t.add("fee_offsets", oid, pid, w.id, hid, self.institutions[inst], f"HIS{rng.randrange(10 ** 10):010d}",
              "standard", str(fee), "0", str(points * 10), str(points), "committed", f"offset:{oid}", hexdigest(oid),
              pg(at), pg(at + 15 * MIN_US), pg(settled))
        year = self.clock.date(self.clock.day_of(settled)).year
        self.budget_fen[year] = self.budget_fen.get(year, 0) + points * 10
        return 1

    def _mall(self, rng: random.Random, pid: str, w: Wallet, at: int) -> int:
        """`rewards.service.redeem`: the first reward the balance affords, within its limit."""
        options = [r for code, r in self.rewards.items() if code != "fee_offset" and r[4] <= w.available]
        if not options:
            return 0
        reward = rng.choice(options)
        rid_, code, kind, names, points, cost, limit_count, limit_period, valid_days = reward
        day = self.clock.date(self.clock.day_of(at))
        key = {"day": day.isoformat(), "month": f"{day.year}-{day.month:02d}", "year": str(day.year)}.get(
            limit_period or "", "ever") if limit_count else None
        used = self._usage.get((code, key), 0) if key else 0
        if limit_count and used >= limit_count:
            return 0
        if key:
            self._usage[(code, key)] = used + 1
        red_id = uid(at)
        name = (names if isinstance(names, dict) else orjson.loads(names))["zh"]
        tid = self._transfer(w, -points, "redeem", at, at, event_id=red_id, message=f"兑换{name}",
                             counterparty=SYSTEM_IDS[System.redemptions])
        if self.dry:
            return 1
        self.t.add("redemptions", red_id, pid, w.id, rid_, "1", str(points), str(cost), "redeemed", key or N, tid,
                   "patient", pid, f"mall:{red_id}", hexdigest(red_id), pg(at))
        if kind in ("coupon", "pharmacy_voucher", "privilege", "lecture_seat"):
            expires = self.clock.at(self.clock.day_of(at) + valid_days, 0)
            used_at = at + rng.randint(1, max(1, valid_days - 1)) * DAY_US if rng.random() < 0.7 else None
            if used_at is not None and used_at >= min(expires, self.clock.now_us):
                used_at = None
            self.t.add("coupons", uid(at + 1), hexdigest("coupon", red_id)[:16].upper(), red_id, pid, rid_,
                       "used" if used_at else "issued", pg(at), pg(expires), pg(used_at) if used_at else N,
                       rng.choice(self.staff[0]) if used_at else N, pg(at))
        year = day.year
        self.budget_fen[year] = self.budget_fen.get(year, 0) + cost
        return 1

    def _score(self, st: _RuleState, ev: Ev) -> tuple[list[tuple[str, int]], list[dict[str, str]],
                                                         list[list[Any]], dict[str, Any]]:
        """The default programme's awards for one event (rules.engine semantics, simplified to
        this data: conditions, daily caps, once-per keys, streaks, off-peak ×2, suspension,
        the annual cap)."""
        c = self.clock
        type_ = ev.inner or ev.type
        a = ev.attrs["attributes"] if ev.inner else ev.attrs
        day = c.iso_day(ev.day)
        year = day[:4]
        awards: list[tuple[str, int]] = []
        notices: list[dict[str, str]] = []
        counters: list[list[Any]] = []
        extra: dict[str, Any] = {}

        def daily(rule: str, points: int, cap: int) -> int:
            k = (rule, ev.day)
            room = cap - st.daily.get(k, 0)
            if room <= 0:
                notices.append({"code": "rules.daily_cap", "message": f"今日「{NAMES[rule]}」积分已达上限"})
                return 0
            points = min(points, room)
            st.daily[k] = st.daily.get(k, 0) + points
            counters.append([f"{rule}:d:{day}", points])
            return points

        def once(rule: str, ref: str) -> bool:
            if (rule, ref) in st.once:
                notices.append({"code": "rules.once_per", "message": "该项已获得过积分"})
                return False
            st.once.add((rule, ref))
            counters.append([f"{rule}:once:{ref}", 1])
            return True

        if type_ == "account.registered":
            awards.append(("welcome", 100))
            counters.append(["welcome:life", 1])
        elif type_ == "health.measurement":
            if a["provenance"] not in SELF:
                notices.append({"code": "rules.condition_unmet", "message": UNMET_CLINIC})
            else:
                if not st.first_checkin:
                    st.first_checkin = True
                    awards.append(("first_checkin", 50))
                    counters.append(["first_checkin:life", 1])
                arm = st.arm if st.arm is not None and ev.occurred >= st.arm[1] else None
                if arm is not None and self.experiment is not None:
                    extra["experiments"] = [{"code": self.experiment[1], "variant": arm[0]}]
                p = daily("health_checkin", 20 if arm is not None and arm[0] == "checkin_20" else 10, 20)
                if p:
                    awards.append(("health_checkin", p))
                if ev.day != st.run_last:
                    st.run_len = st.run_len + 1 if ev.day == st.run_last + 1 else 1
                    st.run_last = ev.day
                    counters.append([f"health_checkin:day:{day}", 1])
                    extra["days"] = [["health_checkin", day]]
                    units = {}
                    if st.run_len % 7 == 0:
                        awards.append(("checkin_streak_7", 50))
                        units["checkin_streak_7"] = 1
                    if st.run_len % 30 == 0:
                        awards.append(("checkin_streak_30", 200))
                        units["checkin_streak_30"] = 1
                    extra["units"] = units
        elif type_ == "medication.taken":
            p = daily("medication", 10, 30)
            if p:
                awards.append(("medication", p))
        elif type_ in ("appointment.attended", "exam.attended"):
            slot = _parse_us(a["slot_start"])
            local = c.local_seconds(slot) / 3600
            mult = 2 if c.weekday(c.day_of(slot)) <= 5 and (10 <= local < 11 or 14 <= local < 15) else 1
            if type_ == "exam.attended":
                if once("exam_attended", a["exam_id"]):
                    awards.append(("exam_attended", 10 * mult))
            else:
                booked = _parse_us(a["booked_at"])
                if slot - booked >= 72 * HOUR_US and a.get("booked_by", "patient") == "patient" \
                        and once("book_ahead", a["appointment_id"]):
                    awards.append(("book_ahead", 30 * mult))
                if "checked_in_at" in a and _parse_us(a["checked_in_at"]) <= slot \
                        and once("on_time", a["appointment_id"]):
                    awards.append(("on_time", 10 * mult))
        elif type_ == "appointment.cancelled":
            slot = _parse_us(a["slot_start"])
            month = day[:7]
            if a["by"] == "patient" and slot - _parse_us(a["cancelled_at"]) >= 24 * HOUR_US:
                if st.cancels.get(month, 0) >= 2:
                    notices.append({"code": "rules.period_limit", "message": "本月「提前取消」次数已达上限"})
                else:
                    st.cancels[month] = st.cancels.get(month, 0) + 1
                    counters.append([f"cancel_early:m:{month}", 1])
                    awards.append(("cancel_early", 20))
        elif type_ == "appointment.no_show":
            awards.append(("no_show", -50))
            counters.append([f"no_show:once:{a['appointment_id']}", 1])
            slot = _parse_us(a["slot_start"])
            st.no_shows = [x for x in st.no_shows if x > slot - 90 * DAY_US] + [slot]
            if st.susp_until > slot:  # a no-show during a suspension restarts it
                st.susp_until = slot + 720 * HOUR_US
            elif len(st.no_shows) >= 3:
                st.susp_from, st.susp_until = slot, slot + 720 * HOUR_US
                st.no_shows = []
                extra["susp"] = uid(ev.received)
        elif type_ == "selfservice.used":
            p = daily("self_service", 10, 30)
            if p:
                awards.append(("self_service", p))
        elif type_ == "education.completed":
            if a["score"] < a["pass_mark"]:
                notices.append({"code": "rules.condition_unmet", "message": "测验未通过,可以再试一次"})
            elif once("education", a["content_id"]):
                p = daily("education", 20, 40)
                if p:
                    awards.append(("education", p))
        elif type_ == "lecture.attended":
            if once("lecture", a["lecture_id"]):
                awards.append(("lecture", 30))
        elif type_ == "review.submitted":
            if len("".join(a["text"].split())) < 50:
                notices.append({"code": "rules.condition_unmet", "message": "评价满50字可获得积分"})
            elif once("review", a["appointment_id"]):
                awards.append(("review", 20))
        elif type_ == "survey.completed":
            if once("survey", a["period"]):
                awards.append(("survey", 50))
        elif type_ == "followup.completed":
            rule = "rehab_questionnaire" if a["kind"] == "rehab" else "followup"
            if once(rule, f"{a['plan_id']}:{a['step']}"):
                awards.append((rule, 50 if rule == "rehab_questionnaire" else 30))
        elif type_ == "profile.item_completed":
            if once("profile_item", a["item"]):
                awards.append(("profile_item", 30))
        elif type_ == "referral.visit":
            if once("referral", a["referral_id"]):
                awards.append(("referral", 200))
        elif type_ == "public_health.completed":
            if once("public_health", f"{a['programme']}:{a['item']}"):
                awards.append(("public_health", 100))
        elif type_ == "conduct.violation":
            awards.append(("misconduct", -20))
        elif type_ != "lab.critical_value":
            notices.append(NO_RULE)
        # suspension, then the annual cap (positive awards only)
        if any(p > 0 for _r, p in awards):
            if st.susp_from <= ev.occurred < st.susp_until:
                until = dt(st.susp_until).astimezone(c.tz).strftime("%Y-%m-%d %H:%M")
                awards = [(r, p) for r, p in awards if p < 0]
                notices.append({"code": "rules.suspended", "message": f"因多次爽约,积分获取暂停至{until},本次不计积分"})
                extra["suspended"] = True
            else:
                room = 10000 - st.year_points.get(int(year), 0)
                capped = []
                for r, p in awards:
                    if p > 0:
                        p = min(p, room)
                        room -= p
                        if p <= 0:
                            notices.append({"code": "rules.annual_cap", "message": "本年度积分已达上限10000分"})
                            continue
                    capped.append((r, p))
                awards = capped
        earned = sum(p for _r, p in awards if p > 0)
        if earned:
            counters.insert(0, [f"annual:{year}", earned])
        return awards, notices, counters, extra

    # ----------------------------------------------------------------- the run

    def calibrate(self) -> dict[str, float]:
        """Find the activity factor for which a dry run of a sample of patients averages
        `entries / patients` ledger entries; answers the factor and the expected visits and
        exams per day."""
        want = self.target_entries / self.n_patients
        lo, hi = 0.05, 6.0
        sample = min(10_000, self.n_patients)
        self.dry = True
        self.sessions, self.resources, self.clinicians = [], [("x", "CT")], [("x", 0, "general")]
        measured: dict[float, tuple[float, float, float]] = {}

        def per_patient(a: float) -> tuple[float, float, float]:
            self.activity = a
            self._demand = {}
            rng = random.Random(self.seed + 2)  # the run's own stream: its first patients
            entries = visits = exams = 0
            for _ in range(sample):
                self._reset_patient()
                counter = _Counter()
                self._count = counter
                _n, e = self.patient(rng)
                entries += e
                visits += counter.visits
                exams += counter.exams
            return entries / sample, visits / sample, exams / sample

        for _ in range(14):
            mid = math.sqrt(lo * hi)
            measured[mid] = per_patient(mid)
            if measured[mid][0] < want:
                lo = mid
            else:
                hi = mid
            if abs(measured[mid][0] - want) / want < 0.01:
                break
        best = min(measured, key=lambda a: abs(measured[a][0] - want))
        self.activity = best
        self.dry = False
        self.entries = 0
        days = self.clock.n_days + 1
        e, v, x = measured[best]
        self.log(f"  calibrated: activity {best:.3f} → {e:.1f} entries, {v:.2f} visits, {x:.2f} exams per patient")
        return {"activity": best, "visits_per_day": v * self.n_patients / days,
                "exams_per_day": x * self.n_patients / days, "entries_per_patient": e, "demand": dict(self._demand)}

    def _reset_patient(self) -> None:
        self._seen_inst: dict[int, int] = {}
        self._pending: list[tuple[str, int, int, int, int]] = []
        self._usage: dict[tuple[str, str | None], int] = {}
        self._uses_offsets = self.rng.random() < 0.45
        self._ranks: dict[int, int] = {}
        self._guards: set[tuple[int, str]] = set()

    def run(self) -> dict[str, Any]:
        began = time.perf_counter()
        self.reference()
        cal = self.calibrate()
        self.clinics(cal["visits_per_day"], cal["exams_per_day"], cal["demand"])
        self.t.flush(self.conn, ["clinic_sessions"])
        rng = random.Random(self.seed + 2)
        events = entries = 0
        t0 = time.perf_counter()
        for i in range(self.n_patients):
            self._reset_patient()
            self._count = _Counter()
            n_ev, _n_en = self.patient(rng)
            events += n_ev
            if (i + 1) % self.chunk == 0 or i + 1 == self.n_patients:
                self.t.flush(self.conn)
                rate = (i + 1) / (time.perf_counter() - t0)
                if (i + 1) % (self.chunk * 25) == 0 or i + 1 == self.n_patients:
                    self.log(f"  {i + 1:,} patients, {events:,} events, {self.entries:,} ledger entries "
                             f"({rate:,.0f} patients/s)")
        entries = self.entries
        # slots, now that every appointment holding one is known
        for s in self.sessions:
            step = s.minutes * MIN_US
            for seq in range(1, s.capacity + 1):
                st = s.start_us + (seq - 1) * step
                holder = s.holder[seq - 1]
                self.t.add("slots", self.slot_id(s, seq), s.id, str(seq), pg(st), pg(st + step), s.pools[seq - 1],
                           holder or N)
            if len(self.t.rows["slots"]) > 200_000:
                self.t.flush(self.conn, ["slots"])
        self.t.flush(self.conn)
        with self.conn.cursor() as cur:
            for year, fen in sorted(self.budget_fen.items()):
                cur.execute("INSERT INTO budget_years (year, used_fen, alerted) VALUES (%s, %s, 0) "
                            "ON CONFLICT (year) DO UPDATE SET used_fen = EXCLUDED.used_fen", (year, fen))
        self.conn.commit()
        return {"patients": self.n_patients, "events": events, "entries": entries, "activity": cal["activity"],
                "rows": dict(self.t.counts), "seconds": round(time.perf_counter() - began, 1),
                "first_day": self.clock.first.isoformat(),
                "last_day": self.clock.date(self.clock.n_days - 1).isoformat()}


@dataclass
class _Counter:
    visits: int = 0
    exams: int = 0


@dataclass
class _RuleState:
    """One patient's rule state while their events are scored."""

    daily: dict[tuple[str, int], int] = field(default_factory=dict)
    once: set[tuple[str, str]] = field(default_factory=set)
    first_checkin: bool = False
    run_last: int = -10
    run_len: int = 0
    cancels: dict[str, int] = field(default_factory=dict)
    no_shows: list[int] = field(default_factory=list)
    susp_from: int = 0
    susp_until: int = 0
    year_points: dict[int, int] = field(default_factory=dict)
    arm: tuple[str, int] | None = None  # (variant, from) of the running experiment


def _parse_us(value: str) -> int:
    return (datetime.fromisoformat(value) - EPOCH) // timedelta(microseconds=1)
