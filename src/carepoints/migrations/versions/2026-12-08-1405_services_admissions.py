"""services admissions (住院预约, 择期/日间手术, 预就诊): wards and their days, admission orders,
operating rooms and their days, surgery requests, pre-visit orders

Revision ID: f60708090a0a
Revises: f60708090a09
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f60708090a0a"
down_revision: str | None = "f60708090a09"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admission_wards",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("daily_admissions", sa.Integer(), nullable=False),
        sa.Column("arrival_time", sa.String(length=5), nullable=False),
        sa.Column("instructions_zh", sa.String(length=2000), nullable=False),
        sa.Column("instructions_en", sa.String(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "daily_admissions BETWEEN 1 AND 500", name=op.f("ck_admission_wards_daily_admissions_range")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_admission_wards_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admission_wards")),
        sa.UniqueConstraint("department_id", "code", name=op.f("uq_admission_wards_department_id_code")),
    )
    op.create_index(op.f("ix_admission_wards_department_id"), "admission_wards", ["department_id"], unique=False)
    op.create_table(
        "operating_rooms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("minutes_per_day", sa.Integer(), nullable=False),
        sa.Column("cases_per_day", sa.Integer(), nullable=False),
        sa.Column("elective", sa.Boolean(), nullable=False),
        sa.Column("day_surgery", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("cases_per_day BETWEEN 1 AND 100", name=op.f("ck_operating_rooms_cases_range")),
        sa.CheckConstraint("elective OR day_surgery", name=op.f("ck_operating_rooms_takes_a_kind")),
        sa.CheckConstraint("minutes_per_day BETWEEN 30 AND 1440", name=op.f("ck_operating_rooms_minutes_range")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_operating_rooms_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operating_rooms")),
        sa.UniqueConstraint("department_id", "code", name=op.f("uq_operating_rooms_department_id_code")),
    )
    op.create_index(op.f("ix_operating_rooms_department_id"), "operating_rooms", ["department_id"], unique=False)
    op.create_table(
        "admission_orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("ward_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("earliest_date", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("admission_date", sa.Date(), nullable=True),
        sa.Column("reschedules", sa.Integer(), nullable=False),
        sa.Column("issued_by", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "(status IN ('booked', 'admitted')) = (admission_date IS NOT NULL)",
            name=op.f("ck_admission_orders_date_when_booked"),
        ),
        sa.CheckConstraint(
            "status IN ('issued', 'booked', 'admitted', 'cancelled')", name=op.f("ck_admission_orders_status_known")
        ),
        sa.CheckConstraint("reschedules >= 0", name=op.f("ck_admission_orders_reschedules_nonneg")),
        sa.CheckConstraint("valid_until >= earliest_date", name=op.f("ck_admission_orders_valid_after_earliest")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_admission_orders_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["ward_id"], ["admission_wards.id"], name=op.f("fk_admission_orders_ward_id_admission_wards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admission_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_admission_orders_idempotency_key")),
    )
    op.create_index("ix_admission_orders_patient", "admission_orders", ["patient_id", "issued_at"], unique=False)
    op.create_index("ix_admission_orders_ward_day", "admission_orders", ["ward_id", "admission_date"], unique=False)
    op.create_index(
        "uq_admission_orders_live",
        "admission_orders",
        ["patient_id", "ward_id"],
        unique=True,
        sqlite_where=sa.text("status IN ('issued', 'booked')"),
        postgresql_where=sa.text("status IN ('issued', 'booked')"),
    )
    op.create_table(
        "admission_ward_days",
        sa.Column("ward_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name=op.f("ck_admission_ward_days_within_capacity")),
        sa.ForeignKeyConstraint(
            ["ward_id"], ["admission_wards.id"], name=op.f("fk_admission_ward_days_ward_id_admission_wards")
        ),
        sa.PrimaryKeyConstraint("ward_id", "day", name=op.f("pk_admission_ward_days")),
    )
    op.create_table(
        "operating_room_days",
        sa.Column("room_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("minutes_booked", sa.Integer(), nullable=False),
        sa.Column("minutes_capacity", sa.Integer(), nullable=False),
        sa.Column("cases_booked", sa.Integer(), nullable=False),
        sa.Column("cases_capacity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "cases_booked >= 0 AND cases_booked <= cases_capacity", name=op.f("ck_operating_room_days_cases_within")
        ),
        sa.CheckConstraint(
            "minutes_booked >= 0 AND minutes_booked <= minutes_capacity",
            name=op.f("ck_operating_room_days_minutes_within"),
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["operating_rooms.id"], name=op.f("fk_operating_room_days_room_id_operating_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "day", name=op.f("pk_operating_room_days")),
    )
    op.create_table(
        "surgery_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("procedure", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("expected_minutes", sa.Integer(), nullable=False),
        sa.Column("earliest_date", sa.Date(), nullable=False),
        sa.Column("admission_order_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("room_id", sa.String(length=36), nullable=True),
        sa.Column("surgery_date", sa.Date(), nullable=True),
        sa.Column("preop_exam_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("anaesthesia_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status IN ('scheduled', 'done')) = (surgery_date IS NOT NULL AND room_id IS NOT NULL)",
            name=op.f("ck_surgery_requests_date_when_scheduled"),
        ),
        sa.CheckConstraint("kind IN ('elective', 'day')", name=op.f("ck_surgery_requests_kind_known")),
        sa.CheckConstraint(
            "status IN ('requested', 'scheduled', 'done', 'cancelled')", name=op.f("ck_surgery_requests_status_known")
        ),
        sa.CheckConstraint("expected_minutes BETWEEN 10 AND 720", name=op.f("ck_surgery_requests_minutes_range")),
        sa.ForeignKeyConstraint(
            ["admission_order_id"],
            ["admission_orders.id"],
            name=op.f("fk_surgery_requests_admission_order_id_admission_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_surgery_requests_department_id_departments")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_surgery_requests_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["room_id"], ["operating_rooms.id"], name=op.f("fk_surgery_requests_room_id_operating_rooms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surgery_requests")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_surgery_requests_idempotency_key")),
    )
    op.create_index("ix_surgery_requests_open", "surgery_requests", ["department_id", "status"], unique=False)
    op.create_index("ix_surgery_requests_patient", "surgery_requests", ["patient_id", "requested_at"], unique=False)
    op.create_index("ix_surgery_requests_room_day", "surgery_requests", ["room_id", "surgery_date"], unique=False)
    op.create_table(
        "previsit_orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("clinician_id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("exam", sa.String(length=100), nullable=False),
        sa.Column("result_hours", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exam_appointment_id", sa.String(length=36), nullable=False),
        sa.Column("followup_appointment_id", sa.String(length=36), nullable=False),
        sa.Column("results_expected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ordered_by", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('booked', 'cancelled')", name=op.f("ck_previsit_orders_status_known")),
        sa.CheckConstraint("result_hours BETWEEN 0 AND 720", name=op.f("ck_previsit_orders_result_hours_range")),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["clinicians.id"], name=op.f("fk_previsit_orders_clinician_id_clinicians")
        ),
        sa.ForeignKeyConstraint(
            ["exam_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_previsit_orders_exam_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["followup_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_previsit_orders_followup_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_previsit_orders_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_previsit_orders_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_previsit_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_previsit_orders_idempotency_key")),
    )
    op.create_index("ix_previsit_orders_patient", "previsit_orders", ["patient_id", "ordered_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_previsit_orders_patient", table_name="previsit_orders")
    op.drop_table("previsit_orders")
    op.drop_index("ix_surgery_requests_room_day", table_name="surgery_requests")
    op.drop_index("ix_surgery_requests_patient", table_name="surgery_requests")
    op.drop_index("ix_surgery_requests_open", table_name="surgery_requests")
    op.drop_table("surgery_requests")
    op.drop_table("operating_room_days")
    op.drop_table("admission_ward_days")
    op.drop_index(
        "uq_admission_orders_live",
        table_name="admission_orders",
        sqlite_where=sa.text("status IN ('issued', 'booked')"),
        postgresql_where=sa.text("status IN ('issued', 'booked')"),
    )
    op.drop_index("ix_admission_orders_ward_day", table_name="admission_orders")
    op.drop_index("ix_admission_orders_patient", table_name="admission_orders")
    op.drop_table("admission_orders")
    op.drop_index(op.f("ix_operating_rooms_department_id"), table_name="operating_rooms")
    op.drop_table("operating_rooms")
    op.drop_index(op.f("ix_admission_wards_department_id"), table_name="admission_wards")
    op.drop_table("admission_wards")
