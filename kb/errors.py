"""The exceptions that mean "the input or the setting is wrong", not "cryokb is broken".

The CLI turns these into a one-line message and exit code 1; anything else is a bug
and keeps its traceback.
"""

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
