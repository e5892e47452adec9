"""PII encryption without a database: ciphers, key ids, AAD binding, blind indexes."""

from __future__ import annotations

import base64

import pytest

from carepoints.patients import crypto
from carepoints.patients.crypto import Keyring, UnreadableError
from carepoints.patients.sealing import ERASED_NAME, UNREADABLE_NAME, opened, sealed

KEY_A = "first-master-key-0123456789abcdef"
KEY_B = "second-master-key-0123456789abcdef"
PID, OTHER = "01a2b3c4-0000-7000-8000-000000000001", "01a2b3c4-0000-7000-8000-000000000002"
SALT = bytes(range(32))


def ring(current: str = KEY_A, *old: str, cipher: str = "aes-gcm") -> Keyring:
    return crypto._keyring(current, ",".join(old), cipher)


@pytest.mark.parametrize(("cipher", "alg"), [("aes-gcm", "a1"), ("sm4-gcm", "s1")])
@pytest.mark.parametrize("value", ["张三", "13812345678", "11010519491231002X", "北京市朝阳区建国路1号", ""])
def test_roundtrip_in_both_ciphers(cipher: str, alg: str, value: str) -> None:
    r = ring(cipher=cipher)
    token = r.encrypt(PID, "name", SALT, value)
    tag, kid, body = token.split(":")
    assert (tag, kid) == (alg, crypto.key_id(KEY_A))
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == 12 + len(value.encode()) + 16
    assert not value or value.encode() not in token.encode()
    assert r.decrypt(PID, "name", SALT, token) == value
    assert r.encrypt(PID, "name", SALT, value) != token  # a fresh nonce every time
    assert r.is_current(token)
    assert crypto.token_tag(token) == r.tag


def test_sm4_and_aes_values_read_under_either_setting() -> None:
    """The algorithm travels with the value: switching the setting leaves old values readable."""
    aes, sm4 = ring(cipher="aes-gcm"), ring(cipher="sm4-gcm")
    assert sm4.decrypt(PID, "phone", SALT, aes.encrypt(PID, "phone", SALT, "13812345678")) == "13812345678"
    assert aes.decrypt(PID, "phone", SALT, sm4.encrypt(PID, "phone", SALT, "13812345678")) == "13812345678"
    assert not sm4.is_current(aes.encrypt(PID, "phone", SALT, "1"))


@pytest.mark.parametrize("cipher", ["aes-gcm", "sm4-gcm"])
def test_a_value_cannot_move_to_another_patient_or_column(cipher: str) -> None:
    r = ring(cipher=cipher)
    token = r.encrypt(PID, "phone", SALT, "13812345678")
    with pytest.raises(UnreadableError):
        r.decrypt(OTHER, "phone", SALT, token)
    with pytest.raises(UnreadableError):
        r.decrypt(PID, "id_number", SALT, token)


@pytest.mark.parametrize("cipher", ["aes-gcm", "sm4-gcm"])
def test_tampering_another_salt_and_garbage_are_unreadable(cipher: str) -> None:
    r = ring(cipher=cipher)
    token = r.encrypt(PID, "name", SALT, "张三")
    head, body = token.rsplit(":", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (f"{head}:{flipped}", f"{head}:", "a1:zz", "plaintext", f"x9:{crypto.key_id(KEY_A)}:{body}",
                f"{head}:{body[:10]}", f"{head}:!!!"):
        with pytest.raises(UnreadableError):
            r.decrypt(PID, "name", SALT, bad)
    with pytest.raises(UnreadableError):  # another patient's salt: another key
        r.decrypt(PID, "name", bytes(32), token)


def test_key_ids_explicit_and_derived_and_rotation_order() -> None:
    assert crypto.parse_key(KEY_A).kid == crypto.key_id(KEY_A)
    assert len(crypto.key_id(KEY_A)) == 8
    explicit = crypto.parse_key("k2026:" + KEY_B)
    assert (explicit.kid, explicit.secret) == ("k2026", KEY_B.encode())
    with pytest.raises(ValueError, match="at least"):
        crypto.parse_key("short")
    with pytest.raises(RuntimeError, match="CAREPOINTS_PII_KEY"):
        crypto._keyring("", "", "aes-gcm")
    old = ring(KEY_A).encrypt(PID, "name", SALT, "李四")
    rotated = ring("k2026:" + KEY_B, KEY_A, "k2026:" + KEY_B, KEY_A)  # the current one and repeats are ignored
    assert [k.kid for k in rotated.old] == [crypto.key_id(KEY_A)]
    assert rotated.decrypt(PID, "name", SALT, old) == "李四"
    assert not rotated.is_current(old)
    assert rotated.encrypt(PID, "name", SALT, "李四").startswith("a1:k2026:")
    with pytest.raises(UnreadableError, match="no PII key"):  # the old key dropped
        ring("k2026:" + KEY_B).decrypt(PID, "name", SALT, old)
    assert KEY_B not in repr(rotated)  # secrets stay out of reprs (logs, tracebacks)


@pytest.mark.parametrize(("raw", "normal"), [
    ("13812345678", "13812345678"), ("+8613812345678", "13812345678"), ("+86 138-1234-5678", "13812345678"),
    ("008613812345678", "13812345678"), ("8613812345678", "13812345678"), ("010-6512 3456", "01065123456"),
])
def test_phone_normalisation(raw: str, normal: str) -> None:
    assert crypto.normalise_phone(raw) == normal
    r = ring()
    assert r.blind_index("phone", raw) == r.blind_index("phone", normal)


def test_blind_indexes() -> None:
    aes, sm4 = ring(), ring(cipher="sm4-gcm")
    idx = aes.blind_index("id_number", "11010519491231002x")
    assert idx == aes.blind_index("id_number", "11010519491231002X")
    assert len(idx) == 64
    assert int(idx, 16) >= 0
    assert idx != aes.blind_index("phone", "11010519491231002X")  # kinds are separated
    assert idx != sm4.blind_index("id_number", "11010519491231002X")  # HMAC-SM3 with the SM4 cipher
    assert idx != ring(KEY_B).blind_index("id_number", "11010519491231002X")
    rotated = ring(KEY_B, KEY_A)
    candidates = rotated.index_candidates("id_number", "11010519491231002X")
    assert candidates[0] == rotated.blind_index("id_number", "11010519491231002X")
    assert idx in candidates
    assert sm4.blind_index("id_number", "11010519491231002X") in candidates
    assert len(candidates) == len(set(candidates)) == 4


def test_sealed_rows_open_and_shredded_ones_read_as_erased() -> None:
    r = ring()
    row = {"id": PID, "salt": SALT, **sealed(r, PID, SALT, name="王秀英", phone="13912345678",
                                             id_number=None, address="上海市")}
    assert row["id_number_enc"] is None
    assert row["id_number_index"] is None
    assert row["pii_kid"] == r.tag
    pii = opened(r, row)
    assert (pii.name, pii.phone, pii.id_number, pii.address, pii.erased) == ("王秀英", "13912345678", None,
                                                                             "上海市", False)
    assert opened(r, {**row, "salt": None}).name == ERASED_NAME  # key material shredded
    assert opened(r, {**row, "salt": None}).phone is None
    broken = opened(ring(KEY_B), row)  # the key is not configured
    assert (broken.name, broken.phone, broken.unreadable) == (UNREADABLE_NAME, None, True)
