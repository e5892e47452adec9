"""Per-wallet hash chains: hash = sha256(prev_hash ‖ canonical(entry)).

canonical(entry) is sorted-key compact JSON (UTF-8) of the entry's id,
wallet, counterparty, signed amount, kind, rule version, event id, the UTC
timestamps `at` and `created_at` as YYYY-MM-DDTHH:MM:SS.ffffffZ, and prev_hash."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import orjson

from carepoints.kit.time import iso_z


def canonical(*, id: str, wallet: str, counterparty: str, amount: int, kind: str,
              rule_version: int | None, event_id: str | None, at: datetime, created_at: datetime,
              prev_hash: str) -> bytes:
    return orjson.dumps({
        "amount": amount, "at": iso_z(at), "counterparty": counterparty, "created_at": iso_z(created_at),
        "event_id": event_id, "id": id, "kind": kind, "prev_hash": prev_hash, "rule_version": rule_version,
        "wallet": wallet,
    }, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def heads_digest(heads: dict[str, list[object]]) -> str:
    return hashlib.sha256(orjson.dumps(heads, option=orjson.OPT_SORT_KEYS)).hexdigest()


def sign(key: str, digest: str) -> str:
    return hmac.new(key.encode(), digest.encode(), hashlib.sha256).hexdigest()


def signature_ok(key: str, digest: str, signature: str) -> bool:
    return hmac.compare_digest(sign(key, digest), signature)
