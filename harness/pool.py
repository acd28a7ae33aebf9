"""The launcher's side of local runs through the fork server (``harness/forkserver.py``).

``Pool`` starts the server, sends it runs and follows them with the time limits and
requeues of submitit's local executor: USR2 ``SIGNAL_DELAY_S`` before a run's
``resources.timeout_min`` (it stops at its next step boundary, saves its checkpoint and
exits), SIGKILL at the limit if it has not ended; a run that stopped on USR2 starts
again from its checkpoint, until ``max_requeues`` time-outs have been used (the last one
records the failure). Each run writes its output to ``<folder>/<run id>.out`` and
``.err`` (appended to by every start), the server its own to ``forkserver.log``.
"""
from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from harness.forkserver import REQUEUE_PREEMPTED, REQUEUE_TIMED_OUT, THREAD_VARIABLES

SIGNAL_DELAY_S = 30  # USR2 this long before the time limit (submitit's local executor's)
SIGNAL_HINTS = {signal.SIGKILL: "out of memory, or killed by hand", signal.SIGSEGV: "segmentation fault",
                signal.SIGABRT: "aborted", signal.SIGBUS: "bus error"}


class PoolError(Exception):
    """The fork server could not start, or died."""


@dataclass(eq=False)
class PoolRun:
    key: int
    run_id: str
    stdout: Path
    stderr: Path
    request: dict = field(repr=False)  # job, cpus, limit_s, requeues_left
    pool: Pool = field(repr=False)
    pid: int | None = None  # of its current start
    started: float | None = None  # time.monotonic() of its current start
    signalled: bool = False  # USR2 sent for this start
    killed: bool = False  # SIGKILLed at its time limit
    status: int | None = None  # wait status, once it has ended for good
    starts: int = 0

    def done(self) -> bool:
        return self.status is not None

    def terminate(self) -> bool:
        self.pool.signal(self, signal.SIGTERM)
        return True

    def kill(self) -> None:
        self.pool.signal(self, signal.SIGKILL)

    def crash(self) -> str | None:
        """Why it ended without a record (its exit), or None when it exited normally."""
        code = os.waitstatus_to_exitcode(self.status)
        if code == 0:
            return None
        if self.killed:
            return f"killed at its time limit ({self.request['limit_s'] / 60:g} min): it did not stop within " \
                   f"{SIGNAL_DELAY_S} s of the checkpoint signal; log: {self.stderr}"
        if code < 0:
            name = signal.Signals(-code).name
            hint = SIGNAL_HINTS.get(-code)
            return f"killed by {name}" + (f" ({hint})" if hint else "") + f"; log: {self.stderr}"
        last = last_line(self.stderr)
        return f"exited with code {code}" + (f": {last}" if last else "") + f"; log: {self.stderr}"


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


@contextmanager
def sigint_ignored():
    """While the server starts: SIGINT ignored, which it keeps across exec, so a Ctrl-C while
    it imports torch is the launcher's alone."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: no Ctrl-C comes here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def signals_held():
    """SIGINT and SIGTERM wait while a message is read or written: the KeyboardInterrupt they
    raise here must not leave half a message on the socket."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class Pool:
    def __init__(self, folder: Path, max_requeues: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.max_requeues = folder, max_requeues
        self.log = folder / "forkserver.log"
        self.runs: dict[int, PoolRun] = {}
        self.stopping = False
        ours, theirs = socket.socketpair()
        env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}  # no thread pool in the server
        with open(self.log, "ab") as log, sigint_ignored():
            self.process = subprocess.Popen([sys.executable, "-m", "harness.forkserver", str(theirs.fileno())],
                                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log, env=env)
        theirs.close()
        self.conn = Connection(ours.detach())
        try:
            _, self.threads, _ = self.conn.recv()  # ("ready", threads, None) once torch is imported
        except (EOFError, OSError):
            raise PoolError(f"the fork server did not start: {self.last_words()}") from None

    def last_words(self) -> str:
        code = self.process.wait()
        last = last_line(self.log)
        return f"exit code {code}" + (f", {last}" if last else "") + f" (log: {self.log})"

    def start(self, run_id: str, job, cpus: int, timeout_min: float) -> PoolRun:
        key = len(self.runs)
        run = PoolRun(key, run_id, self.folder / f"{run_id}.out", self.folder / f"{run_id}.err",
                      {"job": job, "cpus": cpus, "limit_s": timeout_min * 60, "requeues_left": self.max_requeues}, self)
        self.runs[key] = run
        self._send(run)
        return run

    def _send(self, run: PoolRun) -> None:
        run.starts += 1
        run.pid, run.started, run.signalled = None, None, False
        payload = pickle.dumps(run.request, protocol=pickle.HIGHEST_PROTOCOL)
        with signals_held():
            self.conn.send(("run", run.key, (str(run.stdout), str(run.stderr), payload)))

    def signal(self, run: PoolRun | None, signum: int) -> None:
        """``signum`` to a run's process (None: to every run's), if it still runs."""
        try:
            with signals_held():
                self.conn.send(("signal", None if run is None else run.key, signum))
        except OSError:
            pass  # the server is gone; wait() says so

    def stop(self) -> None:
        """No requeue from now on: every run that ends has ended for good."""
        self.stopping = True

    def wait(self, timeout: float) -> list[PoolRun]:
        """Follow the runs for at most ``timeout`` seconds; returns those that ended for
        good (at once when some have). Raises PoolError when the server died."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._enforce_limits(now)
            wait = min(deadline - now, self._next_limit(now))
            try:
                ready = self.conn.poll(max(0.0, wait))  # Ctrl-C interrupts the waiting
                ended = []
                with signals_held():
                    while ready:
                        ended += self._handle(self.conn.recv())
                        ready = self.conn.poll(0)
            except (EOFError, OSError):
                raise PoolError(f"the fork server died: {self.last_words()}") from None
            if ended or time.monotonic() >= deadline:
                return ended

    def _handle(self, message: tuple) -> list[PoolRun]:
        kind, key, value = message
        run = self.runs[key]
        if kind == "started":
            run.pid, run.started = value, time.monotonic()
            return []
        code = os.waitstatus_to_exitcode(value)
        if code in (REQUEUE_TIMED_OUT, REQUEUE_PREEMPTED) and not self.stopping:
            run.request["requeues_left"] -= code == REQUEUE_TIMED_OUT
            self._send(run)
            return []
        run.status = value
        return [run]

    def _live(self):
        return (run for run in self.runs.values() if run.status is None and run.started is not None)

    def _enforce_limits(self, now: float) -> None:
        for run in self._live():
            elapsed, limit = now - run.started, run.request["limit_s"]
            if not run.signalled and elapsed >= limit - SIGNAL_DELAY_S:
                run.signalled = True
                self.signal(run, signal.SIGUSR2)
            if not run.killed and elapsed >= limit:
                run.killed = True
                self.signal(run, signal.SIGKILL)

    def _next_limit(self, now: float) -> float:
        """Seconds until the next time-limit signal is due."""
        due = [run.started + run.request["limit_s"] - (0 if run.signalled else SIGNAL_DELAY_S) - now
               for run in self._live() if not run.killed]
        return min(due, default=3600.0)

    def pids(self) -> list[int]:
        return [run.pid for run in self._live() if run.pid]

    def close(self) -> None:
        """Let the server go: it stops any run still going (SIGTERM), then exits."""
        self.conn.close()
        self.process.wait()
