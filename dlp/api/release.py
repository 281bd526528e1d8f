"""Releasing a quarantined item: claim it once, deliver it as originally addressed.

Mail goes to the configured next hop with its original envelope (sender, recipients);
an item without recipients (an HTTP upload) is released to its caller, with nothing to
deliver. The bytes go out through the relay's header rewrite: inbound `X-DLP-*` fields
(a sender's forged verdict) are dropped and, when `smtp.add_headers` is on,
`X-DLP-Verdict: released` is added, so a next hop can trust our fields. The claim in
the store makes a second release of the same item impossible, even from two reviewers
at once; a failed delivery returns the item to `held` with the outcome recorded, so it
can be tried again. Mail that needs SMTPUTF8 (a UTF-8 address or header) is sent with
it; a next hop without it gives the permanent outcome `554 5.6.7` (RFC 6531).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dlp.config import Settings
from dlp.errors import DeliveryError, PermanentDeliveryError
from dlp.smtp.headers import rewrite_headers
from dlp.smtp.nexthop import deliver, needs_smtputf8, next_hop_from_settings
from dlp.store import Store

__all__ = ["RELEASED_VERDICT", "ReleaseOutcome", "release_item"]

RELEASED_VERDICT = "released"


@dataclass(frozen=True)
class ReleaseOutcome:
    """Whether the release went through, and what happened, in one line."""

    ok: bool
    outcome: str


async def release_item(store: Store, settings: Settings, item_id: str, actor: str) -> ReleaseOutcome:
    """Claim, deliver and record the release of one item (raises `Conflict`, `NotFound`)."""
    ticket = await asyncio.to_thread(store.claim_release, item_id, actor)
    try:
        if ticket.recipients:
            stored = await asyncio.to_thread(store.read_quarantine_bytes, item_id)
            added = [("X-DLP-Verdict", RELEASED_VERDICT)] if settings.smtp.add_headers else []
            data = rewrite_headers(stored, added)
            hop = next_hop_from_settings(settings)
            utf8 = needs_smtputf8(ticket.sender or "", ticket.recipients, data)
            await deliver(
                hop,
                ticket.sender or "",
                ticket.recipients,
                data,
                timeout=settings.smtp.next_hop_timeout_seconds,
                mail_options=["SMTPUTF8"] if utf8 else [],
            )
            result = ReleaseOutcome(True, f"delivered to {hop} for {len(ticket.recipients)} recipient(s)")
        else:
            result = ReleaseOutcome(True, "released to the caller (no mail recipients to deliver to)")
    except DeliveryError as exc:
        kind = "permanent" if isinstance(exc, PermanentDeliveryError) else "temporary"
        result = ReleaseOutcome(False, f"{kind} delivery failure: {exc}")
    except Exception as exc:
        await asyncio.to_thread(store.finish_release, ticket, f"internal error: {type(exc).__name__}", False)
        raise
    await asyncio.to_thread(store.finish_release, ticket, result.outcome, result.ok)
    return result
