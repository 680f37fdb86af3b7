"""Serve the knowledge base through Datasette, read-only.

``make_datasette(db_path)`` builds the app exactly as ``cryokb serve`` runs it: the
database opened immutable under the name ``cryokb`` (so every URL and canned query is the
same whatever the file is called), the metadata of data/metadata.yml with what only the
database knows merged in (the query, its version, the date of the last refresh), and the
project's plugin (kb.datasette_plugin) registered even when running from a checkout that
was never pip-installed. ``serve`` runs it under uvicorn; ``cryokb demo`` can call it too.
"""

from __future__ import annotations

import copy
import errno
import logging
import socket
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from kb.store import immutable_uri, on_read_only_media

log = logging.getLogger("cryokb.publish")

DATABASE_NAME = "cryokb"
METADATA_FILE = "metadata.yml"
# Every connection Datasette opens on the knowledge base reads it through a memory map: the file
# is immutable while served, and a page that looks up thousands of articles then reads their
# pages from memory instead of one system call each (a filtered articles page or a full-text
# search at 100,000 articles: 1.3-2.7x less SQL time). SQLite caps the size at its build limit.
READ_PRAGMAS = ("mmap_size = 2147418112",)
# The runs that say where the data came from (harvests and imports): a reparse only read
# stored records again.
SOURCE_RUNS = "outcome = 'ok' and kind != 'reparse'"
SETTINGS = {
    "default_page_size": 50,
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 300,
    "suggest_facets": False,
    "allow_download": True,
    "default_cache_ttl": 60,
    "truncate_cells_html": 300,  # abstracts in table views: the article page shows them whole
}


class PublishError(Exception):
    """The database cannot be published (missing, not SQLite, not a cryokb store)."""


def load_metadata() -> dict:
    """data/metadata.yml as a dict (found through cryokb_data, so it works from a wheel)."""
    from cryokb_data import path as data_path
    from datasette.utils import parse_metadata

    source = data_path(METADATA_FILE)
    try:
        return parse_metadata(source.read_text(encoding="utf-8"))
    except Exception as exc:
        raise PublishError(f"cannot read {METADATA_FILE} in the installed data: {exc}") from exc


def database_facts(db_path: Path) -> dict:
    """What the metadata needs from the database: last successful run, query, flags."""
    with _reading(db_path) as conn:
        return _facts(conn, db_path)


@contextmanager
def _reading(db_path: Path):
    """A connection to read the database before it is served, its write-ahead log
    checkpointed first: the database is served immutable, and an immutable reader would
    not see pages still sitting in the -wal file. On read-only media (a published copy
    on a read-only mount), where a WAL database cannot be opened for writing, the
    connection is immutable itself."""
    try:
        conn = sqlite3.connect(str(db_path))
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            if on_read_only_media(exc):
                conn.close()
                log.info("%s cannot be written (%s): reading it immutable", db_path, exc)
                conn = sqlite3.connect(immutable_uri(db_path), uri=True)
            elif "locked" in str(exc) or "busy" in str(exc):  # a writer at work: served as it stands
                log.warning("could not checkpoint %s: %s", db_path, exc)
            else:
                conn.close()
                raise
    except sqlite3.DatabaseError as exc:
        raise PublishError(f"cannot read {db_path}: {exc}") from exc
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise PublishError(f"cannot read {db_path}: {exc}") from exc
    finally:
        conn.close()


def _facts(conn: sqlite3.Connection, db_path: Path) -> dict:
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
    if "articles" not in tables:
        raise PublishError(f"{db_path} is not a cryokb database (no articles table)")
    facts: dict = {"meta": {}, "last_run": None, "articles": conn.execute(
        "select count(*) from articles where deleted = 0").fetchone()[0], "tables": tables,
        "article_columns": {r[1] for r in conn.execute("pragma table_info(articles)")}}
    if "cryokb_meta" in tables:
        facts["meta"] = dict(conn.execute("select key, value from cryokb_meta"))
    if "harvest_runs" in tables:
        conn.row_factory = sqlite3.Row
        row = conn.execute(f"select * from harvest_runs where {SOURCE_RUNS} order by id desc limit 1").fetchone()
        facts["last_run"] = dict(row) if row else None
    return facts


def build_metadata(db_path: Path, base: dict | None = None) -> dict:
    """The metadata file, with the source line telling where and when the data came from."""
    metadata = copy.deepcopy(base if base is not None else load_metadata())
    with _reading(db_path) as conn:
        return _fill_metadata(metadata, _facts(conn, db_path), conn)


def _fill_metadata(metadata: dict, facts: dict, conn: sqlite3.Connection) -> dict:
    run = facts["last_run"]
    parts = [metadata.get("source", "PubMed")]
    if run:
        if run.get("query"):
            version = f" (version {run['query_version']})" if run.get("query_version") else ""
            parts.append(f"query{version}: {run['query']}")
        parts.append(f"last refresh: {(run.get('finished') or run.get('started') or '')[:10]} ({run['kind']})")
    else:
        parts.append("no harvest recorded")
    if facts["meta"].get("synthetic") == "true":
        parts.append("SYNTHETIC demo records, not real articles")
    metadata["source"] = "; ".join(parts)
    unbuilt = metadata.pop("cryokb_unbuilt_description_html", None)
    if unbuilt and not conn.execute("select 1 from sqlite_master where name = 'article_concepts'").fetchone():
        metadata["description_html"] = unbuilt
    database = metadata.setdefault("databases", {}).setdefault(DATABASE_NAME, {})
    database["source"] = metadata["source"]
    extra = [f"{facts['articles']:,} articles"]
    if facts["meta"].get("extractor_version"):
        extra.append(f"extractor {facts['meta']['extractor_version']}")
    database["description"] = f"{database.get('description', '').strip()} ({'; '.join(extra)})"
    _keep_facets_the_database_can_answer(database.get("tables", {}).get("articles"), facts)
    _keep_queries_the_database_can_run(database.get("queries", {}), conn)
    return metadata


class _AnyValue(dict):
    """Named parameters for preparing a canned query: every one is NULL."""

    def __missing__(self, key):
        return None


def _keep_queries_the_database_can_run(queries: dict, conn: sqlite3.Connection) -> None:
    """A canned query on a table that only some commands make (refresh_runs, made by
    cryokb refresh) or on evidence columns before the first build would show its users
    an SQL error: such queries are left out of this database's menu."""
    for name, query in list(queries.items()):
        try:
            conn.execute(f"explain {query['sql']}", _AnyValue())
        except sqlite3.Error as exc:
            log.info("canned query %s left out: %s", name, exc)
            del queries[name]


def _keep_facets_the_database_can_answer(table: dict | None, facts: dict) -> None:
    """A store that was harvested but never built has no evidence columns or article_concepts
    yet: its default facets on those would make the articles page an SQL error."""
    if not table or "facets" not in table:
        return

    def answerable(facet) -> bool:
        kind, column = ("column", facet) if isinstance(facet, str) else next(iter(facet.items()))
        if kind == "concept" and "article_concepts" not in facts["tables"]:
            return False
        return column in facts["article_columns"]

    table["facets"] = [facet for facet in table["facets"] if answerable(facet)]


def register_plugin() -> None:
    """Register kb.datasette_plugin unless the entry point already did (checkouts, tests)."""
    from datasette.plugins import pm

    from kb import datasette_plugin

    if not pm.is_registered(datasette_plugin) and pm.get_plugin("cryokb") is None:
        pm.register(datasette_plugin, name="cryokb")


def make_datasette(db_path: str | Path, *, metadata: dict | None = None, settings: dict | None = None):
    """A Datasette serving ``db_path`` read-only as ``/cryokb``, with our metadata and plugin."""
    from datasette.app import Datasette
    from datasette.database import Database

    db_path = Path(db_path)
    if not db_path.is_file():
        raise PublishError(f"no database at {db_path} (run 'cryokb demo' or 'cryokb harvest' and 'cryokb build')")
    register_plugin()
    ds = Datasette(metadata=metadata if metadata is not None else build_metadata(db_path),
                   settings={**SETTINGS, **(settings or {})})
    ds.add_database(Database(ds, path=str(db_path), is_mutable=False), name=DATABASE_NAME)
    if "_memory" in ds.databases:  # Datasette adds an empty in-memory database when given no files
        ds.remove_database("_memory")
    return ds


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8001, *, settings: dict | None = None,
          log_level: str = "info", on_ready: Callable[[str], None] | None = None) -> None:
    """Run the Datasette app under uvicorn until interrupted (blocks).

    ``on_ready(url)`` is called once the address is bound and the database checked, with
    the port actually bound (``port=0`` picks a free one), so that what is announced is
    what serves.
    """
    import asyncio

    import uvicorn

    listening = _bind(host, port)
    with listening:
        ds = make_datasette(db_path, settings=settings)
        asyncio.run(ds.invoke_startup())
        listening.listen(2048)  # connections wait in the backlog until uvicorn accepts them
        bound = listening.getsockname()[1]
        url = f"http://{f'[{host}]' if ':' in host else host}:{bound}/"
        log.info("serving %s at %s", db_path, url)
        if on_ready:
            on_ready(url)
        uvicorn.Server(uvicorn.Config(ds.app(), log_level=log_level, lifespan="on")).run(sockets=[listening])


def _bind(host: str, port: int) -> socket.socket:
    """The socket to serve on, bound here: an address that cannot be listened on (a port
    in use, an unknown host) fails in one line, where uvicorn would log the error and
    exit with its own code 3, which for cryokb means "another refresh is running"."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        listening = socket.socket(family, kind, proto)
        try:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            listening.bind(address)
        except OSError:
            listening.close()
            raise
        return listening
    except OSError as err:
        raise PublishError(f"cannot serve on {host}:{port}: {err.strerror or err} ({_bind_hint(err)})") from None


def _bind_hint(err: OSError) -> str:
    """What to change, by what the system refused: a port in use was the only hint, and it
    sent a user with a mistyped host looking for a server that was not there."""
    if isinstance(err, socket.gaierror):
        if err.errno == socket.EAI_AGAIN:  # the resolver did not answer: the name may be right
            return "the host name could not be looked up now: check --host and the network"
        return "no such host: check --host"
    if err.errno == errno.EADDRNOTAVAIL:
        return "not an address of this machine: check --host"
    if err.errno == errno.EACCES:
        return "ports below 1024 need privileges: choose another --port"
    return "is another server there? choose another --port or --host"
