"""`cryokb refresh` against the loopback E-utilities emulator, in process and as a real subprocess.

The crash tests start the command as a subprocess with CRYOKB_TEST_PAUSE_AT set: it
stops at that point of that phase and writes its pid into a marker file, the test
SIGKILLs it there, checks the published database is byte for byte what it was, then
runs the refresh again and checks that the result is exactly what one uninterrupted
refresh gives (every record once, the evidence of every article, nothing doubled).

Every record the emulator serves is synthetic (tests/emulator.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator import Emulator, Fault, revised, synthetic_records
from ingest.harvest import load_default_query
from kb.cli import cli
from kb.refresh import PAUSE_ENV, PAUSE_FILE_ENV

TODAY = dt.datetime.now(dt.timezone.utc).date()
SECRET = "k3y-that-must-never-show-0123456789"

# 20 older records first; later 5 enter PubMed today and 2 of the old ones are revised today.
OLD = synthetic_records(20, first_pmid=90000001, start=dt.date(2006, 1, 1), end=dt.date(2023, 6, 30))
NEW = synthetic_records(5, first_pmid=90000101, start=TODAY, end=TODAY, seed=11)
REVISED = [revised(OLD[3], TODAY, "Cryoablation of bone metastases of the pelvis: a corrected multicentre series"),
           revised(OLD[9], TODAY, "Percutaneous cryoablation of extra-abdominal desmoid tumours: an updated cohort")]


def later_records():
    return [r for r in OLD if r.pmid not in {x.pmid for x in REVISED}] + REVISED + NEW


# -- helpers ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """The settings come from each test's cryokb.toml, not from the machine's environment."""
    for name in ("CRYOKB_CONFIG", "CRYOKB_DB", "CRYOKB_QUERY", "CRYOKB_LOG", "CRYOKB_BATCH_SIZE", "NCBI_EMAIL",
                 "NCBI_API_KEY", "NCBI_EUTILS_URL", PAUSE_ENV, PAUSE_FILE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu():
    with Emulator(OLD) as emulator:
        yield emulator


def write_config(folder: Path, emu: Emulator, **extra) -> Path:
    settings = {"db": "kb.db", "eutils_url": emu.url, "email": "refresh-tests@example.org", "batch_size": 5,
                "extract_batch_size": 3, "max_tries": 3, "backoff": 0.01, **extra}
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = folder / "cryokb.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config(tmp_path, emu):
    return write_config(tmp_path, emu)


def refresh(config: Path, *args: str, env: dict | None = None):
    """One in-process run of `cryokb refresh --config CONFIG ARGS`."""
    return CliRunner().invoke(cli, ["refresh", "--config", str(config), *args], env=env, catch_exceptions=False)


def refresh_json(config: Path, *args: str) -> dict:
    result = refresh(config, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def start_paused(config: Path, phase: str, marker: Path, *args: str) -> subprocess.Popen:
    """`cryokb refresh` as a real process that stops at ``phase`` (see kb.refresh.pause_point)."""
    env = dict(os.environ, **{PAUSE_ENV: phase, PAUSE_FILE_ENV: str(marker)})
    return subprocess.Popen([sys.executable, "-m", "kb.cli", "refresh", "--config", str(config), "-q", *args],
                            cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(marker: Path, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"refresh ended (exit {process.returncode}) before its pause point:\n"
                        f"{process.stderr.read()}")
        assert time.monotonic() < deadline, "refresh never reached its pause point"
        time.sleep(0.05)


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def query(path: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def content(path: Path) -> dict:
    """What a reader sees, independent of row ids and timestamps: articles, evidence, outcomes, graph."""
    return {
        "articles": query(path, "select pmid, title, record_hash, deleted from articles order by pmid"),
        "evidence": query(path, "select pmid, record from evidence order by pmid"),
        "sentences": sorted(query(path, "select pmid, idx, start, end, text from sentences")),
        "outcomes": sorted(query(path, "select pmid, position, measure, grade, percent, count, total "
                                       "from outcomes"), key=repr),
        "concepts": sorted(query(path, "select pmid, concept, field, negated from article_concepts")),
        "graph": sorted(query(path, "select id, articles, degree from graph_nodes")),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted refresh over the final records: what every interrupted history must end as."""
    folder = tmp_path_factory.mktemp("reference")
    with Emulator(later_records()) as emulator:
        result = refresh(write_config(folder, emulator), "-q")
    assert result.exit_code == 0, result.output
    return content(folder / "kb.db")


def assert_sound_and_alone(db: Path) -> None:
    """Integrity ok, no -wal beside it, no staging copy or lock left behind."""
    assert query(db, "pragma integrity_check") == [("ok",)]
    assert query(db, "pragma journal_mode") == [("delete",)]
    for leftover in ("-wal", ".staging", ".staging-wal", ".staging.tmp", ".lock"):
        assert not Path(f"{db}{leftover}").exists(), f"{db}{leftover} left behind"


def assert_complete(db: Path, records) -> None:
    """Every record once, with the evidence of its current version, and no evidence row twice.

    The derived rows must agree with each stored evidence record: as many outcome rows
    (positions 0..n-1) and mention rows as the record lists, sentence indexes unique.
    """
    pmids = sorted(r.pmid for r in records)
    assert [row[0] for row in query(db, "select pmid from articles where deleted = 0 order by pmid")] == pmids
    assert query(db, "select count(*) from evidence") == [(len(pmids),)]
    assert query(db, "select count(*) from articles where extracted_hash is not record_hash") == [(0,)]
    titles = dict(query(db, "select pmid, title from articles"))
    for record in records:
        assert titles[record.pmid].rstrip(".") == record.title
    positions = {}
    for pmid, position in query(db, "select pmid, position from outcomes order by pmid, position"):
        positions.setdefault(pmid, []).append(position)
    mentions = dict(query(db, "select pmid, count(*) from mentions group by pmid"))
    for pmid, record in query(db, "select pmid, record from evidence"):
        record = json.loads(record)
        assert positions.get(pmid, []) == list(range(len(record["outcomes"]))), pmid
        assert mentions.get(pmid, 0) == len(record["mentions"]), pmid
    assert query(db, "select count(*) - count(distinct pmid || '/' || idx) from sentences") == [(0,)]
    assert query(db, "select count(*) from graph_nodes")[0][0] > 0


# -- ordinary runs ----------------------------------------------------------------------


def test_first_run_harvests_extracts_and_publishes(config, emu, tmp_path):
    summary = refresh_json(config)
    db = tmp_path / "kb.db"
    assert summary["outcome"] == "ok" and summary["db"] == str(db)
    assert (summary["fetched"], summary["new"], summary["revised"], summary["extracted"]) == (20, 20, 0, 20)
    assert summary["since"] is None and summary["articles"] == 20
    assert_sound_and_alone(db)
    assert_complete(db, OLD)
    runs = query(db, "select outcome, fetched, new, extracted from refresh_runs")
    assert runs == [("ok", 20, 20, 20)]
    assert query(db, "select count(*) from graph_nodes")[0][0] > 0
    # On a first run everything is new: the report is the whole evidence per lesion type,
    # counted here from article_concepts rather than from the JSON columns the report reads.
    lesions = query(db, "select c.concept, count(distinct c.pmid), count(o.id) from article_concepts c "
                        "join articles a on a.pmid = c.pmid left join outcomes o on o.pmid = c.pmid "
                        "where c.field = 'lesion_types' and c.negated = 0 and a.relevant = 1 "
                        "group by c.concept")
    assert lesions, "the synthetic records name lesion types the extractor knows"
    assert summary["by_lesion_type"] == {lesion: {"articles": n, "outcomes": o} for lesion, n, o in lesions}


@pytest.mark.parametrize("dry", [[], ["--dry-run"]], ids=["a refresh", "a dry run"])
def test_a_database_of_another_program_is_not_refreshed_into(config, emu, tmp_path, dry):
    db = tmp_path / "kb.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table notes (x)")
    before = db.read_bytes()
    result = refresh(config, *dry)  # the dry run planned a run that would fail
    assert result.exit_code == 1
    assert f"{db} is another program's SQLite database (tables: notes)" in result.output
    assert db.read_bytes() == before and not emu.requests
    assert not list(tmp_path.glob("kb.db.staging*"))


@pytest.mark.parametrize("dry", [[], ["--dry-run"]], ids=["a refresh", "a dry run"])
def test_a_database_a_later_cryokb_made_is_refused_before_any_copy_of_it(config, emu, tmp_path, dry):
    """The refusal named the staging copy's temporary file, and left that copy behind."""
    db = tmp_path / "kb.db"
    refresh_json(config)
    with sqlite3.connect(db) as conn:
        conn.execute("update cryokb_meta set value = '99' where key = 'schema_version'")
    conn.close()
    before, listing = db.read_bytes(), sorted(p.name for p in tmp_path.iterdir())
    emu.requests.clear()
    result = refresh(config, *dry)
    assert result.exit_code == 1
    assert f"{db} is of schema version 99, made by a later cryokb than this one" in result.output
    assert db.read_bytes() == before and not emu.requests
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


@pytest.mark.parametrize("dry", [[], ["--dry-run"]], ids=["a refresh", "a dry run"])
def test_a_database_in_a_folder_that_does_not_exist_is_refused_before_any_request(config, emu, tmp_path, dry):
    missing = tmp_path / "no-such-folder" / "kb.db"
    result = refresh(config, "--db", str(missing), *dry)
    assert result.exit_code == 1 and f"{missing.parent}: no such folder for the database" in result.output
    (tmp_path / "a-file").write_text("not a folder")
    result = refresh(config, "--db", str(tmp_path / "a-file" / "kb.db"), *dry)
    assert result.exit_code == 1 and f"{tmp_path / 'a-file'}: a file, not a folder for the database" in result.output
    assert not emu.requests


@pytest.mark.parametrize("given, code", [("flag", 2), ("file", 1)])
def test_an_eutils_url_that_cannot_be_used_is_refused_before_the_lock_or_a_copy(emu, tmp_path, given, code):
    """It failed at the first request, after taking the lock and copying the store to staging."""
    bad = "eutils.ncbi.nlm.nih.gov/entrez/eutils/"
    config = write_config(tmp_path, emu, **({"eutils_url": bad} if given == "file" else {}))
    listing = sorted(p.name for p in tmp_path.iterdir())
    result = refresh(config, *(["--eutils-url", bad] if given == "flag" else []))
    assert result.exit_code == code and f"'{bad}' is not an http:// or https:// address" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == listing and not emu.requests


def test_a_contact_address_that_is_not_one_is_refused_before_the_lock_or_a_copy(config, emu, tmp_path):
    listing = sorted(p.name for p in tmp_path.iterdir())
    result = refresh(config, env={"NCBI_EMAIL": "nobody"})
    assert result.exit_code == 1
    assert "Error: environment NCBI_EMAIL: 'nobody' is not an e-mail address: NCBI asks for one" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == listing and not emu.requests


@pytest.mark.parametrize("given, code", [("environment", 1), ("flag", 2)])
def test_an_eutils_url_with_a_space_before_it_is_refused_as_harvest_refuses_it(emu, config, tmp_path, given, code):
    """refresh stripped the space and ran, while harvest refused the same NCBI_EUTILS_URL."""
    spaced = f" {emu.url}"
    told = f"{spaced!r} is not an http:// or https:// address"
    listing = sorted(p.name for p in tmp_path.iterdir())
    if given == "environment":
        result = refresh(config, env={"NCBI_EUTILS_URL": spaced})
    else:
        result = refresh(config, "--eutils-url", spaced)
    assert result.exit_code == code
    assert f"Error: {'environment NCBI_EUTILS_URL' if given == 'environment' else '--eutils-url'}: {told}" in (
        result.output), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == listing and not emu.requests
    harvest = CliRunner().invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--email",
                                       "refresh-tests@example.org"], env={"NCBI_EUTILS_URL": spaced})
    assert harvest.exit_code == 2 and told in harvest.output and not emu.requests


def test_a_second_run_with_nothing_new_makes_two_searches_and_no_fetch(config, emu, tmp_path):
    first = refresh_json(config)
    emu.requests.clear()
    summary = refresh_json(config)
    assert [r.params.get("datetype") for r in emu.requests_to("esearch")] == ["edat", "mdat"]
    assert emu.requests_to("efetch") == []
    assert (summary["fetched"], summary["new"], summary["extracted"], summary["by_lesion_type"]) == (0, 0, 0, {})
    # The day before the first run's last day, not before the test's "today": a run may cross midnight (UTC).
    first_until = dt.datetime.strptime(first["until"], "%Y/%m/%d").date()
    assert summary["since"] == (first_until - dt.timedelta(days=1)).strftime("%Y/%m/%d")
    assert query(tmp_path / "kb.db", "select id, outcome from refresh_runs") == [(1, "ok"), (2, "ok")]


def test_new_and_revised_records_are_reported_and_published(config, emu, tmp_path, reference):
    refresh_json(config)
    emu.records = later_records()
    summary = refresh_json(config)
    assert (summary["new"], summary["revised"], summary["deleted"]) == (5, 2, 0)
    assert summary["extracted"] == 7 and summary["reextracted"] == 2
    db = tmp_path / "kb.db"
    assert_complete(db, later_records())
    assert content(db) == reference
    text = refresh(config).output
    assert "0 new, 0 revised" in text and "no new evidence" in text


def test_transient_429_500_and_truncated_replies_are_retried(config, emu, tmp_path, reference):
    emu.records = later_records()
    emu.inject("esearch", Fault.http(429, retry_after="0"))
    emu.inject("efetch", Fault.http(500))
    emu.inject("efetch", Fault.truncated(), when=lambda p: p.get("retstart") == "10")
    summary = refresh_json(config)
    assert summary["fetched"] == 25
    assert [r.fault for r in emu.requests if r.fault] == ["status", "status", "truncate"]
    assert len(emu.requests_to("efetch")) == 5 + 2
    assert content(tmp_path / "kb.db") == reference


def test_a_network_failure_stops_at_its_batch_and_the_next_run_resumes(config, emu, tmp_path, reference):
    db = tmp_path / "kb.db"
    emu.records = later_records()
    emu.inject("efetch", Fault.http(500), times=None, when=lambda p: int(p.get("retstart", 0)) >= 10)
    log_file = tmp_path / "refresh.log"
    failed = refresh(config, "--json", "--log", str(log_file))
    assert failed.exit_code == 1
    assert "ERROR harvest stopped: efetch batch 3" in log_file.read_text()  # the log alone tells what happened
    assert "efetch batch 3 (records 10-14 of 25)" in failed.stderr
    assert "failed after 3 tries: HTTP 500" in failed.stderr and "the next refresh resumes" in failed.stderr
    assert f"the 10 records this run fetched before it are kept in {db}.staging" in failed.stderr
    assert json.loads(failed.stdout)["outcome"] == "failed"
    assert not db.exists(), "a failed first run publishes nothing"
    staging = Path(f"{db}.staging")
    assert query(staging, "select count(*) from articles") == [(10,)]
    assert query(staging, "select outcome, fetched, new from refresh_runs") == [("failed", 10, 10)]

    emu.clear_faults()
    emu.requests.clear()
    summary = refresh_json(config)
    assert summary["resumed"] is True and summary["new"] == 25
    assert len(emu.requests_to("efetch")) == 5  # the window is fetched again; stored records come back unchanged
    assert content(db) == reference
    assert query(db, "select id, outcome from refresh_runs") == [(1, "failed"), (2, "ok")]
    assert_sound_and_alone(db)


def test_publishing_keeps_who_may_read_the_published_file(config, emu, tmp_path):
    """The staging copy is made with the runner's umask; the file it replaces kept a group
    (the server's) able to read it and everyone else out."""
    db = tmp_path / "kb.db"
    refresh_json(config)
    db.chmod(0o640)
    emu.records = later_records()
    umask = os.umask(0o077)
    try:
        summary = refresh_json(config)
    finally:
        os.umask(umask)
    assert summary["new"] == 5 and stat.S_IMODE(db.stat().st_mode) == 0o640


def test_a_damaged_staging_copy_is_named_moved_aside_and_made_anew(config, emu, tmp_path, reference):
    """Its damage was blamed on the sound published file, with advice to rebuild it, and
    the copy (whose quick_check passes) was resumed and failed again, run after run."""
    db = tmp_path / "kb.db"
    refresh_json(config)
    emu.records = later_records()
    emu.inject("efetch", Fault.http(500), times=None)
    assert refresh(config).exit_code == 1
    staging = Path(f"{db}.staging")
    conn = sqlite3.connect(staging)  # an index whose definition no longer matches its pages
    (index,) = conn.execute("select name from sqlite_master where type = 'index' and tbl_name = 'articles' "
                            "and sql like '%revised_date%'").fetchone()
    conn.execute("pragma writable_schema = on")
    conn.execute("update sqlite_master set sql = ? where name = ?", (f'CREATE INDEX "{index}" ON "articles" ("title")',
                                                                     index))
    conn.commit()
    conn.close()
    published = digest(db)

    emu.clear_faults()
    damaged = refresh(config)
    assert damaged.exit_code == 1
    assert damaged.stderr.startswith(f"Error: the staging copy {staging} was damaged (database disk image is "
                                     f"malformed); it is moved aside to {staging}.damaged, and the next refresh "
                                     f"starts again from a copy of {db}")
    assert not staging.exists() and digest(db) == published
    assert query(Path(f"{staging}.damaged"), "select outcome from refresh_runs where id = 2") == [("failed",)]
    summary = refresh_json(config)
    assert summary["resumed"] is False and (summary["new"], summary["revised"]) == (5, 2)
    assert content(db)["articles"] == reference["articles"]


def test_a_full_refresh_cut_short_is_carried_on_by_the_next_scheduled_run(config, emu, tmp_path):
    """The schedule never says --full: resumed as an ordinary run, the copy got only what
    changed since the last success, and the older records the full run had still to fetch
    were never fetched, run after run, each ending "ok"."""
    db = tmp_path / "kb.db"
    refresh_json(config)
    missed = synthetic_records(15, first_pmid=90003001, start=dt.date(2010, 1, 1), end=dt.date(2015, 1, 1), seed=31)
    emu.records = OLD + missed  # in PubMed all along, outside every window the first run searched
    emu.inject("efetch", Fault.http(500), times=None, when=lambda p: int(p.get("retstart", 0)) >= 10)
    assert refresh(config, "--full").exit_code == 1
    emu.clear_faults()
    summary = refresh_json(config)
    assert summary["resumed"] and summary["new"] == 15
    assert query(db, "select count(*) from articles") == [(35,)]
    assert query(db, "select full, outcome from refresh_runs order by id") == [(0, "ok"), (1, "failed"), (1, "ok")]
    assert refresh_json(config)["fetched"] == 0  # and the run after it is an ordinary one again


def test_a_failure_that_cannot_be_recorded_either_is_told_in_lines_not_tracebacks(config, emu, tmp_path,
                                                                                  monkeypatch):
    """A full disk fails the run and then the write of its failure: each said in a line."""
    from kb import refresh as refreshing

    saved = refreshing._save_run

    def full_disk_on_failure(store, result, **extra):
        if result.outcome == "failed":
            raise sqlite3.OperationalError("database or disk is full")
        return saved(store, result, **extra)

    monkeypatch.setattr(refreshing, "_save_run", full_disk_on_failure)
    emu.inject("efetch", Fault.http(500), times=None)
    failed = refresh(config)
    assert failed.exit_code == 1 and "Traceback" not in failed.stderr
    assert "could not record the failed refresh in the staging copy: database or disk is full" in failed.stderr
    assert "harvest stopped: efetch batch 1" in failed.stderr


def test_a_refresh_stopped_by_ctrl_c_records_why_in_words(config, emu, tmp_path, monkeypatch):
    """A bare KeyboardInterrupt has no message: the run's row says what stopped it as an
    import's or a harvest's does (ingest.model.ended_by), not by the exception's name."""
    from kb import refresh as refreshing

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(refreshing, "run_extract", interrupted)
    stopped = refresh(config)
    assert stopped.exit_code == 1 and "interrupted (Ctrl-C)" in stopped.stderr
    staging = Path(f"{tmp_path / 'kb.db'}.staging")
    assert query(staging, "select outcome, error from refresh_runs") == [("failed", "interrupted (Ctrl-C)")]
    assert query(staging, "select outcome from harvest_runs") == [("ok",)]  # the harvest had finished


def test_a_full_refresh_that_failed_after_its_harvest_is_not_harvested_again(config, emu, tmp_path, monkeypatch):
    from kb import refresh as refreshing

    refresh_json(config)

    def broken_extractor(*args, **kwargs):
        raise RuntimeError("the extractor failed")

    with monkeypatch.context() as patched:
        patched.setattr(refreshing, "run_extract", broken_extractor)
        with pytest.raises(RuntimeError):
            refresh(config, "--full")
    emu.requests.clear()
    summary = refresh_json(config)
    assert summary["resumed"] and len(emu.requests_to("efetch")) == 0


def test_a_dry_run_says_the_next_run_carries_on_a_full_one_cut_short(config, emu, tmp_path):
    refresh_json(config)
    emu.records = later_records()
    emu.inject("efetch", Fault.http(500), times=None)
    assert refresh(config, "--full").exit_code == 1
    assert refresh_json(config, "--dry-run")["would_fetch"] == len(later_records())


def damage_an_index(path: Path) -> None:
    """An index whose definition no longer matches its pages: quick_check passes it."""
    conn = sqlite3.connect(path)
    (index,) = conn.execute("select name from sqlite_master where type = 'index' and tbl_name = 'articles' "
                            "and sql like '%revised_date%'").fetchone()
    conn.execute("pragma writable_schema = on")
    conn.execute("update sqlite_master set sql = ? where name = ?",
                 (f'CREATE INDEX "{index}" ON "articles" ("title")', index))
    conn.commit()
    conn.close()


def test_a_damaged_published_file_is_named_as_such_run_after_run(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    damage_an_index(db)
    emu.records = later_records()
    for _ in range(2):
        failed = refresh(config)
        assert failed.exit_code == 1 and failed.stderr.startswith(f"Error: database {db} is damaged")


def test_damage_is_not_blamed_on_either_file_while_the_published_one_cannot_be_checked(config, emu, tmp_path):
    from kb.refresh import RefreshError, _told

    db, staging = tmp_path / "kb.db", tmp_path / "kb.db.staging"
    refresh_json(config)
    staging.write_bytes(db.read_bytes())
    damage_an_index(staging)
    conn = sqlite3.connect(staging)
    with pytest.raises(sqlite3.DatabaseError) as met:
        conn.execute("update articles set title = title || '.'")
    conn.close()
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("begin exclusive")  # a writer at that very moment
    try:
        told = _told(met.value, db)
    finally:
        holder.rollback()
        holder.close()
    assert isinstance(told, RefreshError) and "could not be checked now (database is locked)" in str(told)
    assert staging.exists()


def test_a_lock_is_told_of_both_files_and_a_full_disk_of_the_staging_copy(tmp_path):
    """Another process may hold the published file (writing to it) or the copy (a reader
    of the copy kept); what a refresh writes, it writes in the copy."""
    from kb.refresh import _told

    db = tmp_path / "kb.db"
    assert str(_told(sqlite3.OperationalError("database is locked"), db)).startswith(
        f"{db} or its staging copy {db}.staging is locked by another process")
    assert str(_told(sqlite3.OperationalError("database or disk is full"), db)).startswith(
        f"database {db}.staging cannot be written: the disk is full")


def test_damage_sqlite_does_not_place_is_named_in_both_files_and_nothing_is_moved(config, emu, tmp_path):
    """The full-text index of the published file damaged: SQLite before 3.44 does not look
    inside FTS5 tables, so both files pass integrity_check, and every copy made of the
    published file fails. The copy was removed, run after run, with its runs."""
    db, staging = tmp_path / "kb.db", tmp_path / "kb.db.staging"
    refresh_json(config)
    with sqlite3.connect(db) as conn:
        conn.execute("update articles_fts_data set block = x'ffffffff' where id = 1")
    conn.close()
    emu.records = [r for r in OLD if r.pmid not in {x.pmid for x in REVISED}] + REVISED  # their old text unindexed
    for _ in range(2):
        failed = refresh(config)
        assert failed.exit_code == 1
        assert failed.stderr.startswith(f"Error: the staging copy {staging} or {db} is damaged (")
        assert "SQLite's integrity check does not say which" in failed.stderr
        assert staging.exists() and not Path(f"{staging}.damaged").exists()


def test_a_harvest_straight_into_the_published_file_does_not_end_a_full_run_cut_short(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    missed = synthetic_records(15, first_pmid=90003001, start=dt.date(2010, 1, 1), end=dt.date(2015, 1, 1), seed=31)
    emu.records = OLD + missed
    emu.inject("efetch", Fault.http(500), times=None, when=lambda p: int(p.get("retstart", 0)) >= 10)
    assert refresh(config, "--full").exit_code == 1
    emu.clear_faults()
    subprocess.run([sys.executable, "-m", "kb.cli", "harvest", "--db", str(db), "--email", "cryokb@example.org",
                    "--eutils-url", emu.url, "-q"], check=True)
    assert refresh_json(config, "--dry-run")["would_fetch"] == 35
    summary = refresh_json(config)
    assert query(db, "select count(*) from articles") == [(35,)] and summary["new"] == 15


def published_then_failed(config: Path, emu) -> None:
    """A refresh, then one of the later records failed by efetch's HTTP 500 (its staging
    copy kept); the emulator answers again afterwards."""
    refresh_json(config)
    emu.records = later_records()
    emu.inject("efetch", Fault.http(500), times=None)
    assert refresh(config).exit_code == 1
    emu.clear_faults()


def test_a_run_that_was_published_stays_ok_in_a_copy_made_after_the_published_file_went(config, emu, tmp_path):
    """The published file moved away (or a backup put back) while a failed run's copy
    waited: the runs that copy held from the file it was made from read "interrupted,
    killed before it was published"."""
    db = tmp_path / "kb.db"
    published_then_failed(config, emu)
    db.rename(tmp_path / "elsewhere.db")

    refresh_json(config)

    runs = query(db, "select id, outcome, error from refresh_runs order by id")
    assert runs[0] == (1, "ok", None)
    assert runs[1][:2] == (2, "failed") and "its staging copy was discarded" in runs[1][2]
    assert runs[2][:2] == (3, "ok")


def test_runs_carried_into_a_new_copy_survive_a_kill_while_it_is_made(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    emu.records = later_records()
    emu.inject("efetch", Fault.http(500), times=None)
    assert refresh(config).exit_code == 1
    with sqlite3.connect(db) as conn:  # the published file written: the next run makes a new copy
        conn.execute("insert or replace into cryokb_meta values ('curator_note', 'checked')")
    conn.close()
    emu.clear_faults()
    reader = sqlite3.connect(tmp_path / "kb.db.staging")  # someone looking at the copy kept: it cannot be settled
    reader.execute("select count(*) from refresh_runs").fetchone()
    marker = tmp_path / "paused"
    process = start_paused(config, "staging", marker)
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    reader.close()
    refresh_json(config)  # the killed run had recorded nothing yet
    assert [run[:2] for run in query(db, "select id, outcome from refresh_runs order by id")] == [
        (1, "ok"), (2, "failed"), (3, "ok")]


def test_a_run_carried_twice_is_noted_once_and_a_killed_one_says_so(config, emu, tmp_path):
    db, staging = tmp_path / "kb.db", tmp_path / "kb.db.staging"
    refresh_json(config)
    emu.records = later_records()
    emu.inject("efetch", Fault.http(500), times=None)
    for note in ("first", "second"):
        assert refresh(config).exit_code == 1
        with sqlite3.connect(db) as conn:  # an import into the published file each time
            conn.execute("insert or replace into cryokb_meta values ('curator_note', ?)", [note])
        conn.close()
    with sqlite3.connect(staging) as conn:  # and the last run killed outright
        conn.execute("update refresh_runs set outcome = 'running', error = null where id = 3")
    conn.close()
    with sqlite3.connect(db) as conn:
        conn.execute("insert or replace into cryokb_meta values ('curator_note', 'third')")
    conn.close()
    emu.clear_faults()
    refresh_json(config)
    runs = query(db, "select id, outcome, error from refresh_runs where id in (2, 3) order by id")
    assert [run[:2] for run in runs] == [(2, "failed"), (3, "interrupted")]
    assert runs[0][2].count("its staging copy was discarded") == 1
    assert runs[1][2] == "killed before it was published; its staging copy was discarded"


def test_a_failure_after_the_rename_leaves_no_empty_staging_copy(tmp_path):
    from kb.refresh import RefreshResult, _record_unpublished

    _record_unpublished(tmp_path / "kb.db", RefreshResult(db=str(tmp_path / "kb.db")), OSError("EIO"))
    assert not (tmp_path / "kb.db.staging").exists()


def test_sigterm_while_waiting_for_another_refresh_says_it_did_nothing(config, emu, tmp_path):
    marker = tmp_path / "paused"
    first = start_paused(config, "harvest", marker)
    wait_for(marker, first)
    waiting = subprocess.Popen([sys.executable, "-m", "kb.cli", "refresh", "--config", str(config), "-q", "--wait"],
                               cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    waiting.send_signal(signal.SIGTERM)
    _, stderr = waiting.communicate(timeout=60)
    marker.unlink()
    assert first.wait(timeout=120) == 0
    assert waiting.returncode == 1
    assert stderr == (f"Error: terminated (SIGTERM) while waiting for another refresh of {tmp_path / 'kb.db'} "
                      "to finish; this run did nothing\n")


# -- crashes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["staging", "harvest", "extract", "graph", "publish"])
def test_sigkill_in_each_phase_leaves_the_published_database_as_it_was(config, emu, tmp_path, reference, phase):
    db = tmp_path / "kb.db"
    refresh_json(config)
    before = digest(db)
    emu.records = later_records()
    marker = tmp_path / "paused"
    process = start_paused(config, phase, marker)
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert digest(db) == before, f"the published database changed when a refresh was killed in {phase}"
    assert query(db, "pragma integrity_check") == [("ok",)]
    assert not Path(f"{db}-wal").exists()
    assert Path(f"{db}.lock").exists(), "the killed run's lock is left behind, to be found stale"

    summary = refresh_json(config)
    assert summary["stale_lock"] and f"pid {process.pid}" in summary["stale_lock"]
    assert summary["resumed"] is (phase != "staging")
    assert (summary["new"], summary["revised"]) == (5, 2)
    assert_sound_and_alone(db)
    assert_complete(db, later_records())
    if phase in ("staging", "harvest"):  # every extraction ran in this process, as the reference's did
        assert content(db) == reference
    else:
        assert content(db)["articles"] == reference["articles"]
    outcomes = query(db, "select outcome from refresh_runs order by id")
    assert outcomes == ([("ok",), ("ok",)] if phase == "staging" else [("ok",), ("interrupted",), ("ok",)])
    if phase == "publish":  # it had recorded itself ok, but the rename never happened
        assert "killed before it was published" in query(db, "select error from refresh_runs where id = 2")[0][0]


def terminated_at(config: Path, emu, phase: str) -> tuple[int, str, str, str]:
    """A refresh, then one of the later records stopped by SIGTERM at ``phase``: its exit
    code, its JSON summary, what it said on stderr and its log."""
    refresh_json(config)
    emu.records = later_records()
    marker, log = config.parent / "paused", config.parent / "refresh.log"
    process = start_paused(config, phase, marker, "--json", "--log", str(log))
    wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    marker.unlink()
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr, log.read_text()


def test_sigterm_says_in_one_line_where_the_work_is_kept_on_stderr_in_json_and_in_the_log(config, emu, tmp_path):
    """systemctl stop, or a unit's timeout: the operator reads why the run ended, not "Aborted!"."""
    db = tmp_path / "kb.db"
    code, stdout, stderr, log = terminated_at(config, emu, "extract")
    said = (f"terminated (SIGTERM); the work done so far is kept in {db}.staging, "
            "and the next refresh resumes from there")
    assert code == 1 and stderr == f"Error: {said}\n"
    assert json.loads(stdout) == {"outcome": "failed", "error": said}
    assert said in log
    summary = refresh_json(config)
    assert summary["resumed"] and (summary["new"], summary["revised"]) == (5, 2)


def test_sigterm_right_after_the_rename_is_a_run_that_published(config, emu, tmp_path):
    """It said "failed; the published database is as it was" of a database it had just
    replaced, and exited 1, so that the cron line's "&& restart the server" kept the
    server on the file it no longer serves."""
    db = tmp_path / "kb.db"
    code, stdout, stderr, log = terminated_at(config, emu, "published")
    assert code == 0, stderr
    assert json.loads(stdout)["outcome"] == "ok"
    assert f"terminated (SIGTERM) after {db} was published: the run had finished" in log
    assert_complete(db, later_records())
    assert_sound_and_alone(db)


def test_sigkill_right_after_the_rename_leaves_the_new_database_published(config, emu, tmp_path, reference):
    db = tmp_path / "kb.db"
    refresh_json(config)
    emu.records = later_records()
    marker = tmp_path / "paused"
    process = start_paused(config, "published", marker)
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert query(db, "pragma integrity_check") == [("ok",)]
    assert_complete(db, later_records())
    assert content(db)["articles"] == reference["articles"]
    summary = refresh_json(config)
    assert summary["new"] == 0 and summary["extracted"] == 0 and summary["stale_lock"]
    assert_complete(db, later_records())
    assert_sound_and_alone(db)


# -- one at a time -----------------------------------------------------------------------------


def test_a_second_refresh_exits_3_and_with_wait_runs_after_the_first(config, emu, tmp_path):
    marker = tmp_path / "paused"
    first = start_paused(config, "harvest", marker)
    wait_for(marker, first)

    busy = refresh(config)
    assert busy.exit_code == 3
    assert f"another refresh is running on this database: pid {first.pid}" in busy.stderr
    assert "--wait" in busy.stderr

    threading.Timer(1.0, marker.unlink).start()  # let the first one go on while the second waits
    waited = refresh(config, "--wait", "--json")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert waited.exit_code == 0, waited.output
    assert "waiting for the refresh that holds" in waited.stderr
    summary = json.loads(waited.stdout)
    assert summary["new"] == 0 and summary["fetched"] == 0 and summary["stale_lock"] is None
    assert query(tmp_path / "kb.db", "select outcome from refresh_runs") == [("ok",), ("ok",)]


# -- versions and queries ----------------------------------------------------------------------


def test_a_version_change_re_extracts_exactly_the_stale_articles(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    stale = ["90000002", "90000007", "90000013"]
    conn = sqlite3.connect(db)
    with conn:  # as if these three had been extracted by an older release
        conn.executemany("update articles set extractor_version = '0.0.9+vocab.2025.01.01-1', "
                         "extracted_at = '2025-01-01T00:00:00+00:00' where pmid = ?", [(p,) for p in stale])
    conn.close()
    before = dict(query(db, "select pmid, extracted_at from articles"))
    summary = refresh_json(config)
    assert (summary["extracted"], summary["reextracted"], summary["fetched"]) == (3, 3, 0)
    after = dict(query(db, "select pmid, extracted_at from articles"))
    assert sorted(p for p in after if after[p] != before[p]) == stale
    assert {v for (v,) in query(db, "select distinct extractor_version from articles")} == {
        summary["extractor_version"]}


def test_a_new_extractor_release_re_extracts_what_the_old_one_did_and_extracts_the_new(
        config, emu, tmp_path, monkeypatch):
    import extractors.pipeline

    db = tmp_path / "kb.db"
    old_version = refresh_json(config)["extractor_version"]
    monkeypatch.setattr(extractors.pipeline, "EXTRACTOR_VERSION", extractors.pipeline.EXTRACTOR_VERSION + ".post1")
    emu.records = OLD + NEW
    summary = refresh_json(config)
    assert summary["extractor_version"] != old_version
    assert (summary["new"], summary["extracted"], summary["reextracted"]) == (5, 25, 20)
    assert query(db, "select extractor_version, count(*) from articles group by 1") == [
        (summary["extractor_version"], 25)]
    again = refresh_json(config)
    assert (again["extracted"], again["reextracted"]) == (0, 0)


def as_an_older_parser_left_it(db: Path, pmid: str) -> str:
    """The article's title cut short at its first colon, as a parser that lost inline text
    would store it (the search index kept in step with it); returns the full title."""
    from kb.store import Store, _index, _unindex

    store = Store(db)
    title = store.db["articles"].get(pmid)["title"]
    with store.transaction():
        _unindex(store.db.conn, [pmid])
        store.db.execute("update articles set title = ? where pmid = ?", [title.split(":")[0], pmid])
        _index(store.db.conn, [pmid])
    store.db.conn.close()
    return title


def test_reparse_rewrites_what_an_older_parser_stored_and_extracts_it_again(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    pmid = next(r.pmid for r in OLD if ":" in r.title)
    title = as_an_older_parser_left_it(db, pmid)
    plain = refresh_json(config)  # reading records again is asked for, not done on every run
    assert (plain["reread"], plain["rewritten"]) == (0, 0)
    assert query(db, "select title from articles where pmid = ?", [pmid]) == [(title.split(":")[0],)]

    planned = refresh_json(config, "--dry-run", "--reparse")
    assert planned["would_reread"] == len(OLD)
    lost, kept = title.split(":")[1], title.split(":")[0]
    word = next(w for w in lost.replace(".", " ").split() if w.lower() not in kept.lower())
    in_title = f'title : "{word}"'
    assert (pmid,) not in search(db, in_title)

    summary = refresh_json(config, "--reparse")

    assert (summary["reread"], summary["rewritten"], summary["extracted"], summary["reextracted"]) == (
        len(OLD), 1, 1, 1)
    assert query(db, "select title from articles where pmid = ?", [pmid]) == [(title,)]
    assert (pmid,) in search(db, in_title)
    assert query(db, "select reparse, reread, rewritten from refresh_runs order by id desc limit 1") == [
        (1, len(OLD), 1)]
    again = refresh(config, "--reparse")
    assert "reparse: 20 stored records read again; 0 articles rewritten" in again.output


def as_an_older_release_noted_it(db: Path) -> None:
    """The store's note of the parsers that read its records, as another cryokb's."""
    from kb.reparse import PARSERS_KEY

    with sqlite3.connect(db) as conn:
        conn.execute("update cryokb_meta set value = 'an older release' where key = ?", [PARSERS_KEY])
    conn.close()


def test_records_read_by_an_older_cryokbs_parsers_are_read_again_without_asking(config, emu, tmp_path):
    """The scheduled run never says --reparse: after an upgrade, the store's note of the
    parsers that read its records tells the run to read them again."""
    from kb.reparse import PARSERS_KEY, current_parsers

    db = tmp_path / "kb.db"
    refresh_json(config)
    pmid = next(r.pmid for r in OLD if ":" in r.title)
    title = as_an_older_parser_left_it(db, pmid)
    as_an_older_release_noted_it(db)

    assert refresh_json(config, "--dry-run")["would_reread"] == len(OLD)
    summary = refresh_json(config)

    assert (summary["reread"], summary["rewritten"], summary["reextracted"]) == (len(OLD), 1, 1)
    assert query(db, "select title from articles where pmid = ?", [pmid]) == [(title,)]
    assert query(db, "select value from cryokb_meta where key = ?", [PARSERS_KEY]) == [(current_parsers(),)]
    assert refresh_json(config)["reread"] == 0  # noted as read by this cryokb's parsers


def test_a_dry_run_asks_the_copy_the_run_would_resume_whether_its_records_are_read_again(config, emu, tmp_path):
    """The published file's note said "older parsers" while the staging copy had read its
    records again already: the dry run promised a reparse the run did not do."""
    db = tmp_path / "kb.db"
    refresh_json(config)
    as_an_older_release_noted_it(db)
    marker = tmp_path / "paused"
    process = start_paused(config, "publish", marker)  # after its reparse, before the rename
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    planned = refresh_json(config, "--dry-run")
    summary = refresh_json(config)

    assert summary["resumed"] and summary["reread"] == 0
    assert planned["staging_pending"] and planned["would_reread"] == 0


def search(db: Path, words: str) -> list[tuple]:
    return query(db, "select articles.pmid from articles_fts join articles on articles.rowid = articles_fts.rowid "
                     "where articles_fts match ?", [words])


def killed_while_reading_again(config: Path, db: Path) -> tuple[str, str]:
    """A refresh, an article's title cut short as an older parser left it, then a
    `refresh --reparse` SIGKILLed after its first page: the PMID and its whole title."""
    refresh_json(config)
    pmid = next(r.pmid for r in OLD if ":" in r.title)
    title = as_an_older_parser_left_it(db, pmid)
    marker = db.parent / "paused"
    process = start_paused(config, "reparse", marker, "--reparse")
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return pmid, title


def test_a_reparse_killed_midway_is_carried_on_by_the_next_scheduled_run(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    pmid, title = killed_while_reading_again(config, db)
    assert query(db, "select title from articles where pmid = ?", [pmid]) == [(title.split(":")[0],)]

    assert refresh_json(config, "--dry-run")["would_reread"] == len(OLD)
    summary = refresh_json(config)  # the schedule never says --reparse

    assert summary["reread"] == len(OLD) and summary["resumed"]
    assert query(db, "select title from articles where pmid = ?", [pmid]) == [(title,)]
    assert refresh_json(config)["reread"] == 0


def test_a_reparse_of_the_published_file_finishes_one_a_refresh_left_unfinished(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    pmid, title = killed_while_reading_again(config, db)
    by_hand = subprocess.run([sys.executable, "-m", "kb.cli", "reparse", "--db", str(db), "-q"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert by_hand.returncode == 0, by_hand.stderr

    assert refresh_json(config, "--dry-run")["would_reread"] == 0  # not the copy the run would throw away
    summary = refresh_json(config)  # makes a new copy of the published file, which has it read again

    assert summary["reread"] == 0
    assert query(db, "select title from articles where pmid = ?", [pmid]) == [(title,)]


def test_a_reparse_that_fails_partway_records_what_it_did_and_the_next_run_finishes_it(
        config, emu, tmp_path, monkeypatch):
    from kb.store import Store

    db = tmp_path / "kb.db"
    refresh_json(config)
    titles = {r.pmid: as_an_older_parser_left_it(db, r.pmid) for r in OLD}
    pages, rewrite = Store.raw_pages, Store.rewrite
    calls = []

    def the_third_page_fails(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return rewrite(self, *args, **kwargs)

    monkeypatch.setattr(Store, "raw_pages", lambda self, pmids=None, size=500: pages(self, pmids, 5))
    monkeypatch.setattr(Store, "rewrite", the_third_page_fails)
    failed = refresh(config, "--reparse", "--json")
    assert failed.exit_code == 1 and "No space left on device" in failed.output
    assert query(tmp_path / "kb.db.staging", "select outcome, reparse, reread, rewritten from refresh_runs "
                 "order by id desc limit 1") == [("failed", 1, 10, 10)]
    monkeypatch.undo()

    summary = refresh_json(config)  # the schedule never says --reparse
    assert (summary["reread"], summary["rewritten"]) == (len(OLD), 10)
    assert dict(query(db, "select pmid, title from articles")) == titles


def test_a_refresh_runs_table_of_an_older_release_gains_the_new_columns(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    conn = sqlite3.connect(db)
    with conn:  # refresh_runs as a release before --reparse made it
        for column in ("reparse", "reread", "rewritten"):
            conn.execute(f"alter table refresh_runs drop column {column}")
    conn.close()
    summary = refresh_json(config, "--reparse")
    assert summary["outcome"] == "ok" and summary["reread"] == len(OLD)
    assert query(db, "select count(*), sum(reparse) from refresh_runs") == [(2, 1)]


def test_a_record_that_cannot_be_read_is_counted_and_the_rest_published(config, emu, tmp_path):
    import dataclasses

    emu.records = [dataclasses.replace(r, broken=True) if r.pmid == "90000004" else r for r in OLD]
    summary = refresh_json(config)
    assert (summary["outcome"], summary["problems"], summary["new"], summary["fetched"]) == ("ok", 1, 19, 19)
    db = tmp_path / "kb.db"
    assert_complete(db, [r for r in OLD if r.pmid != "90000004"])
    assert query(db, "select problems from refresh_runs") == [(1,)]


def test_the_summary_says_one_problem_in_the_singular(config, emu):
    import dataclasses

    emu.records = [dataclasses.replace(r, broken=True) if r.pmid == "90000004" else r for r in OLD]
    result = refresh(config)
    assert result.exit_code == 0, result.output
    assert "19 new, 0 revised, 0 deleted; 1 problem\n" in result.output


def test_a_changed_query_is_refused_without_full(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    before = digest(db)
    refused = refresh(config, "--query", "cryoablation AND chordoma")
    assert refused.exit_code == 1
    assert "the query changed since the last successful refresh" in refused.stderr
    assert "now 'cryoablation AND chordoma')" in refused.stderr and "--full" in refused.stderr
    assert digest(db) == before
    assert not (tmp_path / "kb.db.staging").exists()  # refused before a copy of the database was made
    emu.requests.clear()
    summary = refresh_json(config, "--query", "cryoablation AND chordoma", "--full")
    assert summary["fetched"] == 20 and summary["new"] == 0
    assert len(emu.requests_to("efetch")) == 4
    assert query(db, "select query from harvest_runs order by id desc limit 1") == [("cryoablation AND chordoma",)]
    assert refresh(config, "--query", "cryoablation AND chordoma").exit_code == 0


def test_a_changed_query_after_a_failed_run_is_refused_and_recorded_in_the_copy_it_left(config, emu, tmp_path):
    refresh_json(config)
    emu.inject("efetch", Fault.http(500), times=None)
    emu.records = later_records()
    assert refresh(config).exit_code == 1
    staging = tmp_path / "kb.db.staging"
    assert staging.exists()
    (runs,) = query(staging, "select count(*) from refresh_runs")[0]

    refused = refresh(config, "--query", "cryoablation AND chordoma")

    assert refused.exit_code == 1 and "the query changed since the last successful refresh" in refused.stderr
    assert query(staging, "select count(*) from refresh_runs")[0][0] == runs + 1
    (outcome, error), = query(staging, "select outcome, error from refresh_runs order by id desc limit 1")
    assert outcome == "failed" and "the query changed" in error


def test_a_one_off_harvest_of_another_query_leaves_the_refreshes_query_alone(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    subprocess.run([sys.executable, "-m", "kb.cli", "harvest", "--db", str(db), "--email", "cryokb@example.org",
                    "--eutils-url", emu.url, "-q", "--query", "cryoablation AND desmoid"], check=True)
    assert refresh(config, "--dry-run").exit_code == 0
    emu.records = later_records()
    summary = refresh_json(config)
    assert summary["outcome"] == "ok" and summary["new"] == 5  # incremental: the default query's own state
    default = load_default_query()[0]
    assert query(db, "select query from harvest_runs where kind = 'harvest' order by id") == [
        (default,), ("cryoablation AND desmoid",), (default,)]


# -- dry runs, output, settings -------------------------------------------------------------------


def test_dry_run_searches_only_and_writes_nothing(config, emu, tmp_path):
    listing = sorted(p.name for p in tmp_path.iterdir())
    first = refresh(config, "--dry-run", "--json")
    assert first.exit_code == 0, first.output
    plan = json.loads(first.stdout)
    assert plan["dry_run"] is True and plan["would_fetch"] == 20 and plan["since"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    refresh_json(config)
    db = tmp_path / "kb.db"
    before, listing = digest(db), sorted(p.name for p in tmp_path.iterdir())
    emu.records = later_records()
    emu.requests.clear()
    text = refresh(config, "--dry-run")
    assert text.exit_code == 0
    assert "EDAT" in text.stdout and "MDAT" in text.stdout  # the 5 new ones entered and were modified today
    assert "would fetch up to 7 records;" in text.stdout  # each counted once: 5 new, 2 revised
    assert {r.utility for r in emu.requests} == {"esearch"}
    assert digest(db) == before and sorted(p.name for p in tmp_path.iterdir()) == listing
    assert refresh_json(config, "--dry-run")["would_fetch"] == refresh_json(config)["fetched"] == 7


def test_records_earlier_runs_could_not_fetch_are_counted_by_a_dry_run_and_fetched_by_the_next_run(
        config, emu, tmp_path):
    from kb.store import Store

    refresh_json(config)
    db = tmp_path / "kb.db"
    (searched,), = query(db, "select query from harvest_runs where kind = 'harvest'")
    missed = emu.records[3].pmid
    store = Store(db)
    with store.transaction():
        store.note_missed(searched, 1, [missed])  # as a run that efetch did not give it to notes it
    store.db.close()
    plan = refresh(config, "--dry-run")
    assert "found by earlier runs, not returned by efetch then: 1 records" in plan.stdout
    assert "would fetch up to 1 records" in plan.stdout
    emu.requests.clear()
    refresh_json(config)
    assert [r.params["id"] for r in emu.requests_to("efetch")] == [missed]
    assert Store.reading(db).stats()["awaiting_fetch"] == 0


def test_the_api_key_is_used_but_never_shown_logged_or_stored(config, emu, tmp_path):
    log_file = tmp_path / "refresh.log"
    result = refresh(config, "-vv", "--log", str(log_file), env={"NCBI_API_KEY": SECRET})
    assert result.exit_code == 0, result.output
    assert all(r.params.get("api_key") == SECRET for r in emu.requests)
    assert SECRET not in result.output
    assert SECRET.encode() not in (tmp_path / "kb.db").read_bytes()
    lines = log_file.read_text().splitlines()
    assert SECRET not in "\n".join(lines) and "api_key=set" in "\n".join(lines)
    assert lines and all(line[:4].isdigit() and line[10] == " " for line in lines if line.strip()[:1].isdigit())
    assert any("Refresh run 1: ok" in line for line in lines)


def test_flags_override_the_environment_which_overrides_the_config_file(config, emu, tmp_path):
    other = tmp_path / "elsewhere.db"
    result = refresh(config, "--json", env={"CRYOKB_DB": str(other)})
    assert result.exit_code == 0 and json.loads(result.stdout)["db"] == str(other)
    flagged = tmp_path / "flagged.db"
    result = refresh(config, "--json", "--db", str(flagged), env={"CRYOKB_DB": str(other)})
    assert json.loads(result.stdout)["db"] == str(flagged) and not (tmp_path / "kb.db").exists()


def test_configuration_and_usage_errors_have_their_exit_codes(config, tmp_path):
    config.write_text(config.read_text() + "colour = \"blue\"\n")
    bad = refresh(config)
    assert bad.exit_code == 1 and "unknown settings colour" in bad.stderr and str(config) in bad.stderr
    missing = CliRunner().invoke(cli, ["refresh", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1 and "no config file at" in missing.stderr
    assert CliRunner().invoke(cli, ["refresh", "--batch-size", "0"]).exit_code == 2
    assert CliRunner().invoke(cli, ["refresh", "--api-key", "x"]).exit_code == 2


def test_a_db_flag_naming_a_folder_is_a_usage_error_and_makes_no_file(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = refresh(config, "--db", "newdir/")
    assert result.exit_code == 2 and "names a folder" in result.stderr
    assert not (tmp_path / "newdir").exists()


# -- readers and older databases ---------------------------------------------------------------


def test_an_open_reader_keeps_the_old_database_whole_and_a_new_reader_sees_the_new(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    reader = sqlite3.connect(db)
    try:
        reader.execute("begin")
        assert reader.execute("select count(*) from articles").fetchone() == (20,)
        emu.records = later_records()
        refresh_json(config)
        assert reader.execute("select count(*) from articles").fetchone() == (20,)
        assert reader.execute("select count(*) from evidence").fetchone() == (20,)
        reader.commit()
    finally:
        reader.close()
    assert query(db, "select count(*) from articles") == [(25,)]
    assert query(db, "select count(*) from evidence") == [(25,)]


def test_a_database_left_in_wal_mode_by_harvest_is_published_whole_in_delete_mode(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    subprocess.run([sys.executable, "-m", "kb.cli", "harvest", "--db", str(db), "--eutils-url", emu.url, "-q",
                    "--email", "refresh-tests@example.org"], check=True)
    # A writer that died with its last commit still in the -wal file, not yet in the main file.
    subprocess.run([sys.executable, "-c", "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                    "c.execute('pragma wal_autocheckpoint = 0'); "
                    "c.execute(\"insert into cryokb_meta values ('curator_note', 'checked 2026-11')\"); "
                    "c.commit(); os._exit(0)", str(db)], check=True)
    assert Path(f"{db}-wal").stat().st_size > 0
    summary = refresh_json(config)
    assert (summary["fetched"], summary["new"], summary["extracted"]) == (0, 0, 20)
    assert_sound_and_alone(db)
    assert not Path(f"{db}-shm").exists()
    assert query(db, "select value from cryokb_meta where key = 'curator_note'") == [("checked 2026-11",)]
    assert_complete(db, OLD)


def test_a_write_into_the_published_file_during_a_refresh_is_not_overwritten(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    emu.records = later_records()
    marker = tmp_path / "paused"
    process = start_paused(config, "graph", marker)
    wait_for(marker, process)
    conn = sqlite3.connect(db)  # someone imports or annotates straight into the published file meanwhile
    with conn:
        conn.execute("insert into cryokb_meta values ('curator_note', 'desmoid series checked')")
    conn.close()
    marker.unlink()
    assert process.wait(timeout=120) == 1
    assert "was written by another command during this refresh" in process.stderr.read()
    assert query(db, "select count(*) from articles") == [(20,)]
    summary = refresh_json(config)
    assert summary["resumed"] is False and (summary["new"], summary["revised"]) == (5, 2)
    assert query(db, "select value from cryokb_meta where key = 'curator_note'") == [("desmoid series checked",)]
    assert_complete(db, later_records())
    runs = query(db, "select id, outcome, error from refresh_runs order by id")
    assert [run[:2] for run in runs] == [(1, "ok"), (2, "failed"), (3, "ok")]  # the refused one was kept, as failed
    assert runs[1][2].startswith("not published: ") and "was written by another command" in runs[1][2]


def test_a_failed_run_is_still_published_when_its_staging_copy_is_discarded(config, emu, tmp_path):
    """An import straight into the published file after a failed refresh: the next one
    discards the copy made before the import, and with it went the failed run's row,
    its id given to the next run."""
    db = tmp_path / "kb.db"
    published_then_failed(config, emu)
    samples = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo_pubmed.xml"
    subprocess.run([sys.executable, "-m", "kb.cli", "import", str(samples), "--db", str(db), "-q"], check=True)
    summary = refresh_json(config)
    assert summary["resumed"] is False
    runs = query(db, "select id, outcome, harvest_run_id is null, error from refresh_runs order by id")
    assert [run[:3] for run in runs] == [(1, "ok", 0), (2, "failed", 1), (3, "ok", 0)]
    assert "HTTP 500" in runs[1][3] and runs[1][3].endswith("its staging copy was discarded")


def test_a_write_in_the_last_moment_before_the_rename_is_not_overwritten_either(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    emu.records = later_records()
    marker = tmp_path / "paused"
    process = start_paused(config, "publish", marker)  # past the first check, just before the rename
    wait_for(marker, process)
    with sqlite3.connect(db) as conn:
        conn.execute("insert into cryokb_meta values ('curator_note', 'checked at the last moment')")
    marker.unlink()
    assert process.wait(timeout=120) == 1
    assert "was written by another command during this refresh" in process.stderr.read()
    assert query(db, "select value from cryokb_meta where key = 'curator_note'") == [("checked at the last moment",)]


def test_side_files_left_beside_a_removed_database_do_not_take_over_the_new_one(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    # A writer killed with a commit still in its -wal; then someone removes the database to start over.
    subprocess.run([sys.executable, "-c", "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                    "c.execute('pragma page_size = 16384'); c.execute('pragma journal_mode = wal'); "
                    "c.execute('pragma wal_autocheckpoint = 0'); c.execute('create table t (x)'); "
                    "c.commit(); os._exit(0)", str(db)], check=True)
    db.unlink()
    assert Path(f"{db}-wal").stat().st_size > 0
    refresh_json(config)
    assert_sound_and_alone(db)
    assert_complete(db, OLD)


def test_a_damaged_database_is_a_one_line_error_in_text_and_in_json(config, emu, tmp_path):
    db = tmp_path / "kb.db"
    refresh_json(config)
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page : 2 * page] = b"\x5a" * page  # the second page, where the tables begin
    db.write_bytes(bytes(data))
    emu.records = later_records()
    result = CliRunner().invoke(cli, ["refresh", "--config", str(config), "-q", "--json"])
    assert result.exit_code == 1 and not isinstance(result.exception, sqlite3.Error)
    assert json.loads(result.stdout)["outcome"] == "failed"
    assert f"database {db} is damaged" in result.stderr
    assert "move it aside, then restore it from a backup or build it again (cryokb refresh --full)" in result.stderr
    db.rename(tmp_path / "kb.db.damaged")  # as the message says (refresh --full alone met the same damage)
    rebuilt = CliRunner().invoke(cli, ["refresh", "--config", str(config), "-q", "--full"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert_complete(db, later_records())


def test_a_symlinked_database_is_refreshed_where_the_link_points(emu, tmp_path):
    volume, served = tmp_path / "volume", tmp_path / "srv"
    volume.mkdir()
    served.mkdir()
    config = write_config(served, emu)
    refresh_json(config)
    os.replace(served / "kb.db", volume / "kb.db")
    (served / "kb.db").symlink_to(volume / "kb.db")
    emu.records = later_records()
    refresh_json(config)
    assert (served / "kb.db").is_symlink()
    assert_complete(volume / "kb.db", later_records())
    assert not list(served.glob("kb.db.*"))  # no staging copy or lock left beside the link
