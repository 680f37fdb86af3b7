"""``cryokb refresh``: harvest, extract, rebuild the graph and publish, safely and unattended.

The published database (``cryokb.db``) is never written by a refresh. The work
happens in a staging copy beside it (``cryokb.db.staging``), made with SQLite's
backup API, and the finished copy replaces the published file with one atomic
``os.replace``. Readers of the published file therefore see the old database or the
new one, never a half-built one, and a refresh killed at any moment (SIGKILL
included) leaves the published file exactly as it was.

The staging copy is kept when a refresh fails or is killed. Every write to it is a
transaction (a harvest batch, an extraction batch, the graph), so it is consistent
after any crash, and the next refresh resumes from it: it re-runs the same harvest
window (records already stored come back "unchanged", so nothing is duplicated) and
extracts only what is still stale. A staging copy is thrown away and made again when
the published file changed since it was copied (someone imported into it directly)
or when it fails SQLite's quick_check.

Before the rename the staging copy is checkpointed and switched to
``journal_mode=DELETE``, so that no ``-wal`` file has to travel with it, and a
``-wal`` file beside the published path (a database once written in WAL mode) is
folded into it and removed first: a stale WAL beside a renamed-in file would be
replayed onto the wrong database by the next reader.

Every run is a row of ``refresh_runs`` in the staging copy, published with it: a
failed or killed run reaches the published database with the next refresh that
succeeds. ``new``, ``revised`` and ``deleted`` count the changes against the
published database, so a run that resumes interrupted work reports it too.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

from ingest.model import ended_by
from kb.config import Settings
from kb.lock import RefreshLock
from kb.progress import counted
from kb.store import Store, no_folder, now_iso

log = logging.getLogger("cryokb.refresh")

# A test hook: the refresh stops at the named point, writes its pid into the file named
# by PAUSE_FILE_ENV, and waits there until that file is removed, so that a test can
# SIGKILL it at a known place. Unset (always, outside tests), it does nothing at all.
PAUSE_ENV = "CRYOKB_TEST_PAUSE_AT"
PAUSE_FILE_ENV = "CRYOKB_TEST_PAUSE_FILE"
PAUSE_POINTS = ("staging", "harvest", "reparse", "extract", "graph", "publish", "published")

RUN_COLUMNS = {
    "id": int, "started": str, "finished": str, "outcome": str, "query": str, "query_version": str,
    "full": int, "reextract": int, "since": str, "until": str, "harvest_run_id": int,
    "fetched": int, "new": int, "revised": int, "deleted": int, "extracted": int, "reextracted": int,
    "problems": int, "error": str, "extractor_version": str, "resumed": int, "summary": str,
    "reparse": int, "reread": int, "rewritten": int,
}


class RefreshError(Exception):
    """A refresh that stopped: the message says where, and what the next run will do."""


class QueryChangedError(RefreshError):
    """The query is not the one the last successful harvest ran; only --full may change it."""


class PublishError(RefreshError):
    """The staging copy could not be put in place of the published file."""


@dataclass
class RefreshResult:
    """What one run did: the figures of ``refresh_runs`` and the printed summary."""

    run_id: int | None = None
    db: str = ""
    outcome: str = "running"
    started: str = ""
    finished: str | None = None
    seconds: float = 0.0
    query_version: str | None = None
    since: str | None = None
    until: str | None = None
    windows: int = 0
    fetched: int = 0
    new: int = 0
    revised: int = 0
    deleted: int = 0
    extracted: int = 0
    reextracted: int = 0
    reread: int = 0  # --reparse: stored records read again, and articles rewritten from them
    rewritten: int = 0
    problems: int = 0
    articles: int = 0
    error: str | None = None
    resumed: bool = False
    stale_lock: str | None = None
    extractor_version: str | None = None
    by_lesion_type: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DryRunResult:
    """What a refresh would fetch: esearch counts only."""

    db: str
    query_version: str | None
    since: str | None
    until: str
    windows: list[dict] = field(default_factory=list)
    would_fetch: int = 0
    counted_once: bool = True  # False: a record that two windows share is counted twice in would_fetch
    stored: int = 0
    would_extract: int = 0
    would_reread: int = 0
    staging_pending: bool = False

    def as_dict(self) -> dict:
        return {"dry_run": True, **asdict(self)}


def staging_path(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".staging")


# -- the test hook -----------------------------------------------------------------


def pause_point(name: str) -> None:
    """Stop here when a test asked to (see PAUSE_ENV); a no-op otherwise."""
    if os.environ.get(PAUSE_ENV) != name or not os.environ.get(PAUSE_FILE_ENV):
        return
    marker = Path(os.environ[PAUSE_FILE_ENV])
    marker.write_text(f"{os.getpid()} {name}\n")
    while marker.exists():
        time.sleep(0.02)


# -- the query -----------------------------------------------------------------------


def resolve_query(query: str | None) -> tuple[str, str | None]:
    """The query to run and its version: the given text (no version), else data/pubmed_query.toml."""
    if query:
        return query, None
    from ingest.harvest import load_default_query

    return load_default_query()


def check_query(store: Store, query: str, query_version: str | None, full: bool) -> None:
    """Refuse a query other than the one the knowledge base is refreshed with, unless --full.

    That query is the last successful refresh's: a one-off ``cryokb harvest --query`` into
    the same file keeps incremental state of its own and changes nothing here. Before any
    refresh, it is the last successful harvest's.
    """
    if full:
        return
    last, kind = _last_refresh(store), "refresh"
    if last is None:
        last, kind = store.last_successful_run(kind="harvest"), "harvest"
    if last is None or last["query"] == query:
        return
    old = f"version {last['query_version']}" if last.get("query_version") else _quoted(last["query"])
    new = f"version {query_version}" if query_version else _quoted(query)
    raise QueryChangedError(
        f"the query changed since the last successful {kind} (run {last['id']} of {last['started']}, "
        f"{old}; now {new}): an incremental refresh would miss older matches of the new query; "
        "rerun with --full to harvest everything it matches")


def _check_published_query(published: Path, query: str, query_version: str | None, full: bool) -> None:
    """check_query against the published file, before a staging copy of it is made: a run
    refused there left a copy of the whole database behind, which the next run resumed as
    an interrupted run's work. Where a staging copy is left already, it decides (the run
    that left it may carry on as --full: _carry_on), in _run_phases."""
    if full or not published.exists() or staging_path(published).exists():
        return
    reading = Store.reading(published)
    try:
        if reading.db["harvest_runs"].exists():
            check_query(reading, query, query_version, full)
    finally:
        reading.db.conn.close()


def _last_refresh(store: Store) -> dict | None:
    """The last successful refresh run, or None (none yet, or a store older than refresh_runs)."""
    if not store.db["refresh_runs"].exists():
        return None
    rows = list(store.db.query("select id, started, query, query_version from refresh_runs "
                               "where outcome = 'ok' order by id desc limit 1"))
    return rows[0] if rows else None


def _quoted(query: str, most: int = 60) -> str:
    return repr(query) if len(query) <= most else f"{query[:most]!r}..."


# -- staging ---------------------------------------------------------------------------


def fingerprint(db_path: Path) -> str:
    """Identity and last change of the published file (and of a non-empty -wal beside it)."""
    if not db_path.exists():
        return "absent"
    st = db_path.stat()
    mark = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    wal = Path(f"{db_path}-wal")
    if wal.exists() and wal.stat().st_size:
        wst = wal.stat()
        mark += f"+wal:{wst.st_ino}:{wst.st_size}:{wst.st_mtime_ns}"
    return mark


# The key in cryokb_meta of the last refresh run in the file a staging copy was made from.
PUBLISHED_RUNS_KEY = "staging_published_runs"
# The files SQLite keeps beside a database while it is written.
SIDE_FILES = ("-wal", "-shm", "-journal")


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("",) + SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _resumable(staging: Path, base: str, dry_run: bool = False) -> bool:
    """A staging copy left by an earlier run that is sound and was made from this published file."""
    if not staging.exists():
        return False
    then = "the next run would make a new one" if dry_run else "making a new one"
    try:
        conn = sqlite3.connect(staging)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            row = conn.execute("select value from cryokb_meta where key = 'staging_base'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        log.warning("staging copy %s is unreadable (%s): %s", staging, error, then)
        return False
    if not ok:
        log.warning("staging copy %s fails quick_check: %s", staging, then)
        return False
    if row is None or row[0] != base:
        log.warning("the published database changed since %s was made: %s", staging, then)
        return False
    return True


def check_published(db_path: Path) -> None:
    """Refuse a database path a refresh cannot publish to: its folder missing, the file
    another program's database (it must be ours before a copy of it is made), or one a
    later cryokb made. A dry run says so too, rather than plan a run that would fail."""
    if not db_path.parent.is_dir():
        raise RefreshError(f"{db_path.parent}: {no_folder(db_path.parent)} for the database")
    if db_path.exists():
        published = Store.reading(db_path)
        try:
            published.refuse_foreign(db_path)
            published.refuse_later_schema()  # before a copy of it is made, which would be named instead
        finally:
            published.db.conn.close()


def prepare_staging(db_path: Path) -> tuple[Store, bool]:
    """Open the staging copy to work in, resuming an interrupted one when it is sound.

    A new copy is made with the backup API into ``.staging.tmp`` and renamed, so that a
    copy cut short is never mistaken for a whole one.
    """
    staging = staging_path(db_path)
    base = fingerprint(db_path)
    if _resumable(staging, base):
        log.info("resuming the staging copy %s left by an earlier refresh", staging)
        return Store(staging).ensure_shape(), True
    carried = _unpublished_runs(staging, db_path)
    _settle_in_place(staging)  # kept until the new copy replaces it: a kill meanwhile loses none of its runs
    tmp = staging.with_name(staging.name + ".tmp")
    _remove_sqlite_files(tmp)
    if db_path.exists():
        _backup(db_path, tmp)
    _mark_copy(tmp, base, carried)
    pause_point("staging")
    for suffix in SIDE_FILES:  # a side file of the old copy would be replayed onto the new one
        Path(f"{staging}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, staging)
    return Store(staging).ensure_shape(), False


def _settle_in_place(staging: Path) -> None:
    """Fold an old copy's write-ahead log into it, so that the file alone holds its runs.
    A damaged one is removed, as it always was; one held by a reader is left as it is."""
    from kb.errors import damaged

    if not staging.exists():
        return
    try:
        conn = sqlite3.connect(staging)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        if damaged(error):
            log.warning("the old staging copy %s is damaged (%s): removed", staging, error)
            _remove_sqlite_files(staging)
        else:  # its runs were read, and go into the new copy; the file stays until that replaces it
            log.warning("the old staging copy %s cannot be settled (%s): left until the new copy replaces it",
                        staging, error)


def _mark_copy(copy: Path, base: str, carried: list[dict]) -> None:
    """Write into a new copy, before it is renamed into place, what it was made from and the
    runs carried into it, in one transaction: a copy killed before or after is whole or not
    there at all, never resumed without them."""
    store = Store(copy).ensure_shape()
    try:
        ensure_runs_table(store)
        with store.transaction():
            store.set_meta("staging_base", base)
            # the harvests the copy starts with are the published file's, none of its own runs'
            store.set_meta("staging_harvests", str(store.db.execute(
                "select coalesce(max(id), 0) from harvest_runs").fetchone()[0]))
            # and the refresh runs, published with the file it was copied from
            store.set_meta(PUBLISHED_RUNS_KEY, str(store.db.execute(
                "select coalesce(max(id), 0) from refresh_runs").fetchone()[0]))
            if carried:
                store.db["refresh_runs"].insert_all(carried)
        store.db.execute("PRAGMA journal_mode=DELETE")  # no -wal to leave behind in the rename
    finally:
        store.db.conn.close()


def _unpublished_runs(staging: Path, published: Path) -> list[dict]:
    """The runs a staging copy about to be discarded holds that the published file does not
    (failed, killed): they are carried into the new copy, so that they are still published
    with the next run that succeeds, under their own ids. Their work is not carried."""
    if not staging.exists():
        return []
    last = _last_published_run(published)
    try:
        with _read_only_connection(staging) as conn:
            if not _has(conn, "main", "refresh_runs"):
                return []
            conn.row_factory = sqlite3.Row
            rows = [dict(row) for row in conn.execute("select * from refresh_runs where id > ? order by id", [last])]
            published_with_base = _meta_number(conn, PUBLISHED_RUNS_KEY)
    except sqlite3.DatabaseError:
        return []  # unreadable: nothing to carry
    note = "its staging copy was discarded"
    for row in rows:
        row["harvest_run_id"] = None  # its harvest run goes with the discarded copy (and marks it carried)
        if row["id"] <= published_with_base:  # published once; the file now there (moved, restored) lacks it
            continue
        if row["outcome"] in ("running", "ok"):  # killed (close_interrupted_runs has not seen it: it goes now)
            row["outcome"] = "interrupted"
            row["error"] = row["error"] or "killed before it was published"
        if note not in (row["error"] or ""):  # carried before, from a copy discarded earlier
            row["error"] = "; ".join(filter(None, [row["error"], note]))
    return rows


def _backup(source: Path, target: Path) -> None:
    """Copy ``source`` page by page (a consistent snapshot even while others read it)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.commit()
    except sqlite3.DatabaseError as error:
        raise RefreshError(f"cannot copy {source} to {target}: {error}") from None
    finally:
        dst.close()
        src.close()


# -- refresh_runs ----------------------------------------------------------------------


def ensure_runs_table(store: Store) -> None:
    """The table of refresh runs, with the columns a newer cryokb records added to an older one's."""
    table = store.db["refresh_runs"]
    table.create(RUN_COLUMNS, pk="id", if_not_exists=True)
    for name, kind in RUN_COLUMNS.items():
        if name not in table.columns_dict:
            table.add_column(name, kind)
    table.create_index(["outcome"], if_not_exists=True)


def close_interrupted_runs(store: Store, published: Path) -> int:
    """Mark the runs of this staging copy that were killed (we hold the lock, so none is running).

    A run still 'running' died before it finished; one recorded 'ok' that the published
    file does not hold yet died while publishing.
    """
    last_published = _last_published_run(published)
    with store.transaction():  # a run carried from an earlier copy (no harvest run of its own here) is as it was
        cursor = store.db.execute(
            "update refresh_runs set outcome = 'interrupted', "
            "error = coalesce(error, 'killed before it was published; its work is published by a later run') "
            "where outcome = 'running' or (outcome = 'ok' and id > ? and harvest_run_id is not null)",
            [last_published])
        store.db.execute("update harvest_runs set outcome = 'interrupted' where outcome = 'running'")
    return cursor.rowcount


def _meta_number(conn: sqlite3.Connection, key: str) -> int:
    """A number a copy noted of itself in cryokb_meta (0 when it noted none: an older release's copy)."""
    if not _has(conn, "main", "cryokb_meta"):
        return 0
    row = conn.execute("select value from cryokb_meta where key = ?", [key]).fetchone()
    return int(row[0]) if row else 0


def _last_published_run(published: Path) -> int:
    with _read_only_connection(published) as conn:
        if conn is None or not _has(conn, "main", "refresh_runs"):
            return 0
        return conn.execute("select coalesce(max(id), 0) from refresh_runs").fetchone()[0]


def _save_run(store: Store, result: RefreshResult, **extra) -> int:
    row = {name: getattr(result, name) for name in RUN_COLUMNS if hasattr(result, name) and name != "id"}
    row.update(resumed=int(result.resumed), summary=json.dumps(result.by_lesion_type, sort_keys=True), **extra)
    with store.transaction():
        if result.run_id is None:
            return store.db["refresh_runs"].insert(row).last_pk
        store.db["refresh_runs"].update(result.run_id, row)
    return result.run_id


# -- the phases ----------------------------------------------------------------------


def make_client(settings: Settings):
    from ingest.eutils import EutilsClient

    return EutilsClient(base_url=settings.eutils_url, email=settings.email, api_key=settings.api_key,
                        max_tries=settings.max_tries, backoff_base=settings.backoff)


class _FromTheStart:
    """The store as harvest() sees it under --full: no earlier run, so everything is fetched."""

    def __init__(self, store: Store):
        self._store = store

    def successful_runs(self, *args, **kwargs):
        return []

    def __getattr__(self, name):
        return getattr(self._store, name)


def _bar(desc: str, unit: str, quiet: bool):
    from kb.progress import progressbar

    return progressbar(desc=desc, unit=unit, quiet=quiet)


def run_harvest(store: Store, settings: Settings, query: str, query_version: str | None,
                result: RefreshResult, *, full: bool, quiet: bool) -> int:
    """Fetch what is new or revised into the staging copy; returns the harvest run id."""
    from ingest.eutils import EutilsError
    from ingest.harvest import harvest

    client = make_client(settings)
    paused = False
    with _bar("harvest", "records", quiet) as bar:
        def progress(done: int, total: int) -> None:
            nonlocal paused
            bar.total, bar.n = total, done
            bar.refresh()
            if done and not paused:
                paused = True
                pause_point("harvest")

        try:
            outcome = harvest(client, _FromTheStart(store) if full else store, query,
                              query_version=query_version, batch_size=settings.batch_size, progress=progress)
        except EutilsError as error:
            counts = store.db.execute("select coalesce(fetched, 0), coalesce(new, 0), coalesce(revised, 0) "
                                      "from harvest_runs where kind = 'harvest' order by id desc limit 1").fetchone()
            result.fetched, result.new, result.revised = counts or (0, 0, 0)  # the failed run's row says them
            raise RefreshError(f"harvest stopped: {error}; the {result.fetched} records this run "
                               f"fetched before it are kept in {staging_path(settings.db)}, and the next "
                               "refresh resumes from there") from None
    result.since, result.until = outcome.since, outcome.until
    result.windows = len(outcome.windows)
    result.fetched = outcome.fetched
    result.problems += outcome.counts.problems
    return outcome.run_id


def count_reextract(store: Store, version: str, full: bool) -> int:
    """Articles extracted before that this run extracts again (stale version, revised, or --reextract)."""
    if "extracted_hash" not in store.db["articles"].columns_dict:
        return 0
    where = "deleted = 0 and extracted_hash is not null"
    params: list = []
    if not full:
        where += " and (extracted_hash != record_hash or extractor_version is null or extractor_version != ?)"
        params.append(version)
    return store.db.execute(f"select count(*) from articles where {where}", params).fetchone()[0]


def run_reparse(store: Store, result: RefreshResult, *, quiet: bool) -> None:
    """Read every stored record again with this version's parsers (kb.reparse), so that the
    extraction that follows reads the articles it rewrites."""
    from kb.reparse import ReparseResult, reparse

    done = ReparseResult()  # counted page by page: a run that fails partway records what it did
    with _bar("reparse", "records", quiet) as bar:
        bar.total = store.db["raw_records"].count

        def progress(read: int) -> None:
            if not bar.n:
                pause_point("reparse")  # after its first page is committed
            bar.update(read)

        try:
            reparse(store, on_page=progress, result=done)
        finally:
            result.reread, result.rewritten = done.read, done.changed
            result.problems += done.problems


def run_extract(store: Store, settings: Settings, result: RefreshResult, *, reextract: bool, quiet: bool) -> None:
    """Extract what is stale (kb.evidence.build), then rebuild the graph."""
    from kb import evidence, graph

    version = evidence.current_version()
    result.extractor_version = version
    result.reextracted = count_reextract(store, version, reextract)
    paused = False
    with _bar("extract", "articles", quiet) as bar:
        def on_total(total: int) -> None:
            bar.total = total
            bar.refresh()

        def progress(done: int) -> None:
            nonlocal paused
            bar.update(done)
            if not paused:
                paused = True
                pause_point("extract")

        built = evidence.build(store, full=reextract, batch_size=settings.extract_batch_size,
                               progress=progress, on_total=on_total)
    result.extracted = built.extracted
    pause_point("graph")
    with _bar("graph", "steps", quiet) as bar:
        graph.rebuild(store)
        bar.update(1)


# -- what changed ------------------------------------------------------------------------

LESION_SQL = """
select lt.value as lesion, count(distinct a.pmid) as articles
from {s}articles a, json_each(a.lesion_types) lt
where a.relevant = 1 and a.retracted = 0 and a.deleted = 0 and json_valid(a.lesion_types)
group by lt.value
"""
OUTCOME_SQL = """
select lt.value as lesion, count(*) as outcomes
from {s}articles a, json_each(a.lesion_types) lt join {s}outcomes o on o.pmid = a.pmid
where a.relevant = 1 and a.retracted = 0 and a.deleted = 0 and json_valid(a.lesion_types)
group by lt.value
"""


def _has(conn: sqlite3.Connection, schema: str, table: str, column: str | None = None) -> bool:
    if not conn.execute(f"select 1 from {schema}.sqlite_master where name = ?", [table]).fetchone():
        return False
    return column is None or any(r[1] == column for r in conn.execute(f"pragma {schema}.table_info({table})"))


def _by_lesion(conn: sqlite3.Connection, schema: str) -> dict[str, list[int]]:
    figures: dict[str, list[int]] = {}
    if not _has(conn, schema, "articles", "lesion_types"):
        return figures
    for lesion, n in conn.execute(LESION_SQL.format(s=f"{schema}.")):
        figures.setdefault(lesion, [0, 0])[0] = n
    if _has(conn, schema, "outcomes"):
        for lesion, n in conn.execute(OUTCOME_SQL.format(s=f"{schema}.")):
            figures.setdefault(lesion, [0, 0])[1] = n
    return figures


@contextmanager
def _read_only_connection(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A connection that cannot write, not even a checkpoint on close (None: no such file)."""
    if not path.exists():
        yield None
        return
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def _published_articles(conn: sqlite3.Connection | None) -> dict[str, tuple[str, int]]:
    if conn is None or not _has(conn, "main", "articles"):
        return {}
    return {pmid: (digest, deleted) for pmid, digest, deleted in
            conn.execute("select pmid, record_hash, deleted from articles")}


def compare_with_published(store: Store, published: Path, result: RefreshResult) -> None:
    """New, revised and deleted articles, and the evidence gained per lesion type, against the published file."""
    with _read_only_connection(published) as pub:
        before_articles = _published_articles(pub)
        before = _by_lesion(pub, "main") if pub is not None else {}
    conn = store.db.conn
    result.new = result.revised = result.deleted = 0
    for pmid, digest, deleted in conn.execute("select pmid, record_hash, deleted from articles"):
        old = before_articles.get(pmid)
        if old is None:
            result.new += not deleted
        elif deleted:
            result.deleted += not old[1]
        elif old[0] != digest:
            result.revised += 1
    result.articles = conn.execute("select count(*) from articles where deleted = 0").fetchone()[0]
    after = _by_lesion(conn, "main")
    delta = {}
    for lesion in sorted(set(before) | set(after)):
        old, new = before.get(lesion, [0, 0]), after.get(lesion, [0, 0])
        change = {"articles": new[0] - old[0], "outcomes": new[1] - old[1]}
        if any(change.values()):
            delta[lesion] = change
    result.by_lesion_type = delta


# -- publishing ----------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle_published_wal(published: Path) -> bool:
    """Fold a -wal beside the published file into it and remove it, or refuse to publish;
    True if the published file was changed (its content stays the same).

    Only a file last written in WAL mode (by a direct harvest or import) has one. If
    another process holds it in WAL mode we cannot tell its frames from ours after the
    rename, so we stop and keep the staging copy. Side files with no published file
    (it was removed by hand) belong to no database, and the renamed copy would take
    them for its own: they are removed. A rollback journal left by a killed writer is
    rolled back into the file it belongs to, which opening that file does.
    """
    wal = Path(f"{published}-wal")
    journal = Path(f"{published}-journal")
    if not published.exists():
        for orphan in (wal, Path(f"{published}-shm"), journal):
            if orphan.exists():
                log.warning("removing %s: its database is gone, and the published copy must not take it", orphan)
                orphan.unlink()
        return False
    if journal.exists() and not wal.exists():
        conn = sqlite3.connect(published, timeout=5)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
        finally:
            conn.close()
        return True
    if not wal.exists():
        return False
    try:
        conn = sqlite3.connect(published, timeout=5)
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        mode = str(error)
    if mode != "delete" or (wal.exists() and wal.stat().st_size):
        raise PublishError(f"cannot publish: another process has {published} open in WAL mode ({mode}); "
                           f"stop it and rerun (the finished work stays in {staging_path(published)})")
    Path(f"{published}-shm").unlink(missing_ok=True)
    wal.unlink(missing_ok=True)
    return True


def publish(store: Store, published: Path) -> None:
    """Make the staging copy self-contained (no -wal), then rename it over the published file.

    Refused if the published file changed since it was copied (a harvest or import run
    straight into it meanwhile): the next refresh starts from a fresh copy that has it.
    """
    staging = staging_path(published)
    base = store.get_meta("staging_base")
    conn = store.db.conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    conn.close()
    if mode != "delete":
        raise PublishError(f"cannot publish {staging}: it stays in journal mode {mode}")
    if check != "ok":
        raise PublishError(f"cannot publish {staging}: quick_check says {check}")
    if Path(f"{staging}-wal").exists():
        raise PublishError(f"cannot publish {staging}: its -wal file is still there")
    Path(f"{staging}-shm").unlink(missing_ok=True)
    _fsync(staging)
    _check_unchanged(published, base)
    if _settle_published_wal(published):
        base = fingerprint(published)
    pause_point("publish")
    _check_unchanged(published, base)  # again, as close to the rename as it gets
    _keep_access(published, staging)  # last: a read-only mode given earlier kept a refusal from being recorded
    os.replace(staging, published)
    _fsync(published.parent)
    log.info("published %s", published)


def _keep_access(published: Path, staging: Path) -> None:
    """Give the copy the published file's permissions and owners: made with the runner's
    umask, it would otherwise lock a group (the server's, a curator's) out, or let others in."""
    try:
        held = published.stat()
    except FileNotFoundError:
        return
    os.chmod(staging, stat.S_IMODE(held.st_mode))
    try:
        os.chown(staging, held.st_uid, held.st_gid)
    except PermissionError:  # not root: the group, where the runner is in it
        try:
            os.chown(staging, -1, held.st_gid)
        except PermissionError:
            log.warning("%s now belongs to group %d, the refresh's, not %d as before", published,
                        os.getgid(), held.st_gid)
        if held.st_uid != os.geteuid():
            log.warning("%s now belongs to user %d, who ran the refresh, not %d as before", published,
                        os.geteuid(), held.st_uid)


def _check_unchanged(published: Path, base: str) -> None:
    if fingerprint(published) != base:
        raise PublishError(f"{published} was written by another command during this refresh; publishing would "
                           "lose that change, so nothing was published: run the refresh again")


def _finalize(store: Store, result: RefreshResult) -> None:
    """The meta a reader of the published file sees (``staging_base`` stays: it only ever matches
    the file this copy was made from, so a copy killed while publishing can still be resumed)."""
    store.set_meta("last_refresh", result.finished or now_iso())
    store.set_meta("publish_id", uuid.uuid4().hex)
    if result.query_version:
        store.set_meta("query_version", result.query_version)


# -- the whole run --------------------------------------------------------------------------


def refresh(settings: Settings, *, full: bool = False, reextract: bool = False, reparse: bool = False,
            wait: bool = False, quiet: bool = True) -> RefreshResult:
    """Harvest, extract, rebuild the graph and publish ``settings.db`` (see the module docstring).

    ``reparse``: read every stored record again before extracting (kb.reparse), which a
    run also does by itself when the stored records were read by other parsers than this
    cryokb's (after an upgrade whose parsers read PubMed records better).

    Raises LockHeld when another refresh or a harvest runs (unless ``wait``), QueryChangedError,
    RefreshError for a failed run (its staging copy kept for the next run).
    """
    # A symlinked --db: the lock, the staging copy and the rename act on the real file,
    # which the rename would otherwise turn the link into a copy of.
    settings = replace(settings, db=Path(settings.db).resolve())
    published = settings.db
    check_published(published)
    clock = time.monotonic()
    lock = RefreshLock(published)
    try:
        lock.acquire(wait=wait)
    except KeyboardInterrupt as stop:  # the staging copy there, if any, is the other run's
        raise RefreshError(f"{stop or 'interrupted (Ctrl-C)'} while waiting for another refresh of {published} "
                           "to finish; this run did nothing") from None
    store = result = None
    try:
        query, query_version = resolve_query(settings.query)
        _check_published_query(published, query, query_version, full)
        store, resumed = prepare_staging(published)
        ensure_runs_table(store)
        closed = close_interrupted_runs(store, published)
        if closed:
            log.warning("%d earlier refresh run(s) were interrupted; this run completes their work", closed)
        full = full or _carry_on(store, "full")
        reparse = reparse or _carry_on(store, "reparse") or _parsers_changed(store)
        result = RefreshResult(db=str(published), started=now_iso(), query_version=query_version, resumed=resumed,
                               stale_lock=lock.stale.describe() if lock.stale else None)
        result.run_id = _save_run(store, result, query=query, full=int(full), reextract=int(reextract),
                                  reparse=int(reparse))
        harvest_id = _run_phases(store, settings, query, result, full=full, reextract=reextract, reparse=reparse,
                                 quiet=quiet)
        result.outcome, result.finished = "ok", now_iso()
        result.seconds = round(time.monotonic() - clock, 2)
        _save_run(store, result, harvest_run_id=harvest_id)
        _finalize(store, result)
        with _bar("publish", "files", quiet) as bar:
            try:
                publish(store, published)
            except (PublishError, OSError, sqlite3.DatabaseError) as error:
                _record_unpublished(published, result, error)
                raise
            bar.update(1)
        pause_point("published")
        return result
    except KeyboardInterrupt as stop:
        if result is None or result.outcome != "ok" or staging_path(published).exists():
            raise
        # the staging copy is the published file now: the run has done its work
        log.warning("%s after %s was published: the run had finished", stop or "interrupted", published)
        return result
    except sqlite3.DatabaseError as error:
        if store is not None:
            store.db.conn.close()
            store = None
        told = _told(error, published)
        if told is error:
            raise
        raise told from None
    finally:
        if store is not None:
            store.db.conn.close()  # a no-op after publish; after a failure it frees the staging copy
        lock.release()


def _told(error: sqlite3.DatabaseError, published: Path) -> BaseException:
    """An SQLite error met in a refresh, told of the file it lies in.

    Named the published file, an operator was told to rebuild a sound database, while a
    damaged staging copy was resumed, and failed, run after run. A staging copy that
    fails SQLite's integrity check where the published file passes it is moved aside, and
    the next run makes a new one; where neither or both fail (FTS5's own damage is not
    checked by SQLite before 3.44), both are named and nothing is moved.
    """
    from kb.errors import damaged, locked, sqlite_trouble

    staging = staging_path(published)
    if locked(error):  # another process: writing to the published file, or a reader holding the copy
        return RefreshError(f"{published} or its staging copy {staging} is locked by another process (a command "
                            "writing to the database, or a reader holding the copy); try again when it has finished")
    if not damaged(error):
        message = sqlite_trouble(error, staging)  # what a refresh writes, it writes in the copy
        return error if message is None else RefreshError(message)
    published_sound, why = _checked(published)
    if published_sound is False:
        return error  # the published file's: the command names it
    if published_sound and _checked(staging)[0] is False:
        aside = _move_aside(staging)
        return RefreshError(f"the staging copy {staging} was damaged ({error}); it is moved aside to {aside}, and "
                            f"the next refresh starts again from a copy of {published}")
    unchecked = f"; {published} could not be checked now ({why})" if why else ""
    return RefreshError(f"the staging copy {staging} or {published} is damaged ({error}), and SQLite's integrity "
                        f"check does not say which{unchecked}: check both, with PRAGMA integrity_check and "
                        "INSERT INTO articles_fts(articles_fts) VALUES('integrity-check'), and move the damaged "
                        "one aside")


def _move_aside(staging: Path) -> Path:
    """The damaged copy, and its side files, renamed out of the way rather than deleted: the
    runs it recorded, and what an operator may want to look at, are kept."""
    aside = staging.with_name(staging.name + ".damaged")
    _remove_sqlite_files(aside)
    for suffix in ("",) + SIDE_FILES:
        if Path(f"{staging}{suffix}").exists():
            os.replace(f"{staging}{suffix}", f"{aside}{suffix}")
    return aside


def _checked(path: Path) -> tuple[bool | None, str | None]:
    """Whether the file passes integrity_check (quick_check misses an index that no longer
    matches its table); None, with why, when it cannot be checked now (locked, busy)."""
    from kb.errors import damaged

    try:
        with _read_only_connection(path) as conn:
            return conn is None or conn.execute("PRAGMA integrity_check(1)").fetchone()[0] == "ok", None
    except sqlite3.DatabaseError as error:
        return (False, None) if damaged(error) else (None, str(error))


def _record_unpublished(published: Path, result: RefreshResult, error: BaseException) -> None:
    """Record a run whose publishing was refused (a reader holding the published file, a
    write into it meanwhile) as failed, with why: recorded "ok" before the rename, it read
    later as a run killed before it was published."""
    staging = staging_path(published)
    if not staging.exists():  # renamed already: published, as the run it records
        return
    result.outcome, result.error = "failed", f"not published: {error}"
    try:
        store = Store(staging)
        try:
            _save_run(store, result)
        finally:
            store.db.conn.close()
    except Exception as failure:  # noqa: BLE001 - the refusal is the error to tell
        log.warning("could not record the refused publish in %s: %s", staging, failure)


# What a --full or --reparse run left unfinished if no successful run of this kind followed
# its start (harvest_runs), whether such a run straight into the published file counts,
# and what carrying it on does. A harvest there is an ordinary one, not the full one; a
# reparse of every record there is the reparse itself, which a new copy then starts from.
CARRIED_ON = {
    "full": ("kind = 'harvest'", False, "a --full one whose harvest did not finish: this run carries it on, "
                                        "from the start of the query's records"),
    "reparse": ("kind = 'reparse' and source = 'raw_records'", True,
                "one that set out to read every stored record again (--reparse, or parsers changed since they "
                "were read) and did not finish: this run reads them again"),
}


def _unfinished(store: Store, flag: str, harvests: Store | None = None) -> int | None:
    """The id of the staging copy's last run when it was a --full or --reparse one (``flag``)
    that did not finish that part of its work. The next run, from a schedule that never says
    either, resumes the copy: as an ordinary run it fetched only what changed since the last
    success, and the older records the full run had still to fetch were never fetched at all;
    it published articles read again only in part. A run that failed after that part
    (extracting, publishing) needs no second one. ``harvests``: where to look for the run
    that finished the work, when not in ``store`` (a dry run's published file)."""
    table = store.db["refresh_runs"]
    if not table.exists() or flag not in table.columns_dict:  # a copy from before --reparse
        return None
    last = store.db.execute(f"select id, [{flag}], outcome, started from refresh_runs order by id desc limit 1"
                            ).fetchone()
    if last is None or not last[1] or last[2] == "ok":
        return None
    finished, published_counts, _ = CARRIED_ON[flag]
    since = 0 if published_counts else int(store.get_meta("staging_harvests", "0"))  # runs of this copy only
    done = (harvests or store).db.execute(
        f"select 1 from harvest_runs where {finished} and outcome = 'ok' and started >= ? and id > ?",
        [last[3], since]).fetchone()
    return None if done else last[0]


def _carry_on(store: Store, flag: str, harvests: Store | None = None) -> bool:
    unfinished = _unfinished(store, flag, harvests)
    if unfinished is not None:
        log.warning("the staging copy holds refresh run %d, %s", unfinished, CARRIED_ON[flag][2])
    return unfinished is not None


def _parsers_changed(store: Store) -> bool:
    from kb.reparse import parsers_changed

    changed = parsers_changed(store)
    if changed:
        log.info("the stored records were read by other parsers than this cryokb's: this run reads them again")
    return changed


def _run_phases(store: Store, settings: Settings, query: str, result: RefreshResult, *, full: bool,
                reextract: bool, reparse: bool, quiet: bool) -> int:
    """Harvest, read again (``reparse``), extract and compare; a failure (a refused query
    change too) is recorded in the run's row, then raised."""
    try:
        check_query(store, query, result.query_version, full)
        harvest_id = run_harvest(store, settings, query, result.query_version, result, full=full, quiet=quiet)
        if reparse:
            run_reparse(store, result, quiet=quiet)
        run_extract(store, settings, result, reextract=reextract, quiet=quiet)
        compare_with_published(store, Path(settings.db), result)
        return harvest_id
    except BaseException as error:
        result.outcome, result.finished = "failed", now_iso()
        result.error = ended_by(error)
        try:
            _save_run(store, result)
        except Exception as failure:  # noqa: BLE001 - the same full disk, say: the first error is the one to tell
            log.warning("could not record the failed refresh in the staging copy: %s", failure)
        raise


def dry_run(settings: Settings, *, full: bool = False, reextract: bool = False, reparse: bool = False
            ) -> DryRunResult:
    """What a refresh would fetch and extract: esearch only, nothing written, no lock taken."""
    from ingest.harvest import distinct_ids, format_date, plan_windows, resume_point, utc_today
    from kb import evidence
    from kb.reparse import parsers_changed

    published = Path(settings.db)
    check_published(published)
    query, query_version = resolve_query(settings.query)
    today = utc_today()
    staging = staging_path(published)
    resumed = _resumable(staging, fingerprint(published), dry_run=True)
    result = DryRunResult(db=str(published), query_version=query_version, since=None, until=format_date(today),
                          staging_pending=resumed)
    since = None
    awaiting: set[str] = set()
    with _read_only(staging if resumed else published) as store:  # the store the run would work in
        if store is not None:
            made_anew = None if resumed else store
            full = full or _staging_carries_on(staging, "full", made_anew)
            reparse = reparse or _staging_carries_on(staging, "reparse", made_anew)
            check_query(store, query, query_version, full)
            since = None if full else resume_point(store, query, today)
            result.stored = store.db.execute("select count(*) from articles where deleted = 0").fetchone()[0]
            result.would_extract = _count_stale(store, evidence.current_version(), reextract)
            reparse = reparse or parsers_changed(store)
            result.would_reread = store.db["raw_records"].count if reparse else 0
            awaiting = set(store.pending(query))
    client = make_client(settings)
    if since is None:
        windows = plan_windows(client, query, latest=today)
    else:
        result.since = format_date(since)
        windows = [w for datetype in ("edat", "mdat")
                   for w in plan_windows(client, query, datetype=datetype, mindate=since, maxdate=today)]
    result.windows = [{"window": w.describe(), "count": w.search.count} for w in windows]
    if awaiting:
        result.windows.append({"window": "found by earlier runs, not returned by efetch then",
                               "count": len(awaiting)})
    ids = distinct_ids(windows)
    result.counted_once = ids is not None
    result.would_fetch = len(ids | awaiting) if ids is not None else sum(w["count"] for w in result.windows)
    return result


def _staging_carries_on(staging: Path, flag: str, published: Store | None) -> bool:
    """Whether the next run will carry on a --full or --reparse one its staging copy holds
    (a dry run says what that run would do). ``published``: the published file, when the
    copy is not resumed but made anew from it with the old copy's runs carried over: a run
    of the published file then finishes the work where CARRIED_ON says it counts."""
    counted = published if published is not None and CARRIED_ON[flag][1] else None
    try:
        with _read_only(staging) as copy:
            return copy is not None and _carry_on(copy, flag, harvests=counted)
    except sqlite3.DatabaseError:
        return False  # a copy the run will not resume


def _count_stale(store: Store, version: str, full: bool) -> int:
    """kb.evidence.count_stale, also for a database that was never extracted."""
    from kb import evidence

    if "extractor_version" not in store.db["articles"].columns_dict:
        return store.db.execute("select count(*) from articles where deleted = 0").fetchone()[0]
    return evidence.count_stale(store, version, full)


@contextmanager
def _read_only(path: Path) -> Iterator[Store | None]:
    """A Store over a read-only connection (None when there is no file, or no harvest in it)."""
    import sqlite_utils

    with _read_only_connection(path) as conn:
        if conn is None:
            yield None
            return
        db = sqlite_utils.Database(conn)
        yield Store(db) if "articles" in db.table_names() and "harvest_runs" in db.table_names() else None


# -- for the command line -------------------------------------------------------------------


def format_summary(result: RefreshResult) -> str:
    """The short report a person reads after a run (the same figures as --json)."""
    window = (f"{result.since} to {result.until}" if result.since else f"everything up to {result.until}"
              ) if result.until else "no window"
    lines = [
        f"Refresh run {result.run_id}: {result.outcome} in {result.seconds:.1f} s; published {result.db} "
        f"({result.articles} articles)",
        f"  harvest of {window}: {result.fetched} records fetched; {result.new} new, {result.revised} revised, "
        f"{result.deleted} deleted; {counted(result.problems, 'problem')}",
        f"  extraction ({result.extractor_version}): {result.extracted} articles "
        f"({result.reextracted} of them re-extracted)",
    ]
    if result.reread:
        lines.append(f"  reparse: {result.reread} stored records read again; {result.rewritten} articles rewritten "
                     "from them (their evidence extracted again)")
    if result.resumed:
        lines.append("  resumed the work of an interrupted or failed run")
    if result.by_lesion_type:
        lines.append("  new evidence by lesion type:")
        for lesion, change in result.by_lesion_type.items():
            lines.append(f"    {lesion}: {change['articles']:+d} articles, {change['outcomes']:+d} outcomes")
    else:
        lines.append("  no new evidence")
    return "\n".join(lines)


def format_dry_run(result: DryRunResult) -> str:
    lines = [f"Dry run for {result.db}: nothing fetched, nothing written"]
    if result.staging_pending:
        lines.append("  a staging copy from an interrupted or failed run is waiting to be resumed")
    lines.append(f"  window {result.since or 'everything'} to {result.until}:")
    for window in result.windows or [{"window": "(no matching records)", "count": 0}]:
        lines.append(f"    {window['window']}: {window['count']} records")
    twice = "" if result.counted_once else " (overlapping windows counted twice)"
    lines.append(f"  would fetch up to {result.would_fetch} records{twice}; "
                 f"{result.stored} stored now, {result.would_extract} of them would be (re-)extracted")
    if result.would_reread:
        lines.append(f"  would read {result.would_reread} stored records again with this cryokb's parsers")
    return "\n".join(lines)


@contextmanager
def command_logging(verbose: int, quiet: bool, log_file: Path | None):
    """Timestamped log lines on stderr (warnings, or more with -v) and in ``log_file`` (info and up).

    Yields ``note_failure(message)``, which puts the one-line error the command prints
    into the log file too (only there: stderr gets it from the command), so that the
    file alone tells what every scheduled run did. The handlers are removed afterwards,
    so that running the command twice in one process (tests) does not double any line.
    """
    from kb.config import ConfigError

    logger = logging.getLogger("cryokb")
    stderr_level = logging.ERROR if quiet and not verbose else (
        logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    handlers = [logging.StreamHandler()]
    handlers[0].setLevel(stderr_level)
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"log file {log_file}: cannot open: {error.strerror}") from None
        handlers[1].setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(min(h.level for h in handlers))
    logger.propagate = False

    def note_failure(message: str) -> None:
        for handler in handlers[1:]:
            handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None))

    try:
        yield note_failure
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(old_level)
        logger.propagate = old_propagate
