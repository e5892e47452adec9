"""The patients row's PII columns: seal plain values into them and open them again.

`opened` never raises: a patient whose key material was shredded reads as erased, and a
value that cannot be decrypted (a dropped master key, tampering) reads as unreadable and
is logged with the patient id only."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carepoints.patients.crypto import Keyring, UnreadableError

log = logging.getLogger("carepoints.patients")

ERASED_NAME = "已注销 / erased"
UNREADABLE_NAME = "无法解密 / unreadable"
COLUMNS = ("name", "phone", "id_number", "address")


@dataclass(frozen=True, slots=True)
class Pii:
    name: str
    phone: str | None
    id_number: str | None
    address: str | None
    erased: bool = False
    unreadable: bool = False


def sealed(ring: Keyring, patient_id: str, salt: bytes, *, name: str, phone: str, id_number: str | None,
           address: str | None) -> dict[str, Any]:
    """The encrypted columns, blind indexes and key tag of a patient's PII."""
    plain = {"name": name, "phone": phone, "id_number": id_number, "address": address}
    out: dict[str, Any] = {f"{c}_enc": ring.encrypt(patient_id, c, salt, v) if v is not None else None
                           for c, v in plain.items()}
    out["phone_index"] = ring.blind_index("phone", phone)
    out["id_number_index"] = ring.blind_index("id_number", id_number) if id_number else None
    out["pii_kid"] = ring.tag
    return out


def opened(ring: Keyring, row: Mapping[Any, Any]) -> Pii:
    """The plain PII of a row holding `id`, the `*_enc` columns and the patient's `salt`."""
    salt = row["salt"]
    if salt is None or row["name_enc"] is None:
        return Pii(ERASED_NAME, None, None, None, erased=True)
    values: dict[str, str | None] = {}
    try:
        for c in COLUMNS:
            token = row[f"{c}_enc"]
            values[c] = ring.decrypt(row["id"], c, bytes(salt), token) if token is not None else None
    except UnreadableError as exc:
        log.warning("pii unreadable for patient %s: %s", row["id"], exc)
        return Pii(UNREADABLE_NAME, None, None, None, unreadable=True)
    return Pii(values["name"] or "", values["phone"], values["id_number"], values["address"])
