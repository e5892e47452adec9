"""Time-ordered ids (UUIDv7) as opaque strings."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
import uuid_utils

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_id() -> str:
    return str(uuid_utils.uuid7())


def is_id(value: object) -> bool:
    return isinstance(value, str) and _UUID.match(value) is not None


def request_digest(doc: dict[str, Any]) -> str:
    """A stable hash of a request's meaningful fields: the same idempotency key with a
    different digest is a different request."""
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
