"""One refresh at a time: the lock file beside the database, a live holder, a dead one, waiting."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from kb.lock import LockHeld, LockInfo, RefreshLock, lock_path

HOLDER = """
import sys
from kb.lock import RefreshLock
lock = RefreshLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
lock.release()
"""


@pytest.fixture
def holder(db_path):
    """Another process holding the lock on db_path until its stdin is closed."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_the_lock_file_names_its_holder_and_goes_away_on_release(db_path):
    with RefreshLock(db_path) as lock:
        path = lock_path(db_path)
        assert path == db_path.with_name("cryokb.db.lock")
        info = json.loads(path.read_text())
        assert (info["pid"], info["host"]) == (os.getpid(), socket.gethostname())
        assert info["started"].endswith("+00:00")
        assert lock.stale is None
    assert not path.exists()


def test_a_live_holder_makes_a_second_refresh_fail_at_once_naming_it(db_path, holder):
    with pytest.raises(LockHeld) as error:
        RefreshLock(db_path).acquire()
    assert error.value.holder.pid == holder.pid
    assert f"another refresh is running on this database: pid {holder.pid} on {socket.gethostname()}" in str(
        error.value)


def test_the_same_process_cannot_take_it_twice_either(db_path):
    with RefreshLock(db_path):
        with pytest.raises(LockHeld):
            RefreshLock(db_path).acquire()


def test_a_lock_left_by_a_killed_process_is_found_stale_and_cleared(db_path, holder, caplog):
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert LockInfo.parse(lock_path(db_path).read_text()).pid == holder.pid  # still there, naming the dead
    with caplog.at_level(logging.WARNING, logger="cryokb"):
        lock = RefreshLock(db_path).acquire()
    try:
        assert lock.stale.pid == holder.pid and lock.stale.alive() is False
        assert f"cleared a stale lock in {lock_path(db_path)} left by pid {holder.pid}" in caplog.text
        assert "no longer running" in caplog.text
        assert LockInfo.parse(lock_path(db_path).read_text()).pid == os.getpid()
    finally:
        lock.release()


def test_waiting_takes_the_lock_once_the_holder_is_done(db_path, holder):
    seen = []
    threading.Timer(0.5, holder.stdin.close).start()
    lock = RefreshLock(db_path, poll=0.05).acquire(wait=True, timeout=20, on_wait=seen.append)
    try:
        assert [h.pid for h in seen] == [holder.pid]
        assert holder.wait(timeout=10) == 0
        assert lock.stale is None, "a lock released in good order is not stale"
    finally:
        lock.release()


def test_waiting_gives_up_after_its_timeout(db_path, holder):
    with pytest.raises(LockHeld):
        RefreshLock(db_path, poll=0.05).acquire(wait=True, timeout=0.3)


@pytest.mark.parametrize("text", ["", "not json", '{"pid": "x"}'])
def test_an_unreadable_lock_file_without_a_holder_is_simply_taken(db_path, text):
    lock_path(db_path).write_text(text)
    with RefreshLock(db_path) as lock:
        assert lock.stale is None
        assert LockInfo.parse(lock_path(db_path).read_text()).pid == os.getpid()
