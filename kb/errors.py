"""The exceptions that mean "the input or the setting is wrong", not "cryokb is broken".

The CLI turns these into a one-line message and exit code 1; anything else is a bug
and keeps its traceback.
"""

import sqlite3

from extractors.evaluate import GoldFileError
from extractors.vocabulary import VocabularyError
from ingest.eutils import EutilsError
from ingest.medline import MedlineFileError
from ingest.pubmed_xml import XMLFileError
from ingest.readers import ReadError
from ingest.safexml import UnsafeXMLError
from kb.config import ConfigError
from kb.lock import LockError
from kb.publish import PublishError
from kb.refresh import RefreshError
from kb.store import StoreError

USER_ERRORS = (
    EutilsError, XMLFileError, MedlineFileError, ReadError, UnsafeXMLError, StoreError, GoldFileError,
    VocabularyError, ConfigError, LockError, PublishError, RefreshError, OSError,
)


def is_busy(exc: BaseException) -> bool:
    """SQLite gave up waiting for another process's write (``kb.store.BUSY_TIMEOUT``): a
    moment's clash, not a bug, and nothing of ours was written."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def busy_message(db_path) -> str:
    where = f"database {db_path}" if db_path else "the database"
    return (f"{where} is locked: another process (an import, a harvest, a build or a refresh) is "
            "writing to it; try again when it has finished")
