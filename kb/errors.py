"""The exceptions that mean "the input or the setting is wrong", not "cryokb is broken".

The CLI turns these into a one-line message and exit code 1; anything else is a bug
and keeps its traceback.
"""

import sqlite3

from extractors.evaluate import GoldFileError
from extractors.vocabulary import VocabularyError
from ingest.eutils import EutilsError
from ingest.pubmed_xml import XMLFileError
from ingest.readers import ReadError
from ingest.safexml import UnsafeXMLError
from ingest.transcoding import EncodingError
from kb.config import ConfigError
from kb.lock import LockError
from kb.publish import PublishError
from kb.refresh import RefreshError
from kb.store import StoreError

USER_ERRORS = (
    EutilsError, XMLFileError, ReadError, UnsafeXMLError, EncodingError, StoreError, GoldFileError,
    VocabularyError, ConfigError, LockError, PublishError, RefreshError, OSError,
)


# What SQLite says of a damaged file, and of one another process holds.
DAMAGE = ("not a database", "malformed", "vtable constructor failed")
LOCKED = ("locked", "busy")

# What SQLite says when the trouble lies in the machine or the file, not in cryokb: each
# (words in the message, what to tell the user) in the order they are checked.
SQLITE_TROUBLE = (
    (LOCKED, "is locked: another process (an import, a harvest, a build or a refresh) is writing "
             "to it; try again when it has finished"),
    (("disk is full",), "cannot be written: the disk is full; free some space and run the command again "
                        "(whatever was committed before is kept)"),
    (DAMAGE, "is damaged ({error}): move it aside, then restore it from a backup "
             "or build it again (cryokb refresh --full)"),
    (("unable to open", "readonly", "disk i/o error"), "cannot be used: {error}"),
)


def sqlite_trouble(exc: BaseException, db_path=None) -> str | None:
    """A one-line message for an SQLite error caused by the machine or the file (a full
    disk, a lock held for longer than kb.store.BUSY_TIMEOUT, a damaged file), or None
    for one that means a bug in cryokb, which keeps its traceback."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    text = str(exc).lower()
    where = f"database {db_path}" if db_path else "the database"
    for words, message in SQLITE_TROUBLE:
        if any(word in text for word in words):
            return f"{where} {message.format(error=exc)}"
    return None


def damaged(exc: BaseException) -> bool:
    """Whether an SQLite error says the file itself is damaged."""
    return _says(exc, DAMAGE)


def locked(exc: BaseException) -> bool:
    """Whether an SQLite error says another process holds the file."""
    return _says(exc, LOCKED)


def locked_out(exc: BaseException | None) -> bool:
    """Whether another process's lock stopped a write: the error itself, or the one a Ctrl-C
    or SIGTERM came with. SQLite's wait for a lock holds Python's signal handlers back, so
    a Ctrl-C during the wait arrives as the lock error is raised, with it as its context."""
    while exc is not None:
        if locked(exc):
            return True
        exc = exc.__context__ if isinstance(exc, KeyboardInterrupt) else None
    return False


def _says(exc: BaseException, words: tuple[str, ...]) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(word in str(exc).lower() for word in words)
