"""An alliance of two institutions (A: the lead hospital, B: a community centre), each with its
MRN system, a key bound to each, and one patient enrolled by each key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security

if TYPE_CHECKING:
    from tests.api_client import Api

SYS_A = "urn:hospital-a:mrn"
SYS_B = "urn:centre-b:mrn"


@dataclass
class Alliance:
    a: str  # institution ids
    b: str
    key_a: str  # secrets
    key_b: str
    pa: str  # patients
    pb: str


def bound_key(role: str, institutions: list[str], name: str = "his") -> str:
    with write_tx() as session:
        _kid, secret = security.create_api_key(session, name, role, utc_now(), institutions=institutions)
    return secret


def institution(api: Api, code: str) -> str:
    r = api.post("/institutions", {"code": code, "name_zh": f"机构{code}", "name_en": f"Institution {code}"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def alliance(api: Api) -> Alliance:
    a, b = institution(api, "A"), institution(api, "B")
    r = api.post("/alliances", {"code": "north", "name_zh": "北区医联体", "name_en": "North alliance",
                                "institutions": ["A", "B"]})
    assert r.status_code == 201, r.text
    for iid, system in ((a, SYS_A), (b, SYS_B)):
        r = api.post(f"/institutions/{iid}/systems", {"system": system})
        assert r.status_code == 201, r.text
    key_a, key_b = bound_key("integration", [a], "his-a"), bound_key("integration", [b], "his-b")
    ra = api.post("/patients", api.patient_body(external_ids=[{"system": SYS_A, "value": "A-1"}]), key=key_a)
    rb = api.post("/patients", api.patient_body(external_ids=[{"system": SYS_B, "value": "B-1"}]), key=key_b)
    assert ra.status_code == rb.status_code == 201, (ra.text, rb.text)
    return Alliance(a, b, key_a, key_b, str(ra.json()["id"]), str(rb.json()["id"]))
