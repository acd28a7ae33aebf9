"""The fork server of local runs (``python -m harness.forkserver FD``): it imports torch
and the harness once, then forks a fresh process for each run the launcher sends.

It never runs anything itself, so every run starts from the same state, and nothing a
run changes (random generators, torch's threads, modules a plugin patched, memory)
reaches the next one: each run's process ends with it. Forking is safe only from a
process with one thread, and CUDA cannot start in a child once its parent started it:
the server starts neither (its thread-pool variables are 1, it never computes) and
tells the launcher how many threads it has. Each run then sets its own thread counts
(``OMP_NUM_THREADS`` and friends, torch's and the BLAS pools) and, through the Job,
``CUDA_VISIBLE_DEVICES``, before either starts.

Signals: the server and its runs stay in the launcher's process group (a kill of the
group ends them all) but ignore SIGINT and SIGTERM until the Job's handlers take them
(stop at the next step boundary, checkpoint saved), as submitit's workers do; the
launcher sends SIGTERM to stop runs, again every few seconds. USR2 is the time-limit
signal: the run stops at its next step boundary and exits to be requeued, or, after
too many time-outs, records its failure (submitit's rule and message). When the
launcher goes away (its end of the socket closes) the server stops every run the same
way and exits once they have.

Protocol (pickled tuples over a socket): launcher -> server ``("run", key, (stdout
path, stderr path, request))`` (the request pickled: unpickled only in the child, once
its output goes to the run's log files) and ``("signal", key or None for all,
signum)``; server -> launcher ``("ready", threads, None)``, ``("started", key, pid)``
and ``("ended", key, wait status)``.
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

PRELOAD = ("torch", "harness.job")  # what every run imports anyway, torch above all
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")
REQUEUE_TIMED_OUT = 144  # exit codes of a run that stopped to be requeued (144: submitit's local one)
REQUEUE_PREEMPTED = 145  # a USR2 before the time limit was near: requeued without counting a time-out
RESEND_SECONDS = 5.0  # SIGTERM again, for a run that got it before its handler was installed


def native_threads() -> int:
    """Threads of this process, native ones included (Linux), else the Python ones."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return int(next(line for line in status if line.startswith("Threads:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return threading.active_count()


def timed_out(elapsed_s: float, limit_s: float) -> bool:
    """submitit's rule: a USR2 counts as a time-out once the run has used 80% of its time
    limit, or all but 10 minutes of it, whichever is less."""
    return elapsed_s >= min(0.8 * limit_s, limit_s - 600)


def _ignore(signum, frame) -> None:
    """A Python handler, not SIG_IGN: processes a run starts (exec) get the default back."""


class TimeLimit:
    """A run's USR2 handler, called by the Job's own once the checkpoint is saved."""

    def __init__(self, limit_s: float, requeues_left: int):
        self.limit_s, self.requeues_left, self.started = limit_s, requeues_left, time.monotonic()

    def __call__(self, signum, frame) -> None:
        from submitit.core.utils import UncompletedJobError

        late = timed_out(time.monotonic() - self.started, self.limit_s)
        if late and self.requeues_left <= 0:
            raise UncompletedJobError("Job not requeued because: timed-out too many times.")
        sys.exit(REQUEUE_TIMED_OUT if late else REQUEUE_PREEMPTED)


def run(request: dict) -> None:
    """In the child: the run's own signals and environment, then its Job."""
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGUSR2, TimeLimit(request["limit_s"], request["requeues_left"]))
    cpus = int(request["cpus"])
    os.environ.update({name: str(cpus) for name in THREAD_VARIABLES})  # for what the run loads or starts
    if cpus != 1:  # the pools the server loaded have one thread: torch's is the Job's to size, numpy's BLAS is here
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # not installed: numpy's BLAS keeps one thread
            pass
        else:
            threadpool_limits(limits=cpus)
    # The global generators the server imported: seeded afresh, as in a new process (random's reseeds itself at fork)
    if "torch" in sys.modules:
        sys.modules["torch"].seed()  # CUDA's are seeded when CUDA starts (in this process, if ever)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    request["job"]()


def _child(conn: Connection, stdout: str, stderr: str, payload: bytes) -> None:
    """After the fork: never returns (os._exit), whatever the run does."""
    code = 1
    try:
        conn.close()
        for fd, path in ((1, stdout), (2, stderr)):
            file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(file, fd)
            os.close(file)
        sys.stdout.reconfigure(line_buffering=True)
        run(pickle.loads(payload))
        code = 0
    except SystemExit as stop:
        if isinstance(stop.code, int) or stop.code is None:
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - whatever the run raised goes to its log; the exit code says it failed
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a broken or closed log: exit all the same
                stream.flush()
        os._exit(code)


class Server:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.children: dict[int, int] = {}  # pid -> key
        self.open = True  # the launcher is there
        self.last_stop = 0.0

    def loop(self) -> None:
        while self.open or self.children:
            if self.open:
                self.receive()
            else:
                self.stop_children()
                time.sleep(0.05)
            self.reap()

    def receive(self) -> None:
        try:
            if not self.conn.poll(0.05):
                return
            kind, key, value = self.conn.recv()
        except (EOFError, OSError):  # the launcher is gone: stop every run
            self.open = False
            return
        if kind == "run":
            pid = os.fork()
            if pid == 0:
                _child(self.conn, *value)
            self.children[pid] = key
            self.send(("started", key, pid))
        elif kind == "signal":
            for pid, owner in self.children.items():
                if key is None or owner == key:
                    os.kill(pid, value)

    def reap(self) -> None:
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            key = self.children.pop(pid, None)
            if key is not None:
                self.send(("ended", key, status))

    def send(self, message: tuple) -> None:
        if self.open:
            try:
                self.conn.send(message)
            except OSError:
                self.open = False

    def stop_children(self) -> None:
        if time.monotonic() - self.last_stop >= RESEND_SECONDS:
            self.last_stop = time.monotonic()
            for pid in self.children:
                os.kill(pid, signal.SIGTERM)

    def leave(self, signum, frame) -> None:
        """SIGTERM to the server itself (a kill of the whole group): stop every run, then exit."""
        self.open = False


def main(fd: int) -> None:
    signal.signal(signal.SIGINT, _ignore)  # Ctrl-C is for the launcher, which stops the runs
    conn = Connection(fd)
    for name in PRELOAD:
        importlib.import_module(name)
    gc.freeze()  # the preloaded objects stay out of the collector: fewer pages copied in each child
    server = Server(conn)
    signal.signal(signal.SIGTERM, server.leave)
    server.send(("ready", native_threads(), None))
    server.loop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
