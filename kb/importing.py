"""Import saved PubMed files (XML, .xml.gz, MEDLINE .txt/.nbib) into the store.

Records are streamed from the file and written a batch at a time, each batch in one
transaction: a broken file keeps every batch read before the break, and importing
the same file again changes nothing.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ingest.model import Article, ParseProblem
from ingest.readers import read_records
from kb.errors import USER_ERRORS
from kb.store import SaveCounts, Store

log = logging.getLogger("cryokb.import")

DEFAULT_BATCH_SIZE = 1000


@dataclass
class FileResult:
    path: str
    counts: SaveCounts = field(default_factory=SaveCounts)
    records: int = 0
    error: str | None = None


def batched(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def import_file(store: Store, path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                run_id: int | None = None, on_batch: Callable[[int], None] | None = None,
                on_problem: Callable[[ParseProblem], None] | None = None) -> FileResult:
    """Import one file. A read error after some batches is recorded, not raised.

    Batch N is written by a writer thread while batch N+1 is parsed: SQLite, zlib and
    much of lxml run without the GIL, so on two cores parsing and writing overlap.
    At most one batch waits, so memory stays flat; batches are written in order.
    """
    result = FileResult(str(path))
    pending: tuple[Future, int] | None = None

    def collect() -> None:
        future, read = pending
        result.counts.add(future.result())
        result.records += read
        if on_batch:
            on_batch(read)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cryokb-writer") as writer:
        try:
            for batch in batched(read_records(path), batch_size):
                _report_problems(batch, on_problem)
                future = writer.submit(store.save_records, batch, run_id=run_id)
                if pending:
                    collect()
                pending = (future, sum(isinstance(r, Article) for r in batch))
        except USER_ERRORS as exc:
            result.error = str(exc)
            log.error("%s", exc)
        finally:
            if pending:
                collect()
    return result


def _report_problems(batch: list, on_problem) -> None:
    for record in batch:
        if isinstance(record, ParseProblem):
            log.warning("%s", record)
            if on_problem:
                on_problem(record)


def import_files(store: Store, paths: Iterable[str | Path], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 on_batch=None, on_problem=None) -> list[FileResult]:
    """Import several files as one run, recorded in harvest_runs (kind 'import')."""
    paths = [str(p) for p in paths]
    run_id = store.start_run(kind="import", source=", ".join(paths))
    results = []
    for path in paths:
        results.append(import_file(store, path, batch_size=batch_size, run_id=run_id,
                                   on_batch=on_batch, on_problem=on_problem))
    total = SaveCounts()
    for result in results:
        total.add(result.counts)
    errors = [f"{r.path}: {r.error}" for r in results if r.error]
    store.finish_run(
        run_id,
        outcome="failed" if errors else "ok",
        counts=total,
        fetched=sum(r.records for r in results),
        error="; ".join(errors) or None,
    )
    return results
