"""Delivery to a destination that may be down: quick retries, a circuit breaker, a spool.

The one implementation behind the Parquet sink and the HTTP sink (and the OTLP sink,
which is an HTTP sink). A failed delivery is retried a few times with a doubling
backoff; when that fails too, the breaker opens and the sink stops trying for a while
(doubling while the destination stays down), keeping what it holds in a bounded local
spool instead. Spooled files are delivered again oldest first once the destination
answers. Stdlib only: the HTTP sink uses it without loading pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from span_tree._atomic import TEMP_PREFIX, write_file_atomic

# A claimed spool file whose process died is taken back after this long.
STALE_CLAIM_SECONDS = 300.0
_CLAIM_SUFFIX = ".sending"


class Outcome(NamedTuple):
    """What one delivery attempt came to.

    Attributes:
        done: delivered (or refused for good: sending it again cannot help).
        again: worth a quick retry; False after a hang, or when the peer said when.
        pause: the peer asked for at least this many seconds of quiet (``Retry-After``).
    """

    done: bool
    again: bool = True
    pause: float | None = None


DONE = Outcome(done=True)
RETRY = Outcome(done=False)


def give_up(pause: float | None = None) -> Outcome:
    """An attempt after which no quick retry should follow."""
    return Outcome(done=False, again=False, pause=pause)


class Retry:
    """Quick retries with a doubling backoff, then a circuit breaker.

    Args:
        attempts: tries per ``run`` (the first one included).
        backoff: seconds before the first quick retry; doubles per further retry.
        down_delay: how long the breaker stays open after a failed ``run``; doubles
            per further failed ``run`` while no delivery succeeds.
        max_down_delay: the longest the breaker stays open (also caps a quick retry's
            wait and a ``Retry-After``).
        wait: how to wait between quick retries (an Event's ``wait`` lets a shutdown
            cut it short).
    """

    def __init__(
        self,
        *,
        attempts: int,
        backoff: float,
        down_delay: float,
        max_down_delay: float,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.down_delay = down_delay
        self.max_down_delay = max_down_delay
        self._wait = wait
        self.retries = 0  # quick retries made so far
        self.open_until = 0.0  # monotonic time before which nothing is tried
        self._next_down_delay = down_delay

    def is_open(self) -> bool:
        """True while the destination counts as down (nothing is tried)."""
        return time.monotonic() < self.open_until

    def run(
        self,
        attempt: Callable[[float | None], Outcome],
        *,
        limit: Callable[[], float | None] = lambda: None,
    ) -> bool:
        """Call ``attempt(deadline)`` until it is done, the tries are used, or time is up.

        Args:
            attempt: one delivery; given the monotonic deadline it must keep to (or None).
            limit: the deadline now (read before each try: an exit may bring it closer).

        Returns:
            True when done (the breaker closes); False when the breaker is open or
            opens now (the caller spools).
        """
        if self.is_open():
            return False
        delay = self.backoff
        pause = None
        for number in range(self.attempts):
            deadline = limit()
            if number:
                if deadline is not None and time.monotonic() + delay >= deadline:
                    break
                self.retries += 1
                self._wait(delay)
                delay = min(delay * 2, self.max_down_delay)
            outcome = attempt(deadline)
            if outcome.done:
                self.close()
                return True
            if not outcome.again:
                pause = outcome.pause
                break
        self.open(at_least=pause)
        return False

    def open(self, *, at_least: float | None = None) -> None:
        """The destination is down: try again after the current down delay (or longer)."""
        pause = self._next_down_delay
        if at_least is not None:
            pause = min(max(at_least, pause), self.max_down_delay)
        self.open_until = time.monotonic() + pause
        self._next_down_delay = min(self._next_down_delay * 2, self.max_down_delay)

    def close(self) -> None:
        """The destination answered: no pause, and the next failure starts short again."""
        self.open_until = 0.0
        self._next_down_delay = self.down_delay


class SpoolFull(OSError):
    """The spool has no room for a file within its size limit."""


class Spool:
    """A bounded local directory of files waiting for their destination.

    Files keep the relative names the sink gives them (the Parquet sink uses the store's
    own layout, so a replay puts each at the same path). A file being delivered is
    claimed by a rename, so two processes sharing the spool never send one file at once;
    a claim left by a process that died is taken back after ``STALE_CLAIM_SECONDS``.

    Args:
        directory: the spool directory (created on first use).
        suffix: how the names of spooled files end (other files are not the spool's).
        max_bytes: the spool never grows beyond this; files that do not fit are refused.
    """

    def __init__(self, directory: str, *, suffix: str, max_bytes: int) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.suffix = suffix
        self.max_bytes = max_bytes

    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` under the relative ``name`` (``/``-separated).

        Raises:
            SpoolFull: it does not fit within ``max_bytes``.
            OSError: the spool cannot be written.
        """
        if self.size() + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.directory} is full")
        write_file_atomic(os.path.join(self.directory, *name.split("/")), data)

    def pending(self) -> list[str]:
        """Relative names of the spooled files, oldest (by file name) first."""
        found: list[str] = []
        now = time.time()
        for folder, _, names in os.walk(self.directory):
            for name in names:
                path = os.path.join(folder, name)
                if name.endswith(_CLAIM_SUFFIX):
                    path = _reclaim_if_stale(path, now) or ""
                    name = os.path.basename(path)
                if name.endswith(self.suffix) and not name.startswith(TEMP_PREFIX):
                    found.append(os.path.relpath(path, self.directory).replace(os.sep, "/"))
        return sorted(found, key=lambda relative: relative.rsplit("/", 1)[-1])

    def size(self) -> int:
        """Bytes held by the spool."""
        total = 0
        for folder, _, names in os.walk(self.directory):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(folder, name))
        return total

    def replay(
        self,
        send: Callable[[str, bytes], bool],
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Hand spooled files to ``send(name, data)`` oldest first; each sent one is removed.

        Stops at the first file ``send`` does not take (returns False or raises; the
        error propagates) and at ``should_stop()``, checked before each file. Files
        already sent stay sent.

        Returns:
            True when the spool is empty afterwards.
        """
        for relative in self.pending():
            if should_stop():
                return False
            path = os.path.join(self.directory, *relative.split("/"))
            claimed = f"{path}.{os.getpid()}{_CLAIM_SUFFIX}"
            try:
                os.replace(path, claimed)
                # A rename keeps the spooling time; the claim's own age must decide when
                # another process takes it back (else an old file is sent twice).
                os.utime(claimed)
                with open(claimed, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue  # another process took it
            try:
                sent = send(relative, data)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.replace(claimed, path)
                raise
            if not sent:
                with contextlib.suppress(OSError):
                    os.replace(claimed, path)
                return False
            with contextlib.suppress(OSError):
                os.remove(claimed)
        return not self.pending()


def _reclaim_if_stale(claimed: str, now: float) -> str | None:
    """Give a claim older than ``STALE_CLAIM_SECONDS`` back; return the file's path then."""
    # "<name>.<pid>.sending" -> "<name>"
    original = claimed[: -len(_CLAIM_SUFFIX)].rsplit(".", 1)[0]
    try:
        if now - os.path.getmtime(claimed) <= STALE_CLAIM_SECONDS:
            return None
        os.replace(claimed, original)
    except OSError:
        return None
    return original


class _Call:
    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.abandoned = False


class BoundedCaller:
    """Runs calls one at a time on a helper thread, so the caller can stop waiting.

    A destination that hangs (an unreachable endpoint, a stuck mount) cannot hold up
    the sink's flushes or the exit: the caller gives up and spools. The thread is
    started on first use and reused; one left stuck in a call its caller gave up on
    ends after that call, and the next call gets a fresh thread.

    Args:
        name: the helper thread's name.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[_Call] | None = None
        self._lock = threading.Lock()

    def call(self, action: Callable[[], object], *, give_up: Callable[[], bool]) -> None:
        """Run ``action`` on the helper thread; wait for it until ``give_up()`` says so.

        Raises:
            TimeoutError: ``give_up()`` turned true first (the call may still finish).
            Exception: what ``action`` raised.
        """
        call = _Call(action)
        with self._lock:
            if self._calls is None:
                self._calls = queue.SimpleQueue()
                threading.Thread(
                    target=_serve, args=(self._calls,), name=self._name, daemon=True
                ).start()
            calls = self._calls
        calls.put(call)
        # Waited in short steps: ``give_up`` may turn true meanwhile (an exit deadline).
        while not call.done.wait(0.05):
            if give_up():
                call.abandoned = True
                with self._lock:
                    if self._calls is calls:
                        self._calls = None  # that thread may be stuck: the next call starts anew
                raise TimeoutError("the destination took too long or the exit came")
        if call.error is not None:
            raise call.error

    def reset_after_fork(self) -> None:
        """In a forked child: the helper thread did not survive, start afresh on next use."""
        self._calls = None
        self._lock = threading.Lock()


def _serve(calls: queue.SimpleQueue[_Call]) -> None:
    while True:
        call = calls.get()
        if not call.abandoned:
            try:
                call.action()
            except BaseException as error:  # handed to the waiting thread
                call.error = error
        call.done.set()
        if call.abandoned:
            return  # the caller gave up on this thread and uses another one now
