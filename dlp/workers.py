"""Scanning off the event loop: a pool of worker processes, each with its own Scanner.

Channels (SMTP relay, HTTP API) are asyncio programs; scanning is CPU-bound. Each worker
builds its `Scanner` once from the settings and scans items handed to it; results come
back as frozen dataclasses. A deadline bounds every scan: past it the caller gets
`ScanTimeout` and the stuck worker is replaced, so one hostile item cannot hold a worker
for ever. Policy reload replaces the workers: scans in progress finish with the policy
set they started with.

Why not `concurrent.futures.ProcessPoolExecutor`: it moves every task through two helper
threads in the parent (a manager and a queue feeder), and those threads take the GIL
from the event loop several times per scan. With a few hundred 10-KB mails a second,
that cost the relay's event loop about 2.5 ms of CPU per message, more than the SMTP
work itself. Here each worker process owns `SLOTS` socket pairs (channels); a task of the
caller's event loop writes the pickled request and reads the pickled reply with that
loop's own `sock_sendall` / `sock_recv_into`, so the parent has no helper threads at all.
Two channels per process keep a worker busy while the event loop gets round to reading
its last reply. Workers run niced (`WORKER_NICENESS`) so the event loop is never
starved by a scan. The pool is not tied to one event loop (tests and the HTTP server use it
from several).

Small items (under `SMALL_ITEM_BYTES`: most mail) are scanned on at most all processes
but one, and never on a process that is scanning a large item; large items go to the
least busy process, one without small scans first. So a 25-MB attachment never holds up
the small mail queued behind it (with scans spread over every process, the next small
message often went to the slot behind it), and with many small messages the event loop,
then the busiest process of all, does not compete with a busy worker on every core.

Small items travel in batches. Each event loop queues them; a collector task waits for a
slot and sends everything queued by then (up to `BATCH_ITEMS`) as one request, and the
worker answers with one reply. A lone item is a batch of one, so an idle pool adds no
wait; under load, items pile up while the slots are busy and each round trip carries
several. The round trip, not the pickling, is what the event loop pays for: on the
2-core benchmark (20 SMTP sessions, 10-KB mail) a round trip per item cost the relay's
loop about 0.3 ms of CPU per message, a third of all its work. Callers wait only for
their own item's future: one that gives up (its deadline, a dropped client) leaves the
batch running, and the worker skips an item whose deadline passed while it waited.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import multiprocessing
import os
import pickle
import select
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

from dlp.config import Settings
from dlp.errors import ScanTimeout
from dlp.model import Item, ScanContext, ScanResult
from dlp.pipeline import Scanner
from dlp.policy import PolicySet

__all__ = ["SMALL_ITEM_BYTES", "WORKER_NICENESS", "ScanPool"]

_HEADER = struct.Struct("!Q")
_CONTEXT = multiprocessing.get_context("spawn")
_START_SECONDS = 300.0
_FIRST_READ = 16 * 1024
SLOTS = 2
BATCH_ITEMS = 16
"""At most this many small items go to a worker in one request (see the module docstring)."""
_KILL_GRACE_SECONDS = 1.0
"""How long past its last caller's deadline a batch may run before its worker is killed
(the callers have their own timeouts; this only frees a stuck worker)."""
SMALL_ITEM_BYTES = 256 * 1024
"""Items below this size scan in a few milliseconds (a 10-KB mail: about one)."""
WORKER_NICENESS = 10
"""Workers run at a lower scheduling priority than the channel's event loop: the loop
holds every session and hands out the work, so it gets the CPU first when it has
something to do; the workers take every cycle it leaves. On the 2-core benchmark
(relay, two workers, sink and load generator on two cores) this took scanning from 49%
to 60-69% of pass-through throughput, the loop no longer waiting behind a scan."""


@dataclass(eq=False)
class _Request:
    """One item to scan, and where its caller waits for (ok, result or exception)."""

    item: Item
    context: ScanContext
    max_seconds: float | None
    deadline: float
    """When the caller gives up, on the system-wide monotonic clock (`time.monotonic`)."""
    future: asyncio.Future[tuple[bool, object]]


@dataclass(eq=False)
class _Queue:
    """Small items of one event loop waiting for the next batch."""

    requests: collections.deque[_Request] = field(default_factory=collections.deque)
    collecting: bool = False
    """Whether a collector is waiting for a slot to send these."""


def _worker_main(
    channels: list[socket.socket], settings: Settings, policies: PolicySet | None, ready: Event
) -> None:
    """A worker process: build the scanner, then answer requests on its channels, one at
    a time, until the parent has closed every channel."""
    # Ctrl-C reaches the whole process group: the parent decides when workers stop
    # (after in-flight scans), so a worker must not die of SIGINT mid-scan.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    scanner = Scanner.from_settings(settings, policies=policies)
    ready.set()
    open_channels = list(channels)
    while open_channels:
        readable, _, _ = select.select(open_channels, [], [])
        for channel in readable:
            request = _receive(channel)
            if request is None:
                open_channels.remove(channel)
                channel.close()
                continue
            reply = pickle.dumps(
                [_scan_one(scanner, *entry) for entry in pickle.loads(request)],
                pickle.HIGHEST_PROTOCOL,
            )
            channel.sendall(_HEADER.pack(len(reply)) + reply)


def _scan_one(
    scanner: Scanner, item: Item, context: ScanContext, max_seconds: float | None, deadline: float
) -> tuple[bool, object]:
    """One request of a batch: (True, result) or (False, exception). A request whose
    caller has given up (`deadline`, on the system-wide monotonic clock, has passed while
    it waited behind others of its batch) is not scanned."""
    if time.monotonic() >= deadline:
        return False, ScanTimeout("the scan waited past its deadline")
    try:
        return True, scanner.scan(item, context, max_seconds)
    except Exception as exc:
        try:
            pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
        except Exception:
            return False, RuntimeError(type(exc).__name__)
        return False, exc


def _receive(channel: socket.socket) -> bytes | None:
    header = _read_exactly(channel, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    return _read_exactly(channel, size)


def _read_exactly(channel: socket.socket, size: int) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = channel.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buffer)


class _Process:
    """One worker process with `SLOTS` channels: while the parent reads one reply and
    hands over the next request, the worker is already scanning on another channel, so
    it never waits for the event loop."""

    def __init__(self, settings: Settings, policies: PolicySet | None, generation: int, serial: int) -> None:
        self.generation = generation
        self.serial = serial
        self.replaced = False
        self.active = 0
        self.small = 0
        self.large = 0
        pairs = [socket.socketpair() for _ in range(SLOTS)]
        self.ready = _CONTEXT.Event()
        self.process: BaseProcess = _CONTEXT.Process(
            target=_worker_main,
            args=([child for _, child in pairs], settings, policies, self.ready),
            daemon=True,
        )
        self.process.start()
        self.slots = []
        for parent, child in pairs:
            child.close()
            parent.setblocking(False)
            self.slots.append(_Worker(self, parent))

    def wait_ready(self) -> None:
        """Block until the worker has built its scanner; raise if it died instead."""
        deadline = time.monotonic() + _START_SECONDS
        while not self.ready.wait(0.05):
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise ScanTimeout(f"a scan worker did not start (exit code {self.process.exitcode})")

    def kill(self) -> None:
        """End the process now (a stuck or abandoned scan). Its channels stay open: a
        read pending on one of them then ends at end of file and its caller discards
        that channel, where closing it under the read would leave the read waiting for
        ever (and its slot busy until the batch's deadline)."""
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(5)


class _Worker:
    """One channel to a worker process: one request at a time."""

    def __init__(self, process: _Process, channel: socket.socket) -> None:
        self.process = process
        self.generation = process.generation
        self.channel = channel
        self.small = True
        self.batch: list[_Request] = []

    def awaited(self) -> bool:
        """Whether a caller still waits for the batch this slot is running."""
        return any(not r.future.done() for r in self.batch)

    async def call(self, requests: list[_Request]) -> list[tuple[bool, object]]:
        """Send a batch of requests and wait for its replies on the running loop."""
        loop = asyncio.get_running_loop()
        payload = pickle.dumps(
            [(r.item, r.context, r.max_seconds, r.deadline) for r in requests], pickle.HIGHEST_PROTOCOL
        )
        await loop.sock_sendall(self.channel, _HEADER.pack(len(payload)) + payload)
        del payload
        replies: list[tuple[bool, object]] = pickle.loads(await self._reply(loop))
        return replies

    async def _reply(self, loop: asyncio.AbstractEventLoop) -> memoryview:
        """The reply's pickle. The first read asks for `_FIRST_READ` bytes, so a usual
        reply (length and pickle) arrives in one wake-up of the loop instead of two; the
        worker sends nothing else on this channel until the next request, so a read can
        never take bytes of another reply."""
        buffer = bytearray(_FIRST_READ)
        got = 0
        while got < _HEADER.size:
            got += await self._recv_into(loop, memoryview(buffer)[got:])
        (size,) = _HEADER.unpack_from(buffer)
        end = _HEADER.size + size
        if end > len(buffer):
            buffer.extend(bytes(end - len(buffer)))
        while got < end:
            got += await self._recv_into(loop, memoryview(buffer)[got:end])
        return memoryview(buffer)[_HEADER.size : end]

    async def _recv_into(self, loop: asyncio.AbstractEventLoop, view: memoryview) -> int:
        n = await loop.sock_recv_into(self.channel, view)
        if n == 0:
            raise ScanTimeout("a scan worker died")
        return n

    def stop(self) -> None:
        """Close the channel: the worker exits after its current request once every
        channel of its process is closed."""
        with contextlib.suppress(OSError):
            self.channel.close()


class ScanPool:
    """Worker processes that scan items; `await pool.scan(item, context)` from async code."""

    def __init__(
        self, settings: Settings, workers: int | None = None, policies: PolicySet | None = None
    ) -> None:
        self._settings = settings
        self._size = workers or settings.worker_count
        self._policies = policies
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._generation = 0
        self._closed = False
        self._busy: set[_Worker] = set()
        self._waiters: collections.deque[tuple[asyncio.Future[_Worker], bool]] = collections.deque()
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._serials = itertools.count()
        self._idle: list[_Worker] = [slot for _ in range(self._size) for slot in self._spawn()]

    def _spawn(self) -> list[_Worker]:
        return _Process(self._settings, self._policies, self._generation, next(self._serials)).slots

    async def scan(
        self,
        item: Item,
        context: ScanContext,
        timeout: float | None = None,
        max_seconds: float | None = None,
    ) -> ScanResult:
        """Scan in a worker; raise `ScanTimeout` past `timeout` seconds (default: the
        extraction time limit plus a margin for decoding and detection), counting any
        wait for a free worker and for the items ahead in its batch. `max_seconds`
        tightens the scan's own time limit (see `Scanner.scan`), so the result comes back
        flagged before `timeout` runs out."""
        limit = timeout if timeout is not None else self._settings.limits.max_seconds + 5.0
        loop = asyncio.get_running_loop()
        request = _Request(item, context, max_seconds, time.monotonic() + limit, loop.create_future())
        try:
            async with asyncio.timeout(limit):
                if item.size < SMALL_ITEM_BYTES:
                    self._enqueue(loop, request)
                else:
                    self._start(loop, self._dispatch([request], small=False))
                ok, value = await request.future
        except TimeoutError as exc:
            raise ScanTimeout(f"scan did not finish within {limit:.0f} s") from exc
        finally:
            request.future.cancel()
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        assert isinstance(value, ScanResult)
        return value

    def _enqueue(self, loop: asyncio.AbstractEventLoop, request: _Request) -> None:
        """Queue a small item for the next batch of this event loop; start a collector
        when none is waiting for a slot."""
        queue = self._queues.setdefault(loop, _Queue())
        queue.requests.append(request)
        if not queue.collecting:
            queue.collecting = True
            self._start(loop, self._collect(loop, queue))

    async def _collect(self, loop: asyncio.AbstractEventLoop, queue: _Queue) -> None:
        """Wait for a slot for small items, then send everything queued by then (up to
        `BATCH_ITEMS`) as one batch; a new collector takes what is left or comes later."""
        try:
            worker = await self._acquire(small=True)
        except BaseException as exc:
            queue.collecting = False
            _settle_all(list(queue.requests), exc)
            queue.requests.clear()
            if self._queues.get(loop) is queue:
                del self._queues[loop]
            if not isinstance(exc, Exception):
                raise
            return
        batch: list[_Request] = []
        while queue.requests and len(batch) < BATCH_ITEMS:
            request = queue.requests.popleft()
            if not request.future.done():
                batch.append(request)
        queue.collecting = bool(queue.requests)
        if queue.collecting:
            self._start(loop, self._collect(loop, queue))
        elif self._queues.get(loop) is queue:
            del self._queues[loop]
        await self._run(worker, batch)

    async def _dispatch(self, batch: list[_Request], small: bool) -> None:
        """Wait for a slot, then run `batch` on it (a large item goes alone)."""
        try:
            worker = await self._acquire(small)
        except BaseException as exc:
            _settle_all(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        await self._run(worker, batch)

    async def _run(self, worker: _Worker, batch: list[_Request]) -> None:
        """Send `batch` on `worker` and hand each reply to its caller. A caller that gave
        up does not stop the batch; the worker is killed (and replaced) only when it dies
        or is still busy `_KILL_GRACE_SECONDS` after the last caller's deadline."""
        worker.batch = batch
        if not worker.awaited():
            worker.batch = []
            self._release(worker)
            return
        last = max(r.deadline for r in batch) - time.monotonic()
        try:
            async with asyncio.timeout(last + _KILL_GRACE_SECONDS):
                replies = await worker.call(batch)
        except BaseException as exc:
            # The channel is mid-request (stuck, worker died, loop closing): this worker
            # cannot be trusted with another request.
            self._discard(worker)
            _settle_all(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            worker.batch = []
        self._release(worker)
        for request, reply in zip(batch, replies, strict=True):
            if not request.future.done():
                request.future.set_result(reply)

    def _start(self, loop: asyncio.AbstractEventLoop, work: Coroutine[object, object, None]) -> None:
        """Run a collector or dispatcher as a task of `loop`, referenced until it ends."""
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _acquire(self, small: bool) -> _Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise ScanTimeout("the scan pool is closed")
            index = self._pick(small)
            if index is not None:
                worker = self._idle.pop(index)
                self._take(worker, small)
                return worker
            waiter: asyncio.Future[_Worker] = loop.create_future()
            self._waiters.append((waiter, small))
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((waiter, small))
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())
            raise

    def _pick(self, small: bool) -> int | None:
        """The index in `_idle` of the slot for a new scan, or None when it must wait (see
        the module docstring): a small item may not start on a process scanning a large
        one, nor on a process without small scans once all but one process have some; a
        large item takes the least busy process, one without small scans first. Ties go
        to the oldest process for small items and the newest for large ones, so batches
        of small items keep to the same processes even when none is in flight."""
        if small:
            hosting = {w.process for w in self._busy if w.small and w.generation == self._generation}
            budget = max(1, self._size - 1)
        best: int | None = None
        best_key = (True, 0, 0)
        for index, slot in enumerate(self._idle):
            process = slot.process
            if small and (process.large or (not process.small and len(hosting) >= budget)):
                continue
            key = (
                process.small > 0 and not small,
                process.active,
                process.serial if small else -process.serial,
            )
            if best is None or key < best_key:
                best, best_key = index, key
        return best

    def _take(self, worker: _Worker, small: bool) -> None:
        worker.small = small
        process = worker.process
        process.active += 1
        if small:
            process.small += 1
        else:
            process.large += 1
        self._busy.add(worker)

    def _untake(self, worker: _Worker) -> None:
        process = worker.process
        process.active -= 1
        if worker.small:
            process.small -= 1
        else:
            process.large -= 1
        self._busy.discard(worker)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            self._untake(worker)
            self._shelve(worker)

    def _shelve(self, worker: _Worker) -> None:
        """Put a free slot back for waiting and later scans, or close it if its pool is
        closed or its process is of an older generation. Called with the lock held."""
        if self._closed or worker.generation != self._generation:
            worker.stop()
        else:
            self._idle.append(worker)
            self._serve_waiters()
        self._released.notify_all()

    def _serve_waiters(self) -> None:
        """Start every waiting scan that may start now, in arrival order (a small item that
        must wait does not hold up a large one behind it). Called with the lock held."""
        passed: list[tuple[asyncio.Future[_Worker], bool]] = []
        blocked: set[bool] = set()
        while self._waiters and self._idle and len(blocked) < 2:
            waiter, small = self._waiters.popleft()
            if waiter.done():
                continue
            index = None if small in blocked else self._pick(small)
            if index is None:
                # Every later waiter of the same size must wait too.
                blocked.add(small)
                passed.append((waiter, small))
                continue
            worker = self._idle.pop(index)
            self._take(worker, small)
            if _on_running_loop(waiter):
                # Same loop and thread: nothing can settle the waiter in between,
                # and set_result spares the loop a wake-up through its self-pipe.
                waiter.set_result(worker)
            elif not _call_soon(waiter, self._hand_over, waiter, worker):
                self._untake(worker)
                self._idle.append(worker)
        self._waiters.extendleft(reversed(passed))

    def _hand_over(self, waiter: asyncio.Future[_Worker], worker: _Worker) -> None:
        if waiter.done():
            self._release(worker)
        else:
            waiter.set_result(worker)

    def _discard(self, worker: _Worker) -> None:
        """Kill the process of a slot that failed mid-request and replace it (once). Its
        idle channels close now; a busy one is discarded by the task reading it."""
        dead = worker.process
        dead.kill()
        worker.stop()
        with self._lock:
            self._untake(worker)
            for slot in self._idle:
                if slot.process is dead:
                    slot.stop()
            self._idle = [slot for slot in self._idle if slot.process is not dead]
            # A slot less in use can let a waiting scan start (small items may only
            # use processes other than the dead one once it has none).
            self._serve_waiters()
            self._released.notify_all()
            replace = not self._closed and dead.generation == self._generation and not dead.replaced
            dead.replaced = True
        if replace:
            for slot in self._spawn():
                self._add(slot)

    def _add(self, slot: _Worker) -> None:
        with self._lock:
            self._shelve(slot)

    def reload(self, policies: PolicySet) -> None:
        """Use a new, already validated policy set for scans started from now on. Workers
        receive the set itself, never the folders: a file broken after validation cannot
        reach a worker that starts later."""
        with self._lock:
            self._policies = policies
            self._generation += 1
            old, self._idle = self._idle, []
        for worker in old:
            worker.stop()
        for _ in range(self._size):
            for slot in self._spawn():
                self._add(slot)

    def warm_up(self) -> None:
        """Start every worker now (building engines) instead of on the first scan."""
        with self._lock:
            processes = {w.process for w in (*self._idle, *self._busy) if w.generation == self._generation}
        for process in processes:
            process.wait_ready()

    def close(self) -> None:
        """Stop the workers after the scans someone still waits for; a batch whose
        callers have all given up is not waited for (its worker is killed)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            waiters, self._waiters = list(self._waiters), collections.deque()
        for waiter, _ in waiters:
            _call_soon(waiter, _fail_closed, waiter)
        for worker in idle:
            worker.stop()
        with self._lock:
            self._released.wait_for(
                lambda: not any(w.awaited() for w in self._busy), self._settings.limits.max_seconds + 5.0
            )
            leftover = {w.process for w in self._busy}
        for process in leftover:
            process.kill()
        for process in {w.process for w in idle} - leftover:
            process.process.join(5)
            if process.process.is_alive():
                process.kill()


def _settle_all(batch: list[_Request], error: BaseException) -> None:
    """Answer every caller of `batch` still waiting with a `ScanTimeout` that names what
    went wrong: a worker that died or got stuck, a closed pool, a loop that is closing."""
    if isinstance(error, ScanTimeout):
        failure = error
    elif isinstance(error, TimeoutError):
        failure = ScanTimeout("a scan worker did not finish in time")
    elif isinstance(error, OSError):
        failure = ScanTimeout("a scan worker died")
    else:
        failure = ScanTimeout(f"the scan was abandoned ({type(error).__name__})")
    for request in batch:
        if not request.future.done():
            request.future.set_exception(failure)


def _fail_closed(waiter: asyncio.Future[_Worker]) -> None:
    if not waiter.done():
        waiter.set_exception(ScanTimeout("the scan pool is closed"))


def _on_running_loop(waiter: asyncio.Future[_Worker]) -> bool:
    """Whether `waiter` belongs to the event loop running in this thread."""
    try:
        return asyncio.get_running_loop() is waiter.get_loop()
    except RuntimeError:
        return False


def _call_soon(waiter: asyncio.Future[_Worker], callback: Callable[..., None], *args: object) -> bool:
    """Run `callback` on the waiter's loop (from any thread); False if that loop is closed."""
    try:
        waiter.get_loop().call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return False
    return True
