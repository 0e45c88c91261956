"""Deliver a finished mission to its ``return.url``: form-encoded (the classic format), or JSON.

Delivery is at least once: tenacity retries connection errors, timeouts, 429 and 5xx with
exponential backoff and jitter (honouring ``Retry-After``); a 2xx ends it; a redirect or another
4xx ends it as failed. Redirects are not followed, so a callback cannot be bounced to another
address.

With a secret, every attempt is signed as the Standard Webhooks specification says:
``webhook-id`` (the same for every attempt of one mission's callback, also after a restart, so a
receiver can drop duplicates), ``webhook-timestamp`` (seconds since the epoch when this attempt
was sent, so a receiver can refuse replays) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``. The secret may be given as ``whsec_<base64 key>`` or as plain text
(its UTF-8 bytes are the key). ``X-Judge-Delivery`` repeats the id for older receivers; the
former body-only ``X-Judge-Signature`` is gone, since it allowed replaying a callback forever.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from yarl import URL

from orchestrator.netpolicy import AddressNotAllowed, AddressPolicy, address_allowed
from service.pipeline.formencode import urlencode

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Judge-Delivery"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_WHSEC = "whsec_"


class RetryableDelivery(Exception):
    """The receiver could not take the callback now (connection error, timeout, 429, 5xx)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FinalDeliveryFailure(Exception):
    """The callback cannot be delivered: a 4xx other than 429, a redirect, a refused address."""


@dataclass(frozen=True)
class CallbackPolicy:
    """How hard to try: ``attempts`` in all, waits growing from ``initial_wait_s`` (doubling,
    plus up to ``initial_wait_s`` of jitter) to at most ``max_wait_s``."""

    attempts: int = 8
    initial_wait_s: float = 0.5
    max_wait_s: float = 300.0
    timeout_s: float = 30.0
    secret: str = ""
    block_private: bool | AddressPolicy = False


@dataclass(frozen=True)
class Callback:
    """A front door's callback for one of its missions: sent like the mission API's (retries,
    signature headers, address policy), with the door's own method, body and headers."""

    url: str
    body: bytes
    content_type: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One mission's callback: where, what, and its stable delivery id."""

    url: str
    body: bytes
    content_type: str
    delivery_id: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    error: str


def callback_body(
    mission_id: int,
    normalised: Mapping[str, Any],
    result: Mapping[str, Any],
    fmt: str,
) -> tuple[bytes, str]:
    """Encode the callback form-encoded (``form``) or as one JSON object (``json``).

    Returns ``(body, content type)``. Payload keys become fields of their own; they were checked
    at submission not to clash with ``id``, ``mission`` or ``mission_result``.
    """
    payload: Mapping[str, Any] = normalised["return"].get("payload", {})
    if fmt == "json":
        doc: dict[str, Any] = {"id": mission_id, "mission": normalised, "mission_result": result}
        doc.update(payload)
        return json.dumps(doc).encode(), "application/json"
    fields: list[tuple[str, str]] = [
        ("id", str(mission_id)),
        ("mission", json.dumps(normalised)),
        ("mission_result", json.dumps(result)),
    ]
    for key, value in payload.items():
        fields.append((key, _scalar(value)))
    return urlencode(fields).encode(), "application/x-www-form-urlencoded"


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a configured secret: the decoded bytes of ``whsec_<base64>``, else the
    secret's UTF-8 bytes. Raises ``ValueError`` for a ``whsec_`` secret that is not base64."""
    if secret.startswith(_WHSEC):
        try:
            key = base64.b64decode(secret[len(_WHSEC) :], validate=True)
        except binascii.Error as e:
            raise ValueError(f"a {_WHSEC} secret must be followed by base64 ({e})") from None
        if not key:
            raise ValueError(f"the {_WHSEC} secret holds no key")
        return key
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>``: HMAC-SHA256 of ``{id}.{timestamp}.{body}`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, message_id: str, body: bytes, now: float) -> dict[str, str]:
    """The headers that sign one attempt sent at ``now`` (seconds since the epoch)."""
    timestamp = int(now)
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, message_id, timestamp, body),
        DELIVERY_HEADER: message_id,
    }


# Every submission with a ``return`` asks, nearly always for the same few URLs: parsing the URL
# and its IP literal again each time was ~2% of the intake's CPU. Only URLs up to this size are
# remembered, so the cache stays small whatever the missions hold.
_REMEMBERED_URL_CHARS = 2048


def url_refusal(url: str, block_private: bool | AddressPolicy) -> str | None:
    """Why a callback to ``url`` would be refused by the address policy when its host is an IP
    literal (host names are checked when they resolve), or None."""
    if len(url) <= _REMEMBERED_URL_CHARS:
        return _remembered_refusal(url, block_private)
    return _refusal(url, block_private)


def _refusal(url: str, block_private: bool | AddressPolicy) -> str | None:
    host = URL(url).host or ""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address_allowed(ip, block_private):
        return None
    return f"address {ip} is not allowed for callbacks"


_remembered_refusal = functools.lru_cache(maxsize=1024)(_refusal)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def post_once(
    session: aiohttp.ClientSession, delivery: Delivery, policy: CallbackPolicy
) -> int:
    """POST the callback once; returns the 2xx status.

    Raises ``RetryableDelivery`` or ``FinalDeliveryFailure``.
    """
    refusal = url_refusal(delivery.url, policy.block_private)
    if refusal:
        raise FinalDeliveryFailure(refusal)
    headers = {
        "Content-Type": delivery.content_type,
        "User-Agent": "judge-callback/1",
        **delivery.headers,
    }
    if policy.secret:
        headers.update(
            signature_headers(policy.secret, delivery.delivery_id, delivery.body, time.time())
        )
    try:
        async with session.request(
            delivery.method,
            delivery.url,
            data=delivery.body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
        ) as resp:
            # The receiver's body is of no interest; it is not read (nor buffered).
            if 200 <= resp.status < 300:
                return resp.status
            if resp.status == 429 or resp.status >= 500:
                raise RetryableDelivery(
                    f"HTTP {resp.status}", _retry_after(resp.headers.get("Retry-After"))
                )
            if 300 <= resp.status < 400:
                raise FinalDeliveryFailure(f"HTTP {resp.status} (redirects are not followed)")
            raise FinalDeliveryFailure(f"HTTP {resp.status}")
    except aiohttp.InvalidURL as e:
        raise FinalDeliveryFailure(f"invalid URL: {e}") from e
    except aiohttp.ClientConnectorError as e:
        if isinstance(e.os_error, AddressNotAllowed):
            raise FinalDeliveryFailure(str(e.os_error)) from e
        raise RetryableDelivery(f"cannot connect: {e.os_error or e}") from e
    except TimeoutError as e:  # its own message is empty
        raise RetryableDelivery(f"no answer within {policy.timeout_s:g} s") from e
    except (aiohttp.ClientError, OSError) as e:
        raise RetryableDelivery(f"{type(e).__name__}: {e}") from e


def _wait(policy: CallbackPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)
    jitter = wait_random(0, policy.initial_wait_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableDelivery) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, policy.max_wait_s)
        return min(float(backoff(state) + jitter(state)), policy.max_wait_s)

    return wait


async def deliver(
    session: aiohttp.ClientSession,
    delivery: Delivery,
    policy: CallbackPolicy,
    *,
    done_before: int = 0,
    limiter: asyncio.Semaphore | None = None,
    on_attempt: Callable[[int, str], Awaitable[None]] | None = None,
) -> Outcome:
    """Deliver with retries; ``done_before`` attempts were made earlier (before a restart) and
    count against ``policy.attempts`` (at least one more is always made).

    ``on_attempt(n, error)`` is awaited after each failed attempt ``n`` (counted from the first
    ever). ``limiter`` bounds the POSTs in flight (not the waits between them). Never raises for
    the receiver's behaviour; cancellation propagates (the delivery then stays pending).
    """
    attempts = done_before
    limiter = limiter or asyncio.Semaphore(1)
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(max(1, policy.attempts - done_before)),
            wait=_wait(policy),
            retry=retry_if_exception_type(RetryableDelivery),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                try:
                    async with limiter:
                        await post_once(session, delivery, policy)
                except (RetryableDelivery, FinalDeliveryFailure) as e:
                    if on_attempt is not None:
                        await on_attempt(attempts, str(e))
                    raise
        return Outcome(True, attempts, "")
    except (RetryableDelivery, FinalDeliveryFailure) as e:
        log.warning("callback to %s failed after %d attempts: %s", delivery.url, attempts, e)
        return Outcome(False, attempts, str(e))
