"""Deliver a finished mission to its ``return.url``: form-encoded as the seed, or JSON.

Delivery is at least once: tenacity retries connection errors, 429 and 5xx with exponential
backoff and jitter (honouring ``Retry-After``); a 2xx ends it; other 4xx end it as failed.
Redirects are not followed, so a callback cannot be bounced to another address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


class RetryableDelivery(Exception):
    """The receiver could not take the callback now (connection error, 429, 5xx)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FinalDeliveryFailure(Exception):
    """The receiver refused the callback for good (a 4xx other than 429, a redirect)."""


@dataclass(frozen=True)
class CallbackPolicy:
    attempts: int = 8
    initial_wait_s: float = 0.5
    max_wait_s: float = 300.0
    timeout_s: float = 30.0
    secret: str = ""


def callback_body(
    mission_id: int,
    normalised: dict[str, Any],
    result: dict[str, Any],
    fmt: str,
) -> tuple[bytes, str]:
    """Encode the callback as the seed does (``form``) or as one JSON object (``json``).

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


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the configured secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; the exponential backoff is close enough


async def post_once(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    content_type: str,
    policy: CallbackPolicy,
    delivery_id: str,
) -> int:
    """POST the callback once; returns the 2xx status.

    Raises ``RetryableDelivery`` or ``FinalDeliveryFailure``.
    """
    headers = {"Content-Type": content_type, "User-Agent": "judge-callback/1"}
    if policy.secret:
        headers["X-Judge-Signature"] = sign(policy.secret, body)
        headers["X-Judge-Delivery"] = delivery_id
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
        ) as resp:
            await resp.read()
            if 200 <= resp.status < 300:
                return resp.status
            if resp.status == 429 or resp.status >= 500:
                raise RetryableDelivery(
                    f"HTTP {resp.status}", _retry_after(resp.headers.get("Retry-After"))
                )
            raise FinalDeliveryFailure(f"HTTP {resp.status}")
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        raise RetryableDelivery(f"{type(e).__name__}: {e}") from e


def _wait(policy: CallbackPolicy) -> Any:
    backoff = wait_exponential_jitter(initial=policy.initial_wait_s, max=policy.max_wait_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableDelivery) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, policy.max_wait_s)
        return float(backoff(state))

    return wait


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    content_type: str,
    policy: CallbackPolicy,
    on_attempt: Any = None,
) -> tuple[bool, int, str]:
    """Deliver with retries; returns ``(delivered, attempts, last error)``. Never raises
    for the receiver's behaviour; cancellation propagates (the delivery stays pending)."""
    delivery_id = uuid.uuid4().hex
    attempts = 0
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=_wait(policy),
            retry=retry_if_exception_type(RetryableDelivery),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                if on_attempt is not None:
                    await on_attempt(attempts)
                await post_once(session, url, body, content_type, policy, delivery_id)
        return True, attempts, ""
    except (RetryableDelivery, FinalDeliveryFailure) as e:
        log.warning("callback to %s failed after %d attempts: %s", url, attempts, e)
        return False, attempts, str(e)
