"""Read the stored articles again from their raw records, with this version's parsers.

Every article's record is kept as it was harvested or imported (raw_records), so that
a parser fix, or a field a newer cryokb reads, reaches the articles stored before it
without going back to PubMed: an import of the same records would not, since it
leaves a record whose bytes are unchanged alone. Only the articles whose rows come
out different are written, a page at a time, each page in one transaction with the
run's counts, so that a run stopped at any point leaves every article either as it
was or as read again, and a second run changes nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

import Bio
from lxml import etree

from ingest import medline
from ingest.fields import RecordError
from ingest.model import ParseProblem, SaveCounts, ended_by
from ingest.pubmed_xml import article_from_xml
from ingest.safexml import UnsafeXMLError
from kb.store import PreparedArticle, Store, StoredRaw, flatten_article, prepare_flat, sealed

log = logging.getLogger("cryokb.reparse")

PAGE_SIZE = 500
# Where a record read again comes from, in its problems.
SOURCE = "raw_records"
# The modules that turn a stored record into rows. Bio.Medline reads MEDLINE text for
# ingest.medline, so Biopython's version counts too. The compiled walk is not listed:
# tests hold it to the output of pubmed_xml's walk.
PARSER_MODULES = ("ingest.pubmed_xml", "ingest.medline", "ingest.fields", "ingest.model", "ingest.safexml",
                  "ingest.transcoding", "kb.store")
# The key in cryokb_meta of the parsers that read every stored record.
PARSERS_KEY = "parsers"


@dataclass
class ReparseResult:
    read: int = 0
    changed: int = 0
    problems: int = 0
    fields: Counter = field(default_factory=Counter)  # columns and tables that changed, by articles

    @property
    def unchanged(self) -> int:
        return self.read - self.changed - self.problems


def reparse(store: Store, *, pmids: list[str] | None = None, dry_run: bool = False, page_size: int = PAGE_SIZE,
            on_page: Callable[[int], None] | None = None,
            on_problem: Callable[[ParseProblem], None] | None = None,
            result: ReparseResult | None = None) -> ReparseResult:
    """Read every stored record again (or those of ``pmids``) and rewrite the articles whose rows change.

    Recorded in harvest_runs (kind 'reparse'), unless ``dry_run``, which only says
    what would change. A record that can no longer be read is a problem, its article
    left as it is. ``result``, when given, is filled in as pages are committed, so that
    a caller still has the counts when the run is cut short.
    """
    result = result if result is not None else ReparseResult()
    parsers = current_parsers()
    # "raw_records": every one, which a refresh that carries on an unfinished --reparse looks for
    source = SOURCE if pmids is None else f"{SOURCE}: PMID {', '.join(pmids[:10])}" + (
        f" and {len(pmids) - 10} more" if len(pmids) > 10 else "")
    run_id = None if dry_run else store.start_run(kind="reparse", source=source)
    try:
        for page in store.raw_pages(pmids, page_size):
            prepared, problems = read_again(page)
            differences = store.differences(prepared)
            if not dry_run:
                written = store.rewrite([item for item in prepared if item.pmid in differences],
                                        {raw.pmid: raw.sha1 for raw in page}, run_id=run_id, read=len(page),
                                        problems=problems)
                differences = {pmid: differences[pmid] for pmid in written}  # less any replaced meanwhile
            for problem in problems:
                log.info("%s", problem)
                if on_problem:
                    on_problem(problem)
            for pmid, names in differences.items():
                log.info("PMID %s: %s %s", pmid, "would change" if dry_run else "changed", ", ".join(names))
                result.fields.update(names)
            result.read += len(page)
            result.changed += len(differences)
            result.problems += len(problems)
            if on_page:
                on_page(len(page))
    except BaseException as exc:  # Ctrl-C, a full disk, a bug: the run must not stay "running"
        if run_id is not None:
            _finish(store, run_id, result, ended_by(exc), exc)
        raise
    if run_id is not None:
        _finish(store, run_id, result, None)
        if pmids is None:
            store.set_meta(PARSERS_KEY, parsers)
    return result


@cache
def current_parsers() -> str:
    """A digest of the code that reads a record into rows (PARSER_MODULES), and of Biopython's version.

    A store notes the parsers that read all its records; a refresh whose parsers differ
    reads them again, as one whose extractor differs extracts again, so that an upgrade
    reaches the articles stored before it without anybody having to know it should.
    Any edit of these modules counts, a comment's too: a needless reparse rewrites
    nothing (rows are compared first) and costs less than an import, while a missed
    one leaves articles as an older parser read them.
    """
    digest = hashlib.sha1(f"biopython {Bio.__version__}\0".encode())
    for name in PARSER_MODULES:
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    return digest.hexdigest()[:12]


def parsers_changed(store: Store) -> bool:
    """Whether stored records were read by other parsers than this cryokb's, or by a
    release from before stores noted which."""
    tables = store.db.table_names()
    if "raw_records" not in tables or not store.has_raw_records():
        return False
    return "cryokb_meta" not in tables or store.get_meta(PARSERS_KEY) != current_parsers()


def read_again(page: list[StoredRaw]) -> tuple[list[PreparedArticle], list[ParseProblem]]:
    """The rows of each raw record, as an import would build them today."""
    prepared, problems = [], []
    for stored in page:
        pmid = stored.pmid
        record = (_record(stored) if stored.has_article
                  else ParseProblem(SOURCE, f"PMID {pmid}", "a raw record without its article; left as it is"))
        if isinstance(record, ParseProblem):
            problems.append(record)
            continue
        flat = record if type(record) is tuple else flatten_article(record)
        if flat[0] != pmid:
            problems.append(ParseProblem(SOURCE, f"PMID {pmid}", f"the stored record now reads as PMID {flat[0]}; "
                                         "the article is left as it is"))
            continue
        prepared.append(prepare_flat(sealed(flat, stored.sha1)))
    return prepared, problems


def _record(stored: StoredRaw):
    """The record read from its raw bytes (a flattened tuple or an Article), or a ParseProblem."""
    where = f"PMID {stored.pmid}"
    try:
        raw = zlib.decompress(stored.compressed)
    except (zlib.error, TypeError) as err:  # damaged, or NULL
        return ParseProblem(SOURCE, where, f"the stored record cannot be decompressed ({err}); "
                            "the article is left as it is")
    try:
        if stored.format == "medline":
            records = list(medline.iter_records(io.BytesIO(raw), f"{SOURCE} {where}"))
            if len(records) != 1:
                raise RecordError(f"the stored MEDLINE text reads as {len(records)} records")
            record = records[0]
            if isinstance(record, ParseProblem):
                return ParseProblem(SOURCE, where, record.message)
            return record
        return article_from_xml(raw, f"{SOURCE} {where}", flat=True)
    except (RecordError, UnsafeXMLError, etree.XMLSyntaxError) as err:
        return ParseProblem(SOURCE, where, f"cannot be read again: {err}")


def _finish(store: Store, run_id: int, result: ReparseResult, error: str | None,
            cause: BaseException | None = None) -> None:
    """Record how the run ended (its pages counted themselves as they were committed); a
    failure to record it does not replace the error on its way out (``cause``)."""
    counts = SaveCounts(revised=result.changed, unchanged=result.unchanged, problems=result.problems)
    store.finish_run(run_id, outcome="failed" if error else "ok", counts=counts, fetched=result.read,
                     error=error, extra={"changed": dict(result.fields)}, cause=cause)
