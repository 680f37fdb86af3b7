"""The exceptions that mean "the input or the setting is wrong", not "cryokb is broken".

The CLI turns these into a one-line message and exit code 1; anything else is a bug
and keeps its traceback.
"""

from ingest.eutils import EutilsError
from ingest.pubmed_xml import XMLFileError
from ingest.readers import ReadError
from ingest.safexml import UnsafeXMLError
from kb.store import StoreError

USER_ERRORS = (EutilsError, XMLFileError, ReadError, UnsafeXMLError, StoreError, OSError)
