"""The store's file: where it is, who may open it and when, its schema and its transactions.

DuckDB lets one process at a time open a file. Every connection is therefore short: a reader
opens, reads and closes. A writer that holds its connection across transactions (the sync,
inside `holding()`) lets go at the end of the transaction during which another process started
waiting for the file, and at the latest every `hold_seconds`; it opens again only after every
waiting process has had its turn. Processes waiting to open the file say so with a shared lock
on a small `.wait` file beside the store: a lock the kernel drops when a process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ..errors import StoreError, StoreLockedError
from ..stopping import StopRequest, deferred
from .schema import MIGRATIONS

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_NAME = Path("data") / "payamak.duckdb"
DUCKDB_MAGIC = b"DUCK"  # at byte 8 of every DuckDB database file
# A checkpoint (every `checkpoint_threshold` of log) rewrites the table's last, partly filled row
# group: with DuckDB's defaults (16 MB, 122,880 rows) each one took about 30 MB for half a second
# in a sync, the highest point of its memory. Smaller groups and more frequent checkpoints keep
# that swing small at the same speed (benchmarks/RESULTS.md, "the checkpoint's swing").
CONNECTION_CONFIG = {"threads": "2", "checkpoint_threshold": "4MB"}
ROW_GROUP_ROWS = 16_384  # DuckDB's row group size is set per attachment, not stored in the file
# The held writer's buffer pool is capped so that a long sync stays flat (it writes page by
# page and needs little); readers (reports) keep DuckDB's default (see `_MemoryCap`).
WRITER_MEMORY = "64MB"
WRITER_WAIT = 120.0  # seconds the held writer waits for another process to let go of the file
_HOLDER_PID = re.compile(r"PID (\d+)")  # named in DuckDB's message when it can tell (0 across PID namespaces)


def default_path(base: str | Path | None = None) -> Path:
    """PAYAMAK_STORE if set, else data/payamak.duckdb under `base` (the working directory)."""
    chosen = os.environ.get("PAYAMAK_STORE")
    if chosen:
        return Path(chosen).expanduser()
    return Path(base or ".") / DEFAULT_NAME


# Closing any descriptor of a file drops every POSIX lock this process holds on it, DuckDB's
# included. So the store's first bytes are read only while no descriptor of this process refers
# to the file, and no thread opens it meanwhile.
_FILE_GATE = threading.Lock()
# A look at the `.wait` file takes its lock exclusively for a moment: two looks of this process at
# once would each take the other for a waiting process, and the sync would let go for no one.
_LOOK = threading.Lock()


def _open_here(path: Path, unknown: bool = True) -> bool:
    """Whether a descriptor of this process refers to the file (`unknown` when it cannot be told)."""
    found = path.stat()
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return unknown
    for descriptor in descriptors:
        try:
            other = os.stat(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (found.st_dev, found.st_ino):
            return True
    return False


def check_path(path: Path, *, create: bool) -> None:
    """Refuse, before anything is created, a path that cannot be (or does not hold) a store.
    Its first bytes are read only when that cannot drop a lock (see `_FILE_GATE`)."""
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give the path of a DuckDB file (e.g. {DEFAULT_NAME}).")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise StoreError(f"{path} lies under {parent}, which is a file, not a folder: choose another path.")
    if path.exists() and not _open_here(path):
        with open(path, "rb") as file:
            head = file.read(12)
        if head[8:12] != DUCKDB_MAGIC:
            raise StoreError(f"{path} is not a DuckDB file: choose a new path for the store, or the store's own file.")
    elif not create:
        raise StoreError(f"There is no store at {path}: run `payamak sync` first, or pass --db with the store's path.")


def _attached(where: Path) -> duckdb.DuckDBPyConnection:
    """A connection with the store's file (`where`, a resolved path) attached, and in use, as
    catalog `store`.

    DuckDB attaches a file once per process: every connection of this process to the same file
    shares one in-memory database named after it (as `duckdb.connect(path)` shares one database
    per path), which attaches the file at its first connection and lets go of it at its last.
    As when the file was opened directly, it is that database's only catalog (a user's
    `USE memory; DETACH store` would let go of the file under a sync) and DuckDB spills beside
    it, not in the working directory (the in-memory database's `.tmp`)."""
    host = ":memory:payamak-" + hashlib.sha256(str(where).encode()).hexdigest()[:24]
    con = duckdb.connect(host, config={**CONNECTION_CONFIG, "temp_directory": f"{where}.tmp"})
    try:
        quoted = str(where).replace("'", "''")
        con.execute(f"ATTACH IF NOT EXISTS '{quoted}' AS store (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
        con.execute("USE store")
        con.execute("DETACH DATABASE IF EXISTS memory")
    except BaseException:
        con.close()
        raise
    return con


class _MemoryCap:
    """DuckDB's memory limit is a setting of the one database that all of this process's
    connections to a file share (see `_attached`). A hold caps it so that a long sync stays flat;
    a reader of the same process (a notebook's query while a sync runs in a thread) must not fail
    under that cap (a median of a few million texts needs more than 64 MB). So a hold's cap is
    in force only while none of the process's own readers of the file is open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caps: dict[Path, str] = {}
        self._readers: Counter[Path] = Counter()

    def ask(self, file: Path, limit: str | None, held: duckdb.DuckDBPyConnection | None) -> None:
        """A hold's cap for `file` (None: none), in force on `held` unless a reader is open."""
        with self._lock:
            if limit:
                self._caps[file] = limit
            else:
                self._caps.pop(file, None)
            if held is not None:
                _set_memory_limit(held, None if self._readers[file] else limit)

    @contextmanager
    def lifted(self, file: Path, reader: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """While `reader` is open, no hold's cap on `file`; the last reader to close puts it back."""
        with self._lock:
            self._readers[file] += 1
            if file in self._caps:
                _set_memory_limit(reader, None)
        try:
            yield
        finally:
            with self._lock:
                self._readers[file] -= 1
                if not self._readers[file]:
                    del self._readers[file]
                    if file in self._caps:  # the hold's writer puts it back at its next opening if this fails
                        _set_memory_limit(reader, self._caps[file])


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str | None) -> None:
    try:
        con.execute(f"SET memory_limit = '{limit}'" if limit else "RESET memory_limit")
    except duckdb.OutOfMemoryException:
        pass  # more is in use than the new limit allows: it stays as it was


_MEMORY = _MemoryCap()

# Every Store of this process on one file writes through one DuckDB database (see `_attached`),
# where two transactions at once conflict (two syncs in two threads: "Duplicate key", "Table
# already exists" from two first migrations). Another process waits for the file; a Store of
# this process waits for this lock, held by whichever of them is in a transaction.
_TRANSACTIONS: dict[Path, threading.RLock] = {}
_TRANSACTIONS_GUARD = threading.Lock()


def _transactions_of(file: Path) -> threading.RLock:
    with _TRANSACTIONS_GUARD:
        return _TRANSACTIONS.setdefault(file, threading.RLock())


# Hard links are one file under two names: DuckDB would attach it twice, as two databases that
# overwrite each other's writes. Each file goes by the first name this process used for it.
_NAMES: dict[tuple[int, int], Path] = {}


def _one_name(resolved: Path) -> Path:
    """The name this process uses for the file at `resolved` (itself, if new or first seen).
    A file still open under a name that no longer leads to it (moved while a sync held it) is
    refused: opened under its new name, DuckDB would attach it a second time, and lose writes."""
    try:
        found = resolved.stat()
    except OSError:
        return resolved
    key = (found.st_dev, found.st_ino)
    with _TRANSACTIONS_GUARD:
        named = _NAMES.get(key)
        try:
            there = named.stat() if named is not None else None
        except OSError:
            there = None  # that name is gone (its inode may now be another file's)
        same = there is not None and (there.st_dev, there.st_ino) == key
        if not same and named is not None and _open_here(resolved, unknown=False):
            raise StoreError(
                f"{resolved} is open in this process as {named}, a name that no longer leads to it (moved or "
                "removed while open): let go of it there first (wait for its sync to end), then open it again.",
                "این فایل در همین برنامه با نام پیشینش باز است؛ نخست آن را ببندید",
            )
        if not same:
            _NAMES[key] = named = resolved
        return named


def _locked_by_another(path: Path, error: Exception) -> bool:
    """Whether opening failed because another process holds the file: the kernel lists a lock
    on it (Linux's /proc/locks, which hides holders outside this PID namespace), or DuckDB's
    message speaks of a lock (its wording and the holder it names vary; "PID 0" across namespaces)."""
    if "lock" in str(error).lower():
        return True
    try:
        status = path.stat()
        with open("/proc/locks", encoding="ascii", errors="replace") as listed:
            locks = listed.read().split()
    except OSError:
        return False
    return f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}" in locks


def _lock_until(descriptor: int, mode: int, deadline: float) -> bool:
    """flock `descriptor` in `mode`, trying until `deadline`; whether it was locked."""
    while True:
        try:
            fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


class StoreFile:
    """The DuckDB file at `path` (default: PAYAMAK_STORE, else data/payamak.duckdb), created and
    migrated on first use unless `create` is false."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        lock_wait: float = 10.0,
        hold_seconds: float = 10.0,
        create: bool = True,
    ):
        self.path = Path(path) if path is not None else default_path()
        self.lock_wait = lock_wait
        self.hold_seconds = hold_seconds
        with _FILE_GATE:
            check_path(self.path, create=create)
        self._held: duckdb.DuckDBPyConnection | None = None
        self._memory_limit: str | None = WRITER_MEMORY
        self._held_since = 0.0
        self._holding: Counter[int] = Counter()  # holding() blocks open, by thread
        existed = self.path.exists()
        if not existed:
            self._create()
        # the file itself, whichever path led to it (a symlink, a folder left by os.chdir, a hard
        # link): every process must look at the same `.wait` file, or a sync never sees a reader
        # that came by another path (hard links: within this process only)
        self._file = _one_name(self.path.resolve())
        self._lock = _transactions_of(self._file)
        self._wait_file = f"{self._file}.wait"
        gate = Path(self._wait_file)
        gate_existed = gate.exists()
        try:
            with self._lock, self.connect() as con:
                self._migrate(con, existed)
        except StoreError:  # leave the disk as it was (a store made here is whole: it stays)
            if not gate_existed:
                gate.unlink(missing_ok=True)
            raise

    def _create(self) -> None:
        """Make a new store whole under a name of its own, then link it into place. Made in place,
        a process killed while DuckDB wrote the header left a file that every later sync refused
        (DuckDB cannot read it either), and a process that came meanwhile was told the file is not
        DuckDB's. A kill here leaves only the hidden `.new` file, which nothing reads. A path that
        is a symlink to a missing file is made where it leads: the link is no store made meanwhile."""
        target = self.path.resolve()
        making = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.new")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(making), config=CONNECTION_CONFIG)
            try:
                self._migrate(con, existed=False)
            finally:
                con.close()
            try:
                os.link(making, target)  # never onto a file: one made meanwhile is the store
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links (FAT, some shares): moved into place
                os.rename(making, target)
        except (duckdb.Error, OSError) as error:
            raise StoreError(
                f"{self.path} could not be created ({error}): check that this user may write in its folder "
                "and that the disk has room. Nothing was kept.",
                "پایگاه داده ساخته نشد؛ دسترسی نوشتن و فضای دیسک را بررسی کنید",
            ) from None
        finally:
            making.unlink(missing_ok=True)
            Path(f"{making}.wal").unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # --- connections ----------------------------------------------------------------------
    def open(self, *, writer: bool = False) -> duckdb.DuckDBPyConnection:
        """A new connection; waits up to `lock_wait` seconds for another process to let go.

        A reader keeps a shared lock on the `.wait` file while it waits; a writer first waits
        (briefly) for the exclusive lock, so every waiting reader gets the file before it.
        """
        # the held writer (a sync) waits longer: a long report in a notebook must not end it
        patience = max(self.lock_wait, WRITER_WAIT) if writer else self.lock_wait
        deadline = time.monotonic() + patience
        with self._gate(exclusive=writer, deadline=min(deadline, time.monotonic() + 2.0)):
            return self._connect_until(deadline, patience, reader=not writer)

    @contextmanager
    def _gate(self, *, exclusive: bool, deadline: float) -> Iterator[None]:
        """Shared: "I am waiting" until the block ends. Exclusive: wait until no one waits
        (released at once). The gate orders who goes first; it never stops anyone."""
        if exclusive:
            while self._someone_waits() and time.monotonic() < deadline:
                time.sleep(0.005)
            yield
            return
        descriptor = os.open(self._wait_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_until(descriptor, fcntl.LOCK_SH, deadline)
            yield
        finally:
            os.close(descriptor)

    def _connect_until(self, deadline: float, patience: float, reader: bool) -> duckdb.DuckDBPyConnection:
        """Attach the file, trying until `deadline` while another process holds it. A Ctrl-C
        meanwhile is counted, not raised where it falls: inside DuckDB's attempt, DuckDB took it
        and the wait went on to its end."""
        stop = StopRequest()
        with stop.on_signals():
            return self._attach_until(deadline, patience, reader, stop)

    def _attach_until(
        self, deadline: float, patience: float, reader: bool, stop: StopRequest
    ) -> duckdb.DuckDBPyConnection:
        unexplained = 0  # failures with no lock on the file: one more try, as its holder may just have let go
        while True:
            try:
                with _FILE_GATE:
                    con = _attached(self._file)
                con.execute("SET TimeZone = 'Asia/Tehran'")
                return con
            except duckdb.ResourceInUseException:  # DuckDB attaches a file once per process
                raise StoreError(
                    f"{self.path} is already open in this process through a DuckDB connection of its own "
                    "(duckdb.connect on the file). Close that connection, or read through Store(...).sql.",
                    "این فایل در همین برنامه با اتصال دیگری از DuckDB باز است؛ آن را ببندید",
                ) from None
            except duckdb.IOException as error:
                unexplained = 0 if _locked_by_another(self.path, error) else unexplained + 1
                if unexplained > 1:
                    raise StoreError(
                        f"{self.path} could not be opened as a store: {error}. Check the path (--db)."
                    ) from None
                if time.monotonic() >= deadline:
                    pid = _HOLDER_PID.search(str(error))
                    holder = f"PID {pid[1]}" if pid and pid[1] != "0" else "a process it cannot name"
                    raise StoreLockedError(
                        f"{self.path} is in use by another process ({holder}) and was not released within "
                        f"{patience:g} s. Wait for it to finish or stop it, then try again.",
                        f"پایگاه داده در دست فرایند دیگری است ({holder})",
                    ) from None
                if stop.signals:  # one that came during this wait (a stop asked before does not end it)
                    raise KeyboardInterrupt from None
                time.sleep(0.002 if reader else 0.01)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection (the held one, in a thread inside `holding()`). Another
        thread of the process (a notebook's query while a sync runs in a thread on the same
        Store) reads on a connection of its own: on the held one it would wait for the sync's
        transactions and run under the sync's memory cap."""
        if self._holding[threading.get_ident()]:  # only this thread changes its own count
            with self._lock:
                yield self._writer_connection()
            return
        con = self.open()
        try:
            with _MEMORY.lifted(self._file, con):
                yield con
        finally:
            con.close()

    @contextmanager
    def holding(self, memory_limit: str | None = WRITER_MEMORY) -> Iterator[None]:
        """Within this block, transactions share one connection (opening a file costs tens of
        milliseconds: too much for every page). A watcher lets go of it, between transactions,
        as soon as another process waits for the file. DuckDB is capped at `memory_limit` while
        the block lasts (None: DuckDB's own default) and no other reader of this process is open;
        a block inside another has its own cap."""
        with self._lock:
            if self._held is None:  # at once, within lock_wait: a file another program holds is said before any work
                self._held, self._held_since = self.open(), time.monotonic()
            self._holding[threading.get_ident()] += 1
            outer, self._memory_limit = self._memory_limit, memory_limit
            self._cap_memory()
        done = threading.Event()
        watcher = threading.Thread(target=self._yield_to_waiters, args=(done,), name="store-watcher", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            with self._lock:
                self._holding -= Counter([threading.get_ident()])  # a count of 0 leaves it
                self._memory_limit = outer
                if not self._holding:
                    _MEMORY.ask(self._file, None, self._held)
                    self.release()
                else:
                    self._cap_memory()

    def _cap_memory(self) -> None:
        if self._held is not None:
            _MEMORY.ask(self._file, self._memory_limit, self._held)

    def _yield_to_waiters(self, done: threading.Event) -> None:
        while not done.wait(0.05):
            if self._held is not None and self._someone_waits() and self._lock.acquire(timeout=0.05):
                try:
                    self.release()  # between transactions: the lock is not held by one
                finally:
                    self._lock.release()

    def release(self) -> None:
        """Let go of the held connection, so that other processes may open the file."""
        with self._lock:
            if self._held is not None:
                held, self._held = self._held, None
                held.close()

    def _someone_waits(self) -> bool:
        """Whether another process is waiting to open the file (holds the `.wait` lock shared)."""
        with _LOOK:
            descriptor = os.open(self._wait_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False
            except BlockingIOError:
                return True
            finally:
                os.close(descriptor)  # closing drops the lock

    def _writer_connection(self) -> duckdb.DuckDBPyConnection:
        if self._held is not None and (
            time.monotonic() - self._held_since > self.hold_seconds or self._someone_waits()
        ):
            self.release()
        if self._held is None:
            self._held, self._held_since = self.open(writer=True), time.monotonic()
            self._cap_memory()
        return self._held

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one way to change the store: BEGIN, then COMMIT, or ROLLBACK on any error
        (an interrupted query included: the connection is then dropped, which discards it).
        A Ctrl-C or SIGTERM meanwhile waits for its end (`stopping.deferred`): DuckDB would turn
        the handler's KeyboardInterrupt into an error mid-statement and abort the transaction."""
        with self._lock, self.connect() as con, deferred():
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except (duckdb.InterruptException, KeyboardInterrupt):
                self._roll_back(con)
                raise KeyboardInterrupt("interrupted; nothing half-written") from None
            except duckdb.Error as error:
                self._roll_back(con)
                raise StoreError(
                    f"{self.path} could not be written ({type(error).__name__}: {error}); nothing of this change "
                    "was kept. Check the disk (space, permissions), then try again.",
                    "نوشتن در پایگاه داده ممکن نشد",
                ) from None
            except BaseException:
                self._roll_back(con)
                raise

    def _roll_back(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            if con is self._held:
                self._held = None
            con.close()  # closing a connection discards its open transaction

    def _migrate(self, con: duckdb.DuckDBPyConnection, existed: bool) -> None:
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if existed and tables and "schema_version" not in tables:
            raise StoreError(
                f"{self.path} is a DuckDB file of something else (tables {', '.join(sorted(tables)[:5])}): "
                "give the store its own file."
            )
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        current = con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer version of payamak_analytics (schema {current}): upgrade it."
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(script)
                con.execute("INSERT INTO schema_version VALUES (?)", [version])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self.connect() as con:
            return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    # --- reading --------------------------------------------------------------------------
    def sql(self, query: str, params: list | dict | None = None) -> pd.DataFrame:
        """Any SQL over the store's tables, as a DataFrame."""
        with self.connect() as con:
            return con.execute(query, params).df()
