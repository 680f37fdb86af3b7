"""One refresh or harvest at a time per database: a lock file beside it.

Why harvests too: two at once each fetch everything, and together send NCBI more
requests a second than it allows (each keeps to the limit on its own); a harvest while
a refresh runs writes into the published file, which the refresh's rename then replaces.

The file (``cryokb.db.lock``) holds the holder's command, pid, host and start time as
JSON, so that the message a second run prints says who is running. The lock itself is an
``flock`` on that file: the kernel drops it when its holder dies, however it dies
(SIGKILL, an OOM kill, a power cut), so a lock left by a killed process is never
mistaken for a live one, even if its pid has since been reused. A file whose flock is
free but that still names a holder is therefore stale: it is logged and cleared.

Removing the file on release could let a waiter lock the old, unlinked inode while a
newcomer locks a fresh file; every acquirer therefore checks, once locked, that the
path still names the inode it holds, and starts over if not.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger("cryokb.lock")


class LockError(Exception):
    """The lock file cannot be created or read (permissions, a missing folder)."""


class LockHeld(LockError):
    """Another live process holds the lock."""

    def __init__(self, path: Path, holder: "LockInfo | None"):
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "a process that has not written its details yet"
        command = holder.command if holder else "refresh or harvest"
        super().__init__(f"another {command} is running on this database: {who} holds {path}")


@dataclass
class LockInfo:
    """What a lock file says about its holder."""

    pid: int
    host: str
    started: str
    command: str = "refresh"

    @classmethod
    def current(cls, command: str = "refresh") -> "LockInfo":
        stamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        return cls(os.getpid(), socket.gethostname(), stamp, command)

    @classmethod
    def parse(cls, text: str) -> "LockInfo | None":
        """The holder named in the file, or None for an empty or unreadable file."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]), str(data.get("command", "refresh")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps({"command": self.command, "pid": self.pid, "host": self.host, "started": self.started}) + "\n"

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"

    def alive(self) -> bool | None:
        """Whether the pid runs (None: another host, so we cannot tell from here)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def lock_path(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".lock")


class RefreshLock:
    """``with RefreshLock(db_path): ...`` or ``acquire()`` / ``release()``.

    After ``acquire``, ``stale`` names the holder of a stale lock that was cleared, if any.
    """

    def __init__(self, db_path: str | Path, *, poll: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 command: str = "refresh"):
        self.path = lock_path(db_path)
        self.command = command
        self.poll = poll
        self.stale: LockInfo | None = None
        self._sleep = sleep
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: bool = False, timeout: float | None = None,
                on_wait: Callable[[LockInfo | None], None] | None = None) -> "RefreshLock":
        """Take the lock; raise LockHeld at once, or (``wait``) poll until it is free or ``timeout``."""
        if self._fd is not None:
            raise LockError(f"{self.path}: this process already holds the lock")
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = LockInfo.parse(_read(fd))
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise LockError(f"{self.path}: cannot lock: {error.strerror}") from None
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    raise LockHeld(self.path, holder) from None
                if not told:
                    log.warning("waiting for the %s that holds %s (%s)", holder.command if holder else "refresh",
                                self.path,
                                holder.describe() if holder else "holder unknown")
                    if on_wait:
                        on_wait(holder)
                    told = True
                self._sleep(self.poll)
                continue
            if not self._same_file(fd):
                os.close(fd)  # the holder removed it as we locked it: lock the new one
                continue
            self._take(fd)
            return self

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LockError(f"{self.path}: cannot create the lock file: {error.strerror}") from None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _take(self, fd: int) -> None:
        """We hold the flock: whatever the file names is a dead holder. Write ourselves in."""
        previous = LockInfo.parse(_read(fd))
        if previous is not None:
            state = {False: "no longer running", None: "on another host, lock released"}.get(
                previous.alive(), "lock released (pid reused)")
            log.warning("cleared a stale lock in %s left by %s (%s)", self.path, previous.describe(), state)
            self.stale = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, LockInfo.current(self.command).to_json().encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Remove the file, then drop the flock (in that order: see the module docstring)."""
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                self.path.unlink()
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RefreshLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""
