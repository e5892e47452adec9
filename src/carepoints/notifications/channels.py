"""External channels behind one interface: `Channel.send(outgoing) -> Result`.

SMS and WeChat template messages go to a configurable HTTP gateway (JSON,
bearer token); webhooks go to the hospital system's URL, signed as signed
requests to us are (security.signing: HMAC-SHA256 over method, target,
timestamp, nonce and body, under the subscription's secret; a fresh nonce per
attempt). Every request carries the delivery
id as its idempotency key, so a gateway that sees a retry can drop it. The
in-app inbox is the default channel and is written in the dispatch
transaction itself (no network), so it is not one of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from carepoints.config import Settings
from carepoints.security import signing


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed delivery, ready to send. `address` (phone, openid, URL) lives only in memory."""

    id: str
    channel: str
    template: str
    address: str
    title: str = ""
    body: str = ""
    document: dict[str, Any] = field(default_factory=dict)  # the webhook body
    secret: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    outcome: str  # sent | retry | dead
    error: str | None = None  # a code: http_503, timeout, no_template_id

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


SENT = Result("sent")


class Channel(Protocol):
    name: str

    def send(self, outgoing: Outgoing) -> Result: ...


def classify(status: int) -> Result:
    """2xx sent; 429 and 5xx are worth retrying; any other answer will not change."""
    if 200 <= status < 300:
        return SENT
    if status == 429 or status >= 500:
        return Result("retry", f"http_{status}")
    return Result("dead", f"http_{status}")


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> Result:
    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.TimeoutException:
        return Result("retry", "timeout")
    except httpx.HTTPError:
        return Result("retry", "connection")
    return classify(response.status_code)


class SmsChannel:
    name = "sms"

    def __init__(self, client: httpx.Client, url: str, token: str) -> None:
        self.client, self.url, self.token = client, url, token

    def send(self, outgoing: Outgoing) -> Result:
        body = orjson.dumps({"to": outgoing.address, "text": outgoing.body, "template": outgoing.template,
                             "delivery_id": outgoing.id})
        return post(self.client, self.url, body, _auth(self.token, outgoing.id))


class WeChatChannel:
    name = "wechat"

    def __init__(self, client: httpx.Client, url: str, token: str, template_ids: dict[str, str]) -> None:
        self.client, self.url, self.token, self.template_ids = client, url, token, template_ids

    def send(self, outgoing: Outgoing) -> Result:
        template_id = template_id_for(self.template_ids, outgoing.template)
        if template_id is None:
            return Result("dead", "no_template_id")
        body = orjson.dumps({"touser": outgoing.address, "template_id": template_id, "delivery_id": outgoing.id,
                             "data": {"title": outgoing.title, "body": outgoing.body}})
        return post(self.client, self.url, body, _auth(self.token, outgoing.id))


class WebhookChannel:
    name = "webhook"

    def __init__(self, client: httpx.Client, clock: Any) -> None:
        self.client, self.clock = client, clock

    def send(self, outgoing: Outgoing) -> Result:
        body = orjson.dumps(outgoing.document)
        try:
            target = httpx.URL(outgoing.address).raw_path.decode("ascii")  # path and query, as sent
        except httpx.InvalidURL:
            return Result("dead", "bad_url")
        headers = signing.signed_headers(outgoing.secret, "POST", target, body,
                                         timestamp=int(self.clock().timestamp()))
        return post(self.client, outgoing.address, body, {
            **headers, "X-Carepoints-Delivery": outgoing.id, "Idempotency-Key": outgoing.id})


def _auth(token: str, delivery_id: str) -> dict[str, str]:
    headers = {"Idempotency-Key": delivery_id, "X-Carepoints-Delivery": delivery_id}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def parse_template_ids(raw: str) -> dict[str, str]:
    """`key=id,key=id` → {key: id}."""
    out: dict[str, str] = {}
    for part in raw.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() and value.strip():
            out[key.strip()] = value.strip()
    return out


def template_id_for(ids: dict[str, str], template: str) -> str | None:
    """The WeChat template id of a template key (`topic.variant`, else `topic`)."""
    if template in ids:
        return ids[template]
    topic = template.rsplit(".", 1)[0]
    return ids.get(topic)


def offered(settings: Settings) -> set[str]:
    """The external patient channels a hospital has configured a gateway for."""
    out = set()
    if settings.sms_gateway_url:
        out.add("sms")
    if settings.wechat_gateway_url:
        out.add("wechat")
    return out


def build(settings: Settings, client: httpx.Client, clock: Any) -> dict[str, Channel]:
    channels: dict[str, Channel] = {"webhook": WebhookChannel(client, clock)}
    if settings.sms_gateway_url:
        channels["sms"] = SmsChannel(client, settings.sms_gateway_url, settings.sms_gateway_token)
    if settings.wechat_gateway_url:
        channels["wechat"] = WeChatChannel(client, settings.wechat_gateway_url, settings.wechat_gateway_token,
                                           parse_template_ids(settings.wechat_template_ids))
    return channels
