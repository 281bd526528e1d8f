"""Safe policy reload: on SIGHUP or when a policy file changes, validate the new set as
a whole and hand it over, or keep the old one running.

The reloader polls the folders' `*.yaml` files (name, mtime, size) every two seconds;
no extra dependency is needed for that. An invalid set is logged with every error and
counted as `dlp_policy_reloads_total{result="failure"}`; the running set stays. A valid
set goes to the callback, which swaps it in atomically (the channel owns that); a scan in
progress keeps the immutable `PolicySet` it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from dlp.metrics import POLICY_RELOADS
from dlp.policy.policyset import PolicySet, check_folders, policy_files

__all__ = ["POLL_SECONDS", "PolicyReloader"]

POLL_SECONDS = 2.0
_log = logging.getLogger("dlp.policy")

Snapshot = tuple[tuple[str, int, int], ...]


class PolicyReloader:
    """Watches policy folders and reloads on change or on request (SIGHUP)."""

    def __init__(
        self,
        folders: Sequence[Path],
        on_reload: Callable[[PolicySet], None],
        *,
        internal_domains: tuple[str, ...] = (),
        current: PolicySet | None = None,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.folders = [Path(f) for f in folders]
        self.on_reload = on_reload
        self.internal_domains = internal_domains
        self.interval = interval
        self.version = current.version if current is not None else None
        self._snapshot = self.snapshot()
        self._wake: asyncio.Event | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._forced = False
        self._stopped = False

    def snapshot(self) -> Snapshot:
        """Name, modification time and size of every policy file now."""
        out = []
        for path in policy_files([f for f in self.folders if f.is_dir()]):
            try:
                stat = path.stat()
            except OSError:
                continue
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(out)

    def reload(self, force: bool = False) -> PolicySet | None:
        """Validate the folders now; hand a valid new set to the callback.

        Without `force`, a set whose content hash equals the running one is not handed
        over. Returns the new set, or None when nothing was swapped.
        """
        policies = self._validated(force)
        return self._hand_over(policies) if policies is not None else None

    def poll(self) -> PolicySet | None:
        """Reload if a file was added, removed or changed since the last look."""
        policies = self._changed()
        return self._hand_over(policies) if policies is not None else None

    def _changed(self) -> PolicySet | None:
        if self.snapshot() == self._snapshot:
            return None
        return self._validated(force=False)

    def _validated(self, force: bool) -> PolicySet | None:
        """The new set if it is valid and (unless forced) different; logs and counts failures."""
        self._snapshot = self.snapshot()
        policies, errors = check_folders(self.folders, self.internal_domains)
        if policies is None:
            POLICY_RELOADS.labels("failure").inc()
            _log.error(
                "policy reload failed, keeping version %s: %s",
                self.version or "-",
                "; ".join(str(e) for e in errors),
            )
            return None
        if not force and policies.version == self.version:
            return None
        return policies

    def _hand_over(self, policies: PolicySet) -> PolicySet:
        self.on_reload(policies)
        POLICY_RELOADS.labels("success").inc()
        rules = len(policies.rules)
        _log.info("policy reloaded: version %s -> %s, %d rules", self.version or "-", policies.version, rules)
        self.version = policies.version
        return policies

    def request_reload(self) -> None:
        """Ask the running loop to reload at once (what SIGHUP does)."""
        self._forced = True
        if self._wake is not None:
            self._wake.set()

    def install_signal_handler(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload on SIGHUP (where the platform has it); `stop` removes the handler."""
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self._signal_loop = loop

    def stop(self) -> None:
        """End `run` at its next wake-up and stop listening for SIGHUP."""
        self._stopped = True
        if self._signal_loop is not None:
            self._signal_loop.remove_signal_handler(signal.SIGHUP)
            self._signal_loop = None
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Poll every `interval` seconds until `stop`. Reading and validating run in a
        thread; the callback runs on the event loop."""
        self._wake = asyncio.Event()
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            if self._stopped:
                break
            if self._forced:
                self._forced = False
                policies = await asyncio.to_thread(self._validated, True)
            else:
                policies = await asyncio.to_thread(self._changed)
            if policies is not None:
                self._hand_over(policies)
