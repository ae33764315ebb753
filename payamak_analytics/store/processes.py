"""Which process holds something: host, pid and the process's start time, so that a dead
holder is told apart from a live one (and from a later process that got the same pid)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start tick) of `pid` from /proc (Linux), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), fields[19].decode()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    stat = _stat(pid)
    return stat[1] if stat else None


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    start: str | None

    @classmethod
    def current(cls) -> ProcessId:
        return cls(socket.gethostname(), os.getpid(), _start_time(os.getpid()))

    def __str__(self) -> str:
        return f"PID {self.pid} on {self.host}"

    def alive(self) -> bool | None:
        """True or False on this host; None for a process on another host (ask its lease)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, owned by another user
        stat = _stat(self.pid)
        if stat is None:
            return True
        state, start = stat
        return state != "Z" and (self.start is None or start == self.start)
