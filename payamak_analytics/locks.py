"""Exclusive kernel locks beside the store: one watch per store, one sender per campaign.

A `HolderLock` is an flock on a small file. The kernel keeps it per open file (two threads of
one process that each take it exclude each other too) and drops it when its process dies, so
no pid, host or lease is ever compared: a dead holder cannot keep it, a live one cannot lose it.
The file names its holder (host, pid, since) only to tell a refused process who it waits for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Self

from .dates import TEHRAN
from .errors import PayamakError, StoreError


class HolderLock:
    """Held from `__enter__` to `__exit__`; `refused(written)` builds the error raised when
    another open file holds it (written: what the holder wrote in the file; `holder_name` reads it)."""

    def __init__(self, path: str | Path, refused: Callable[[str], PayamakError]):
        self.path = Path(path)
        self._refused = refused
        self._file = None

    def __enter__(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as error:
            raise StoreError(
                f"The lock file {self.path} cannot be opened ({error.strerror}): check that this user may write "
                "in the store's folder. Nothing was started.",
                "فایل قفل کنار پایگاه داده باز نشد؛ دسترسی نوشتن را بررسی کنید",
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _written(handle)
            handle.close()
            raise self._refused(holder) from None
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        started = datetime.now(TEHRAN).isoformat(timespec="seconds")
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": started}))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc) -> None:
        """Let go. Closing the file is what releases the lock, so it happens whatever else fails;
        clearing the holder's name is a courtesy whose failure is never raised (it would hide
        the error that ended the block, and the name of an unlocked file is never read)."""
        handle, self._file = self._file, None
        if handle is None:
            return
        try:
            handle.seek(0)
            handle.truncate()
        except OSError:
            pass
        try:
            handle.close()
        except OSError:
            if exc[0] is None:  # the block ended well: this is the error to report
                raise


def _written(handle) -> str:
    """What the holder wrote; it writes just after it locks, so an empty file is read again a little."""
    for _ in range(50):
        handle.seek(0)
        written = handle.read()
        if written.strip():
            return written
        time.sleep(0.01)
    return ""


def holder_name(written: str) -> str:
    """The holder as its lock file names it: "PID 12 on host since ...", or what the file says."""
    try:
        holder = json.loads(written)
        return f"PID {holder['pid']} on {holder['host']} since {holder['since']}"
    except (ValueError, TypeError, KeyError):
        return written.strip()[:200] or "another process"
