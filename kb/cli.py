"""The ``cryokb`` command: a thin click layer over ingest, extractors and kb.

Each command parses its options, calls the library, and turns the library's typed
errors into a one-line message with exit code 1 (click gives 2 for usage errors).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import click
from click.core import ParameterSource

from cryokb_data import path as data_path
from kb.config import names_a_folder
from kb.progress import counted

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
DEMO_DB = "cryokb-demo.db"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cryokb")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


class EnvOption(click.Option):
    """An option whose errors name its environment variable only when the value came
    from it: click names it whenever the help shows it, so a bad --db typed on the
    command line was told as "Invalid value for '--db' (env var: 'CRYOKB_DB')"."""

    def consume_value(self, ctx: click.Context, opts):
        value, source = super().consume_value(ctx, opts)
        ctx.meta[f"cryokb.source.{self.name}"] = source  # click records it only once the value is checked
        return value, source

    def get_error_hint(self, ctx: click.Context | None) -> str:
        hint = click.Parameter.get_error_hint(self, ctx)
        if ctx is not None and ctx.meta.get(f"cryokb.source.{self.name}") is ParameterSource.ENVIRONMENT:
            hint += f" (from the environment variable {self.envvar})"
        return hint


def db_option(default="cryokb.db", envvar="CRYOKB_DB"):
    return click.option(
        "--db",
        "db_path",
        cls=EnvOption,
        type=click.Path(dir_okay=False, path_type=str),
        default=default,
        envvar=envvar,
        show_default=True,
        show_envvar=envvar is not None,
        callback=_db_given,
        help="SQLite database file.",
    )


def _db_given(ctx, param, value: str | None) -> Path | None:
    """The --db path, refused where it names a folder that does not exist yet: empty (as a
    Path, the current folder, which was told as ". is a directory", naming nothing the
    user typed) or ending in a slash or a dot (as a Path, the name without them: "kb/"
    made a file "kb"); and where it is only blank space, a file name no one means.
    Spaces around a name are kept, as part of the file name (refresh refuses them in its
    settings rather than start a store beside the one meant: kb.config)."""
    if value is None:
        return None
    if value in ("", "."):
        raise click.BadParameter("is empty or names the current folder: give a database file", ctx=ctx,
                                 param=param)
    if not value.strip():  # CRYOKB_DB=" ": a database named " " was made in the current folder
        raise click.BadParameter(f"{value!r} is only blank space: give a database file", ctx=ctx, param=param)
    if names_a_folder(value):  # "kb/", "kb/.": as a Path, "kb"
        raise click.BadParameter(f"{value!r} ends with a slash or a dot, so it names a folder: give a database "
                                 "file", ctx=ctx, param=param)
    return Path(value)


def eutils_options(fn):
    """The E-utilities settings, shared by every command that talks to PubMed."""
    options = [
        click.option("--email", envvar="NCBI_EMAIL", show_envvar=True, cls=EnvOption, callback=_usable_email,
                     help="Contact e-mail sent to NCBI with every request (NCBI asks for one)."),
        click.option("--api-key", envvar="NCBI_API_KEY", show_envvar=True, cls=EnvOption,
                     help="NCBI API key: allows 10 requests/s instead of 3. Prefer the environment "
                          "variable; the key is never printed or stored."),
        click.option("--eutils-url", envvar="NCBI_EUTILS_URL", show_envvar=True, cls=EnvOption,
                     default=DEFAULT_EUTILS_URL, show_default=True, callback=_usable_url,
                     help="E-utilities base URL (a mirror, a proxy or a test server)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# What -v and -vv log, by what the command does.
REQUESTS_LOGGED = "Log each batch (-v) or each request (-vv)."
BATCHES_LOGGED = "Log each batch written (-v), and debugging details (-vv)."


def quiet_verbose_options(fn=None, *, verbose: str = BATCHES_LOGGED, quiet: str = "No progress bar and no summary."):
    """-q and -v; ``verbose`` and ``quiet``: what they do, where a command does something else."""
    if fn is None:
        return functools.partial(quiet_verbose_options, verbose=verbose, quiet=quiet)
    fn = click.option("-v", "--verbose", count=True, help=verbose)(fn)
    fn = click.option("-q", "--quiet", is_flag=True, help=quiet)(fn)
    return fn


def user_errors(fn):
    """Turn the library's typed errors into click's one-line, exit-code-1 errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            import kb.errors  # noqa: F401 - here, inside the guard: it takes a moment, and Ctrl-C may come

            return fn(*args, **kwargs)
        except BrokenPipeError:  # `cryokb extract ... | head`: the reader has gone, nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except KeyboardInterrupt as exc:  # said here, not by click ("Aborted!", exit 1: a user error's code)
            if not getattr(exc, "said", False):
                click.echo(f"\n{_why_stopped(exc, capital=True)}", err=True)
            sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
        except Exception as exc:
            from kb.errors import USER_ERRORS, sqlite_trouble

            if isinstance(exc, USER_ERRORS):
                raise click.ClickException(str(exc)) from exc
            message = sqlite_trouble(exc, kwargs.get("db_path")) if isinstance(exc, sqlite3.DatabaseError) else None
            if message is None:
                raise
            raise click.ClickException(message) from exc

    return wrapper


# Skipped records an import lists on the terminal; the rest are counted (all are stored).
SHOWN_PROBLEMS = 20
# A command stopped by a signal exits as shells report one (128 + its number), so that a
# script tells a run stopped from one that failed (1) or was misused (2).
EXIT_INTERRUPTED = 130  # SIGINT, Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM


def setup_logging(verbose: int, quiet: bool = False) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    if quiet and not verbose:
        level = logging.ERROR
    logger = logging.getLogger("cryokb")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def open_store(db_path: Path, *, existing: bool = False, reading: bool = False):
    """The store, its tables created where missing; another program's database is refused
    (Store.refuse_foreign). ``existing``: so is a new or empty one. ``reading``: a command
    that only reads (``stats``, ``graph``) opens it as it is, so that it works on read-only media."""
    from kb.store import Store

    store = Store.reading(db_path) if reading else Store(db_path)
    store.refuse_foreign(db_path)
    if existing and "articles" not in store.db.table_names():
        raise click.ClickException(f"{db_path} is not a cryokb database (it has no articles table): "
                                   "run 'cryokb harvest' or 'cryokb import' first")
    return store if reading else store.ensure_shape()


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(_version(), "--version", prog_name="cryokb")
def cli():
    """cryokb: the evidence knowledge base of image-guided cryoablation of
    musculoskeletal tumours, built from PubMed.

    \b
    Examples:
        cryokb harvest --email you@example.org      # fetch from PubMed into cryokb.db
        cryokb import pubmed_result.xml export.nbib  # or load saved PubMed files
        cryokb stats
        cryokb demo                                  # offline, from synthetic samples
    """


def _say_what_was_kept(store, exc: KeyboardInterrupt) -> None:
    run = next(store.db.query("select * from harvest_runs order by id desc limit 1"), None)
    if run and run["outcome"] == "failed":
        done = (f"were read again ({counted(run['revised'] or 0, 'article')} rewritten)" if run["kind"] == "reparse"
                else f"are stored ({run['new'] or 0} new, {run['revised'] or 0} revised)")
        click.echo(f"\n{_why_stopped(exc, capital=True)}: {run['kind']} run #{run['id']} recorded as failed; the "
                   f"{counted(run['fetched'] or 0, 'record')} of its committed batches {done}", err=True)
        exc.said = True


def _why_stopped(exc: KeyboardInterrupt, capital: bool = False) -> str:
    from ingest.model import ended_by

    why = ended_by(exc)
    return why[:1].upper() + why[1:] if capital else why


def _usable_url(ctx, param, value):
    """A base URL urllib can send to, or a usage error, as for any other bad value."""
    from ingest.eutils import base_url_problem

    problem = base_url_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


def _usable_email(ctx, param, value):
    """A contact address NCBI can write to, or a usage error naming --email or NCBI_EMAIL,
    before any request sends it; none at all (an empty one too, as click takes an empty
    NCBI_EMAIL: ``--email "$EMAIL"`` with it unset) is only warned about (EutilsClient)."""
    from ingest.eutils import email_problem

    problem = email_problem(value) if value else None
    if problem:
        raise click.BadParameter(problem)
    return value


def _query_given(ctx, param, value):
    """A --query that says something, or a usage error: an empty one (``--query "$Q"`` with Q
    unset) would otherwise run the default query, unasked."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty: give a PubMed query, or leave --query out for the default one",
                                 param_hint="--query")
    return value


@cli.command()
@db_option()
@eutils_options
@click.option("--query", callback=_query_given,
              help="PubMed query (default: the versioned query in data/pubmed_query.toml).")
@click.option("--since", metavar="YYYY/MM/DD", help="Only records entered or revised on or after this date "
              "(default: since the last successful harvest; everything on the first run). A run that "
              "starts after what earlier runs covered is a one-off: the next run without --since still "
              "starts where they ended.")
@click.option("--until", metavar="YYYY/MM/DD", help="Only records entered or revised up to this date.")
@click.option("--max", "max_records", type=click.IntRange(min=1), help="Stop after this many records.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="Records per efetch request and per database transaction.")
@quiet_verbose_options(verbose=REQUESTS_LOGGED)
@user_errors
def harvest(db_path, email, api_key, eutils_url, query, since, until, max_records, batch_size, quiet, verbose):
    """Search PubMed and store every matching record.

    Uses esearch with the history server, then efetch in batches; respects NCBI's
    rate limits (3 requests/s, 10 with an API key), retries with backoff, splits
    queries over 10,000 results into date windows, and is incremental: a second run
    fetches only what is new or revised. One harvest or refresh at a time per
    database: while another runs, a harvest does nothing and exits 1.

    \b
    Examples:
        cryokb harvest --email you@example.org
        cryokb harvest --since 2024/01/01 --until 2024/12/31 --max 200
        NCBI_API_KEY=... cryokb harvest --query 'cryoablation AND desmoid'
        cryokb harvest --eutils-url http://127.0.0.1:8080/eutils/   # a mirror or test server
    """
    from ingest.eutils import EutilsClient
    from ingest.harvest import format_date, load_default_query, utc_today
    from kb.lock import RefreshLock

    setup_logging(verbose, quiet)
    since_day, until_day = _check_date("--since", since), _check_date("--until", until)
    if since_day and until_day and since_day > until_day:
        raise click.BadParameter(f"{since} is after --until {until}", param_hint="--since")
    if since_day and since_day > utc_today():
        raise click.BadParameter(f"{since} is after today ({format_date(utc_today())}, UTC): nothing can have "
                                 "entered PubMed since", param_hint="--since")
    query_version = None
    if not query:
        query, query_version = load_default_query()
    client = EutilsClient(base_url=eutils_url, email=email, api_key=api_key)
    with RefreshLock(db_path.resolve(), command="harvest"):  # one harvest or refresh at a time (kb.lock)
        # opened only once locked: even a refused harvest's open would write (the tables of a
        # newer cryokb), and the refresh holding the lock would then refuse to publish
        result = _harvest_into(open_store(db_path), client, query, query_version, since, until, max_records,
                               batch_size, quiet)
    if not quiet:
        click.echo(_describe_counts("Harvested", result.counts, result.fetched), err=True)
        if result.truncated:
            click.echo(f"Stopped at --max {max_records} of the {result.matched} records matched: the run is "
                       "recorded as partial, so the next run without --since does not start after it (and "
                       "asks first for the records not stored yet).", err=True)


def _harvest_into(store, client, query, query_version, since, until, max_records, batch_size, quiet):
    from ingest.harvest import harvest as run_harvest
    from kb.progress import progressbar

    with progressbar(desc="harvest", quiet=quiet) as bar:
        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            return run_harvest(client, store, query, query_version=query_version, since=since, until=until,
                               max_records=max_records, batch_size=batch_size, progress=progress)
        except KeyboardInterrupt as exc:
            _say_what_was_kept(store, exc)
            raise


def _build_evidence(store, quiet: bool, **options):
    """Extract what is stale, with a progress bar, then rebuild the concept graph."""
    from kb import evidence, graph
    from kb.progress import progressbar

    written = 0
    with progressbar(desc="build", unit="articles", quiet=quiet) as bar:
        def on_total(total):
            bar.total = total
            bar.refresh()

        def on_written(n):
            nonlocal written
            written += n
            bar.update(n)

        try:
            result = evidence.build(store, progress=on_written, on_total=on_total, **options)
        except KeyboardInterrupt as exc:  # each batch of evidence is committed: say what the next build is spared
            click.echo(f"\n{_why_stopped(exc, capital=True)}: the evidence of the {counted(written, 'article')} "
                       "written before it is kept; the next build extracts the rest and rebuilds the graph",
                       err=True)
            exc.said = True
            raise
    return result, graph.rebuild(store)


def _check_date(name, value):
    """The date of a YYYY/MM/DD option, or a usage error (exit 2) naming it."""
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, "%Y/%m/%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY/MM/DD", param_hint=name)


def _describe_counts(verb, counts, records):
    """The run's counts in one line; they add up to ``records`` (articles read), a copy of a
    PMID that its batch had already read counted as repeated."""
    repeated = records - counts.new - counts.revised - counts.unchanged
    return (f"{verb} {counted(records, 'record')}: {counts.new} new, {counts.revised} revised, "
            f"{counts.unchanged} unchanged, " + (f"{repeated} repeated, " if repeated > 0 else "")
            + f"{counts.deleted} deleted, {counted(counts.problems, 'problem')}")


def _stdin_as_a_file(ctx, param, files):
    """"-" read as /dev/stdin, which the import's reader process (and extract) opens as any
    file. A file that cannot be read is not refused here: the import says so as for a file
    it cannot read as PubMed (exit 1), and imports the others."""
    return tuple(Path("/dev/stdin") if str(f) == "-" else f for f in files)


@cli.command(name="import")
@db_option()
@click.argument("files", nargs=-1, required=True, callback=_stdin_as_a_file,
                type=click.Path(exists=True, dir_okay=False, readable=False, allow_dash=True, path_type=Path))
@click.option("--batch-size", type=click.IntRange(1, 100000), default=5000, show_default=True,
              help="Records per database transaction.")
@quiet_verbose_options
@user_errors
def import_(db_path, files, batch_size, quiet, verbose):
    """Import saved PubMed files: XML (.xml, .xml.gz) or MEDLINE text (.txt, .nbib).

    The format is read from the file's first bytes. A malformed record is reported
    and skipped; a broken file keeps everything read before the break. Importing the
    same file twice changes nothing.

    \b
    Examples:
        cryokb import pubmed-cryo-set.xml
        cryokb import pubmed21n1298.xml.gz --db baseline.db
        cryokb import citations.nbib -q
        cat exports/*.nbib | cryokb import -            # a pipe works too
    """
    from kb.importing import import_files
    from kb.progress import progressbar

    setup_logging(verbose, quiet)
    store = open_store(db_path)
    shown, skipped = [], [0]  # the first problems are shown; every one is in the problems table

    def note_problem(problem):
        skipped[0] += 1
        if len(shown) < SHOWN_PROBLEMS:
            shown.append(problem)

    with progressbar(desc="import", quiet=quiet) as bar:
        try:
            results = import_files(store, files, batch_size=batch_size, on_batch=bar.update,
                                   on_problem=note_problem)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say what was kept
            _say_what_was_kept(store, exc)
            raise
    for problem in shown:
        click.echo(f"Skipped: {problem}", err=True)
    if skipped[0] > len(shown):
        click.echo(f"... and {counted(skipped[0] - len(shown), 'more skipped record')} (see the problems table)",
                   err=True)
    for result in results:
        if not quiet:
            click.echo(_describe_counts(f"{result.path}:", result.counts, result.records), err=True)
    failed = [r for r in results if r.error]
    if failed:
        raise click.ClickException("; ".join(
            r.named_error() + (f" (the {counted(r.records, 'record')} read before it "
                               f"{'were' if r.records != 1 else 'was'} stored)" if r.records else "")
            for r in failed))


@cli.command()
@db_option()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@user_errors
def stats(db_path, as_json):
    """Counts, the publication year range and the last run of the store.

    Journals, authors and MeSH terms are counted among the articles not deleted.

    \b
    Examples:
        cryokb stats
        cryokb stats --db cryokb-demo.db --json
    """
    from ingest.model import SaveCounts

    if not db_path.exists():
        raise click.ClickException(f"no database at {db_path} (run 'cryokb harvest' or 'cryokb import' first)")
    store = open_store(db_path, reading=True)
    figures = store.stats()
    if as_json:
        click.echo(json.dumps(_with_details_parsed(figures), indent=2, default=str))
        return
    run = figures.pop("last_run", None)
    reparse_needed = figures.pop("reparse_needed", False)
    awaiting = figures.pop("awaiting_fetch", 0)
    missing = figures.pop("indexes_missing", 0)
    for key, value in figures.items():
        click.echo(f"{key.replace('_', ' '):>14}: {value if value is not None else '-'}")
    if run:
        counts = SaveCounts(*(run[name] or 0 for name in ("new", "revised", "unchanged", "deleted", "problems")))
        click.echo(f"{'last run':>14}: {run['kind']} #{run['id']} {run['outcome']} at {run['finished'] or run['started']}"
                   f" ({_describe_counts('', counts, run['fetched'] or 0).strip()})")
        if run["outcome"] == "failed" and run.get("error"):
            click.echo(f"{'why':>14}: {run['error']}")
    if awaiting:
        click.echo(f"{'awaiting fetch':>14}: {counted(awaiting, 'record')} harvests found but efetch "
                   "did not return (later harvests of the same query ask for them again)")
    if missing:
        click.echo(f"{'indexes':>14}: {missing} missing: {_why_indexes_missing(store)}")
    if reparse_needed:
        click.echo(f"{'reparse':>14}: needed: the records were read by another cryokb's parsers "
                   "(run 'cryokb reparse', or the next 'cryokb refresh' does)")


def _with_details_parsed(figures: dict) -> dict:
    """The figures with the last run's details (stored as JSON text) as an object, not a string in a string."""
    run = figures.get("last_run")
    if run and isinstance(run.get("details"), str):
        try:
            figures = dict(figures, last_run=dict(run, details=json.loads(run["details"])))
        except ValueError:
            pass  # not JSON: left as the text it is
    return figures


@cli.command()
@db_option(default=DEMO_DB, envvar=None)
@click.option("--serve/--no-serve", "serve_after", default=True, show_default=True,
              help="Serve the knowledge base in Datasette once it is built.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port to serve on.")
@quiet_verbose_options
@user_errors
def demo(db_path, serve_after, host, port, quiet, verbose):
    """Build the knowledge base from the synthetic sample records in data/, and serve it.

    Needs no network. Every sample record is synthetic (written for the demo, not
    real articles), and every page of the demo says so. It writes its own file
    (cryokb-demo.db unless --db), never CRYOKB_DB's: the demo's articles must not mix
    with a real store's.

    \b
    Examples:
        cryokb demo                       # build cryokb-demo.db, browse http://127.0.0.1:8001/
        cryokb demo --no-serve --db /tmp/demo.db
    """
    from kb.importing import import_files

    setup_logging(verbose, quiet)
    samples = sorted(p for p in data_path("samples").iterdir() if p.name.endswith((".xml", ".nbib", ".txt")))
    if not samples:
        raise click.ClickException("no sample records found in the installed data/samples")
    _refuse_real_articles(db_path)
    store = open_store(db_path)
    results = import_files(store, samples)
    failed = [r for r in results if r.error]
    if failed:
        raise click.ClickException("; ".join(f"{r.path}: {r.error}" for r in failed))
    store.set_meta("synthetic", "true")
    built, concept_graph = _build_evidence(store, quiet)
    if not quiet:
        figures = store.stats()
        extracted = f"{built.extracted} extracted" if built.extracted else "their evidence extracted already"
        click.echo(f"Demo knowledge base (synthetic data): {db_path.resolve()} "
                   f"({counted(figures['articles'], 'article')}, {extracted}, "
                   f"{counted(concept_graph.number_of_nodes(), 'concept')} in the graph)")
    if serve_after:
        from kb.publish import PublishError, serve as run_server

        store.db.close()
        try:
            run_server(db_path, host=host, port=port, log_level="warning" if quiet else "info",
                       on_ready=None if quiet else _announce("Serving at"))
        except PublishError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            pass  # how a server is stopped: done, exit 0


@cli.command()
@click.argument("files", nargs=-1, required=True, callback=_stdin_as_a_file,
                type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-",
              help="Write the JSON Lines here instead of standard output.")
@click.option("--n-process", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes for nlp.pipe.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=64, show_default=True,
              help="Abstracts per nlp.pipe batch.")
@quiet_verbose_options(verbose="Log debugging details (-vv).", quiet="No progress bar.")
@user_errors
def extract(files, output, n_process, batch_size, quiet, verbose):
    """Print the evidence record of every article in FILES, one JSON object a line.

    Reads PubMed XML (.xml, .xml.gz) or MEDLINE text; each record follows the
    evidence schema (EVIDENCE_SCHEMA.md, in ../shared beside this repository),
    with the sentence behind every value in its mentions.

    \b
    Examples:
        cryokb extract pubmed_result.xml
        cryokb extract export.nbib -o evidence.jsonl --n-process 2
        zcat pubmed_result.xml.gz | cryokb extract - > evidence.jsonl
    """
    from extractors.pipeline import extract_many
    from kb.progress import progressbar

    setup_logging(verbose, quiet)
    _refuse_overwriting(output, "--output", inputs=files)
    problems = []
    to_stdout = str(output) == "-"
    with _written(output) as stream, progressbar(desc="extract", unit="abstracts", quiet=quiet or to_stdout) as bar:
        for record in extract_many(_articles_of(files, problems), batch_size=batch_size, n_process=n_process):
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            bar.update(1)
    for problem in problems:
        click.echo(f"Skipped: {problem}", err=True)


@contextmanager
def _written(path: Path):
    """A text file to write, or standard output for "-", flushed and closed here.

    Not click.File: click closes it after the command has returned, outside user_errors,
    so a full disk at the last flush was a traceback rather than a one-line error.
    """
    if str(path) == "-":
        stream = sys.stdout
        yield stream
        stream.flush()
        return
    with _replaced(path) as temporary:
        stream = open(temporary, "w", encoding="utf-8")
        try:
            yield stream
            stream.close()
        finally:
            if not stream.closed:  # an error on the way: what is buffered cannot be written either
                with suppress(OSError):
                    stream.close()


@contextmanager
def _replaced(path: Path):
    """A temporary path beside ``path`` to write, which takes its place once written whole:
    a failed or interrupted export leaves what was there before. A device or a pipe
    (/dev/stdout) is written as it is, and "-" is standard output."""
    to_stdout = str(path) == "-"
    if to_stdout or path.exists() and (not path.is_file() or path.absolute().parts[1:2] in (("dev",), ("proc",))):
        # "-", or /dev/stdout: a pipe, a terminal, or a file the shell opened, which opening
        # it to write would empty (">>" appends): written whole, then copied out to it
        with tempfile.TemporaryDirectory(prefix="cryokb-") as folder:
            temporary = Path(folder) / ("output" if to_stdout else path.name)
            yield temporary
            out = nullcontext(sys.stdout.buffer) if to_stdout else open(path, "ab")
            with open(temporary, "rb") as written, out as device:
                shutil.copyfileobj(written, device)
                device.flush()
        return
    path = path.resolve()  # a symbolic link stays one: what it points to is replaced
    if not path.parent.is_dir():
        from kb.store import no_folder

        raise click.BadParameter(f"{path.parent}: {no_folder(path.parent)}", param_hint="--output")
    temporary = path.with_name(f".{os.getpid()}.tmp.{path.name}")  # its extension kept: it can choose the format
    try:
        yield temporary
        if path.exists():
            shutil.copymode(path, temporary)  # who may read it stays as it was
        os.replace(temporary, path)
    except OSError as exc:
        if exc.filename not in (temporary, str(temporary)):
            raise
        # said of the path the user gave: the temporary file's name meant nothing to them
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with suppress(OSError):
            temporary.unlink()


def _refuse_overwriting(output: Path, option: str, *, db: Path | None = None, inputs=()) -> None:
    """A usage error (exit 2) where ``output`` would overwrite the database, an input being
    read, or another SQLite file: ``-o cryokb.db`` for ``-o cryokb.graphml`` lost the store."""
    if str(output) == "-" or not output.is_file():
        return  # nothing to overwrite; a pipe or a device (/dev/stdout) is not read to be sure
    taken = [(db, "the database")] if db is not None else []
    taken += [(path, "an input file") for path in inputs]
    for other, what in taken:
        if other.exists() and os.path.samefile(output, other):
            raise click.BadParameter(f"{output} is {what}; write to another file", param_hint=option)
    with suppress(OSError), open(output, "rb") as handle:
        if handle.read(16) == b"SQLite format 3\x00":
            raise click.BadParameter(f"{output} is a SQLite database; write to another file", param_hint=option)


def _articles_of(files, problems):
    from ingest.model import Article, ParseProblem
    from ingest.readers import read_records

    for path in files:
        for record in read_records(path):
            if isinstance(record, Article):
                yield record
            elif isinstance(record, ParseProblem):
                problems.append(record)


@cli.command()
@click.argument("gold", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--articles", "article_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PubMed XML or MEDLINE file(s) holding the gold articles "
                   "(default: the file of the same stem beside each gold file).")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--errors", "show_errors", is_flag=True, help="Also list every disagreement, per article.")
@user_errors
def evaluate(gold, article_files, as_json, show_errors):
    """Score the extractor against gold records: per-field precision, recall and F1.

    GOLD is JSON Lines of evidence records (the evidence schema, ../shared/EVIDENCE_SCHEMA.md;
    mentions may be empty).

    \b
    Examples:
        cryokb evaluate tests/data/gold/*.jsonl
        cryokb evaluate my_gold.jsonl --articles my_abstracts.xml --errors
    """
    from extractors.evaluate import GoldFileError, format_table, load_gold, score, sibling_articles
    from extractors.pipeline import extract_many
    from ingest.readers import shown_name

    try:
        gold_records = [r for path in gold for r in load_gold(path)]
        sources = list(article_files) or list(dict.fromkeys(sibling_articles(p) for p in gold))
    except GoldFileError as exc:  # it names the file: a name that is not UTF-8 escaped as shown_name escapes it
        raise click.ClickException(shown_name(str(exc))) from exc
    if not gold_records:  # every score would be a vacuous 1.000
        raise click.ClickException(f"no gold records in {', '.join(map(shown_name, gold))}")
    wanted = {str(r["pmid"]) for r in gold_records}
    problems = []
    articles = (a for a in _articles_of(sources, problems) if a.pmid in wanted)
    predicted = {r["pmid"]: r for r in extract_many(articles)}
    missing = next((str(r["pmid"]) for r in gold_records if str(r["pmid"]) not in predicted), None)
    if missing is not None:  # score() would refuse it too, but cannot say why
        unread = next((p for p in problems if p.where == f"PMID {missing}"), None)
        why = f"its record could not be read ({unread})" if unread else \
            f"it is not among the articles of {', '.join(map(shown_name, sources))}"
        raise click.ClickException(f"gold PMID {missing} has no article to compare with: {why}")
    report = score(gold_records, predicted)
    if as_json:
        click.echo(json.dumps({"articles": report.articles, "scores": report.rows(),
                               "errors": report.errors if show_errors else None}, indent=2, default=str))
        return
    click.echo(format_table(report))
    if show_errors:
        for pmid, name, expected, got in report.errors:
            click.echo(f"{pmid} {name}: gold {expected} predicted {got}")


@cli.command()
@db_option()
@click.option("--full", is_flag=True, help="Re-extract every article, not only new, revised or stale ones.")
@click.option("--n-process", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes for extraction.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=200, show_default=True,
              help="Articles per extraction batch and per database transaction.")
@quiet_verbose_options
@user_errors
def build(db_path, full, n_process, batch_size, quiet, verbose):
    """Extract the evidence of stored articles and rebuild the evidence tables and graph.

    Only articles that are new, revised, or were extracted by an older extractor or
    vocabulary version are extracted again, unless --full.

    \b
    Examples:
        cryokb build
        cryokb build --full --n-process 2
    """

    setup_logging(verbose, quiet)
    if not db_path.exists():
        raise click.ClickException(f"no database at {db_path} (run 'cryokb harvest' or 'cryokb import' first)")
    store = open_store(db_path, existing=True)
    result, concept_graph = _build_evidence(store, quiet, full=full, batch_size=batch_size, n_process=n_process)
    if not quiet:
        click.echo(f"Extracted {counted(result.extracted, 'article')} (extractor {result.version}); graph of "
                   f"{counted(concept_graph.number_of_nodes(), 'concept')} and "
                   f"{counted(concept_graph.number_of_edges(), 'link')}", err=True)


def _pmids_given(ctx, param, values):
    """The PMIDs of a repeated option, canonical, or a usage error (exit 2) naming the odd one."""
    from ingest.model import canonical_pmid

    pmids = []
    for value in values:
        pmid = canonical_pmid(value)
        if pmid is None:
            raise click.BadParameter(f"{value!r} is not a PMID (a number such as 31234567)")
        pmids.append(pmid)
    return pmids


@cli.command()
@db_option()
@click.option("--pmid", "pmids", multiple=True, callback=_pmids_given, metavar="PMID",
              help="Only this article (repeat the option for more).")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@quiet_verbose_options(verbose="Log each article that changes, naming the columns and tables that do.")
@user_errors
def reparse(db_path, pmids, dry_run, quiet, verbose):
    """Read the stored articles again from their raw records, with this cryokb's parsers.

    Every record is stored as it was harvested or imported. After an upgrade that reads
    PubMed records better, this brings the articles stored before it up to date without
    going back to PubMed (importing the same files again would not: an unchanged record
    is left alone). Only articles whose rows come out different are rewritten; their
    first-seen date, their deletion mark and the raw record stay, and the next
    'cryokb build' extracts their evidence again. A record that can no longer be read
    is reported and its article left as it is.

    \b
    Examples:
        cryokb reparse --dry-run -v          # what would change, and in which fields
        cryokb reparse && cryokb build
        cryokb reparse --pmid 31234567 --pmid 30123456
    """
    from kb.progress import progressbar
    from kb.reparse import reparse as read_again

    setup_logging(verbose, quiet)
    if not db_path.exists():
        raise click.ClickException(f"no database at {db_path} (run 'cryokb harvest' or 'cryokb import' first)")
    store = open_store(db_path, existing=True, reading=dry_run)  # a dry run works on read-only media too
    unknown = store.unknown_pmids(pmids) if pmids else []
    if unknown:
        raise click.ClickException(f"{db_path} has no record of PMID{'s' * (len(unknown) > 1)} {', '.join(unknown)}")
    shown = []
    with progressbar(desc="reparse", total=len(set(pmids)) or store.db["raw_records"].count, quiet=quiet) as bar:
        try:
            result = read_again(store, pmids=pmids or None, dry_run=dry_run, on_page=bar.update,
                                on_problem=shown.append)
        except KeyboardInterrupt as exc:
            if not dry_run:
                _say_what_was_kept(store, exc)
            raise
    for problem in shown[:SHOWN_PROBLEMS]:
        click.echo(f"Skipped: {problem}", err=True)
    if len(shown) > SHOWN_PROBLEMS:
        click.echo(f"... and {len(shown) - SHOWN_PROBLEMS} more" + ("" if dry_run else " (see the problems table)"),
                   err=True)
    if not quiet:
        fields = ", ".join(f"{name} {n}" for name, n in result.fields.most_common())
        click.echo(f"Read {counted(result.read, 'stored record')} again: {result.changed} "
                   f"{'would change' if dry_run else 'changed'}" + (f" ({fields})" if fields else "")
                   + f", {result.unchanged} unchanged, {counted(result.problems, 'problem')}", err=True)


@cli.command(name="graph")
@db_option()
@click.option("--format", "fmt", type=click.Choice(["graphml", "gexf", "json"]), default="graphml",
              show_default=True, help="GraphML or GEXF for Gephi and Cytoscape; node-link JSON for the web.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
              required=True, help='File to write; "-" for standard output.')
@click.option("--bipartite", is_flag=True, help="Export the article-concept graph instead of co-occurrences.")
@user_errors
def graph_(db_path, fmt, output, bipartite):
    """Export the concept graph for Gephi, Cytoscape or the web.

    \b
    Examples:
        cryokb graph -o concepts.graphml
        cryokb graph --format gexf -o concepts.gexf
        cryokb graph --format json --bipartite -o articles.json
        cryokb graph --format json -o - | jq '.nodes | length'
    """
    from kb import graph

    if not db_path.exists():
        raise click.ClickException(f"no database at {db_path}")
    _refuse_overwriting(output, "--output", db=db_path)
    store = open_store(db_path, existing=True, reading=True)
    if "article_concepts" not in store.db.table_names():
        raise click.ClickException(f"{db_path} has no evidence yet: run 'cryokb build' first")
    result = graph.bipartite_graph(store) if bipartite else graph.add_metrics(graph.concept_graph(store))
    with _replaced(output) as temporary:
        graph.export(result, fmt, temporary)
    where = "standard output" if str(output) == "-" else output
    click.echo(f"Wrote {counted(result.number_of_nodes(), 'node')} and {counted(result.number_of_edges(), 'edge')} "
               f"to {where}", err=True)


@cli.command()
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=str),
              help="Published database [config: db; env: CRYOKB_DB; default: cryokb.db].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file [env: CRYOKB_CONFIG; default: ./cryokb.toml if present].")
@click.option("--query", callback=_query_given,
              help="PubMed query [config: query; env: CRYOKB_QUERY; default: data/pubmed_query.toml].")
@click.option("--email", help="Contact e-mail sent to NCBI [config: email; env: NCBI_EMAIL]. "
              "The API key is read only from NCBI_API_KEY or the config file.")
@click.option("--eutils-url", help="E-utilities base URL [config: eutils_url; env: NCBI_EUTILS_URL].")
@click.option("--batch-size", type=click.IntRange(1, 10000),
              help="Records per efetch and transaction [config: batch_size; env: CRYOKB_BATCH_SIZE; default: 500].")
@click.option("--full", is_flag=True, help="Re-harvest everything the query matches (needed after a query change).")
@click.option("--reextract", is_flag=True, help="Extract every article again, not only new, revised or stale ones.")
@click.option("--reparse", is_flag=True,
              help="Read every stored record again with this cryokb's parsers before extracting (done "
                   "without asking when the parsers that read them were others; see cryokb reparse).")
@click.option("--dry-run", is_flag=True, help="Say what would be fetched (esearch counts only); write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("--wait", is_flag=True,
              help="If another refresh or a harvest runs on this database, wait for it (default: exit 3).")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=str),
              help="Also write timestamped log lines to this file [config: log; env: CRYOKB_LOG].")
@quiet_verbose_options(verbose=REQUESTS_LOGGED)
@click.pass_context
def refresh(ctx, db_path, config_file, query, email, eutils_url, batch_size, full, reextract, reparse, dry_run,
            as_json, wait, log_file, quiet, verbose):
    """Bring the knowledge base up to date: harvest, extract, rebuild the graph, publish.

    Fetches what is new or revised since the last successful run into a staging copy
    (cryokb.db.staging), extracts what is stale, and replaces the published database
    in one atomic rename: readers never see a half-built database, and a run killed
    at any point leaves it as it was; the next run resumes. Exit codes: 0 done (with
    or without changes), 1 failure or configuration error, 2 usage error, 3 another
    refresh or a harvest is running on this database.

    \b
    Examples:
        cryokb refresh --email you@example.org
        cryokb refresh --config /srv/cryokb/cryokb.toml -q --log /var/log/cryokb.log
        cryokb refresh --dry-run
        cryokb refresh --json --wait
        cryokb refresh --full --query 'cryoablation AND (bone OR soft tissue)'
        cryokb refresh --reparse                   # read every stored record again
    """
    import contextlib

    from kb.config import ConfigError, FlagError, resolve_settings
    from kb.lock import LockError, LockHeld
    from kb.refresh import (RefreshError, command_logging, dry_run as plan_refresh, format_dry_run,
                            format_summary, refresh as run_refresh, staging_path)
    from kb.errors import USER_ERRORS, sqlite_trouble

    def fail(message, code, **fields):
        if as_json:
            click.echo(json.dumps({"outcome": fields.pop("outcome", "failed"), "error": message, **fields}))
        click.echo(f"Error: {message}", err=True)
        ctx.exit(code)

    with contextlib.ExitStack() as stack:
        try:
            settings = resolve_settings({"db": db_path, "query": query, "email": email, "eutils_url": eutils_url,
                                         "batch_size": batch_size, "log": log_file}, config=config_file)
            note_failure = stack.enter_context(command_logging(verbose, quiet, settings.log))
        except ConfigError as exc:
            fail(str(exc), 2 if isinstance(exc, FlagError) else 1)
        logging.getLogger("cryokb.refresh").debug("settings: %s", settings.describe())
        try:
            if dry_run:
                planned = plan_refresh(settings, full=full, reextract=reextract, reparse=reparse)
                click.echo(json.dumps(planned.as_dict(), indent=2) if as_json else format_dry_run(planned))
                return
            result = run_refresh(settings, full=full, reextract=reextract, reparse=reparse, wait=wait,
                                 quiet=quiet or as_json)
        except LockHeld as exc:
            note_failure(f"{exc} (exit 3)")
            fail(f"{exc} (use --wait to wait for it)", 3, outcome="locked")
        except (RefreshError, LockError, ConfigError, *USER_ERRORS) as exc:
            note_failure(str(exc))
            fail(str(exc), 1)
        except sqlite3.DatabaseError as exc:
            message = sqlite_trouble(exc, settings.db)
            if message is None:
                raise
            note_failure(message)
            fail(message, 1)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM from systemctl stop or a timeout: said as any failure
            message = _stopped(exc, staging_path(settings.db))
            note_failure(message)
            fail(message, 1)
        logging.getLogger("cryokb.refresh").info("%s", format_summary(result))
        if as_json:
            click.echo(json.dumps(result.as_dict(), indent=2))
        elif not quiet:
            click.echo(format_summary(result))


@cli.command()
@db_option()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 to let other machines in).")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port to listen on.")
@quiet_verbose_options(verbose="Log what the server finds at start (-v), and debugging details (-vv).",
                       quiet="No address announced, and only warnings logged.")
@user_errors
def serve(db_path, host, port, quiet, verbose):
    """Browse the knowledge base in Datasette, read-only (immutable).

    With the project's metadata (descriptions, facets, full-text search, canned
    queries), PubMed and DOI links, each article's evidence, the evidence map, outcomes
    by year and the concept graph. Works offline. Stop it with Ctrl-C.

    \b
    Examples:
        cryokb serve                      # http://127.0.0.1:8001/
        cryokb serve --db cryokb-demo.db --port 8080
        cryokb serve --host 0.0.0.0       # reachable from other machines
    """
    from kb.publish import PublishError, serve as run_server

    setup_logging(verbose, quiet)
    _warn_of_missing_indexes(db_path)
    try:
        run_server(db_path, host=host, port=port, log_level="warning" if quiet else "info",
                   on_ready=None if quiet else _announce(f"Serving {db_path} at"))
    except PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM is how a server is stopped: done, exit 0


# What missing indexes mean when no import is loading without them (Store.missing_indexes):
# no cause, which the store does not record (a bulk load killed or locked out, a hand's
# DROP INDEX), but what brings them back: every command that writes runs Store.ensure_shape.
INDEXES_MISSING = ("queries go slowly without them; the next import, harvest, build, reparse or refresh "
                   "makes them again")


def _why_indexes_missing(store) -> str:
    """What a store's missing indexes mean: dropped by the bulk load of a run still going
    (an import), which builds them at its end, or gone until the next command that writes."""
    run = store.bulk_loading_run()
    if run is None:
        return INDEXES_MISSING
    pid = json.loads(run["details"])["pid"]
    return (f"{run['kind']} run #{run['id']} (pid {pid}, started {run['started']}) is still loading and builds "
            "them at its end; queries go slowly until then")


def _warn_of_missing_indexes(db_path: Path) -> None:
    from kb.store import Store

    if not db_path.is_file():  # the server says so; opening it here would make an empty one
        return
    try:
        store = Store.reading(db_path)
        try:
            missing = store.missing_indexes()
            why = _why_indexes_missing(store) if missing else None
        finally:
            store.db.close()
    except Exception:  # noqa: BLE001 - a file that is not a store: the server says what is wrong with it
        return
    if missing:
        click.echo(f"Warning: {db_path} lacks {len(missing)} of its indexes ({', '.join(missing[:3])}"
                   f"{', ...' if len(missing) > 3 else ''}): {why}", err=True)


def _refuse_real_articles(db_path: Path) -> None:
    """The demo's synthetic records must not mix with real ones (every page would then say
    synthetic); checked before the file is opened for writing, which would change it."""
    if not db_path.is_file():
        return
    store = open_store(db_path, reading=True)
    try:
        tables = store.db.table_names()
        real = ("articles" in tables and store.db.execute("select count(*) from articles").fetchone()[0]
                and not ("cryokb_meta" in tables and store.get_meta("synthetic") == "true"))
    finally:
        store.db.close()
    if real:
        raise click.ClickException(f"{db_path} holds real articles: the demo's synthetic records would mix with "
                                   "them and mark every page synthetic; give the demo a --db of its own")


def _announce(what: str):
    """Say where the server listens, once it does (the port bound, the database checked)."""
    return lambda url: click.echo(f"{what} {url} (Ctrl-C to stop)", err=True)


def _stopped(exc: KeyboardInterrupt, staging: Path) -> str:
    """What an operator reads of a refresh stopped by a signal: which, and where its work is."""
    why = _why_stopped(exc)
    if staging.exists():
        return f"{why}; the work done so far is kept in {staging}, and the next refresh resumes from there"
    return f"{why}; the published database is as it was"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``systemctl stop``, ``kill``), unwound as Ctrl-C is: a run records how it
    ended and what it stored, a refresh releases its lock and keeps its staging copy."""


def _terminate(signum, frame):
    raise Terminated("terminated (SIGTERM)")


def main():
    """The console script: the command group, with SIGTERM raised as Terminated."""
    signal.signal(signal.SIGTERM, _terminate)
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
