"""Time-ordered ids (UUIDv7) as opaque strings."""

from __future__ import annotations

import re

import uuid_utils

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_id() -> str:
    return str(uuid_utils.uuid7())


def is_id(value: object) -> bool:
    return isinstance(value, str) and _UUID.match(value) is not None
