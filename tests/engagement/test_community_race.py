"""Two moderators deciding one post at once: exactly one decision wins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.engagement.community import posts
from carepoints.engagement.community.models import CommunityPost
from carepoints.engagement.community.schemas import PostCreate, Reject, RejectReason
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from tests.helpers import balance, enrol

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def test_two_moderators_one_decision(racing: Any) -> None:
    pid = enrol(NOW)
    with write_tx() as s:
        post_id = posts.create(s, PostCreate(patient_id=pid, text="hello"), Actor("api_key", "k", "admin"), NOW)["id"]

    before = balance(pid, NOW)

    def decide(i: int) -> str:
        try:
            with write_tx() as s:
                if i % 2:
                    posts.approve(s, post_id, Actor("staff", f"m{i}", "admin"), NOW)
                    return "approved"
                posts.reject(s, post_id, Reject(reason_code=RejectReason.spam), Actor("staff", f"m{i}", "admin"), NOW)
                return "rejected"
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(decide, range(8)))
    wins = [r for r in results if r in ("approved", "rejected")]
    assert len(wins) == 1, results
    assert results.count("community.post_already_decided") == 7
    with read_tx() as s:
        status = s.execute(select(CommunityPost.status).where(CommunityPost.id == post_id)).scalar_one()
    assert status == wins[0]
    assert balance(pid, NOW) == before + (20 if wins[0] == "approved" else 0)
