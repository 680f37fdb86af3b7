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
import sqlite3
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import sqlite_utils

from ingest.model import Article, Deletion, ParseProblem

log = logging.getLogger("cryokb.store")

SCHEMA_VERSION = 1

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

CHILD_TABLES = (
    "article_authors",
    "article_mesh",
    "publication_types",
    "keywords",
    "article_links",
)


class StoreError(Exception):
    """A problem with the database file itself (not a PubMed record)."""


@dataclass
class SaveCounts:
    new: int = 0
    revised: int = 0
    unchanged: int = 0
    deleted: int = 0
    problems: int = 0

    def add(self, other: "SaveCounts") -> "SaveCounts":
        for name in ("new", "revised", "unchanged", "deleted", "problems"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    @property
    def stored(self) -> int:
        return self.new + self.revised

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Batch:
    """The rows of one batch, per table, ready for insert_all."""

    articles: list = field(default_factory=list)
    journals: dict = field(default_factory=dict)
    authors: dict = field(default_factory=dict)
    mesh_terms: dict = field(default_factory=dict)
    children: dict = field(default_factory=lambda: {t: [] for t in CHILD_TABLES})
    raw: list = field(default_factory=list)


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
    key = "|".join(
        (author.last_name or "", author.fore_name or "", author.initials or "", author.collective_name or "")
    ).lower()
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
            try:
                # One writer thread may use the connection (kb.importing), never two at once.
                self.db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
                self._tune()
            except Exception as exc:  # sqlite3.DatabaseError: file is not a database
                raise StoreError(f"cannot open database {path}: {exc}") from exc

    def _tune(self) -> None:
        """Connection settings for bulk writes.

        synchronous=NORMAL is safe with WAL: a killed process never corrupts the
        database or loses a committed batch; only a power cut may undo the last
        few commits, which the next run fetches again.
        """
        for pragma in ("foreign_keys = ON", "synchronous = NORMAL", "cache_size = -65536"):
            self.db.execute(f"PRAGMA {pragma}")

    # -- schema ---------------------------------------------------------------

    def ensure_shape(self) -> "Store":
        """Create every table, index and the full-text index (idempotent)."""
        db = self.db
        try:
            db.execute("select 1 from sqlite_master limit 1")
        except Exception as exc:
            raise StoreError(f"not a SQLite database: {exc}") from exc
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
            },
            pk="id",
            if_not_exists=True,
        )
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
        db["article_authors"].create(
            {
                "pmid": str,
                "position": int,
                "author_id": int,
                "affiliations": str,
                "orcid": str,
            },
            pk=("pmid", "position"),
            foreign_keys=[("pmid", "articles", "pmid"), ("author_id", "authors", "id")],
            if_not_exists=True,
        )
        db["mesh_terms"].create({"descriptor": str, "ui": str}, pk="descriptor", if_not_exists=True)
        db["article_mesh"].create(
            {"pmid": str, "descriptor": str, "major": int, "qualifiers": str},
            pk=("pmid", "descriptor"),
            foreign_keys=[("pmid", "articles", "pmid"), ("descriptor", "mesh_terms", "descriptor")],
            if_not_exists=True,
        )
        db["publication_types"].create(
            {"pmid": str, "name": str, "ui": str},
            pk=("pmid", "name"),
            foreign_keys=[("pmid", "articles", "pmid")],
            if_not_exists=True,
        )
        db["keywords"].create(
            {"pmid": str, "keyword": str},
            pk=("pmid", "keyword"),
            foreign_keys=[("pmid", "articles", "pmid")],
            if_not_exists=True,
        )
        db["article_links"].create(
            {"pmid": str, "position": int, "ref_type": str, "ref_pmid": str, "source": str},
            pk=("pmid", "position"),
            foreign_keys=[("pmid", "articles", "pmid")],
            if_not_exists=True,
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
        db["cryokb_meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        self._ensure_indexes()
        if "articles_fts" not in db.table_names():
            db["articles"].enable_fts(["title", "abstract"], create_triggers=False, tokenize="porter")
        return self

    def _ensure_indexes(self) -> None:
        wanted = {
            "articles": [["pub_year"], ["journal_id"], ["entrez_date"], ["revised_date"], ["deleted"], ["retracted"]],
            "article_authors": [["author_id"]],
            "article_mesh": [["descriptor"]],
            "publication_types": [["name"]],
            "keywords": [["keyword"]],
            "article_links": [["ref_type"], ["ref_pmid"]],
            "harvest_runs": [["kind", "outcome"]],
        }
        for table, indexes in wanted.items():
            for columns in indexes:
                self.db[table].create_index(columns, if_not_exists=True)

    # -- writing --------------------------------------------------------------

    def save_records(self, records: Iterable, *, run_id: int | None = None) -> SaveCounts:
        """Write one batch (Articles, Deletions, ParseProblems) in one transaction."""
        counts = SaveCounts()
        articles: dict[str, Article] = {}
        deletions: list[str] = []
        problems: list[ParseProblem] = []
        for record in records:
            if isinstance(record, Article):
                articles[record.pmid] = record  # the later of two copies in a batch wins
            elif isinstance(record, Deletion):
                deletions.extend(record.pmids)
            elif isinstance(record, ParseProblem):
                problems.append(record)
            else:
                raise TypeError(f"cannot store {type(record).__name__}")
        with self.db.atomic():
            self._save_articles(list(articles.values()), counts)
            counts.deleted += self._mark_deleted(deletions)
            self._save_problems(problems, run_id)
            counts.problems += len(problems)
        return counts

    def _existing(self, pmids: list[str]) -> dict[str, tuple]:
        found = {}
        for start in range(0, len(pmids), 500):
            chunk = pmids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pmid, *known in self.db.execute(
                "select pmid, record_hash, revised_date, deleted, first_seen "
                f"from articles where pmid in ({marks})",
                chunk,
            ).fetchall():
                found[pmid] = tuple(known)
        return found

    def _save_articles(self, articles: list[Article], counts: SaveCounts) -> None:
        if not articles:
            return
        existing = self._existing([a.pmid for a in articles])
        stamp = now_iso()
        batch = _Batch()
        replaced = []
        for article in articles:
            digest = record_hash(article)
            old = existing.get(article.pmid)
            if old is not None:
                old_digest, old_revised, old_deleted, first_seen = old
                if old_digest == digest and not old_deleted:
                    counts.unchanged += 1
                    continue
                if old_revised and article.revised_date and article.revised_date < old_revised:
                    log.info("PMID %s: stored record (revised %s) is newer than this one (%s); kept",
                             article.pmid, old_revised, article.revised_date)
                    counts.unchanged += 1
                    continue
                replaced.append(article.pmid)
                counts.revised += 1
            else:
                counts.new += 1
                first_seen = stamp
            _add_article_rows(batch, article, digest, stamp, first_seen=first_seen or stamp)
        compressed = _compress_all(batch.raw)
        self._delete_children(replaced)
        conn = self.db.conn
        _unindex(conn, replaced)
        _write_rows(conn, "journals", list(batch.journals.values()), upsert="id")
        _write_rows(conn, "authors", list(batch.authors.values()), conflict="IGNORE")
        _write_rows(conn, "mesh_terms", list(batch.mesh_terms.values()), conflict="IGNORE")
        _fill_mesh_uis(conn, batch.mesh_terms.values())
        _write_rows(conn, "articles", batch.articles, upsert="pmid")
        _index(conn, [row["pmid"] for row in batch.articles])
        for table in CHILD_TABLES:
            _write_rows(conn, table, batch.children[table], conflict="IGNORE")
        for row, blob in zip(batch.raw, compressed.result()):
            row["compressed"] = blob
        _write_rows(conn, "raw_records", batch.raw, conflict="REPLACE")

    def _delete_children(self, pmids: list[str]) -> None:
        for start in range(0, len(pmids), 500):
            chunk = pmids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for table in CHILD_TABLES:
                self.db.execute(f"delete from {table} where pmid in ({marks})", chunk)

    def _mark_deleted(self, pmids: list[str]) -> int:
        """Mark withdrawn citations deleted; their rows stay, for provenance."""
        marked = 0
        stamp = now_iso()
        _unindex(self.db.conn, pmids)
        for pmid in pmids:
            cursor = self.db.execute(
                "update articles set deleted = 1, deleted_at = ?, last_updated = ? "
                "where pmid = ? and deleted = 0",
                [stamp, stamp, pmid],
            )
            marked += cursor.rowcount
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
        with self.db.atomic():
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
                }
            )
        return table.last_pk

    def finish_run(self, run_id: int, *, outcome: str, counts: SaveCounts | None = None,
                   fetched: int | None = None, error: str | None = None, extra: dict | None = None,
                   since: str | None = None, until: str | None = None) -> None:
        update = {"finished": now_iso(), "outcome": outcome, "error": error}
        if counts is not None:
            update.update(counts.as_dict())
        if fetched is not None:
            update["fetched"] = fetched
        if extra:
            update["details"] = json.dumps(extra, sort_keys=True)
        if since is not None:
            update["since"] = since
        if until is not None:
            update["until"] = until
        with self.db.atomic():
            self.db["harvest_runs"].update(run_id, update)

    def last_successful_run(self, kind: str = "harvest", query: str | None = None) -> dict | None:
        sql = "select * from harvest_runs where kind = ? and outcome = 'ok'"
        params: list = [kind]
        if query is not None:
            sql += " and query = ?"
            params.append(query)
        rows = list(self.db.query(sql + " order by id desc limit 1", params))
        return rows[0] if rows else None

    # -- settings kept in the database ----------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.db.atomic():
            self.db["cryokb_meta"].upsert({"key": key, "value": value}, pk="key")

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("select value from cryokb_meta where key = ?", [key]).fetchone()
        return row[0] if row else default

    # -- reading --------------------------------------------------------------

    def raw_record(self, pmid: str) -> tuple[str, bytes] | None:
        row = self.db.execute("select format, compressed from raw_records where pmid = ?", [pmid]).fetchone()
        return (row[0], zlib.decompress(row[1])) if row else None

    def stats(self) -> dict:
        db = self.db
        if "articles" not in db.table_names():
            return {"articles": 0}
        one = lambda sql: db.execute(sql).fetchone()  # noqa: E731
        total, deleted, retracted, with_abstract = one(
            "select count(*), coalesce(sum(deleted), 0), coalesce(sum(retracted and not deleted), 0), "
            "coalesce(sum(abstract != '' and not deleted), 0) from articles"
        )
        first, last = one("select min(pub_year), max(pub_year) from articles where deleted = 0")
        last_run = list(db.query("select * from harvest_runs order by id desc limit 1"))
        return {
            "articles": total - deleted,
            "deleted": deleted,
            "retracted": retracted,
            "with_abstract": with_abstract,
            "first_year": first,
            "last_year": last,
            "journals": db["journals"].count,
            "authors": db["authors"].count,
            "mesh_terms": db["mesh_terms"].count,
            "runs": db["harvest_runs"].count,
            "last_run": last_run[0] if last_run else None,
        }


def _add_article_rows(batch: _Batch, article: Article, digest: str, stamp: str, first_seen: str) -> None:
    pmid = article.pmid
    journal = article.journal
    journal_id = journal.key
    if journal_id:
        batch.journals[journal_id] = {
            "id": journal_id,
            "title": journal.title,
            "iso_abbreviation": journal.iso_abbreviation,
            "issn": journal.issn,
            "issn_linking": journal.issn_linking,
            "nlm_unique_id": journal.nlm_unique_id,
        }
    row = {
        "pmid": pmid,
        "version": article.version,
        "title": article.title or "",
        "abstract": article.abstract,
        "abstract_sections": _json([{"label": s.label, "nlm_category": s.nlm_category, "text": s.text}
                                    for s in article.abstract_sections]),
        "journal_id": journal_id,
        "volume": article.volume,
        "issue": article.issue,
        "pages": article.pages,
        "pub_date": article.pub_date,
        "pub_year": article.pub_year,
        "entrez_date": article.entrez_date,
        "revised_date": article.revised_date,
        "completed_date": article.completed_date,
        "languages": _json(article.languages),
        "publication_types": _json([pt.name for pt in article.publication_types]),
        "mesh": _json([m.descriptor for m in article.mesh_headings]),
        "keywords": _json(article.keywords),
        "authors": _json([a.display_name for a in article.authors]),
        "doi": article.doi,
        "pmcid": article.pmcid,
        "status": article.status,
        "is_book": int(article.is_book),
        "retracted": int(article.retracted),
        "deleted": 0,
        "deleted_at": None,
        "source_format": article.source_format,
        "record_hash": digest,
        "first_seen": first_seen,
        "last_updated": stamp,
    }
    batch.articles.append(row)
    for position, author in enumerate(article.authors, 1):
        aid = author_id(author)
        batch.authors[aid] = {
            "id": aid,
            "last_name": author.last_name,
            "fore_name": author.fore_name,
            "initials": author.initials,
            "collective_name": author.collective_name,
            "display_name": author.display_name,
        }
        batch.children["article_authors"].append(
            {"pmid": pmid, "position": position, "author_id": aid,
             "affiliations": _json(author.affiliations), "orcid": author.orcid}
        )
    for heading in article.mesh_headings:
        batch.mesh_terms.setdefault(heading.descriptor, {"descriptor": heading.descriptor, "ui": heading.ui})
        if heading.ui:
            batch.mesh_terms[heading.descriptor]["ui"] = heading.ui
        batch.children["article_mesh"].append(
            {"pmid": pmid, "descriptor": heading.descriptor, "major": int(heading.major),
             "qualifiers": _json([{"name": q.name, "ui": q.ui, "major": q.major} for q in heading.qualifiers])}
        )
    for pt in article.publication_types:
        batch.children["publication_types"].append({"pmid": pmid, "name": pt.name, "ui": pt.ui})
    for keyword in dict.fromkeys(article.keywords):
        batch.children["keywords"].append({"pmid": pmid, "keyword": keyword})
    for position, link in enumerate(article.links, 1):
        batch.children["article_links"].append(
            {"pmid": pmid, "position": position, "ref_type": link.ref_type, "ref_pmid": link.pmid,
             "source": link.source}
        )
    raw = article.raw if article.raw is not None else json.dumps(article.to_dict()).encode()
    batch.raw.append(
        {"pmid": pmid, "format": article.source_format, "compressed": raw, "sha1": digest}
    )


def _fill_mesh_uis(conn, terms) -> None:
    """A MEDLINE import knows no UIs; an XML record that does fills them in."""
    with_ui = [(t["ui"], t["descriptor"]) for t in terms if t.get("ui")]
    if with_ui:
        conn.executemany("update mesh_terms set ui = ? where descriptor = ? and ui is null", with_ui)


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _index(conn, pmids: list[str]) -> None:
    """Add articles to the full-text index, a batch at a time.

    The index is maintained here rather than by per-row triggers: one
    INSERT ... SELECT per batch is about five times faster on an import.
    """
    for chunk in _chunks(pmids):
        conn.execute(
            "insert into articles_fts (rowid, title, abstract) select rowid, title, abstract from articles "
            f"where pmid in ({','.join('?' * len(chunk))})", chunk)


def _unindex(conn, pmids: list[str]) -> None:
    """Remove articles' current text from the index before it is replaced or withdrawn.

    Only live rows are in the index: deleting text that was never indexed would
    corrupt an external-content FTS5 table.
    """
    for chunk in _chunks(pmids):
        conn.execute(
            "insert into articles_fts (articles_fts, rowid, title, abstract) "
            "select 'delete', rowid, title, abstract from articles "
            f"where pmid in ({','.join('?' * len(chunk))}) and deleted = 0", chunk)


_encode = json.JSONEncoder(ensure_ascii=False).encode


def _json(value) -> str:
    return _encode(value) if value else "[]"


_compressor = None


def _compress_all(rows: list[dict]):
    """Compress the raw records of a batch in a second thread (zlib releases the GIL).

    Started before the rest of the batch is written, so that on two cores the
    compression overlaps the inserts instead of adding to them.
    """
    global _compressor
    if _compressor is None:
        from concurrent.futures import ThreadPoolExecutor

        _compressor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cryokb-zlib")
    return _compressor.submit(lambda: [zlib.compress(row["compressed"], 1) for row in rows])


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], conflict: str | None, upsert: str | None) -> str:
    names = ", ".join(f"[{c}]" for c in columns)
    marks = ", ".join("?" * len(columns))
    verb = f"INSERT OR {conflict}" if conflict else "INSERT"
    sql = f"{verb} INTO [{table}] ({names}) VALUES ({marks})"
    if upsert:
        updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != upsert)
        sql += f" ON CONFLICT([{upsert}]) DO UPDATE SET {updates}"
    return sql


def _write_rows(conn, table: str, rows: list[dict], *, conflict: str | None = None, upsert: str | None = None) -> None:
    """Write rows with one prepared statement: the hot path of an import.

    sqlite-utils creates and evolves the schema; the bulk writes go straight to
    executemany, which is several times faster than building a statement per chunk.
    Every row of a table carries the same keys (built by _add_article_rows).
    """
    if not rows:
        return
    columns = tuple(rows[0])
    conn.executemany(_insert_sql(table, columns, conflict, upsert), [tuple(r.values()) for r in rows])
