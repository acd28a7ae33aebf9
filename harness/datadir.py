"""Where prepared datasets live and how they are written, for every family.

``data_root``: the explicit root, else $HARNESS_DATA, else $XDG_CACHE_HOME/harness/data
(~/.cache/harness/data). ``staging``: a dataset folder appears under its name only
complete (written into a hidden temp folder beside it, renamed at the end; removed on any
error, SIGTERM included). ``reading``: any failure to read a user's file becomes one line
naming it.
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import tarfile
import tempfile
import threading
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

from harness import HarnessError

READ_ERRORS = (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, tarfile.TarError,
               zlib.error, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError)


def data_root(root=None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("HARNESS_DATA"):
        return Path(os.environ["HARNESS_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "harness" / "data"


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@contextmanager
def reading(label):
    """Turn any failure to read `label` (a file, or file:member) into a one-line HarnessError."""
    try:
        yield
    except HarnessError:
        raise
    except FileNotFoundError:
        raise HarnessError(f"{label}: missing") from None
    except READ_ERRORS as error:
        raise HarnessError(f"{label}: cannot read ({one_line(error)}): truncated or corrupt? download it again") from None


@contextmanager
def staging(target: Path):
    """A temp folder beside `target` that becomes `target` if the block succeeds, else vanishes."""
    made_root = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    with _terminate_as_exit():
        try:
            temp.chmod(0o755)  # mkdtemp makes it private; a data root may be shared
            yield temp
            _replace(temp, target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            if made_root:
                try:
                    target.parent.rmdir()
                except OSError:
                    pass
            raise


@contextmanager
def _terminate_as_exit():
    """Let SIGTERM (kill, a scheduler's time limit) unwind like Ctrl-C, so the cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _replace(temp: Path, target: Path) -> None:
    if not target.exists():
        temp.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    target.rename(old / target.name)
    try:
        temp.rename(target)
    except BaseException:
        (old / target.name).rename(target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
