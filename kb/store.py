"""The article store: PubMed records in SQLite, through sqlite-utils.

Every write of a batch happens in one transaction (``Database.atomic``), so a run
killed at any moment leaves the database as it was after the last whole batch, and
the next run simply upserts again. Articles are keyed by PMID; a record whose raw
bytes are unchanged is left alone, which is what makes re-running an import or a
harvest change nothing.

The schema is documented in README ("Database schema") and applied by
:meth:`Store.ensure_shape`, which is idempotent.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
import zlib
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator, NamedTuple

import sqlite_utils

from ingest.model import Article, Deletion, ParseProblem, SaveCounts
from kb.lock import LockInfo



def _raw_compression() -> tuple[Callable[[bytes, int], bytes], int]:
    """How a raw record is compressed: Intel's ISA-L where its wheel installs (zlib's
    format, about four times faster; any zlib reads it back), at its fastest level, 0:
    records are written far more often than read again, and level 1 makes them a seventh
    smaller and the import 6% slower. Elsewhere the standard zlib at level 1, since its
    level 0 stores the bytes as they are."""
    try:
        from isal.isal_zlib import compress
        return compress, 0
    except ImportError:
        from zlib import compress
        return compress, 1


_compress, RAW_LEVEL = _raw_compression()

log = logging.getLogger("cryokb.store")

# The shape of a store, noted in it (cryokb_meta 'schema_version'): 2 added journals.medline_ta.
# A cryokb refuses to write to a store of a later shape than it knows.
SCHEMA_VERSION = 2
SCHEMA_KEY = "schema_version"

ARTICLE_COLUMNS = {
    "pmid": str,
    "version": int,
    "title": str,
    "abstract": str,
    "abstract_sections": str,  # JSON: [{"label", "nlm_category", "text"}]
    "journal_id": str,
    "volume": str,
    "issue": str,
    "pages": str,
    "pub_date": str,
    "pub_year": int,
    "entrez_date": str,
    "revised_date": str,
    "completed_date": str,
    "languages": str,  # JSON array
    "publication_types": str,  # JSON array of names, for _facet_array
    "mesh": str,  # JSON array of descriptor names
    "keywords": str,  # JSON array
    "authors": str,  # JSON array of display names
    "doi": str,
    "pmcid": str,
    "status": str,
    "is_book": int,
    "retracted": int,
    "deleted": int,
    "deleted_at": str,
    "source_format": str,
    "record_hash": str,
    "first_seen": str,
    "last_updated": str,
}

ROWID_ARTICLE_COLUMNS = ("rowid",) + tuple(ARTICLE_COLUMNS)
_TITLE = ROWID_ARTICLE_COLUMNS.index("title")
_ABSTRACT = ROWID_ARTICLE_COLUMNS.index("abstract")

CHILD_TABLES = (
    "article_authors",
    "article_mesh",
    "publication_types",
    "keywords",
    "article_links",
)

# Column orders of the row tuples that prepare_article builds.
JOURNAL_COLUMNS = ("id", "title", "iso_abbreviation", "issn", "issn_linking", "nlm_unique_id", "medline_ta")
AUTHOR_COLUMNS = ("id", "last_name", "fore_name", "initials", "collective_name", "display_name")
MESH_TERM_COLUMNS = ("descriptor", "ui")
CHILD_COLUMNS = {
    "article_authors": ("pmid", "position", "author_id", "affiliations", "orcid"),
    "article_mesh": ("pmid", "descriptor", "major", "qualifiers"),
    "publication_types": ("pmid", "name", "ui"),
    "keywords": ("pmid", "keyword"),
    "article_links": ("pmid", "position", "ref_type", "ref_pmid", "source"),
}
RAW_COLUMNS = ("pmid", "format", "compressed", "sha1")

# Indexes on columns Datasette filters and sorts by; Store.bulk_load builds them after
# a large import rather than row by row.
SECONDARY_INDEXES = {
    "articles": [["pub_year"], ["journal_id"], ["entrez_date"], ["revised_date"], ["deleted"], ["retracted"]],
    "article_authors": [["author_id"]],
    "article_mesh": [["descriptor"]],
    "publication_types": [["name"]],
    "keywords": [["keyword"]],
    "article_links": [["ref_type"], ["ref_pmid"]],
    "harvest_runs": [["kind", "outcome"]],
}
# Columns added after stores were first made: ensure_shape adds them to an older store,
# so a file given to cryokb need not have them yet (Store.refuse_foreign), then runs the
# statements that move what earlier releases kept elsewhere into them.
LATER_COLUMNS = (
    # iso_abbreviation held MEDLINE's TA (NLM's abbreviation, not the ISO one): moved where
    # only MEDLINE text gave the journal, and cleared where XML gave it too, as either may
    # have been written last (reading the stored records again fills both in).
    ("journals", "medline_ta", str, (
        "update journals set medline_ta = iso_abbreviation, iso_abbreviation = null where id not in "
        "(select journal_id from articles where source_format = 'xml' and journal_id is not null)",
        "update journals set iso_abbreviation = null where id in (select journal_id from articles "
        "where source_format = 'medline' and journal_id is not null)",
    )),
)
# What tells a cryokb store, perhaps one whose creation was cut short, from another
# program's database: a table and a column of it that is cryokb's own (plain names such as
# "authors" are common).
OUR_MARKS = (("journals", "nlm_unique_id"), ("articles", "record_hash"), ("harvest_runs", "query_version"),
             ("cryokb_meta", "key"))
# The page cache (KiB, negative as PRAGMA cache_size takes it) indexes are built with (Store._ensure_indexes).
INDEX_BUILD_CACHE = -8192
# Below this many records an import keeps the indexes: rebuilding them is not worth it.
BULK_LOAD_MIN = 2000
# Seconds between the checkpoints another thread makes during a bulk load, and the pages
# of write-ahead log (32 KiB each) after which the writer makes one itself, should that
# thread lag behind.
BULK_CHECKPOINT_EVERY = 0.3
BULK_CHECKPOINT = 5_000
# Seconds a write waits for another process's transaction (an import batch, the index
# build after a bulk load) before SQLite gives up with "database is locked".
BUSY_TIMEOUT = 30.0
# Seconds a run that failed on another process's lock waits for that lock to record its
# end (else the run is called interrupted later: Store._close_dead_runs).
QUIET_WAIT = 2.0
# What SQLite says to the loser of a race to create a database's tables (Store.ensure_shape).
SHAPE_RACES = ("already exists", "database is locked")


@contextmanager
def transaction(db: sqlite_utils.Database):
    """sqlite-utils' ``atomic()``, begun IMMEDIATE: the write lock taken as the transaction
    begins, nested blocks savepoints.

    Why: ``atomic()`` begins DEFERRED, and a batch reads (which PMIDs are stored) before it
    writes. If another process commits in between, SQLite refuses the first write at once
    with "database is locked", without waiting BUSY_TIMEOUT for the other writer; taking
    the lock first makes every writer wait its turn.
    """
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class StoreError(Exception):
    """A problem with the database file itself (not a PubMed record)."""


# What SQLite says when it cannot write beside a write-ahead-logged database (its -shm file).
READ_ONLY_MEDIA = ("unable to open database file", "readonly database")


def on_read_only_media(error: BaseException | None) -> bool:
    """Whether SQLite failed because the database cannot be written (a read-only mount)."""
    return isinstance(error, sqlite3.DatabaseError) and any(words in str(error) for words in READ_ONLY_MEDIA)


def _locked_out(exc: BaseException | None) -> bool:
    """Whether a write failed because another process held the database past BUSY_TIMEOUT
    (kb.errors.locked_out)."""
    from kb.errors import locked_out  # kb.errors names this module's errors

    return locked_out(exc)


def no_folder(folder: Path) -> str:
    """Why ``folder`` cannot hold a file (``is_dir()`` is False): missing, or a file itself,
    or missing below a file (``notes.txt/kb/``), which no mkdir would mend."""
    if folder.exists():
        return "a file, not a folder"
    above = next((parent for parent in folder.parents if parent.exists()), None)
    return f"no such folder ({above} is a file)" if above is not None and not above.is_dir() else "no such folder"


def _unwritable(path: Path) -> str | None:
    """Why a database at ``path`` cannot be written, where the system tells: SQLite says
    only that it is "unable to open database file"."""
    folder = path.resolve().parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "the file system is read-only"
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return f"its folder {folder} cannot be written"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file cannot be written"
    return None


def immutable_uri(db_path: str | Path) -> str:
    """The URI that opens a database read-only without its -wal and -shm files."""
    return f"{Path(db_path).resolve().as_uri()}?immutable=1"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def record_hash(article: Article) -> str:
    """Hash of the record as read: the same record read again is 'unchanged'."""
    payload = article.raw if article.raw is not None else json.dumps(
        article.to_dict(), sort_keys=True
    ).encode()
    return hashlib.sha1(payload).hexdigest()


def author_id(author) -> int:
    """A stable integer id from the name, so batches need no lookup round trip."""
    return _author_id(author.last_name, author.fore_name, author.initials, author.collective_name)


def _author_id(last: str | None, fore: str | None, initials: str | None, collective: str | None) -> int:
    key = f"{last or ''}|{fore or ''}|{initials or ''}|{collective or ''}".lower()
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=7).digest(), "big")


class Store:
    """The cryokb database. ``Store(path)`` opens (or creates) it; call ensure_shape()."""

    def __init__(self, db: str | Path | sqlite_utils.Database):
        if isinstance(db, sqlite_utils.Database):
            self.db = db
        else:
            path = Path(db)
            if path.exists() and path.is_dir():
                raise StoreError(f"{path} is a directory, not a database file")
            if not path.parent.is_dir():  # SQLite says only "unable to open database file"
                raise StoreError(f"cannot open database {path}: {path.parent}: {no_folder(path.parent)}")
            try:
                # One writer thread may use the connection (kb.importing), never two at once.
                self.db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False,
                                                                timeout=BUSY_TIMEOUT))
                self._tune()
            except Exception as exc:  # sqlite3.DatabaseError: file is not a database
                why = _unwritable(path) if on_read_only_media(exc) else None
                hint = f" ({why}; commands that only read it, stats and serve among them, still work)" if why else ""
                raise StoreError(f"cannot open database {path}: {exc}{hint}") from exc

    def transaction(self):
        """A write transaction that waits its turn behind other writers (see :func:`transaction`)."""
        return transaction(self.db)

    @classmethod
    def reading(cls, db_path: str | Path) -> "Store":
        """A store that will only be read (``cryokb stats``): on read-only media, where
        SQLite cannot open a write-ahead-logged database for writing, opened immutable;
        so is a file we may not write, beside which SQLite would otherwise leave -wal and
        -shm files as read-only as the file (which then refuse every write, the owner's too,
        once the file is writable again)."""
        path = Path(db_path)
        if not path.exists() or os.access(path, os.W_OK):
            try:
                return cls(db_path)
            except StoreError as exc:
                if not on_read_only_media(exc.__cause__):
                    raise
        wal = Path(f"{db_path}-wal")
        if wal.exists() and wal.stat().st_size:
            log.warning("%s cannot be written, and the changes in %s are not read", db_path, wal)
        return cls(sqlite_utils.Database(sqlite3.connect(immutable_uri(db_path), uri=True)))

    def _tune(self) -> None:
        """Connection settings for bulk writes.

        synchronous=NORMAL is safe with WAL: a killed process never corrupts the
        database or loses a committed batch; only a power cut may undo the last
        few commits, which the next run fetches again. 32 KiB pages (applied only
        when the file is new) hold article rows (title, abstract and its sections,
        ~5 KB) without overflow pages, and fewer pages make fewer B-tree splits and
        write-ahead log frames: an import of 100,000 synthetic records took 10.5-10.7 s
        against 11.0-11.3 s with 16 KiB pages, the store 4% smaller, Datasette's pages
        as fast (tests/benchmarks/bench_pages.py, 20,000 articles).

        Foreign keys are declared (Datasette links by them) but not enforced: a batch
        writes journals, authors and MeSH terms before the rows that name them, in one
        transaction, so every reference holds by construction (tests run SQLite's
        foreign_key_check after imports, revisions and deletions), and enforcing them
        cost a fifth of an import's SQL time in parent lookups.
        """
        for pragma in ("page_size = 32768", "foreign_keys = OFF", "synchronous = NORMAL", "cache_size = -65536"):
            self.db.execute(f"PRAGMA {pragma}")

    def refuse_foreign(self, path: str | Path) -> None:
        """Refuse a database that holds another program's tables or views: nothing of
        cryokb's (OUR_MARKS), or a table of a store's name without the columns a store
        gives it. A mistyped --db must not have cryokb's tables written into it; a PubMed
        tool of another's has a journals table with an nlm_unique_id column too."""
        db = self.db
        tables = [name for name in db.table_names() + db.view_names() if not name.startswith("sqlite_")]
        if tables and not any(table in tables and column in db[table].columns_dict for table, column in OUR_MARKS):
            raise StoreError(f"{path} is another program's SQLite database (tables: {', '.join(tables[:5])}"
                             f"{', ...' if len(tables) > 5 else ''}); give --db a new file or a cryokb database")
        for table, columns in store_columns().items():
            if table not in tables:
                continue
            present = db[table].columns_dict
            lacking = [column for column in columns if column not in present]
            if lacking:
                raise StoreError(f"{path} is another program's SQLite database: its table {table} has no column "
                                 f"{', '.join(lacking[:5])}{', ...' if len(lacking) > 5 else ''} of a cryokb "
                                 "store's; give --db a new file or a cryokb database")

    # -- schema ---------------------------------------------------------------

    def ensure_shape(self) -> "Store":
        """Create every table, index and the full-text index (idempotent).

        Two commands that create one new database at once (two imports, a cron job and a
        person) race between "does it exist?" and "create it": the loser's CREATE fails
        ("already exists"), or its switch to WAL finds the file locked. It tries again,
        finding what the other made, for up to BUSY_TIMEOUT.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT
        last = None
        while True:
            try:
                return self._ensure_shape()
            except sqlite3.OperationalError as exc:
                raced = any(words in str(exc) for words in SHAPE_RACES)
                if str(exc) == last and "exists" in last:  # the same table in the way twice: no race
                    raise StoreError(f"cannot give the database cryokb's tables: {exc} (a table of another "
                                     "program's in the way?)") from exc
                if not raced or time.monotonic() > deadline:
                    raise
                last = str(exc)
                time.sleep(0.05)

    def _ensure_shape(self) -> "Store":
        db = self.db
        try:
            db.execute("select 1 from sqlite_master limit 1")
        except Exception as exc:
            raise StoreError(f"not a SQLite database: {exc}") from exc
        self.refuse_later_schema()
        if db.journal_mode != "wal":
            db.enable_wal()
        db["journals"].create(
            {
                "id": str,
                "title": str,
                "iso_abbreviation": str,
                "issn": str,
                "issn_linking": str,
                "nlm_unique_id": str,
                "medline_ta": str,
            },
            pk="id",
            if_not_exists=True,
        )
        self._add_later_columns()
        db["articles"].create(
            ARTICLE_COLUMNS,
            pk="pmid",
            foreign_keys=[("journal_id", "journals", "id")],
            not_null={"title"},
            defaults={"deleted": 0, "retracted": 0, "is_book": 0, "title": ""},
            if_not_exists=True,
        )
        db["authors"].create(
            {
                "id": int,
                "last_name": str,
                "fore_name": str,
                "initials": str,
                "collective_name": str,
                "display_name": str,
            },
            pk="id",
            if_not_exists=True,
        )
        self._create_link_table(
            "article_authors",
            {
                "pmid": str,
                "position": int,
                "author_id": int,
                "affiliations": str,
                "orcid": str,
            },
            pk=("pmid", "position"),
            foreign_keys=[("pmid", "articles", "pmid"), ("author_id", "authors", "id")],
        )
        db["mesh_terms"].create({"descriptor": str, "ui": str}, pk="descriptor", if_not_exists=True)
        self._create_link_table(
            "article_mesh",
            {"pmid": str, "descriptor": str, "major": int, "qualifiers": str},
            pk=("pmid", "descriptor"),
            foreign_keys=[("pmid", "articles", "pmid"), ("descriptor", "mesh_terms", "descriptor")],
        )
        self._create_link_table(
            "publication_types",
            {"pmid": str, "name": str, "ui": str},
            pk=("pmid", "name"),
            foreign_keys=[("pmid", "articles", "pmid")],
        )
        self._create_link_table(
            "keywords",
            {"pmid": str, "keyword": str},
            pk=("pmid", "keyword"),
            foreign_keys=[("pmid", "articles", "pmid")],
        )
        self._create_link_table(
            "article_links",
            {"pmid": str, "position": int, "ref_type": str, "ref_pmid": str, "source": str},
            pk=("pmid", "position"),
            foreign_keys=[("pmid", "articles", "pmid")],
        )
        db["raw_records"].create(
            {"pmid": str, "format": str, "compressed": bytes, "sha1": str},
            pk="pmid",
            foreign_keys=[("pmid", "articles", "pmid")],
            if_not_exists=True,
        )
        db["harvest_runs"].create(
            {
                "id": int,
                "kind": str,
                "started": str,
                "finished": str,
                "query": str,
                "query_version": str,
                "since": str,
                "until": str,
                "source": str,
                "fetched": int,
                "new": int,
                "revised": int,
                "unchanged": int,
                "deleted": int,
                "problems": int,
                "outcome": str,
                "error": str,
                "details": str,
            },
            pk="id",
            if_not_exists=True,
        )
        db["problems"].create(
            {"id": int, "run_id": int, "source": str, "location": str, "message": str, "seen": str},
            pk="id",
            foreign_keys=[("run_id", "harvest_runs", "id")],
            if_not_exists=True,
        )
        db["harvest_pending"].create(
            {"query": str, "pmid": str, "first_run": int, "last_run": int, "misses": int},
            pk=("query", "pmid"),
            if_not_exists=True,
        )
        db["cryokb_meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        if self.get_meta(SCHEMA_KEY) != str(SCHEMA_VERSION):
            self.set_meta(SCHEMA_KEY, str(SCHEMA_VERSION))
        self._note_parsers_of_new_store()
        self._ensure_indexes()
        if "articles_fts" not in db.table_names():
            db["articles"].enable_fts(["title", "abstract"], create_triggers=False, tokenize="porter")
            with self.transaction():  # made anew over stored rows: only the live ones are indexed
                _unindex_withdrawn(db.conn)
        return self

    def refuse_later_schema(self) -> None:
        """A store a later cryokb made or changed may hold tables and constraints this one
        does not know; writing to it could lose rows without a word (INSERT OR IGNORE)."""
        if not self.db["cryokb_meta"].exists():
            return
        noted = self.get_meta(SCHEMA_KEY)
        if noted is not None and not (noted.isdigit() and int(noted) <= SCHEMA_VERSION):
            file = self.db.execute("pragma database_list").fetchone()[2] or "this database"
            raise StoreError(f"{file} is of schema version {noted}, made by a later cryokb than this one "
                             f"(which knows versions up to {SCHEMA_VERSION}): upgrade cryokb to write to it; "
                             "commands that only read it (stats, serve) still work")

    def _add_later_columns(self) -> None:
        """Give a store made by an earlier cryokb the columns added since (LATER_COLUMNS)."""
        for table, column, kind, moves in LATER_COLUMNS:
            if column not in self.db[table].columns_dict:
                with self.transaction():  # two commands opening it at once: the second finds it added
                    if column not in self.db[table].columns_dict:
                        self.db[table].add_column(column, kind)
                        for statement in moves if self.db["articles"].exists() else ():
                            self.db.execute(statement)

    def _create_link_table(self, name: str, columns: dict, *, pk: tuple, foreign_keys: list) -> None:
        """A table of an article's authors, headings, types, keywords or links, WITHOUT ROWID.

        Their rows are small and found by their primary key (pmid first), so the key's
        B-tree can hold the rows themselves: one B-tree to write a row into instead of
        two, a sixth less of an import's SQL time. Stores made before this keep their
        rowid tables, which behave the same to every query.
        """
        if not self.db[name].exists():
            sql = self.db.create_table_sql(name, columns, pk=pk, foreign_keys=foreign_keys)
            self.db.execute(sql.rstrip().rstrip(";") + " WITHOUT ROWID")

    def _ensure_indexes(self) -> None:
        """Create the secondary indexes that are missing, with a small page cache: SQLite's
        sorter then sorts in runs that fit the processor's caches (measured: every index of
        100,000 synthetic articles built in 0.92-0.97 s against 1.38-1.43 s with the 64 MiB
        cache the import writes with)."""
        cache = self.db.execute("pragma cache_size").fetchone()[0]
        self.db.execute(f"pragma cache_size = {INDEX_BUILD_CACHE}")
        try:
            for table, indexes in SECONDARY_INDEXES.items():
                for columns in indexes:
                    self.db[table].create_index(columns, if_not_exists=True)
        finally:
            self.db.execute(f"pragma cache_size = {cache}")

    @contextmanager
    def bulk_load(self, expected_records: int, while_indexing: Callable[[], ContextManager] = nullcontext,
                  run_id: int | None = None):
        """Write a large import without the secondary indexes, then build them in one go.

        Each indexed row costs SQLite a B-tree insert per index as it is written; a
        sorted build at the end costs a tenth of that (measured: ~11 µs an article for
        all of them, against ~40 µs a record kept up to date). So the indexes go when
        the import is expected to be at least half the size of what is stored, and
        come back when it ends, however it ends. A process killed in between leaves
        every row intact and the indexes missing, and ``ensure_shape`` (which every
        command runs first) builds them again.

        Meanwhile another connection, on a thread of its own, copies the write-ahead log
        into the database as it grows (_checkpointing, every BULK_CHECKPOINT_EVERY
        seconds): the copy waits mostly on the disk, which the writer then does not, and
        little is left to copy when the load ends (measured: an import of 100,000
        records 6-11% faster, three pairs of runs; one of 10,000 no longer waits a tenth
        of its time for the copy at its end). The writer copies the log itself only past
        BULK_CHECKPOINT pages rather than every 1,000, should that thread lag behind.

        ``while_indexing``: a context the build at the end runs in (kb.importing holds
        Ctrl-C and SIGTERM off until it is done: commands that only read, ``serve`` among
        them, never build the indexes, and went on without them until the next write).
        Where the load failed because another process holds the database, the build is
        left to the next command: it would only wait out the same lock.

        While the indexes are built, another connection copies what is left of the log
        into the database, so that the commit after the build has only the indexes to
        copy.
        """
        stored = self.db.execute("select count(*) from articles").fetchone()[0]
        if expected_records < BULK_LOAD_MIN or stored > 2 * expected_records:
            yield False
            return
        names = [index.name for table, indexes in SECONDARY_INDEXES.items() if table != "harvest_runs"
                 for index in self.db[table].indexes if index.columns in indexes]
        with self.transaction():
            for name in names:
                self.db.execute(f"drop index if exists [{name}]")
            if run_id is not None:  # what stats tells a live run that dropped them by (bulk_loading_run)
                self.db.execute("update harvest_runs set details = json_set(coalesce(details, '{}'), "
                                "'$.bulk_load', json('true')) where id = ?", [run_id])
        every = self.db.execute("pragma wal_autocheckpoint").fetchone()[0]
        self.db.execute(f"pragma wal_autocheckpoint = {BULK_CHECKPOINT}")
        locked_out = False
        try:
            with _checkpointing(self.db, every=BULK_CHECKPOINT_EVERY):
                yield True
        except BaseException as exc:
            locked_out = _locked_out(exc)
            raise
        finally:
            self.db.execute(f"pragma wal_autocheckpoint = {every}")
            if locked_out:  # the build would wait out the same lock: the next command's ensure_shape builds them
                log.info("the indexes are left to the next command")
            else:
                # the copy is joined before the build commits: the commit's own checkpoint
                # then finds only the indexes' pages left
                with while_indexing(), self.transaction(), _checkpointing(self.db):
                    self._ensure_indexes()

    # -- writing --------------------------------------------------------------

    def save_records(self, records: Iterable, *, run_id: int | None = None,
                     withdrawn: set[str] | None = None) -> SaveCounts:
        """Write one batch (Articles, Deletions, ParseProblems) in one transaction."""
        return self.save_prepared(prepare_records(records), run_id=run_id, withdrawn=withdrawn)

    def save_prepared(self, batch: "PreparedBatch", *, run_id: int | None = None,
                      withdrawn: set[str] | None = None, within_transaction: bool = False,
                      earlier: "EarlierPieces | None" = None) -> SaveCounts:
        """Write a batch made by :func:`prepare_records`, in one transaction.

        Only the SQL happens here, so an import can prepare the next batch in another
        process while this one is written (kb.importing). ``withdrawn``: the PMIDs the
        run's earlier batches deleted, to which this batch adds its own. A record that
        comes after its deletion in the same run brings the article back even when it is
        the very record stored, as in the file; from another run it is a re-import, which
        leaves a later deletion standing.

        ``within_transaction``: the caller holds a transaction open around several calls
        and rolls all of it back if one fails (kb.importing, a batch sent in pieces), so
        this one opens no savepoint of its own: SQLite copies every page a savepoint's
        writes change into its journal first (8% of the store's CPU in an import).
        ``earlier``: what the batch's earlier pieces wrote, in the same transaction, to
        which this one adds its own (see EarlierPieces).
        """
        counts = SaveCounts()
        withdrawn = set() if withdrawn is None else withdrawn
        held = within_transaction and self.db.conn.in_transaction
        with nullcontext() if held else self.transaction():
            withdrawn.update(batch.revived)  # withdrawn, then back, within this batch
            earlier = earlier or EarlierPieces()
            self._save_articles(batch.articles, counts, withdrawn, set(batch.revived), earlier)
            earlier.note_deleted(counts, self._mark_deleted(batch.deletions))
            withdrawn.update(batch.deletions)
            self._save_problems(batch.problems, run_id)
            counts.problems += len(batch.problems)
            if run_id is not None:
                self._count_in_run(run_id, counts, batch.read)
        return counts

    def _count_in_run(self, run_id: int, counts: SaveCounts, read: int) -> None:
        """Add a batch's counts to its run's, in the batch's own transaction: a run killed
        outright (SIGKILL), which never records its end, still says what it stored."""
        tally = counts.as_dict()
        self.db.execute(
            "update harvest_runs set fetched = coalesce(fetched, 0) + :read, "
            + ", ".join(f"[{name}] = coalesce([{name}], 0) + :{name}" for name in tally)
            + " where id = :run_id", dict(tally, read=read, run_id=run_id))

    def _existing(self, pmids: list[str]) -> dict[str, tuple]:
        return self._of_articles("articles.pmid, record_hash, revised_date, deleted, first_seen, version, "
                                 "source_format", pmids)

    def _of_articles(self, columns: str, pmids: list[str], join: str = "") -> dict[str, tuple]:
        """``columns`` (the PMID first) of each stored article of ``pmids``, by PMID."""
        found = {}
        for chunk in chunks(pmids):
            marks = ",".join("?" * len(chunk))
            for pmid, *values in self.db.execute(
                    f"select {columns} from articles {join} where articles.pmid in ({marks})", chunk).fetchall():
                found[pmid] = tuple(values)
        return found

    def _save_articles(self, prepared: list["PreparedArticle"], counts: SaveCounts, withdrawn: set[str],
                       revived: set[str], earlier: "EarlierPieces") -> None:
        """``revived``: the PMIDs whose deletion earlier in this batch a later record undid
        when the batch was read (read_batch), before the stored record was consulted."""
        if not prepared:
            return
        existing = self._existing([p.pmid for p in prepared])
        stamp = now_iso()
        rows = _Rows()
        replaced, standing, restored = [], [], []
        for item in prepared:
            pmid = item.pmid
            old = existing.get(pmid)
            first_seen = stamp
            if old is not None:
                after_deletion = pmid in withdrawn
                in_force = old[2] or pmid in revived  # not when a newer record brought it back since
                if after_deletion and in_force and _compared(old, item) is False:
                    standing.append(pmid)  # an older copy after the run's deletion: the deletion stands
                    earlier.count(counts, pmid, "unchanged")
                    continue
                if _keeps(old, item):
                    if old[2] and after_deletion:  # the stored record itself, after the run's deletion
                        restored.append(pmid)
                        # back as the batch found it, where it was the batch that withdrew it
                        earlier.count(counts, pmid, "unchanged" if earlier.take_back(counts, pmid) else "revised")
                    else:
                        earlier.count(counts, pmid, "unchanged")
                    continue
                replaced.append(pmid)
                earlier.take_back(counts, pmid)
                earlier.count(counts, pmid, "revised")
                first_seen = old[3] or stamp
            else:
                earlier.count(counts, pmid, "new")
            rows.add(item, first_seen, stamp, stored=old is not None)
        earlier.note_deleted(counts, self._mark_deleted(standing))  # its deletion was in this batch, before it
        self._restore(restored, stamp)
        self._delete_children(replaced)
        _unindex(self.db.conn, replaced)
        rows.write(self.db.conn, earlier)

    def _delete_children(self, pmids: list[str]) -> None:
        for chunk in chunks(pmids):
            marks = ",".join("?" * len(chunk))
            for table in CHILD_TABLES:
                self.db.execute(f"delete from {table} where pmid in ({marks})", chunk)

    def _restore(self, pmids: list[str], stamp: str) -> None:
        """Bring back withdrawn articles as they are stored, text indexed again."""
        for chunk in chunks(pmids):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"update articles set deleted = 0, deleted_at = null, last_updated = ? "
                            f"where pmid in ({marks}) and deleted = 1", [stamp, *chunk])
        _index(self.db.conn, pmids)

    def _mark_deleted(self, pmids: list[str]) -> list[str]:
        """Mark withdrawn citations deleted (their rows stay, for provenance); the PMIDs marked."""
        marked = []
        stamp = now_iso()
        _unindex(self.db.conn, pmids)
        for pmid in pmids:
            cursor = self.db.execute(
                "update articles set deleted = 1, deleted_at = ?, last_updated = ? "
                "where pmid = ? and deleted = 0",
                [stamp, stamp, pmid],
            )
            if cursor.rowcount:
                marked.append(pmid)
        return marked

    def _save_problems(self, problems: list[ParseProblem], run_id: int | None) -> None:
        if problems:
            stamp = now_iso()
            self.db["problems"].insert_all(
                {"run_id": run_id, "source": p.source, "location": p.where, "message": p.message, "seen": stamp}
                for p in problems
            )

    # -- runs -----------------------------------------------------------------

    def start_run(self, *, kind: str, query: str | None = None, query_version: str | None = None,
                  since: str | None = None, until: str | None = None, source: str | None = None) -> int:
        """Record a run as "running", naming its process, and close the runs whose process died."""
        me = LockInfo.current()
        with self.transaction():
            self._close_dead_runs()
            table = self.db["harvest_runs"].insert(
                {
                    "kind": kind,
                    "started": now_iso(),
                    "query": query,
                    "query_version": query_version,
                    "since": since,
                    "until": until,
                    "source": source,
                    "outcome": "running",
                    "details": json.dumps({"pid": me.pid, "host": me.host}),
                }
            )
        return table.last_pk

    def _close_dead_runs(self) -> None:
        """Mark "interrupted" the runs left "running" by a process that has since died.

        A run killed outright (SIGKILL, the out-of-memory killer, a power cut) never
        records its end, and would read "running" for ever. Its batches up to the last
        commit are stored; the next run's cursor (successful runs only) covers the rest.
        A run on another host, or whose pid is alive, is left alone.
        """
        for run in self.db.query("select * from harvest_runs where outcome = 'running'"):
            if run_process_gone(run):
                self.db["harvest_runs"].update(run["id"], {"outcome": "interrupted", "error": _gone(run)})

    def finish_run(self, run_id: int, *, outcome: str, counts: SaveCounts | None = None,
                   fetched: int | None = None, error: str | None = None, extra: dict | None = None,
                   since: str | None = None, until: str | None = None,
                   cause: BaseException | None = None) -> None:
        """Record how a run ended. ``counts`` and ``fetched`` fill in only what its batches
        did not count: each batch adds its own counts in its transaction (save_prepared),
        while the caller's tally misses a batch stopped between its COMMIT and its count.
        ``cause``: the error already on its way out, which a failure to record the end (the
        same full disk) must not replace: that failure is logged, not raised. Where the
        cause is another process's lock, the end waits for the lock only briefly
        (QUIET_WAIT), not the BUSY_TIMEOUT the lock has just outlasted."""
        update = {"finished": now_iso(), "outcome": outcome, "error": error}
        counted = counts.as_dict() if counts is not None else {}
        if fetched is not None:
            counted["fetched"] = fetched
        if extra:
            update["details"] = json.dumps(extra, sort_keys=True)
        if since is not None:
            update["since"] = since
        if until is not None:
            update["until"] = until
        assignments = [f"[{name}] = :{name}" for name in update]
        assignments += [f"[{name}] = coalesce([{name}], :{name})" for name in counted]
        try:
            with self._waiting_at_most(QUIET_WAIT if _locked_out(cause) else None), self.transaction():
                self.db.execute(f"update harvest_runs set {', '.join(assignments)} where id = :run_id",
                                {**update, **counted, "run_id": run_id})
        except Exception as exc:  # noqa: BLE001
            if cause is None:
                raise
            log.warning("could not record the end of run %d: %s", run_id, exc)
            log.debug("recording the end of run %d failed", run_id, exc_info=True)

    @contextmanager
    def _waiting_at_most(self, seconds: float | None):
        """SQLite's wait for another process's lock shortened for a while (None: as it is)."""
        if seconds is None:
            yield
            return
        before = self.db.execute("pragma busy_timeout").fetchone()[0]
        self.db.execute(f"pragma busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self.db.execute(f"pragma busy_timeout = {before}")

    def successful_runs(self, kind: str = "harvest", query: str | None = None) -> list[dict]:
        """Every run of ``kind`` (of ``query``, if given) that ended "ok", oldest first."""
        sql = "select * from harvest_runs where kind = ? and outcome = 'ok'"
        params: list = [kind]
        if query is not None:
            sql += " and query = ?"
            params.append(query)
        return list(self.db.query(sql + " order by id", params))

    def last_successful_run(self, kind: str = "harvest", query: str | None = None) -> dict | None:
        runs = self.successful_runs(kind, query)
        return runs[-1] if runs else None

    # -- records a harvest found but could not fetch ------------------------------

    def pending(self, query: str) -> dict[str, int]:
        """The PMIDs earlier harvests of ``query`` found but efetch did not return, each
        with the number of runs that asked for it in vain, oldest first (none in a store
        older than the table, opened read-only)."""
        if not self.db["harvest_pending"].exists():
            return {}
        return {pmid: misses for pmid, misses in self.db.execute(
            "select pmid, misses from harvest_pending where query = ? order by first_run, pmid", [query])}

    def note_missed(self, query: str, run_id: int, pmids: Iterable[str]) -> None:
        """Remember PMIDs that run ``run_id`` asked efetch for in vain, each counted once a run."""
        self.db.conn.executemany(
            "insert into harvest_pending (query, pmid, first_run, last_run, misses) values (?, ?, ?, ?, 1) "
            "on conflict (query, pmid) do update set misses = misses + (last_run is not excluded.last_run), "
            "last_run = excluded.last_run", [(query, pmid, run_id, run_id) for pmid in pmids])

    def forget_pending(self, query: str, pmids: Iterable[str]) -> None:
        """No longer ask for ``pmids`` (fetched at last, or given up)."""
        self.db.conn.executemany("delete from harvest_pending where query = ? and pmid = ?",
                                 [(query, pmid) for pmid in pmids])

    # -- settings kept in the database ----------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("insert into cryokb_meta (key, value) values (?, ?) "
                            "on conflict (key) do update set value = excluded.value", [key, value])

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("select value from cryokb_meta where key = ?", [key]).fetchone()
        return row[0] if row else default

    def _note_parsers_of_new_store(self) -> None:
        """A store with no record yet will hold only what this cryokb's parsers read
        (kb.reparse.parsers_changed); one with records and no note is an older release's.
        Noted only if still so once the write lock is held: another command may be
        importing into the new store."""
        from kb.reparse import PARSERS_KEY, current_parsers

        if self.get_meta(PARSERS_KEY) is None and not self.has_raw_records():
            with self.transaction():
                self.db.execute("insert or ignore into cryokb_meta (key, value) select ?, ? "
                                "where not exists (select 1 from raw_records)", [PARSERS_KEY, current_parsers()])

    # -- reading --------------------------------------------------------------

    def has_raw_records(self) -> bool:
        return self.db.execute("select 1 from raw_records limit 1").fetchone() is not None

    def raw_record(self, pmid: str) -> tuple[str, bytes] | None:
        row = self.db.execute("select format, compressed from raw_records where pmid = ?", [pmid]).fetchone()
        return (row[0], zlib.decompress(row[1])) if row else None

    # -- reading stored records again (kb.reparse) ----------------------------

    def raw_pages(self, pmids: list[str] | None = None, size: int = 500) -> Iterator[list["StoredRaw"]]:
        """The raw records a page at a time in PMID order: all of them, or those of ``pmids``.
        Each page is its own statement, so that nothing is left open while the caller
        writes between pages, and memory stays flat. Still compressed: a blob that does
        not decompress is the caller's problem to report, not the end of the run."""
        select = ("select r.pmid, r.format, r.compressed, r.sha1, a.pmid is not null from raw_records r "
                  "left join articles a on a.pmid = r.pmid ")
        if pmids is not None:
            for chunk in chunks(sorted(set(pmids)), size):
                marks = ",".join("?" * len(chunk))
                yield [StoredRaw._make(row) for row in self.db.execute(
                    select + f"where r.pmid in ({marks}) order by r.pmid", chunk)]
            return
        last = ""
        while True:
            page = [StoredRaw._make(row) for row in self.db.execute(
                select + "where r.pmid > ? order by r.pmid limit ?", [last, size])]
            if not page:
                return
            yield page
            last = page[-1].pmid

    def unknown_pmids(self, pmids: Iterable[str]) -> list[str]:
        """Those of ``pmids`` that have no stored record."""
        wanted = set(pmids)
        known = self._rows_by_key("raw_records", ("pmid",), wanted)
        return sorted(pmid for pmid in wanted if pmid not in known)

    def differences(self, prepared: list["PreparedArticle"]) -> dict[str, list[str]]:
        """For each article whose stored rows are not what ``prepared`` would write, the
        names of the columns and tables that differ; the others are left out.

        What the store knows of an article beyond its record (first seen, last updated,
        withdrawn or not) is not compared: a rewrite keeps it.
        """
        keys = {table: _key_positions(self.db[table].pks, CHILD_COLUMNS[table]) for table in CHILD_TABLES}
        stored = self._comparable([item.pmid for item in prepared], keys)
        gaps = self._shared_gaps(prepared)
        found = {}
        for item in prepared:
            mine = _comparable_prepared(item, keys)
            theirs = stored.get(item.pmid, {})
            names = [name for name, value in mine.items() if theirs.get(name) != value] + gaps.get(item.pmid, [])
            if names:
                found[item.pmid] = names
        return found

    def _shared_gaps(self, prepared: list["PreparedArticle"]) -> dict[str, list[str]]:
        """For each article, which of the rows it shares with others (its journal, authors,
        MeSH terms) the store lacks, or holds without a value its record gives: what a
        rewrite fills in (_Rows ``fill_shared``). Named "authors table" and so on: the
        articles table has an ``authors`` column too, and one article reported both
        under one name read as two."""
        journals = self._rows_by_key("journals", JOURNAL_COLUMNS, {i.journal[0] for i in prepared if i.journal})
        authors = self._rows_by_key("authors", AUTHOR_COLUMNS, {a[0] for i in prepared for a in i.authors})
        terms = self._rows_by_key("mesh_terms", MESH_TERM_COLUMNS, {t[0] for i in prepared for t in i.mesh_terms})
        found: dict[str, list[str]] = {}
        for item in prepared:
            names = [f"{table} table" for table, stored, rows in (
                         ("journals", journals, [item.journal] if item.journal else []),
                         ("authors", authors, item.authors),
                         ("mesh_terms", terms, item.mesh_terms))
                     if any(_lacks(stored.get(row[0]), row) for row in rows)]
            if names:
                found[item.pmid] = names
        return found

    def _rows_by_key(self, table: str, columns: tuple[str, ...], keys: set) -> dict:
        """The rows of a table keyed by its first column, in ``columns`` order."""
        found = {}
        present = self.db[table].columns_dict  # a store older than LATER_COLUMNS, opened read-only: NULL
        names = ", ".join(f"[{name}]" if name in present else f"null as [{name}]" for name in columns)
        for chunk in chunks(sorted(keys)):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"select {names} from [{table}] where [{columns[0]}] in ({marks})", chunk):
                found[row[0]] = row
        return found

    def _comparable(self, pmids: list[str], keys: dict) -> dict[str, dict]:
        """Each stored article's rows in the form of _comparable_prepared."""
        found: dict[str, dict] = {}
        compared = ", ".join(f"[{name}]" for name in _RECORD_COLUMNS)
        for chunk in chunks(pmids):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"select {compared} from articles where pmid in ({marks})", chunk):
                found[row[0]] = dict(zip(_RECORD_COLUMNS, row), **dict.fromkeys(CHILD_TABLES, []))
            for table in CHILD_TABLES:
                names = ", ".join(f"[{name}]" for name in CHILD_COLUMNS[table])
                rows: dict[str, list] = {}
                for row in self.db.execute(f"select {names} from [{table}] where pmid in ({marks})", chunk):
                    rows.setdefault(row[0], []).append(row)
                for pmid, table_rows in rows.items():
                    if pmid in found:
                        found[pmid][table] = sorted(table_rows, key=keys[table])
        return found

    def rewrite(self, prepared: list["PreparedArticle"], read_as: dict[str, str], *, run_id: int | None = None,
                read: int = 0, problems: list[ParseProblem] = ()) -> list[str]:
        """Replace the rows of stored articles with ``prepared``, read again from their own
        raw records (kb.reparse), in one transaction with the run's counts and problems.
        ``read_as``: the SHA-1 of each raw record as it was read.

        What the store knows of an article beyond its record stays: when it was first
        seen, whether it is withdrawn (and since when), the raw record itself (unless this
        version keeps it in another form: MEDLINE text with other line ends). Its evidence
        is marked stale (its extractor version unknown), for the next build to extract
        again and count as extracted before. The rows it shares with other articles are
        only filled in (_Rows ``fill_shared``). An article whose raw record was replaced
        since it was read (an import or a harvest into the store meanwhile) is left as
        that wrote it, and counted unchanged. Returns the PMIDs rewritten.
        """
        stamp = now_iso()
        with self.transaction():
            kept = self._kept_state([item.pmid for item in prepared])
            prepared = [item for item in prepared if item.pmid in kept and kept[item.pmid][0] == read_as[item.pmid]]
            pmids = [item.pmid for item in prepared]
            counts = SaveCounts(revised=len(prepared), unchanged=read - len(prepared) - len(problems),
                                problems=len(problems))
            rows = _Rows(fill_shared=True)
            for item in prepared:
                sha1, first_seen, deleted, deleted_at = kept[item.pmid]
                row = item.row[:_DELETED] + (deleted, deleted_at) + item.row[_DELETED + 2:]
                rows.add(item._replace(row=row), first_seen, stamp, stored=True, raw=item.digest != sha1)
            _unindex(self.db.conn, pmids)
            self._delete_children(pmids)
            rows.write(self.db.conn)
            if "extractor_version" in self.db["articles"].columns_dict:  # its evidence is of another text now
                for chunk in chunks(pmids):
                    self.db.execute(f"update articles set extractor_version = null "
                                    f"where pmid in ({','.join('?' * len(chunk))})", chunk)
            self._save_problems(list(problems), run_id)
            if run_id is not None:
                self._count_in_run(run_id, counts, read)
        return pmids

    def _kept_state(self, pmids: list[str]) -> dict[str, tuple]:
        """The SHA-1 of each article's raw record as stored now, and what a rewrite keeps of it."""
        return self._of_articles("articles.pmid, raw_records.sha1, first_seen, deleted, deleted_at", pmids,
                                 "join raw_records on raw_records.pmid = articles.pmid")

    def stats(self) -> dict:
        from kb.reparse import parsers_changed

        db = self.db
        tables = db.table_names()
        if not {"articles", "article_authors", "article_mesh", "harvest_runs"} <= set(tables):
            return dict(NOTHING_STORED)  # an empty file, or a store whose creation was cut short
        one = lambda sql: db.execute(sql).fetchone()  # noqa: E731
        total, deleted, retracted, with_abstract = one(
            "select count(*), coalesce(sum(deleted), 0), coalesce(sum(retracted and not deleted), 0), "
            "coalesce(sum(abstract != '' and not deleted), 0) from articles"
        )
        first, last = one("select min(pub_year), max(pub_year) from articles where deleted = 0")
        last_run = list(db.query("select * from harvest_runs order by id desc limit 1"))
        if last_run and run_process_gone(last_run[0]):  # read-only here: the next run records it
            last_run[0].update(outcome="interrupted", error=_gone(last_run[0]))
        return {
            "articles": total - deleted,
            "deleted": deleted,
            "retracted": retracted,
            "with_abstract": with_abstract,
            "first_year": first,
            "last_year": last,
            # those of live articles: a revision's dropped author or a withdrawn article's
            # journal keeps its row (rows are never deleted), but not its place in the counts
            "journals": one("select count(distinct journal_id) from articles where deleted = 0")[0],
            "authors": one(_LIVE_COUNT.format(column="author_id", table="article_authors"))[0],
            "mesh_terms": one(_LIVE_COUNT.format(column="descriptor", table="article_mesh"))[0],
            "runs": db["harvest_runs"].count,
            "awaiting_fetch": one(_AWAITED)[0] if "harvest_pending" in tables else 0,
            "indexes_missing": len(self.missing_indexes()),
            "last_run": last_run[0] if last_run else None,
            "reparse_needed": parsers_changed(self),
        }

    def missing_indexes(self) -> list[str]:
        """The secondary indexes the store lacks, as "table(columns)": a bulk load drops them
        and builds them at its end, so a process killed in between leaves them out until the
        next command that writes (ensure_shape). Reading goes on without them, slowly."""
        tables = set(self.db.table_names())
        missing = []
        for table, indexes in SECONDARY_INDEXES.items():
            if table in tables:
                present = [index.columns for index in self.db[table].indexes]  # read once a table
                missing += [f"{table}({', '.join(columns)})" for columns in indexes if columns not in present]
        return missing

    def bulk_loading_run(self) -> dict | None:
        """The run still running in a live process on this host whose bulk load dropped the
        indexes (``run_id`` of bulk_load) and builds them again at its end: read without it,
        missing indexes were told as left by an import stopped half-way. None where there is
        none (a small import, which drops none, and a run of another host's, whose process
        cannot be seen from here, included)."""
        if "harvest_runs" not in self.db.table_names():
            return None
        for run in self.db.query("select * from harvest_runs where outcome = 'running' "
                                 "and json_extract(details, '$.bulk_load') order by id desc"):
            process = _run_process(run)
            if process is not None and process.alive():
                return run
        return None


# The figures of a file with no store in it yet: the same keys as any store's, for scripts reading --json.
NOTHING_STORED = {"articles": 0, "deleted": 0, "retracted": 0, "with_abstract": 0, "first_year": None,
                  "last_year": None, "journals": 0, "authors": 0, "mesh_terms": 0, "runs": 0, "awaiting_fetch": 0,
                  "indexes_missing": 0, "last_run": None, "reparse_needed": False}
# Records harvests found but could not fetch that are still not stored, each once
# whichever queries' runs missed it.
_AWAITED = ("select count(distinct pmid) from harvest_pending "
            "where pmid not in (select pmid from articles where deleted = 0)")
_LIVE_COUNT = ("select count(distinct link.{column}) from {table} as link "
               "join articles on articles.pmid = link.pmid where articles.deleted = 0")


@lru_cache(maxsize=None)
def store_columns() -> dict[str, tuple[str, ...]]:
    """The columns of each table a store is made with (made once, in memory), which a
    table of that name in a file given to cryokb must have (Store.refuse_foreign)."""
    made = Store(sqlite_utils.Database(memory=True))._ensure_shape().db
    later = {(table, column) for table, column, *_ in LATER_COLUMNS}
    return {name: tuple(column for column in made[name].columns_dict if (name, column) not in later)
            for name in made.table_names() if not name.startswith("articles_fts")}


def run_process_gone(run: dict) -> bool:
    """Whether a run still recorded "running" was left so by a process no longer alive on this host."""
    process = _run_process(run)
    return run.get("outcome") == "running" and process is not None and process.alive() is False


def _run_process(run: dict) -> LockInfo | None:
    """The process a run names in its details (None for runs recorded before they did)."""
    try:
        details = json.loads(run.get("details") or "{}")
        return LockInfo(int(details["pid"]), str(details["host"]), run.get("started") or "")
    except (ValueError, KeyError, TypeError):
        return None


def _gone(run: dict) -> str:
    process = _run_process(run)
    return (f"the run's process (pid {process.pid} on {process.host}) ended without recording "
            "its end (killed?); the batches it committed are stored")


class PreparedArticle(NamedTuple):
    """One article as row tuples in column order: what save_prepared writes.

    Built without the database (prepare_records), so that it can be built in another
    process; ``row`` lacks first_seen and last_updated, which depend on what is stored.
    """

    pmid: str
    digest: str
    revised_date: str | None
    row: tuple
    journal: tuple | None
    authors: list[tuple]
    mesh_terms: list[tuple[str, str | None]]
    children: tuple[list[tuple], ...]  # in CHILD_TABLES order
    raw: tuple  # (pmid, format, the raw record compressed, SHA-1 of it as read): see sealed


class PreparedBatch(NamedTuple):
    articles: list[PreparedArticle]
    deletions: list[str]
    problems: list[ParseProblem]
    read: int  # Article records read, copies of one PMID included
    revived: list[str]  # PMIDs of records that came after their deletion in the batch


class ReadBatch(NamedTuple):
    """A batch as read, before any rows are built (prepare_batch builds them)."""

    articles: list[tuple]  # flatten_article tuples, one per PMID
    deletions: list[str]
    problems: list[ParseProblem]
    read: int  # Article records read, copies of one PMID included
    revived: list[str]  # PMIDs of records that came after their deletion in the batch


# The order of the values in a flatten_article tuple; lists of tuples hold the fields of
# the nested objects in the order of their dataclasses (qualifiers inside mesh headings).
FLAT_FIELDS = (
    "pmid", "version", "title", "abstract_sections", "authors", "journal", "volume", "issue", "pages",
    "pub_date", "pub_year", "entrez_date", "revised_date", "completed_date", "languages",
    "publication_types", "mesh_headings", "keywords", "doi", "pmcid", "links", "status", "is_book",
    "source_format", "raw", "digest",
)


def prepare_records(records: Iterable) -> PreparedBatch:
    """Turn a batch of records into rows; raise TypeError on anything else.

    Of two copies of a PMID in one batch the later wins (in the earlier one's place)
    unless it was revised before the earlier one, as across batches.
    """
    return prepare_batch(read_batch(records))


def read_batch(records: Iterable) -> ReadBatch:
    """The first half of prepare_records: each article flattened, no rows built yet.

    Each article is flattened as it comes, so a batch read from a stream never holds
    its Article objects all at once; an article the reader flattened already (a tuple,
    ingest.pubmed_xml.iter_records with ``flat``) is taken as it is.
    """
    articles: dict[str, tuple] = {}
    deletions: dict[str, None] = {}
    revived: dict[str, None] = {}
    problems: list[ParseProblem] = []
    read = 0
    for record in records:
        if type(record) is tuple or isinstance(record, Article):  # a tuple: flattened by the reader
            flat = record if type(record) is tuple else flatten_article(record)
            pmid = flat[0]
            earlier = articles.get(pmid)
            newer = None if earlier is None else _newer_in_batch(flat, earlier)
            # by the rule a copy meets against the stored record (_stays), so that which copy
            # is stored does not depend on where the batches fall
            if earlier is None or not _stays(newer, earlier[_FLAT_FORMAT], flat[_FLAT_FORMAT]):
                articles[pmid] = flat
            # a record after its deletion brings it back, as in the file, unless older than the
            # copy kept (the kept copy's MEDLINE text, the same revision, brings it back too)
            if newer is not False and pmid in deletions:
                del deletions[pmid]
                revived[pmid] = None
            read += 1
        elif isinstance(record, Deletion):
            deletions.update(dict.fromkeys(record.pmids))
        elif isinstance(record, ParseProblem):
            problems.append(record)
        else:
            raise TypeError(f"cannot store {type(record).__name__}")
    return ReadBatch([sealed(flat) for flat in articles.values()], list(deletions), problems, read, list(revived))


def sealed(flat: tuple, stored_sha1: str | None = None) -> tuple:
    """The flattened article with its raw record as the store keeps it: compressed, and
    the SHA-1 of the bytes as read (unless the article came with a digest of its own).

    Done where records are read: an import's reader process, so that its writer, the
    slower of the two, does not compress, and the pipe between them carries a third of
    the bytes. The record is left out (None) where its SHA-1 is ``stored_sha1``: it is
    not written (kb.reparse: a record read again from the store, that reads as stored).
    """
    raw = flat[_FLAT_RAW]
    digest = flat[_FLAT_DIGEST] or hashlib.sha1(raw).hexdigest()
    return flat[:_FLAT_RAW] + (None if digest == stored_sha1 else _compress(raw, RAW_LEVEL), digest)


_REVISED = FLAT_FIELDS.index("revised_date")
_FLAT_VERSION = FLAT_FIELDS.index("version")
_FLAT_FORMAT = FLAT_FIELDS.index("source_format")
_FLAT_RAW = FLAT_FIELDS.index("raw")
_FLAT_DIGEST = FLAT_FIELDS.index("digest")
assert _FLAT_DIGEST == _FLAT_RAW + 1 == len(FLAT_FIELDS) - 1  # sealed replaces the two at the end


def _newer_in_batch(flat: tuple, earlier: tuple) -> bool | None:
    """Whether a copy of a PMID is newer than an earlier one of the same batch (_newer_copy)."""
    return _newer_copy(earlier[_FLAT_VERSION], earlier[_REVISED], flat[_FLAT_VERSION], flat[_REVISED])


def prepare_batch(batch: ReadBatch) -> PreparedBatch:
    """The second half of prepare_records: the rows of every flattened article."""
    return PreparedBatch([prepare_flat(flat) for flat in batch.articles], batch.deletions, batch.problems,
                         batch.read, batch.revived)


def prepare_article(article: Article) -> PreparedArticle:
    """Every row an article contributes."""
    return prepare_flat(sealed(flatten_article(article)))


def flatten_article(article: Article) -> tuple:
    """The article as nested tuples and lists of plain values, in FLAT_FIELDS order.

    Why: the compiled walk of PubMed XML (ingest._fastwalk) reads a record straight into
    this form, with no Article in between, so the rows (prepare_flat) are built from one
    form whichever walk read the record.
    """
    raw = article.raw
    digest = None
    if raw is None:  # an Article built by hand: its JSON stands in for the record
        raw = json.dumps(article.to_dict()).encode()
        digest = record_hash(article)
    journal = article.journal
    return (
        article.pmid, article.version, article.title,
        [(s.text, s.label, s.nlm_category) for s in article.abstract_sections],
        [(a.last_name, a.fore_name, a.initials, a.collective_name, a.affiliations, a.orcid)
         for a in article.authors],
        (journal.title, journal.iso_abbreviation, journal.issn, journal.issn_linking, journal.nlm_unique_id,
         journal.medline_ta),
        article.volume, article.issue, article.pages, article.pub_date, article.pub_year,
        article.entrez_date, article.revised_date, article.completed_date, article.languages,
        [(pt.name, pt.ui) for pt in article.publication_types],
        [(m.descriptor, m.ui, m.major, [(q.name, q.ui, q.major) for q in m.qualifiers])
         for m in article.mesh_headings],
        article.keywords, article.doi, article.pmcid,
        [(link.ref_type, link.pmid, link.source) for link in article.links],
        article.status, article.is_book, article.source_format, raw, digest,
    )


def _prepare_flat(flat: tuple) -> PreparedArticle:
    """Every row a flattened article contributes (its raw record as the flat holds it: see sealed).

    The reference: an import's rows come from the same rules compiled (kb._fastrows),
    where it was built; ``prepare_flat`` is whichever of the two is here.
    """
    (pmid, version, title, sections, authors, journal, volume, issue, pages, pub_date, pub_year, entrez_date,
     revised_date, completed_date, languages, publication_types, mesh, keywords, doi, pmcid, links, status,
     is_book, source_format, raw, digest) = flat
    if digest is None:
        digest = hashlib.sha1(raw).hexdigest()
    journal_title, iso_abbreviation, issn, issn_linking, nlm_unique_id, medline_ta = journal
    journal_id = nlm_unique_id or issn_linking or issn or journal_title
    journal_row = (journal_id, journal_title, iso_abbreviation, issn, issn_linking,
                   nlm_unique_id, medline_ta) if journal_id else None
    author_table, author_rows, names = _author_rows(pmid, authors)
    mesh_terms, mesh_rows = _mesh_rows(pmid, mesh)
    pt_names = [pt[0] for pt in publication_types]
    retracted = "Retracted Publication" in pt_names or any(link[0] == "RetractionIn" for link in links)
    row = (
        pmid, version, title or "",
        "\n".join([s[0] for s in sections if s[0]]),
        _sections_json(sections) if sections else "[]",
        journal_id, volume, issue, pages, pub_date, pub_year, entrez_date, revised_date, completed_date,
        _json(languages), _json(pt_names), _json([m[0] for m in mesh]), _json(keywords), _json(names),
        doi, pmcid, status, int(is_book), int(retracted), 0, None, source_format, digest,
    )
    children = (
        author_rows,
        mesh_rows,
        [(pmid, name, ui) for name, ui in publication_types],
        [(pmid, keyword) for keyword in dict.fromkeys(keywords)],
        [(pmid, position, ref_type, ref_pmid, source)
         for position, (ref_type, ref_pmid, source) in enumerate(links, 1)],
    )
    return PreparedArticle(pmid, digest, revised_date, row, journal_row, author_table, mesh_terms, children,
                           (pmid, source_format, raw, digest))


try:
    from kb._fastrows import prepare_flat
except ImportError as err:  # not built (no C compiler at install): the same rows, slower
    log.debug("kb._fastrows not used: %s", err)
    prepare_flat = _prepare_flat


_VERSION = tuple(ARTICLE_COLUMNS).index("version")
_SOURCE_FORMAT = tuple(ARTICLE_COLUMNS).index("source_format")
_DELETED = tuple(ARTICLE_COLUMNS).index("deleted")  # deleted_at follows it
# The columns of an article that come from its record: a PreparedArticle's row, less
# what the store says of it (withdrawn, and since when).
_RECORD_COLUMNS = tuple(ARTICLE_COLUMNS)[:_DELETED] + tuple(ARTICLE_COLUMNS)[_DELETED + 2 : -2]


def _key_positions(pks: list[str], columns: tuple[str, ...]):
    """A sort key taking a row's primary key (``pks``) out of a row in ``columns`` order."""
    positions = [columns.index(name) for name in pks]
    return lambda row: tuple(row[i] for i in positions)


def _comparable_prepared(item: "PreparedArticle", keys: dict) -> dict:
    """An article's rows as they would be stored, by column and table name: each link
    table's rows by primary key, the first of two with the same key (INSERT OR IGNORE)."""
    row = item.row
    found = dict(zip(_RECORD_COLUMNS, row[:_DELETED] + row[_DELETED + 2 :]))
    for table, rows in zip(CHILD_TABLES, item.children):
        key = keys[table]
        found[table] = sorted({key(r): r for r in reversed(rows)}.values(), key=key)
    return found


def _lacks(stored: tuple | None, row: tuple) -> bool:
    """Whether a shared row is missing from the store, or stored empty where ``row`` has a value."""
    return stored is None or any(old is None and new is not None for old, new in zip(stored, row))


class StoredRaw(NamedTuple):
    """A raw record as Store.raw_pages reads it."""

    pmid: str
    format: str
    compressed: bytes | None
    sha1: str | None
    has_article: bool


def _keeps(old: tuple, item: "PreparedArticle") -> bool:
    """Whether the stored article (``old``: Store._existing's columns) keeps its content.

    It does for the very record stored, for a record older than it (a lower PMID version,
    or revised before it, or not said to be revised), and for the MEDLINE text of the XML record
    stored: at the same revision, XML carries what MEDLINE drops (MeSH and publication
    type UIs, NlmCategory, diacritics). Whether a withdrawn article comes back is
    Store._save_articles' to say.
    """
    if old[0] == item.digest:
        return True
    stays = _stays(_compared(old, item), old[5], item.row[_SOURCE_FORMAT])
    if stays:
        log.info("PMID %s: the stored record (version %s, revised %s, %s) is as new as this one or newer; kept",
                 item.pmid, old[4], old[1], old[5])
    return stays


def _stays(newer: bool | None, source_format: str, new_format: str) -> bool:
    """Whether a copy of a PMID stays when another comes after it (``newer``: _newer_copy):
    when the other is older, or is the MEDLINE text of it as XML at the same revision."""
    if newer is None:
        return source_format == "xml" and new_format == "medline"
    return not newer


def _newer_copy(version, revised, new_version, new_revised) -> bool | None:
    """Whether the second copy of a PMID is a newer revision than the first; None for the same.

    By PMID version first (MEDLINE text carries none: its records all read 1), then by
    DateRevised, a copy without one counting as older than any with one. Every pair of
    copies compares so (a total order): with a copy that "tied" with any other, or an
    XML version that outranked a MEDLINE date that outranked the XML, which copy was
    stored depended on where the batches fell, and a re-run could flip it back.
    """
    old, new = (version or 1, revised or ""), (new_version or 1, new_revised or "")
    return None if old == new else new > old


def _compared(old: tuple, item: "PreparedArticle") -> bool | None:
    """Whether ``item`` is newer than the stored record (``old``); None where neither tells."""
    return _newer_copy(old[4], old[1], item.row[_VERSION], item.revised_date)


# An author's row by name: prolific authors recur across a file, and hashing the name is
# the dearest part of an author's rows. Emptied when full, so memory stays flat.
_AUTHOR_ROWS: dict[tuple, tuple] = {}
_AUTHOR_ROWS_MAX = 50_000


def _author_rows(pmid: str, authors: list[tuple]) -> tuple[list, list, list]:
    """Rows of authors and article_authors, and the display names, from flattened authors."""
    author_table, links, names = [], [], []
    known = _AUTHOR_ROWS
    for position, (last, fore, initials, collective, affiliations, orcid) in enumerate(authors, 1):
        key = (last, fore, initials, collective)
        row = known.get(key)
        if row is None:
            name = collective or " ".join([p for p in (last, initials or fore) if p])
            row = (_author_id(last, fore, initials, collective), last, fore, initials, collective, name)
            if len(known) >= _AUTHOR_ROWS_MAX:
                known.clear()
            known[key] = row
        names.append(row[5])
        author_table.append(row)
        links.append((pmid, position, row[0], _json(affiliations) if affiliations else "[]", orcid))
    return author_table, links, names


def _mesh_rows(pmid: str, headings: list[tuple]) -> tuple[list, list]:
    """Rows of mesh_terms and article_mesh from flattened headings."""
    terms, rows = [], []
    for descriptor, ui, major, qualifiers in headings:
        terms.append((descriptor, ui))
        rows.append((pmid, descriptor, int(major), _qualifiers_json(qualifiers)))
    return terms, rows


class EarlierPieces:
    """What the earlier pieces of a batch did, in the transaction they share with the next
    (kb.importing sends a batch in pieces of 50 records).

    Each PMID counts once a batch, as what the batch made of it: a later copy in a later
    piece moves it from unchanged to revised where it replaces the record, and a copy
    that brings back an article the batch itself withdrew takes that deletion back, as
    read_batch counts the copies and deletions within a piece; so the counts do not
    depend on where the pieces fall. The rows articles share (journals, authors, MeSH
    terms) are not written again as they were: within the transaction they are stored,
    and INSERT OR IGNORE of an author a piece before wrote was a tenth of the store's SQL
    on 100,000 records. Built afresh for each transaction: a batch rolled back takes its
    rows with it.
    """

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}  # PMID: "new", "revised" or "unchanged", as counted
        self.deleted: set[str] = set()  # PMIDs the batch withdrew, as counted
        self.journals: dict[str, tuple] = {}  # as last written
        self.authors: set[int] = set()
        self.mesh_terms: dict[str, str | None] = {}  # descriptor: its UI, if one was written

    def count(self, counts: SaveCounts, pmid: str, outcome: str) -> None:
        """Count a PMID's copy: the first as it is; a later one only where it revises an
        article the batch had found unchanged (new and revised stay)."""
        before = self.outcomes.get(pmid)
        if before is None:
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        elif before == "unchanged" and outcome == "revised":
            counts.unchanged -= 1
            counts.revised += 1
        else:
            return
        self.outcomes[pmid] = outcome

    def note_deleted(self, counts: SaveCounts, pmids: list[str]) -> None:
        counts.deleted += len(pmids)
        self.deleted.update(pmids)

    def take_back(self, counts: SaveCounts, pmid: str) -> bool:
        """Whether the batch withdrew the article a copy now brings back; its deletion is then not counted."""
        if pmid not in self.deleted:
            return False
        self.deleted.discard(pmid)
        counts.deleted -= 1
        return True


class _Rows:
    """The rows of one batch, per table, once the stored state has been consulted.

    ``fill_shared``: the rows articles share (journals, authors) only fill what the stored
    ones lack, never replace them (kb.reparse: which record's spelling of a journal wins
    depends on the order the records were imported in, which a rewrite does not know).
    """

    def __init__(self, fill_shared: bool = False) -> None:
        self.fill_shared = fill_shared
        self.articles: list[tuple] = []  # new PMIDs
        self.replacing: list[tuple] = []  # PMIDs already stored
        self.journals: dict = {}
        self.authors: dict = {}
        self.mesh_terms: dict = {}
        self.children: dict = {table: [] for table in CHILD_TABLES}
        self._child_lists = [self.children[table] for table in CHILD_TABLES]
        self.raw: list[tuple] = []

    def add(self, item: PreparedArticle, first_seen: str, stamp: str, *, stored: bool = False,
            raw: bool = True) -> None:
        """``stored``: the PMID has a row already, which this one replaces. ``raw``: False
        when the raw record stored stays (kb.reparse read the article from it)."""
        (self.replacing if stored else self.articles).append(item.row + (first_seen, stamp))
        journal = item.journal
        if journal:
            known = self.journals.get(journal[0])
            if known is not None:  # as the upsert between batches does (keep_known): a value none replaces
                journal = tuple(value if value is not None else before for value, before in zip(journal, known))
            self.journals[journal[0]] = journal
        # The first spelling of a name (an author's id is its name in lower case) and the first
        # UI of a heading stay, as INSERT OR IGNORE and _fill_mesh_uis keep them between
        # batches: where the batches fall must not change the store.
        authors = self.authors
        for author in item.authors:
            authors.setdefault(author[0], author)
        terms = self.mesh_terms
        for descriptor, ui in item.mesh_terms:
            if descriptor not in terms or (ui and not terms[descriptor]):
                terms[descriptor] = ui
        for rows, more in zip(self._child_lists, item.children):
            rows.extend(more)
        if raw:
            self.raw.append(item.raw)

    def write(self, conn, earlier: EarlierPieces | None = None) -> None:
        """Write every row; the children of a replaced article, and its text in the
        full-text index, must be gone already (Store._delete_children, _unindex).
        ``earlier``: the shared rows are left out where they would change nothing."""
        fill = self.fill_shared
        journals, authors, terms = self.journals, self.authors, self.mesh_terms
        if earlier is not None and not fill:
            journals, authors, terms = self._new_to(earlier)
        _write_rows(conn, "journals", list(journals.values()), columns=JOURNAL_COLUMNS, upsert="id",
                    keep_known=True, fill_only=fill)
        _write_rows(conn, "authors", list(authors.values()), columns=AUTHOR_COLUMNS,
                    conflict=None if fill else "IGNORE", upsert="id" if fill else None, fill_only=fill)
        _write_rows(conn, "mesh_terms", list(terms.items()), columns=MESH_TERM_COLUMNS, conflict="IGNORE")
        _fill_mesh_uis(conn, terms)
        # A new PMID (none stored, as read in this transaction) takes a plain INSERT: the
        # upsert costs SQLite about twice as much a row, index maintenance included.
        _insert_and_index(conn, self.articles)
        _write_rows(conn, "articles", self.replacing, columns=tuple(ARTICLE_COLUMNS), upsert="pmid")
        _index(conn, [row[0] for row in self.replacing])
        for table in CHILD_TABLES:
            _write_rows(conn, table, self.children[table], columns=CHILD_COLUMNS[table], conflict="IGNORE")
        _write_rows(conn, "raw_records", self.raw, columns=RAW_COLUMNS, conflict="REPLACE")

    def _new_to(self, earlier: EarlierPieces) -> tuple[dict, dict, dict]:
        """The shared rows the earlier pieces did not write as they are (they are then noted):
        a journal written with other values (the upsert keeps a value the new row lacks, as
        it did), an author not written, a heading not written or written without its UI."""
        journals = {key: row for key, row in self.journals.items() if earlier.journals.get(key) != row}
        authors = {key: row for key, row in self.authors.items() if key not in earlier.authors}
        terms = {descriptor: ui for descriptor, ui in self.mesh_terms.items()
                 if descriptor not in earlier.mesh_terms or (ui and not earlier.mesh_terms[descriptor])}
        earlier.journals.update(journals)
        earlier.authors.update(authors)
        for descriptor, ui in terms.items():
            earlier.mesh_terms[descriptor] = ui or earlier.mesh_terms.get(descriptor)
        return journals, authors, terms


def _fill_mesh_uis(conn, terms: dict) -> None:
    """A MEDLINE import knows no UIs; an XML record that does fills them in."""
    with_ui = [(ui, descriptor) for descriptor, ui in terms.items() if ui]
    if with_ui:
        conn.executemany("update mesh_terms set ui = ? where descriptor = ? and ui is null", with_ui)


@contextmanager
def _checkpointing(db: sqlite_utils.Database, every: float | None = None):
    """Copy the write-ahead log into the database on another connection and thread while
    the block runs (see Store.bulk_load): once, or ``every`` so many seconds until the
    block ends. A checkpoint that fails is left to the next one.

    Only with a log: in memory, or where a file system refused write-ahead logging, the
    other connection would only wait for the block's lock.
    """
    path = db.execute("pragma database_list").fetchone()[2]
    if not path or db.journal_mode != "wal":
        yield
        return
    ended = threading.Event()

    def checkpoint() -> None:
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
        except sqlite3.Error as exc:
            log.debug("no checkpoints beside the bulk load: %s", exc)
            return
        try:
            while True:
                try:
                    conn.execute("pragma wal_checkpoint(PASSIVE)")  # PASSIVE: never waits for the block's lock
                except sqlite3.Error as exc:
                    log.debug("checkpoint beside the bulk load failed: %s", exc)
                if every is None or ended.wait(every):
                    break
        finally:
            conn.close()

    thread = threading.Thread(target=checkpoint, name="cryokb-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        ended.set()
        thread.join()


def chunks(items: list, size: int = 500):
    """``items`` a slice at a time, each within SQLite's parameter limit (999 in older builds)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_and_index(conn, rows: list[tuple]) -> None:
    """Insert new articles with the rowids SQLite would give them, and index their text.

    Knowing the rowids, the full-text index takes title and abstract from the rows in
    hand rather than reading them back from the table (a fifth of its cost).
    """
    if not rows:
        return
    start = conn.execute("select coalesce(max(rowid), 0) from articles").fetchone()[0] + 1
    numbered = [(rowid,) + row for rowid, row in enumerate(rows, start)]
    _write_rows(conn, "articles", numbered, columns=ROWID_ARTICLE_COLUMNS)
    conn.executemany("insert into articles_fts (rowid, title, abstract) values (?, ?, ?)",
                     [(row[0], row[_TITLE], row[_ABSTRACT]) for row in numbered])


def _unindex_withdrawn(conn) -> None:
    conn.execute("insert into articles_fts (articles_fts, rowid, title, abstract) "
                 "select 'delete', rowid, title, abstract from articles where deleted = 1")


def _index(conn, pmids: list[str]) -> None:
    """Add articles to the full-text index, a batch at a time; withdrawn ones stay out.

    The index is maintained here rather than by per-row triggers: one
    INSERT ... SELECT per batch is about five times faster on an import.
    """
    for chunk in chunks(pmids):
        conn.execute(
            "insert into articles_fts (rowid, title, abstract) select rowid, title, abstract from articles "
            f"where pmid in ({','.join('?' * len(chunk))}) and deleted = 0", chunk)


def _unindex(conn, pmids: list[str]) -> None:
    """Remove articles' current text from the index before it is replaced or withdrawn.

    Only live rows are in the index: deleting text that was never indexed would
    corrupt an external-content FTS5 table.
    """
    for chunk in chunks(pmids):
        conn.execute(
            "insert into articles_fts (articles_fts, rowid, title, abstract) "
            "select 'delete', rowid, title, abstract from articles "
            f"where pmid in ({','.join('?' * len(chunk))}) and deleted = 0", chunk)


_encode = json.JSONEncoder(ensure_ascii=False).encode
# What json escapes when ensure_ascii is off: text without these encodes as itself.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\\"]')


def _json(value: list) -> str:
    """JSON of a list, exactly as json.dumps(ensure_ascii=False) writes it.

    Lists of plain strings (names, languages, keywords) are joined directly, which is
    several times faster than the encoder for the few short items they hold.
    """
    if not value:
        return "[]"
    if type(value[0]) is str:
        try:
            plain = not _NEEDS_ESCAPE.search("".join(value))  # not the joined output: its quotes
        except TypeError:
            return _encode(value)
        if plain:
            return '["' + '", "'.join(value) + '"]'
    return _encode(value)


def _sections_json(sections: list[tuple]) -> str:
    """'[{"label": ..., "nlm_category": ..., "text": ...}]' from flattened (text, label, category)
    sections, without the encoder when the strings are plain."""
    parts = []
    for text, label, category in sections:
        if not (_plain_json(text) and _plain_or_null(label) and _plain_or_null(category)):
            return _encode([{"label": label, "nlm_category": category, "text": text}
                            for text, label, category in sections])
        parts.append(f'{{"label": {_quoted(label)}, "nlm_category": {_quoted(category)}, "text": "{text}"}}')
    return "[" + ", ".join(parts) + "]"


def _plain_json(value) -> bool:
    """A str that JSON writes as itself between quotes."""
    return type(value) is str and not _NEEDS_ESCAPE.search(value)


def _plain_or_null(value) -> bool:
    return value is None or _plain_json(value)


def _quoted(value: str | None) -> str:
    """The JSON of a plain str (see _plain_json) or None."""
    return "null" if value is None else '"' + value + '"'


_FALSE_TRUE = ("false", "true")


def _qualifiers_json(qualifiers: list[tuple]) -> str:
    """'[{"name": ..., "ui": ..., "major": ...}]' from flattened (name, ui, major) qualifiers,
    without the encoder when names are plain."""
    if not qualifiers:
        return "[]"
    parts = []
    for name, ui, major in qualifiers:
        if not (_plain_json(name) and _plain_or_null(ui)):
            return _encode([{"name": n, "ui": u, "major": m} for n, u, m in qualifiers])
        parts.append(f'{{"name": "{name}", "ui": {_quoted(ui)}, "major": '
                     f'{_FALSE_TRUE[major] if type(major) is bool else _encode(major)}}}')
    return "[" + ", ".join(parts) + "]"


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], conflict: str | None, upsert: str | None,
                keep_known: bool = False, fill_only: bool = False) -> str:
    names = ", ".join(f"[{c}]" for c in columns)
    marks = ", ".join("?" * len(columns))
    verb = f"INSERT OR {conflict}" if conflict else "INSERT"
    sql = f"{verb} INTO [{table}] ({names}) VALUES ({marks})"
    if upsert:
        new = ("coalesce([{0}], excluded.[{0}])" if fill_only
               else "coalesce(excluded.[{0}], [{0}])" if keep_known else "excluded.[{0}]")
        updates = ", ".join(f"[{c}] = {new.format(c)}" for c in columns if c != upsert)
        sql += f" ON CONFLICT([{upsert}]) DO UPDATE SET {updates}"
    return sql


def _write_rows(conn, table: str, rows: list[tuple], *, columns: tuple[str, ...], conflict: str | None = None,
               upsert: str | None = None, keep_known: bool = False, fill_only: bool = False) -> None:
    """Write row tuples (in ``columns`` order) with one prepared statement: the hot path of an import.

    sqlite-utils creates and evolves the schema; the bulk writes go straight to
    executemany, which is several times faster than building a statement per chunk.
    ``keep_known``: an upsert keeps a stored value where the new row has none (a
    journal named by one record with its ISSN and by the next without). ``fill_only``:
    it only fills the stored row's empty values.
    """
    if rows:
        conn.executemany(_insert_sql(table, columns, conflict, upsert, keep_known, fill_only), rows)
