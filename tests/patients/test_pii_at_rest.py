"""PII at rest on SQLite and PostgreSQL: only ciphertext and blind indexes are stored,
lookups by phone / national id, masking over HTTP, key rotation, crypto-shredding, a
database dump without plaintext, and the migration that converts plaintext rows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carepoints.cli.main import app as cli_app
from carepoints.config import reset_settings
from carepoints.kit import migrate
from carepoints.kit.db import make_engine, read_tx, write_tx
from carepoints.patients import crypto, keys
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import Patient, PatientKey
from carepoints.patients.pii import mask_address, mask_id_number, mask_name, mask_phone
from carepoints.patients.sealing import ERASED_NAME, UNREADABLE_NAME, opened
from tests.conftest import PG_URL, Db, _pg_enabled, _pg_reachable
from tests.helpers import dump_database, enrol, error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

KEY_A = "rotation-key-a-0123456789abcdefghij"
KEY_B = "k2027:rotation-key-b-0123456789abcdefghij"
NAME, PHONE, IDN, ADDRESS = "欧阳明辉", "13800138000", "11010519491231002X", "北京市朝阳区建国路1号"


def use_keys(monkeypatch: pytest.MonkeyPatch, current: str, old: str = "", cipher: str = "aes-gcm") -> None:
    monkeypatch.setenv("CAREPOINTS_PII_KEY", current)
    monkeypatch.setenv("CAREPOINTS_PII_OLD_KEYS", old)
    monkeypatch.setenv("CAREPOINTS_PII_CIPHER", cipher)
    reset_settings()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    yield
    reset_settings()  # monkeypatch restored the environment: forget the keys of this test


def raw(pid: str) -> dict[str, Any]:
    with read_tx() as session:
        return dict(session.connection().execute(select(Patient).where(Patient.id == pid)).mappings().one())


def salt_of(pid: str) -> bytes | None:
    with read_tx() as session:
        return session.connection().execute(select(PatientKey.salt).where(PatientKey.patient_id == pid)).scalar()


def read(pid: str, reveal: bool = True) -> dict[str, object]:
    with read_tx() as session:
        return patients.read(session, pid, reveal_pii=reveal)


def pii_of(doc: dict[str, object]) -> tuple[object, ...]:
    return doc["name"], doc["phone"], doc["id_number"], doc["address"]


def test_enrolment_stores_ciphertext_only_and_reads_back(db: Db, now: datetime) -> None:
    pid = enrol(now, name=NAME, phone=PHONE, id_number=IDN, address=ADDRESS)
    row = raw(pid)
    tag = crypto.keyring().tag
    assert all(str(row[f"{c}_enc"]).startswith(tag + ":") for c in ("name", "phone", "id_number", "address"))
    assert row["pii_kid"] == tag
    stored = repr(row)
    for plain in (NAME, PHONE, IDN, ADDRESS, IDN.lower()):
        assert plain not in stored
    assert len(salt_of(pid) or b"") == crypto.SALT_BYTES
    assert pii_of(read(pid)) == (NAME, PHONE, IDN, ADDRESS)
    assert pii_of(read(pid, reveal=False)) == (mask_name(NAME), mask_phone(PHONE), mask_id_number(IDN),
                                               mask_address(ADDRESS))
    assert pii_of(read(pid, reveal=False))[:3] == ("欧***", "138****8000", "110***********002X")
    with read_tx() as session:
        assert patients.display_name(session, pid) == NAME
        assert patients.display_name(session, pid, masked=True) == "欧***"
        with pytest.raises(PatientNotFoundError):
            patients.display_name(session, "01a2b3c4-0000-7000-8000-00000000dead")


def test_find_by_blind_index_and_contact(db: Db, now: datetime) -> None:
    mother = enrol(now, phone=PHONE, id_number=IDN)
    child = enrol(now, phone="+86" + PHONE)  # a family shares one phone
    other = enrol(now, phone="13900139000", id_number="110105200001010011")
    with read_tx() as session:
        assert patients.find(session, phone="138 0013-8000") == [mother, child]
        assert patients.find(session, phone="+86 13800138000") == [mother, child]
        assert patients.find(session, id_number=IDN.lower()) == [mother]
        assert patients.find(session, phone=PHONE, id_number=IDN) == [mother]
        assert patients.find(session, phone="13900139000", id_number=IDN) == []
        assert patients.find(session, phone="13700000000") == []
        assert patients.find(session) == []
        assert patients.contact(session, [mother, child, other, "not-an-id", mother]) == {
            mother: PHONE, child: "+86" + PHONE, other: "13900139000"}
        assert patients.contact(session, []) == {}
    assert raw(mother)["phone_index"] == raw(child)["phone_index"] != raw(other)["phone_index"]


def test_http_masks_unless_pii_read_and_looks_up_by_phone(api: Api) -> None:
    first = api.enrol(name=NAME, phone=PHONE, id_number=IDN, address=ADDRESS)
    second = api.enrol(name="欧阳小明", phone=PHONE)
    integration = api.make_key("integration", "his")
    r = api.get(f"/patients/{first}", key=integration)
    assert r.status_code == 200, r.text
    assert pii_of(r.json()) == (mask_name(NAME), "138****8000", "110***********002X", mask_address(ADDRESS))
    r = api.get(f"/patients/{first}")  # admin: pii:read
    assert pii_of(r.json()) == (NAME, PHONE, IDN, ADDRESS)
    r = api.get("/patients", params={"phone": "+86 138-0013-8000"}, key=integration)
    assert r.status_code == 200, r.text
    assert [(p["id"], p["name"], p["phone"]) for p in r.json()["items"]] == [
        (first, mask_name(NAME), "138****8000"), (second, "欧***", "138****8000")]
    r = api.get("/patients", params={"id_number": IDN.lower()})
    assert [(p["id"], p["name"], p["id_number"]) for p in r.json()["items"]] == [(first, NAME, IDN)]
    assert api.get("/patients", params={"phone": "13999999999"}).json() == {"items": []}
    error(api.get("/patients"), 422, "request.invalid")
    error(api.get("/patients", params={"phone": "call me"}), 422, "request.invalid")
    error(api.get("/patients", params={"id_number": "1"}), 422, "request.invalid")
    error(api.get("/patients", params={"phone": PHONE}, auth=False), 401, "auth.unauthenticated")
    body = api.patient_body(address="x" * 201)
    error(api.post("/patients", body), 422, "request.invalid")


def test_rotation_with_the_old_key_configured_then_dropped(db: Db, now: datetime,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    use_keys(monkeypatch, KEY_A)
    old_tag = crypto.keyring().tag
    pids = [enrol(now, name=f"患者{i}", phone=PHONE, id_number=f"1101051949123100{i}X") for i in range(3)]
    erased = enrol(now)
    with write_tx() as session:
        assert patients.shred(session, erased, now)
    use_keys(monkeypatch, KEY_B)  # the old key forgotten too early: unreadable, never an error
    assert read(pids[0])["name"] == UNREADABLE_NAME
    assert read(pids[0], reveal=False)["phone"] is None
    out = CliRunner().invoke(cli_app, ["keys", "rotate"])
    assert out.exit_code == 1, out.output
    assert "3 unreadable" in out.output
    assert f"{old_tag}: 3" in out.output

    use_keys(monkeypatch, KEY_B, old=f"{KEY_A}")
    assert read(pids[1])["name"] == "患者1"
    with read_tx() as session:
        assert patients.find(session, phone=PHONE) == pids  # found under the old index
        assert keys.pending(session) == {old_tag: 3}
    fresh = enrol(now, name="新患者", phone=PHONE)  # written under the new key
    assert raw(fresh)["pii_kid"] == "a1:k2027"
    out = CliRunner().invoke(cli_app, ["keys", "rotate", "--batch", "2"])
    assert out.exit_code == 0, out.output
    assert "rotated 3 patients; 0 unreadable" in out.output
    ring = crypto.keyring()
    for pid in pids:
        row = raw(pid)
        assert row["pii_kid"] == "a1:k2027"
        assert str(row["name_enc"]).startswith("a1:k2027:")
        assert row["phone_index"] == ring.blind_index("phone", PHONE)
    assert raw(erased)["pii_kid"] is None
    again = CliRunner().invoke(cli_app, ["keys", "rotate"])
    assert "rotated 0 patients" in again.output
    assert again.exit_code == 0

    use_keys(monkeypatch, KEY_B)  # the old key dropped after the rotation
    assert [read(pid)["name"] for pid in pids] == ["患者0", "患者1", "患者2"]
    assert read(pids[2])["id_number"] == "11010519491231002X"
    with read_tx() as session:
        assert patients.find(session, phone=PHONE) == [*pids, fresh]
        assert patients.find(session, id_number="11010519491231001x") == [pids[1]]


def test_switching_to_sm4_rotates_values_and_indexes(db: Db, now: datetime,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    use_keys(monkeypatch, KEY_A)
    pid = enrol(now, name=NAME, phone=PHONE, id_number=IDN, address=ADDRESS)
    use_keys(monkeypatch, KEY_A, cipher="sm4-gcm")
    with read_tx() as session:
        assert patients.find(session, phone=PHONE) == [pid]  # the HMAC-SHA256 index is still found
    with write_tx() as session:
        assert keys.rotate_batch(session).rotated == 1
    row = raw(pid)
    assert str(row["address_enc"]).startswith(f"s1:{crypto.key_id(KEY_A)}:")
    assert row["phone_index"] == crypto.keyring().blind_index("phone", PHONE)
    assert pii_of(read(pid)) == (NAME, PHONE, IDN, ADDRESS)
    sm4_only = enrol(now, phone="13900000000")
    assert str(raw(sm4_only)["phone_enc"]).startswith("s1:")


def test_shred_makes_values_unreadable_and_reads_still_answer(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = api.enrol(name=NAME, phone=PHONE, id_number=IDN, address=ADDRESS)
    before = raw(pid)
    now = datetime.now(UTC)
    with write_tx() as session:
        assert patients.shred(session, pid, now) is True
    with write_tx() as session:
        assert patients.shred(session, pid, now) is False  # idempotent
        with pytest.raises(PatientNotFoundError):
            patients.shred(session, "01a2b3c4-0000-7000-8000-00000000dead", now)
    row = raw(pid)
    assert row["status"] == "erased"
    assert [row[c] for c in ("name_enc", "phone_enc", "id_number_enc", "address_enc", "phone_index",
                             "id_number_index", "pii_kid")] == [None] * 7
    assert salt_of(pid) is None
    # even the old ciphertext put back cannot be read with the master key: the salt is gone
    with write_tx() as session:
        session.connection().execute(update(Patient).where(Patient.id == pid).values(
            name_enc=before["name_enc"], phone_enc=before["phone_enc"]))
    for reveal in (True, False):
        doc = read(pid, reveal)
        assert (doc["name"], doc["phone"], doc["id_number"], doc["status"]) == (ERASED_NAME, None, None, "erased")
    with read_tx() as session:
        assert patients.find(session, phone=PHONE) == []
        assert patients.contact(session, [pid]) == {}
        assert patients.display_name(session, pid) == ERASED_NAME
        assert patients.is_erased(session, pid)
    r = api.get(f"/patients/{pid}")
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["phone"]) == (ERASED_NAME, None)
    assert api.get(f"/patients/{pid}/points").status_code == 200  # the ledger's amounts stay




def test_a_database_dump_holds_no_plaintext_phone_or_national_id(db: Db, now: datetime) -> None:
    people = [("司马光明", "13512345678", "11010519491231002X"), ("诸葛亮亮", "13687654321", "440301199001011234"),
              ("上官婉儿", "18600001111", "31010119851212888X")]
    pids = [enrol(now, name=n, phone=p, id_number=i, address=f"{n}的家") for n, p, i in people]
    with write_tx() as session:  # and a lookup, an erasure and a rotation's batch leave none either
        assert patients.find(session, phone=people[0][1]) == [pids[0]]
        patients.shred(session, pids[2], now)
    dump = dump_database(db)
    assert "CREATE TABLE" in dump
    assert pids[0] in dump
    for name, phone, idn in people:
        for plain in (phone, idn, idn.lower(), phone[-8:], idn[-10:], name, f"{name}的家"):
            assert plain not in dump, f"{plain[:3]}… appears in the dump"


# --- the migration ------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path, worker_id: str) -> Iterator[str]:
    """An empty database (no tables) of either kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    if not _pg_enabled():
        pytest.skip("PostgreSQL not reachable")
    if not _pg_reachable():
        pytest.fail(f"PostgreSQL is required but {PG_URL} is not reachable")
    name = f"cp_pii_mig_{worker_id}_{os.getpid()}".replace("-", "_")
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


PLAIN_ROWS = 1203  # more than two conversion batches


def _plain(i: int) -> dict[str, Any]:
    return {"id": f"01a2b3c4-0000-7000-8000-{i:012d}", "name": f"旧患者{i}", "phone": f"137{i:08d}",
            "id_number": f"1101051949{i:07d}X" if i % 2 else None, "birth_date": date(1950, 1, 1),
            "sex": "female", "status": "active", "tier": "standard", "elderly_mode": False,
            "idempotency_key": None, "created_at": datetime(2026, 1, 1, tzinfo=UTC)}


def test_the_migration_converts_plaintext_rows(empty_url: str) -> None:
    cfg = migrate.alembic_config(empty_url)
    command.upgrade(cfg, "b2c3d4e5f605")
    engine = make_engine(empty_url)
    rows = [_plain(i) for i in range(PLAIN_ROWS)]
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO patients (id, name, phone, id_number, birth_date, sex, status, tier, "
                              "elderly_mode, idempotency_key, created_at) VALUES (:id, :name, :phone, :id_number, "
                              ":birth_date, :sex, :status, :tier, :elderly_mode, :idempotency_key, :created_at)"),
                         rows)
            conn.execute(text("INSERT INTO patient_external_ids (system, value, patient_id) VALUES "
                              "('urn:his', 'MRN1', :id)"), {"id": rows[1]["id"]})
        command.upgrade(cfg, "c3d4e5f60701")
        ring = crypto.keyring()
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("patients")}
            assert {"name", "phone", "id_number"}.isdisjoint(columns)
            assert "ix_patients_phone" not in {i["name"] for i in inspect(conn).get_indexes("patients")}
            stored = conn.execute(text(
                "SELECT p.id, p.name_enc, p.phone_enc, p.id_number_enc, p.address_enc, p.phone_index, "
                "p.id_number_index, p.pii_kid, k.salt FROM patients p LEFT JOIN patient_keys k ON k.patient_id = p.id "
                "ORDER BY p.id")).mappings().all()
            assert conn.execute(text("SELECT patient_id FROM patient_external_ids")).scalar() == rows[1]["id"]
        assert len(stored) == PLAIN_ROWS
        for plain, row in zip(rows, stored, strict=True):
            pii = opened(ring, row)
            assert (row["id"], pii.name, pii.phone, pii.id_number) == (plain["id"], plain["name"], plain["phone"],
                                                                       plain["id_number"])
            assert row["pii_kid"] == ring.tag
            assert row["phone_index"] == ring.blind_index("phone", plain["phone"])
            assert plain["phone"] not in repr(dict(row))
        command.downgrade(cfg, "b2c3d4e5f605")  # and back, plaintext restored
        with engine.connect() as conn:
            back = conn.execute(text("SELECT id, name, phone, id_number FROM patients ORDER BY id")).all()
        assert [tuple(r) for r in back] == [(p["id"], p["name"], p["phone"], p["id_number"]) for p in rows]
        command.upgrade(cfg, "head")
        with Session(engine) as session:
            doc = patients.read(session, rows[3]["id"], reveal_pii=True)
            assert (doc["name"], doc["phone"], doc["id_number"]) == ("旧患者3", "13700000003", "11010519490000003X")
            assert patients.find(session, phone="13700000004") == [rows[4]["id"]]
    finally:
        engine.dispose()


def test_postgresql_refuses_to_start_without_a_pii_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import get_settings

    monkeypatch.setenv("CAREPOINTS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    monkeypatch.delenv("CAREPOINTS_PII_KEY")
    reset_settings()
    with pytest.raises(RuntimeError, match="CAREPOINTS_PII_KEY must be set"):
        get_settings()
    monkeypatch.setenv("CAREPOINTS_PII_CIPHER", "des")
    monkeypatch.setenv("CAREPOINTS_PII_KEY", KEY_A)
    reset_settings()
    with pytest.raises(ValueError, match="pii_cipher"):
        get_settings()
