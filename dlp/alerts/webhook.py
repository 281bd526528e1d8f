"""Webhook sink: each incident POSTed as JSON, signed with HMAC-SHA256.

Headers (the receiver checks them before trusting the body):
- `X-DLP-Timestamp`: Unix seconds when this attempt was signed (reject old ones: replays).
- `X-DLP-Signature`: `sha256=` + hex HMAC-SHA256 over `"{timestamp}." + body` with the shared
  secret (`alerts.webhook_secret`); compare in constant time.
- `X-DLP-Delivery`: one id per alert, the same on every retry (deduplicate on it).

Connection errors, timeouts, 429 and 5xx are retried with backoff; other statuses are
final failures. The body is the `dlp.alerts.payload.alert_payload` shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from dlp import __version__
from dlp.alerts.base import AlertDeliveryError, QueuedSink

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookSink", "signature"]

SIGNATURE_HEADER = "X-DLP-Signature"
TIMESTAMP_HEADER = "X-DLP-Timestamp"
DELIVERY_HEADER = "X-DLP-Delivery"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-DLP-Signature` value: `sha256=` + hex HMAC of `"{timestamp}." + body`."""
    digest = hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSink(QueuedSink):
    """POST each alert to `url`, signed with `secret`; queued, retried, failures counted."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: bytes,
        timeout: float = 10.0,
        queue_size: int = 1000,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        super().__init__(queue_size=queue_size, retries=retries, backoff=backoff, max_backoff=max_backoff)
        self._url = url
        self._secret = secret
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": f"dlp/{__version__}", "Content-Type": "application/json"},
        )

    async def send(self, payload: Mapping[str, Any]) -> None:
        """One signed POST; 2xx is success."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        delivery = payload.get("delivery")
        timestamp = int(time.time())
        headers = {
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
            DELIVERY_HEADER: str(delivery) if delivery else "",
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(type(exc).__name__) from exc
        if 200 <= response.status_code < 300:
            return
        retryable = response.status_code == 429 or response.status_code >= 500
        raise AlertDeliveryError(f"HTTP {response.status_code}", retryable=retryable)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()
