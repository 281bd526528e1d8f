"""`dlp serve`: the SMTP relay, the HTTP API and `/metrics` in one process tree.

One asyncio loop in the main process runs the relay (aiosmtpd) and the API (uvicorn,
driven programmatically so this module, not uvicorn, owns the signals); both share one
`ScanPool` of worker processes and one store. Incidents go to the alert sinks; policy
files are watched and reloaded (also on SIGHUP); retention runs periodically.

Start: the scanner is built here too (while the workers build theirs), so a broken
detector, policy or key stops the service before it listens, with the loader's message.
When both listeners are up, one log line `{"event": "listening", "smtp": "HOST:PORT",
"http": "HOST:PORT", ...}` gives the bound addresses (port 0 lets the OS choose).

Stop (SIGTERM or SIGINT): both listeners stop accepting at once; messages and requests
in progress get `shutdown_grace_seconds` to finish; SMTP clients still connected after
that are answered 421 and disconnected (the MTA retries). Then alerts are flushed, the
workers stop and the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from dlp import __version__, metrics
from dlp.alerts import AlertDispatcher, sinks_from_settings
from dlp.api import create_app
from dlp.config import Settings, parse_listen
from dlp.errors import StoreError
from dlp.pipeline import Scanner, policy_folders
from dlp.policy import PolicySet
from dlp.policy.reload import PolicyReloader
from dlp.smtp.relay import Relay
from dlp.store import Store, open_store, run_retention
from dlp.workers import ScanPool

__all__ = ["Service", "serve"]

log = logging.getLogger("dlp.serve")

_ALERT_FLUSH_SECONDS = 5.0


class _Uvicorn(uvicorn.Server):
    """uvicorn's server without its own signal handling: `serve` decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class _Loaded:
    """What is loaded now, for the API; a policy reload swaps `policies`."""

    scanner: Scanner
    policies: PolicySet

    def policies_info(self) -> list[dict[str, Any]]:
        """The rules in force (`GET /v1/policies`, readiness)."""
        return [rule.to_dict() for rule in self.policies.rules]

    def detectors_info(self) -> list[dict[str, Any]]:
        """The detectors loaded (`GET /v1/detectors`)."""
        return [info.to_dict() for info in self.scanner.engine.detectors]


class Service:
    """The running service: `await start()`, the bound addresses, `await stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.smtp_address: str | None = None
        self.http_address: str | None = None
        self._store: Store | None = None
        self._pool: ScanPool | None = None
        self._relay: Relay | None = None
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._reloader: PolicyReloader | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._alerts = AlertDispatcher(sinks_from_settings(settings))

    async def start(self) -> None:
        """Load, open the store, start the workers and both listeners."""
        settings = self.settings
        folders = policy_folders(settings)
        initial = PolicySet.load(folders, internal_domains=settings.internal_domains)
        self._pool = pool = ScanPool(settings, policies=initial)
        built, warmed = await asyncio.gather(
            asyncio.to_thread(Scanner.from_settings, settings, initial),
            asyncio.to_thread(pool.warm_up),
            return_exceptions=True,
        )
        for outcome in (built, warmed):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(built, Scanner)
        scanner = built
        loaded = _Loaded(scanner, scanner.policies)
        metrics.initialise(tuple(info.id for info in scanner.engine.detectors))
        self._store = store = await asyncio.to_thread(open_store, settings)
        self._alerts.start()
        store.on_incident(self._alerts.on_incident)

        def swap(policies: PolicySet) -> None:
            loaded.policies = policies
            pool.reload(policies)
            loop = asyncio.get_running_loop()
            warming = loop.create_task(asyncio.to_thread(pool.warm_up))
            audit = loop.create_task(asyncio.to_thread(_audit_reload, store, policies))
            self._tasks = [task for task in self._tasks if not task.done()] + [warming, audit]

        self._reloader = PolicyReloader(
            folders, swap, internal_domains=settings.internal_domains, current=loaded.policies
        )
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, AttributeError):
            self._reloader.install_signal_handler(loop)
        self._tasks.append(loop.create_task(self._reloader.run(), name="policy-reload"))
        self._tasks.append(loop.create_task(run_retention(store, settings), name="retention"))
        if settings.smtp.enabled:
            self._relay = Relay(settings, pool, store)
            await self._relay.start()
            host, _ = parse_listen(settings.smtp.listen)
            self.smtp_address = _address(host, self._relay.port)
        if settings.http.enabled:
            await self._start_http(loaded, pool, store)
        log.info(
            "listening",
            extra={
                "smtp": self.smtp_address,
                "http": self.http_address,
                "version": __version__,
                "workers": settings.worker_count,
                "policy_version": loaded.policies.version,
                "detectors": len(scanner.engine.detectors),
                "state_dir": str(settings.state_dir),
            },
        )

    async def _start_http(self, loaded: _Loaded, pool: ScanPool, store: Store) -> None:
        settings = self.settings
        app = create_app(
            settings,
            pool,
            store,
            policies_info=loaded.policies_info,
            detectors_info=loaded.detectors_info,
        )
        host, port = parse_listen(settings.http.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections; without it
        # every response waits ~40 ms (Nagle against delayed ACK) between headers and body.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        config = uvicorn.Config(
            app,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
            server_header=False,
        )
        self._http = server = _Uvicorn(config)
        self._http_task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name="http")
        while not server.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("the HTTP server stopped during start")
            await asyncio.sleep(0.01)
        self.http_address = _address(host, sock.getsockname()[1])

    async def stop(self) -> None:
        """Drain both listeners within the grace period, then release everything."""
        grace = self.settings.shutdown_grace_seconds
        log.info("shutting down", extra={"grace_seconds": grace})
        draining: list[Awaitable[Any]] = []
        if self._relay is not None:
            draining.append(self._relay.stop(grace))
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            draining.append(self._http_task)
        await asyncio.gather(*draining, return_exceptions=True)
        if self._reloader is not None:
            self._reloader.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._alerts.stop(_ALERT_FLUSH_SECONDS)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)
        if self._store is not None:
            self._store.close()
        log.info("stopped")


def _audit_reload(store: Store, policies: PolicySet) -> None:
    """Record a policy reload in the audit log; a store outage costs the entry, not the
    reload."""
    try:
        store.append_audit("system", "policy.reload", policies.version, {"rules": len(policies.rules)})
    except StoreError as exc:
        log.warning("policy reload not audited", extra={"error": type(exc).__name__})


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(settings: Settings) -> None:
    """Run the service until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    service = Service(settings)
    try:
        await service.start()
        await stopping.wait()
    finally:
        await service.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
