from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifications.kit import Gateway, start_gateway, stop_gateway


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """A real HTTP gateway stub on loopback (SMS, WeChat, webhooks)."""
    gw = start_gateway()
    yield gw
    stop_gateway(gw)
