"""The command line: exit codes, messages, and that import/stats/demo work end to end."""

import gzip
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.store import Store

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def sample_xml():
    return SAMPLES / "demo_pubmed.xml"


def test_version_and_help(runner):
    assert runner.invoke(cli, ["--version"]).output.startswith("cryokb, version ")
    assert "harvest" in runner.invoke(cli, ["-h"]).output


def test_a_wrong_flag_is_a_usage_error_with_exit_code_2(runner):
    result = runner.invoke(cli, ["import", "--no-such-flag", "x.xml"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_import_then_stats(runner, tmp_path, sample_xml):
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert result.exit_code == 0, result.output
    stats = json.loads(runner.invoke(cli, ["stats", "--db", str(db), "--json"]).output)
    assert stats["articles"] >= 30
    assert stats["last_run"]["kind"] == "import" and stats["last_run"]["outcome"] == "ok"
    assert stats["last_run"]["details"]["pid"] > 0  # an object, not JSON text inside the JSON


def test_stats_say_what_the_last_run_deleted_too(runner, tmp_path, sample_xml):
    db = tmp_path / "kb.db"
    runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    pmid = next(iter(Store(db).db.query("select pmid from articles limit 1")))["pmid"]
    update = tmp_path / "update.xml"
    update.write_text(f"<PubmedArticleSet><DeleteCitation><PMID>{pmid}</PMID></DeleteCitation></PubmedArticleSet>")
    runner.invoke(cli, ["import", str(update), "--db", str(db)])
    last = runner.invoke(cli, ["stats", "--db", str(db)]).output.splitlines()[-1]
    assert last.endswith("(0 records: 0 new, 0 revised, 0 unchanged, 1 deleted, 0 problems)"), last


def test_stats_say_why_the_last_run_failed(runner, tmp_path, sample_xml):
    """Only --json said it."""
    db = tmp_path / "kb.db"
    junk = tmp_path / "junk.xml"
    junk.write_text("<html><body>Service unavailable</body></html>")
    assert runner.invoke(cli, ["import", str(sample_xml), str(junk), "--db", str(db)]).exit_code == 1
    told = runner.invoke(cli, ["stats", "--db", str(db)]).output.splitlines()
    assert " failed at " in told[-2] and told[-1].startswith(f"           why: {junk}: ")
    runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert "why:" not in runner.invoke(cli, ["stats", "--db", str(db)]).output


def test_stats_say_how_many_records_a_harvest_still_awaits_and_only_when_some(runner, tmp_path, sample_xml):
    db = tmp_path / "kb.db"
    runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert "awaiting fetch" not in runner.invoke(cli, ["stats", "--db", str(db)]).output
    store = Store(db)
    stored = next(iter(store.db.query("select pmid from articles limit 1")))["pmid"]
    with store.transaction():
        store.note_missed("cryoablation[tiab]", 7, ["90000017", "90000018", stored])
        store.note_missed("cryoablation[tiab]", 8, ["90000018"])
        store.note_missed("cryotherapy[tiab]", 9, ["90000017"])  # another query's runs missed it too
    assert store.pending("cryoablation[tiab]") == {stored: 1, "90000017": 1, "90000018": 2}
    output = runner.invoke(cli, ["stats", "--db", str(db)]).output
    assert ("awaiting fetch: 2 records harvests found but efetch did not return (later harvests of the same "
            "query ask for them again)") in output


def test_importing_twice_changes_nothing(runner, tmp_path, sample_xml):
    db = tmp_path / "kb.db"
    runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    dump = [l for l in Store(db).db.iterdump() if "harvest_runs" not in l]
    result = runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert "0 new, 0 revised" in result.output
    assert [l for l in Store(db).db.iterdump() if "harvest_runs" not in l] == dump


@pytest.mark.parametrize("piece_size", [3, 50, 1000])
def test_the_import_summary_adds_up_when_a_file_repeats_its_records(runner, tmp_path, sample_xml, monkeypatch,
                                                                    piece_size):
    """A copy of a PMID its batch read before counts as repeated, in the piece of the first
    copy or in a later one (a copy in a later piece counted as unchanged once)."""
    import kb.importing
    from ingest.readers import read_records

    monkeypatch.setattr(kb.importing, "PIECE_SIZE", piece_size)  # the forked reader inherits it

    head, body = sample_xml.read_bytes().split(b"<PubmedArticleSet>", 1)
    body = body.rsplit(b"</PubmedArticleSet>", 1)[0]
    twice = tmp_path / "twice.xml"
    twice.write_bytes(head + b"<PubmedArticleSet>" + body + body + b"</PubmedArticleSet>")
    n = sum(1 for _ in read_records(sample_xml))
    result = runner.invoke(cli, ["import", str(twice), "--db", str(tmp_path / "kb.db")])
    assert f"{twice}: {2 * n} records: {n} new, 0 revised, 0 unchanged, {n} repeated, 0 deleted" in result.output


def test_summaries_of_one_record_say_it_in_the_singular(runner, tmp_path, sample_xml):
    """"Read 1 stored records again", "Extracted 1 articles": the noun was plural whatever the count."""
    head, body = sample_xml.read_bytes().split(b"<PubmedArticleSet>", 1)
    one = tmp_path / "one.xml"
    one.write_bytes(head + b"<PubmedArticleSet>" + body.split(b"</PubmedArticle>", 1)[0]
                    + b"</PubmedArticle></PubmedArticleSet>")
    db = tmp_path / "kb.db"
    assert f"{one}: 1 record: 1 new" in runner.invoke(cli, ["import", str(one), "--db", str(db)]).output
    built = runner.invoke(cli, ["build", "--db", str(db)])
    assert built.exit_code == 0 and "Extracted 1 article (extractor " in built.output, built.output
    again = runner.invoke(cli, ["reparse", "--db", str(db)])
    assert "Read 1 stored record again: 0 changed, 1 unchanged, 0 problems" in again.output, again.output
    exported = runner.invoke(cli, ["graph", "--bipartite", "--format", "json", "--db", str(db), "-o", "-"])
    nodes = len(json.loads(exported.stdout)["nodes"])
    assert exported.exit_code == 0 and f"Wrote {nodes} nodes and {nodes - 1} edges to standard output" in (
        exported.stderr), exported.stderr


def test_verbose_import_and_build_log_each_batch_they_write(tmp_path, sample_xml):
    """-v said "Log each batch", and they logged none."""
    import subprocess
    import sys

    db = str(tmp_path / "kb.db")

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "kb.cli", *args, "--db", db, "-v", "--batch-size", "10"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stderr

    imported = run("import", str(sample_xml))
    assert imported.count("batch committed") >= 3 and f"{sample_xml}: batch committed, 10 records so far" in imported
    built = run("build")
    assert built.count("evidence of 10 articles written") >= 3


def test_the_same_xml_saved_with_windows_line_ends_holds_the_same_records(runner, tmp_path, sample_xml):
    """As the same MEDLINE text does: its bytes were the raw record, so every record of
    more than one line read as revised, and back again with the other copy."""
    from ingest.readers import read_records

    windows = tmp_path / "windows.xml"
    windows.write_bytes(sample_xml.read_bytes().replace(b"\n", b"\r\n"))
    db = str(tmp_path / "kb.db")
    n = sum(1 for _ in read_records(sample_xml))
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", db, "-q"]).exit_code == 0
    again = runner.invoke(cli, ["import", str(windows), "--db", db])
    assert f"{windows}: {n} records: 0 new, 0 revised, {n} unchanged" in again.output


def test_gzip_and_medline_import_like_plain_xml(runner, tmp_path, sample_xml):
    gz = tmp_path / "demo.xml.gz"
    gz.write_bytes(gzip.compress(sample_xml.read_bytes()))
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(gz), str(SAMPLES / "demo_medline.nbib"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    formats = {r["source_format"] for r in Store(db).db["articles"].rows}
    assert formats == {"xml", "medline"}


def test_a_truncated_file_keeps_what_was_read_and_says_where(runner, tmp_path, sample_xml):
    data = sample_xml.read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(cut), "--db", str(db), "--batch-size", "5"])
    assert result.exit_code == 1
    assert "cut.xml" in result.output and "Traceback" not in result.output
    assert Store(db).db["articles"].count >= 5
    error = Store(db).db["harvest_runs"].get(1)["error"]
    assert error.startswith(f"{cut}: not well-formed XML at line ") and error.count(str(cut)) == 1


def test_a_file_that_is_not_pubmed_is_refused_clearly(runner, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Shopping list: milk, eggs\n")
    result = runner.invoke(cli, ["import", str(notes), "--db", str(tmp_path / "kb.db")])
    assert result.exit_code == 1
    assert "notes.txt" in result.output and "Traceback" not in result.output


def test_stats_without_a_database_says_what_to_do(runner, tmp_path):
    result = runner.invoke(cli, ["stats", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "cryokb harvest" in result.output


def test_db_comes_from_the_environment(runner, tmp_path, sample_xml):
    db = tmp_path / "env.db"
    result = runner.invoke(cli, ["import", str(sample_xml)], env={"CRYOKB_DB": str(db)})
    assert result.exit_code == 0, result.output
    assert Store(db).stats()["articles"] >= 30


def test_demo_marks_its_database_synthetic(runner, tmp_path):
    db = tmp_path / "demo.db"
    result = runner.invoke(cli, ["demo", "--no-serve", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    assert Store(db).get_meta("synthetic") == "true"


def test_import_lists_the_first_skipped_records_and_counts_the_rest(runner, tmp_path):
    bad = "".join(f"<PubmedArticle><MedlineCitation><PMID>draft-{n}</PMID></MedlineCitation></PubmedArticle>\n"
                  for n in range(25))
    path = tmp_path / "drafts.xml"
    path.write_text(f"<?xml version='1.0'?>\n<PubmedArticleSet>\n{bad}</PubmedArticleSet>\n")
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", "--db", str(db), str(path)])
    assert result.exit_code == 1 and "none of its records could be read (25 problems" in result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("Skipped: ")]
    assert len(skipped) == 20 and "draft-0" in skipped[0]
    assert "... and 5 more skipped records (see the problems table)" in result.output
    assert Store(db).db["problems"].count == 25


def test_the_command_says_a_skipped_record_and_a_broken_file_once_each(tmp_path):
    """Not once by the log and again by the command: one line each."""
    import subprocess
    import sys

    drafts = tmp_path / "drafts.xml"
    drafts.write_text("<?xml version='1.0'?>\n<PubmedArticleSet>\n<PubmedArticle><MedlineCitation>"
                      "<PMID>draft-7</PMID></MedlineCitation></PubmedArticle>\n</PubmedArticleSet>\n")
    cut = tmp_path / "cut.xml"
    cut.write_text("<?xml version='1.0'?>\n<PubmedArticleSet>\n<PubmedArticle><MedlineCitation>")
    run = subprocess.run([sys.executable, "-m", "kb.cli", "import", "--db", str(tmp_path / "kb.db"), str(drafts),
                          str(cut)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    lines = (run.stdout + run.stderr).splitlines()
    assert len([line for line in lines if "draft-7" in line]) == 1, lines
    assert len([line for line in lines if "Premature end of data" in line]) == 1, lines


def test_a_file_whose_name_is_not_utf8_is_imported_and_named_with_its_odd_byte_escaped(runner, tmp_path,
                                                                                      sample_xml):
    """A Latin-1 name from an old archive: SQLite refused the run's source (a traceback,
    nothing imported, the good file beside it neither)."""
    odd = tmp_path / os.fsdecode(b"caf\xe9.xml")
    odd.write_bytes(sample_xml.read_bytes().replace(b"</PubmedArticleSet>", b"<oops"))  # and cut short
    db = tmp_path / "kb.db"

    result = runner.invoke(cli, ["import", "--db", str(db), str(sample_xml), str(odd)])

    assert result.exit_code == 1, result.output
    assert f"{tmp_path}/caf\\xe9.xml: " in result.output.splitlines()[-1]
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from articles").fetchone()[0] > 0
        (source,) = conn.execute("select source from harvest_runs").fetchone()
    assert source == f"{sample_xml}, {tmp_path}/caf\\xe9.xml"


def test_an_import_error_names_the_file_once(runner, tmp_path, sample_xml):
    broken = tmp_path / "broken.xml.gz"
    broken.write_bytes(gzip.compress(sample_xml.read_bytes())[:-200])
    result = runner.invoke(cli, ["import", "--db", str(tmp_path / "kb.db"), "-q", str(broken)])
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and error[0].count(str(broken)) == 1, result.output


@pytest.mark.parametrize("cut, kept", [(-200, True), (40, False)], ids=["records before the break", "none"])
def test_an_import_error_says_records_were_kept_only_when_some_were(runner, tmp_path, sample_xml, cut, kept):
    broken = tmp_path / "broken.xml.gz"
    broken.write_bytes(gzip.compress(sample_xml.read_bytes())[:cut])
    result = runner.invoke(cli, ["import", "--db", str(tmp_path / "kb.db"), "-q", str(broken)])
    assert result.exit_code == 1
    assert ("records read before it were stored" in result.output) is kept, result.output  # 30 of them


def test_the_note_on_kept_records_goes_with_the_file_that_kept_them(runner, tmp_path, sample_xml):
    broken, empty = tmp_path / "broken.xml.gz", tmp_path / "empty.xml"
    broken.write_bytes(gzip.compress(sample_xml.read_bytes())[:-200])
    empty.write_bytes(b"")
    result = runner.invoke(cli, ["import", "--db", str(tmp_path / "kb.db"), "-q", str(broken), str(empty)])
    first, second = result.output.strip().removeprefix("Error: ").split("; ")
    assert first.startswith(f"{broken}: ") and re.search(r"\(the \d+ records read before it were stored\)$", first)
    assert second == f"{empty}: the file is empty"


@pytest.mark.parametrize("kind", ["table notes (x)", "table authors (id integer primary key, name, email)",
                                  "view totals as select 1 as n"], ids=["notes", "authors of its own", "a view"])
@pytest.mark.parametrize("command", [["build"], ["graph", "-o", "g.graphml"], ["stats"],
                                     ["import", str(SAMPLES / "demo_medline.nbib")]])
def test_a_database_of_another_program_is_left_untouched(runner, tmp_path, command, kind):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute(f"create {kind}")
    before = other.read_bytes()
    result = runner.invoke(cli, command + ["--db", str(other)])
    assert result.exit_code == 1
    assert f"{other} is another program's SQLite database (tables: {kind.split()[1]})" in result.output
    assert other.read_bytes() == before


@pytest.mark.parametrize("command", [["stats"], ["reparse"], ["import", str(SAMPLES / "demo_medline.nbib")]])
def test_a_database_of_another_pubmed_tool_is_left_untouched(runner, tmp_path, command):
    """Its journals table has a column named as cryokb's is (nlm_unique_id), which alone
    once let cryokb take it for its own: its tables were written into it, then a traceback."""
    import sqlite3

    other = tmp_path / "pubmed-tool.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table journals (id integer primary key, nlm_unique_id text, title text)")
        conn.execute("create table articles (id integer primary key, pmid text, title text, journal integer)")
        conn.execute("insert into articles (pmid, title) values ('31234567', 'A title of its own')")
    conn.close()
    before = other.read_bytes()
    result = runner.invoke(cli, command + ["--db", str(other)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert (f"{other} is another program's SQLite database: its table journals has no column iso_abbreviation"
            in result.output)
    assert other.read_bytes() == before


@pytest.mark.parametrize("command", [["build"], ["graph", "-o", "g.graphml"]])
def test_build_and_graph_want_a_store_that_has_articles(runner, tmp_path, command):
    empty = tmp_path / "empty.db"
    empty.touch()  # an empty file is an empty SQLite database
    result = runner.invoke(cli, command + ["--db", str(empty)])
    assert result.exit_code == 1
    assert f"{empty} is not a cryokb database (it has no articles table)" in result.output


def test_a_second_demo_says_its_evidence_was_extracted_already_not_that_none_was(runner, tmp_path, monkeypatch):
    """It said "44 articles, 0 extracted", which reads as a failure; and CRYOKB_DB is not its file."""
    monkeypatch.setenv("CRYOKB_DB", str(tmp_path / "real.db"))
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(cli, ["demo", "--no-serve"])
    again = runner.invoke(cli, ["demo", "--no-serve"])
    assert first.exit_code == again.exit_code == 0
    built = Store(tmp_path / "cryokb-demo.db").stats()["articles"]
    assert f"({built} articles, {built} extracted, " in first.output
    assert f"({built} articles, their evidence extracted already, " in again.output
    assert not (tmp_path / "real.db").exists()


def test_demo_refuses_a_database_of_real_articles_and_rebuilds_its_own(runner, tmp_path):
    import gc
    import sqlite3

    real = tmp_path / "cryokb.db"
    assert runner.invoke(cli, ["import", "--db", str(real), "-q", str(SAMPLES / "demo_medline.nbib")]).exit_code == 0
    gc.collect()  # the import's connection, closed
    with sqlite3.connect(real) as conn:
        conn.execute("pragma journal_mode = delete")  # as refresh publishes it
    conn.close()
    before = real.read_bytes()
    refused = runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(real)])
    assert refused.exit_code == 1 and "holds real articles" in refused.output
    assert real.read_bytes() == before  # refused before it was opened to write (a server would then fail)
    assert Store(real).get_meta("synthetic") is None and Store(real).stats()["articles"] == 8
    demo = tmp_path / "demo.db"
    for _ in range(2):
        assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(demo)]).exit_code == 0


def test_sqlite_troubles_of_the_machine_or_the_file_are_one_line_and_bugs_are_not():
    import sqlite3

    from kb.errors import sqlite_trouble

    full = sqlite_trouble(sqlite3.OperationalError("database or disk is full"), "kb.db")
    assert full.startswith("database kb.db cannot be written: the disk is full")
    damaged = sqlite_trouble(sqlite3.DatabaseError("database disk image is malformed"), "kb.db")
    assert damaged.startswith("database kb.db is damaged (database disk image is malformed)")
    assert sqlite_trouble(sqlite3.OperationalError("no such column: titel")) is None
    assert sqlite_trouble(ValueError("database is locked")) is None


# --- the import pipeline (kb.importing): a reader process, or all in this one


def _table_contents(db_path):
    store = Store(db_path)
    volatile = {"first_seen", "last_updated"}
    return {table: sorted(tuple(v for k, v in row.items() if k not in volatile)
                          for row in store.db[table].rows)
            for table in ("articles", "authors", "article_authors", "journals", "mesh_terms", "article_mesh",
                          "publication_types", "keywords", "article_links", "raw_records")}


def test_the_reader_process_stores_exactly_what_a_single_process_import_stores(tmp_path, sample_xml):
    from kb.importing import import_files

    for mode in (True, False):
        store = Store(tmp_path / f"{mode}.db").ensure_shape()
        result = import_files(store, [sample_xml, SAMPLES / "demo_medline.nbib"], batch_size=4, processes=mode)
        assert [r.error for r in result] == [None, None] and result[0].records > 4
    forked, single = _table_contents(tmp_path / "True.db"), _table_contents(tmp_path / "False.db")
    assert forked["articles"] and forked == single


@pytest.mark.parametrize("batch_size", [3, 1000])
@pytest.mark.parametrize("processes", [True, False])
def test_a_broken_file_keeps_every_record_before_the_break_and_names_file_and_line(tmp_path, sample_xml,
                                                                                   processes, batch_size):
    from kb.importing import import_file

    data = sample_xml.read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    whole = cut.read_bytes().count(b"</PubmedArticle>")
    store = Store(tmp_path / "kb.db").ensure_shape()
    result = import_file(store, cut, batch_size=batch_size, processes=processes)
    assert "cut.xml" in result.error and "line" in result.error
    assert store.db["articles"].count == result.records == whole >= 3


def test_a_bug_in_the_reader_process_is_raised_with_its_traceback(tmp_path, sample_xml, monkeypatch):
    import kb.importing
    from kb.importing import ReaderError, import_file

    def broken(records):
        raise ZeroDivisionError("a bug while preparing rows")

    monkeypatch.setattr(kb.importing, "read_batch", broken)
    store = Store(tmp_path / "kb.db").ensure_shape()
    with pytest.raises(ReaderError, match="ZeroDivisionError: a bug while preparing rows"):
        import_file(store, sample_xml, processes=True)


def test_a_reader_process_killed_by_a_signal_is_one_line_and_keeps_the_batches_before(runner, tmp_path, sample_xml,
                                                                                      monkeypatch):
    import os
    import signal

    import kb.importing
    from kb.importing import import_file

    real = kb.importing.read_pieces

    def killed_after_the_first_batch(*args, **kwargs):
        for number, piece in enumerate(real(*args, **kwargs)):
            if number == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            yield piece

    monkeypatch.setattr(kb.importing, "read_pieces", killed_after_the_first_batch)
    store = Store(tmp_path / "kb.db").ensure_shape()
    result = import_file(store, sample_xml, batch_size=2, processes=True)
    assert result.error == f"{sample_xml}: the reader process was killed (signal 9)"
    assert store.db["articles"].count == 2

    said = runner.invoke(cli, ["import", "--db", str(tmp_path / "other.db"), "--batch-size", "2", str(sample_xml)])
    assert said.exit_code == 1
    assert said.output.splitlines()[-1] == (f"Error: {sample_xml}: the reader process was killed (signal 9) "
                                            "(the 2 records read before it were stored)")


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_reader_process_stopped_alone_by_ctrl_c_or_sigterm_is_one_line_not_a_crash(tmp_path, sample_xml,
                                                                                     monkeypatch, signum):
    """The reader caught the stop and ended with exit code 0: the writer, not stopped with
    it, called that a crash "without a word" and printed a traceback."""
    import os
    import signal

    import kb.importing
    from kb.cli import _terminate
    from kb.importing import import_file

    real = kb.importing.read_pieces

    def stopped_after_the_first_batch(*args, **kwargs):
        signal.signal(signal.SIGTERM, _terminate)  # as the CLI's main() sets it, inherited by the reader
        for number, piece in enumerate(real(*args, **kwargs)):
            if number == 1:
                os.kill(os.getpid(), getattr(signal, signum))
            yield piece

    monkeypatch.setattr(kb.importing, "read_pieces", stopped_after_the_first_batch)
    store = Store(tmp_path / "kb.db").ensure_shape()
    result = import_file(store, sample_xml, batch_size=2, processes=True)
    number = getattr(signal, signum).value
    assert result.error == f"{sample_xml}: the reader process was killed (signal {number})"
    assert store.db["articles"].count == 2


def test_an_interrupted_build_says_how_many_articles_keep_their_evidence(runner, tmp_path, monkeypatch):
    from kb import evidence

    db = tmp_path / "cryokb.db"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("update articles set extractor_version = null")
    write, batches = evidence.write_evidence, []

    def stopped_at_the_third_batch(*args, **kwargs):
        if len(batches) == 2:
            raise KeyboardInterrupt
        batches.append(write(*args, **kwargs))
        return batches[-1]

    monkeypatch.setattr(evidence, "write_evidence", stopped_at_the_third_batch)
    result = runner.invoke(cli, ["build", "--db", str(db), "--batch-size", "3"])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == (
        "Interrupted (Ctrl-C): the evidence of the 6 articles written before it is kept; "
        "the next build extracts the rest and rebuilds the graph")
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from articles where extractor_version is not null").fetchone()[0] == 6


def test_an_interrupted_import_is_recorded_as_failed_not_left_running(tmp_path, sample_xml):
    from kb.importing import import_files

    store = Store(tmp_path / "kb.db").ensure_shape()

    def interrupt_after_the_first_batch(records):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_files(store, [sample_xml], batch_size=4, on_batch=interrupt_after_the_first_batch)
    run = store.db["harvest_runs"].get(1)
    assert (run["kind"], run["outcome"], run["error"]) == ("import", "failed", "interrupted (Ctrl-C)")
    assert store.db["articles"].count == 4
    assert (run["fetched"], run["new"]) == (4, 4)  # what the interrupted run did store


def test_an_import_interrupted_inside_a_batch_counts_only_committed_batches(tmp_path, sample_xml, monkeypatch):
    from kb.importing import import_files

    store = Store(tmp_path / "kb.db").ensure_shape()
    monkeypatch.setattr("kb.importing.PIECE_SIZE", 2)  # a batch of 4 travels in two pieces
    pieces = []

    def interrupt_halfway_through_the_second_batch(records):
        pieces.append(records)
        if len(pieces) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_files(store, [sample_xml], batch_size=4, on_batch=interrupt_halfway_through_the_second_batch,
                     processes=False)
    run = store.db["harvest_runs"].get(1)
    assert store.db["articles"].count == 4  # the second batch was rolled back
    assert (run["outcome"], run["fetched"], run["new"]) == ("failed", 4, 4)


KILLED_AFTER_ONE_BATCH = """
import os, signal, sys
from kb.importing import import_files
from kb.store import Store
store = Store(sys.argv[1]).ensure_shape()
import_files(store, [sys.argv[2]], batch_size=4, on_batch=lambda n: os.kill(os.getpid(), signal.SIGKILL))
"""


def test_a_run_killed_outright_is_shown_and_then_recorded_as_interrupted(runner, tmp_path, sample_xml):
    import subprocess
    import sys

    db = tmp_path / "kb.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_ONE_BATCH, str(db), str(sample_xml)])
    assert killed.returncode == -9
    assert Store(db).db["harvest_runs"].get(1)["outcome"] == "running"  # it never recorded its end

    shown = runner.invoke(cli, ["stats", "--db", str(db), "--json"])
    assert json.loads(shown.output)["last_run"]["outcome"] == "interrupted"
    assert Store(db).db["harvest_runs"].get(1)["outcome"] == "running"  # stats only reads

    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)]).exit_code == 0
    first, second = Store(db).db["harvest_runs"].rows
    assert first["outcome"] == "interrupted"
    assert f"pid {json.loads(first['details'])['pid']} on " in first["error"]
    assert "the batches it committed are stored" in first["error"]
    assert second["outcome"] == "ok" and second["unchanged"] == 4  # the killed run's batch was kept


def test_a_run_whose_process_lives_is_left_running(tmp_path, sample_xml):
    store = Store(tmp_path / "kb.db").ensure_shape()
    ours = store.start_run(kind="harvest")
    store.start_run(kind="import")
    assert store.db["harvest_runs"].get(ours)["outcome"] == "running"


def test_a_failing_write_stops_the_reader_process_and_keeps_earlier_batches(tmp_path, sample_xml, monkeypatch):
    import multiprocessing
    import sqlite3

    from kb.importing import import_file

    store = Store(tmp_path / "kb.db").ensure_shape()
    real_save = store.save_prepared
    calls = []

    def save_then_fail(batch, **kwargs):
        calls.append(batch)
        if len(calls) == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real_save(batch, **kwargs)

    monkeypatch.setattr(store, "save_prepared", save_then_fail)
    with pytest.raises(sqlite3.OperationalError):
        import_file(store, sample_xml, batch_size=2, processes=True)
    assert multiprocessing.active_children() == []
    assert store.db["articles"].count == 2


@pytest.mark.parametrize("processes", [True, False])
def test_a_batch_sent_in_pieces_is_still_one_transaction(tmp_path, sample_xml, monkeypatch, processes):
    import sqlite3

    import kb.importing
    from kb.importing import import_file

    monkeypatch.setattr(kb.importing, "PIECE_SIZE", 3)
    store = Store(tmp_path / "kb.db").ensure_shape()
    real_save = store.save_prepared
    pieces = []

    def fail_in_the_third_batch(piece, **kwargs):
        pieces.append(piece.read)
        if len(pieces) == 5:  # batches of 6 records in pieces of 3: the first piece of batch 3
            raise sqlite3.OperationalError("database or disk is full")
        return real_save(piece, **kwargs)

    monkeypatch.setattr(store, "save_prepared", fail_in_the_third_batch)
    with pytest.raises(sqlite3.OperationalError):
        import_file(store, sample_xml, batch_size=6, processes=processes)
    assert pieces == [3, 3, 3, 3, 3]
    assert store.db["articles"].count == 12  # two whole batches, nothing of the third


def test_a_write_that_fails_half_way_through_a_piece_keeps_nothing_of_its_batch(tmp_path, sample_xml, monkeypatch):
    """A piece has no savepoint of its own (kb.importing holds the batch's transaction):
    a failure the run reports as the file's error, after some of the piece's rows were
    written, must not commit them with the pieces before it."""
    import kb.importing
    import kb.store
    from kb.importing import import_file
    from kb.store import StoreError

    monkeypatch.setattr(kb.importing, "PIECE_SIZE", 3)
    store = Store(tmp_path / "kb.db").ensure_shape()
    real_write = kb.store._Rows.write
    writes = []

    def write_then_fail(rows, conn, *earlier):
        real_write(rows, conn, *earlier)
        writes.append(len(rows.articles))
        if len(writes) == 6:  # batches of 6 records in pieces of 3: the second piece of batch 3
            raise StoreError("the store refused the rest of the batch")

    monkeypatch.setattr(kb.store._Rows, "write", write_then_fail)
    result = import_file(store, sample_xml, batch_size=6, processes=False)
    assert result.error and "refused the rest" in result.error
    assert writes == [3] * 6
    assert store.db["articles"].count == 12  # two whole batches, nothing of the third
    assert result.records == 12


def test_a_deletion_in_a_batch_rolled_back_does_not_bring_back_a_later_copy(tmp_path, sample_xml, monkeypatch):
    """An article an earlier run withdrew stays withdrawn when this run's deletion of it is
    rolled back with its batch: the same record in the next file is then a re-import."""
    import kb.importing
    import kb.store
    from kb.importing import import_files
    from kb.store import StoreError

    records = re.findall(r"<PubmedArticle>.*?</PubmedArticle>", sample_xml.read_text(), re.S)
    withdrawn = re.search(r"<PMID[^>]*>(\d+)</PMID>", records[0]).group(1)

    def document(name: str, *parts: str) -> Path:
        path = tmp_path / name
        path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<PubmedArticleSet>\n" + "\n".join(parts)
                        + "\n</PubmedArticleSet>\n")
        return path

    deletion = f"<DeleteCitation><PMID Version=\"1\">{withdrawn}</PMID></DeleteCitation>"
    store = Store(tmp_path / "kb.db").ensure_shape()
    import_files(store, [document("earlier.xml", records[0]), document("withdrawal.xml", deletion)])
    assert store.db["articles"].get(withdrawn)["deleted"] == 1

    monkeypatch.setattr(kb.importing, "PIECE_SIZE", 3)
    real_write = kb.store._Rows.write
    writes = []

    def fail_in_the_second_batch(rows, conn, *earlier):
        real_write(rows, conn, *earlier)
        writes.append(len(rows.articles))
        if len(writes) == 4:  # batch 2: its first piece withdrew the article, its second fails
            raise StoreError("the store refused the rest of the batch")

    monkeypatch.setattr(kb.store._Rows, "write", fail_in_the_second_batch)
    failing = document("failing.xml", *records[1:7], deletion, *records[7:12])
    results = import_files(store, [failing, document("copy.xml", records[0])], batch_size=6, processes=False)
    assert results[0].error and results[1].error is None
    assert store.db["articles"].get(withdrawn)["deleted"] == 1
    assert results[1].counts.unchanged == 1 and results[1].counts.revised == 0


def test_the_import_command_writes_batches_of_the_library_s_size_unless_told():
    from kb.importing import DEFAULT_BATCH_SIZE

    [option] = [p for p in cli.commands["import"].params if p.name == "batch_size"]
    assert option.default == DEFAULT_BATCH_SIZE


def test_pieces_end_each_batch_and_the_file(tmp_path, sample_xml):
    from kb.importing import prepared_batches

    sizes = [(piece.read, ends) for piece, ends in prepared_batches(sample_xml, batch_size=10, piece_size=4)]
    assert sizes == [(4, False), (4, False), (2, True)] * 3 + [(4, False), (2, True)]


def test_harvest_fills_the_store_from_the_eutils_url_and_a_second_run_fetches_nothing(runner, tmp_path):
    from emulator import Emulator, synthetic_records

    db = tmp_path / "kb.db"
    with Emulator(synthetic_records(30)) as emu:
        args = ["harvest", "--db", str(db), "--eutils-url", emu.url, "--email", "cli-test@example.org",
                "--query", "cryoablation[tiab]", "--batch-size", "10"]
        first = runner.invoke(cli, args)
        assert first.exit_code == 0, first.output
        assert "30 new" in first.output
        efetches = len(emu.requests_to("efetch"))
        assert efetches == 3
        second = runner.invoke(cli, args)
        assert second.exit_code == 0, second.output
        assert len(emu.requests_to("efetch")) == efetches
        assert all(r.params.get("tool") == "cryokb" for r in emu.requests_to("esearch"))
    assert Store(db).stats()["articles"] == 30


@pytest.mark.parametrize("holder", ["harvest", "refresh"])
def test_harvest_while_another_harvest_or_a_refresh_runs_on_the_database_does_nothing(runner, tmp_path, holder):
    """Two harvests each fetched everything, and together sent NCBI twice the requests a
    second it allows; one beside a refresh wrote into the file the refresh then replaced."""
    import os

    from emulator import Emulator, synthetic_records
    from kb.lock import RefreshLock

    db = tmp_path / "kb.db"
    with Emulator(synthetic_records(30)) as emu, RefreshLock(db, command=holder):
        result = runner.invoke(cli, ["harvest", "--db", str(db), "--eutils-url", emu.url, "--email",
                                     "cli-test@example.org", "--query", "cryoablation[tiab]"])
        assert emu.requests == []
        assert not db.exists()  # not even opened: a refresh would find its file written and not publish
    assert result.exit_code == 1
    assert f"Error: another {holder} is running on this database: pid {os.getpid()}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("address", ["nobody", "a@", " ", "lab@localhost", "you@example.org "])
def test_harvest_refuses_a_contact_address_that_is_not_one_before_any_request(runner, tmp_path, address):
    """NCBI_EMAIL=nobody was sent to NCBI with every request."""
    from emulator import Emulator, synthetic_records

    db = tmp_path / "kb.db"
    with Emulator(synthetic_records(3)) as emu:
        result = runner.invoke(cli, ["harvest", "--db", str(db), "--eutils-url", emu.url, "--query",
                                     "cryoablation[tiab]"], env={"NCBI_EMAIL": address})
        typed = runner.invoke(cli, ["harvest", "--db", str(db), "--eutils-url", emu.url, "--email", address])
        assert emu.requests == []
    assert result.exit_code == 2 and typed.exit_code == 2
    assert (f"Invalid value for '--email' (from the environment variable NCBI_EMAIL): {address!r} is not an e-mail "
            "address: NCBI asks for one it can write to, such as you@example.org") in result.output
    assert f"Invalid value for '--email': {address!r} is not an e-mail address" in typed.output
    assert not db.exists()


def test_harvest_takes_plus_addressing_and_subdomains_in_the_contact_address(runner, tmp_path):
    from emulator import Emulator, synthetic_records

    address = "cryo.registry+pubmed@radiology.hospital.ac.uk"
    with Emulator(synthetic_records(3)) as emu:
        result = runner.invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--eutils-url", emu.url,
                                     "--query", "cryoablation[tiab]"], env={"NCBI_EMAIL": address})
        sent = {request.params.get("email") for request in emu.requests}
    assert result.exit_code == 0, result.output
    assert sent == {address}


def test_an_empty_email_flag_is_no_address_as_an_empty_variable_is(runner, tmp_path):
    """`--email "$EMAIL"` with EMAIL unset: warned about and run, as NCBI_EMAIL="" is, not refused."""
    from emulator import Emulator, synthetic_records

    with Emulator(synthetic_records(3)) as emu:
        flag = runner.invoke(cli, ["harvest", "--db", str(tmp_path / "a.db"), "--eutils-url", emu.url,
                                   "--query", "cryoablation[tiab]", "--email", ""])
        variable = runner.invoke(cli, ["harvest", "--db", str(tmp_path / "b.db"), "--eutils-url", emu.url,
                                       "--query", "cryoablation[tiab]"], env={"NCBI_EMAIL": ""})
    assert flag.exit_code == variable.exit_code == 0, flag.output
    assert "no email address set" in flag.output


def test_harvest_stopped_by_max_says_the_run_is_partial(runner, tmp_path):
    from emulator import Emulator, synthetic_records

    with Emulator(synthetic_records(30)) as emu:
        args = ["harvest", "--db", str(tmp_path / "kb.db"), "--eutils-url", emu.url, "--email", "cli-test@example.org",
                "--query", "cryoablation[tiab]", "--batch-size", "10"]
        stopped = runner.invoke(cli, args + ["--max", "5"])
        whole = runner.invoke(cli, args)
    assert stopped.exit_code == 0 and "Harvested 5 records" in stopped.output
    assert ("Stopped at --max 5 of the 30 records matched: the run is recorded as partial, so the next run "
            "without --since does not start after it (and asks first for the records not stored yet).") in stopped.output
    assert whole.exit_code == 0 and "Harvested 30 records" in whole.output and "Stopped" not in whole.output


def test_harvest_refuses_an_eutils_url_without_a_scheme_as_a_usage_error_and_stores_nothing(
        runner, tmp_path, monkeypatch):
    """A bad URL is a bad value like any other: exit 2, said before anything else (it was
    exit 1, after the warning about a missing e-mail)."""
    monkeypatch.setenv("NCBI_API_KEY", "k3y-never-shown")
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["harvest", "--db", str(db), "--eutils-url", "eutils.ncbi.nlm.nih.gov/entrez/eutils/"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--eutils-url': 'eutils.ncbi.nlm.nih.gov/entrez/eutils/' is not an http:// or "
        "https:// address (for instance https://eutils.ncbi.nlm.nih.gov/entrez/eutils/)")
    assert "Traceback" not in result.output and "k3y-never-shown" not in result.output and "no email" not in result.output
    assert not db.exists()
    monkeypatch.setenv("NCBI_EUTILS_URL", "ftp://mirror.example.org/eutils/")
    told = runner.invoke(cli, ["harvest", "--db", str(db)])
    assert told.exit_code == 2 and "(from the environment variable NCBI_EUTILS_URL)" in told.output


def test_a_command_that_meets_another_writer_says_so_in_one_line(runner, tmp_path, monkeypatch):
    import sqlite3

    import kb.store

    db = tmp_path / "kb.db"
    Store(db).ensure_shape()
    monkeypatch.setattr(kb.store, "BUSY_TIMEOUT", 0.1)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("begin immediate")  # another process in the middle of a write
    try:
        result = runner.invoke(cli, ["import", "--db", str(db), "-q", str(SAMPLES / "demo_pubmed.xml")])
    finally:
        other.execute("rollback")
        other.close()
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: database {db} is locked: another process (an import, a harvest, "
                                     "a build or a refresh) is writing to it; try again when it has finished")


def test_harvest_refuses_a_bad_date_before_any_request(runner, tmp_path):
    result = runner.invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--since", "2024-01-01",
                                 "--eutils-url", "http://127.0.0.1:9/"])
    assert result.exit_code == 2
    assert "YYYY/MM/DD" in result.output


def test_harvest_refuses_a_since_after_today_as_a_usage_error_too(runner, tmp_path):
    """As --since after --until is: the same mistake was an error of the run (exit 1)."""
    import datetime as dt

    tomorrow = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)).strftime("%Y/%m/%d")
    result = runner.invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--since", tomorrow,
                                 "--eutils-url", "http://127.0.0.1:9/"])
    assert result.exit_code == 2
    assert f"{tomorrow} is after today" in result.output
    later = runner.invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--since", "2999/01/01",
                                "--until", "2999/01/02", "--eutils-url", "http://127.0.0.1:9/"])
    assert later.exit_code == 2 and "2999/01/01 is after today" in later.output  # not after a clamped --until


def test_harvest_refuses_since_after_until_as_a_usage_error_and_creates_no_database(runner, tmp_path):
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["harvest", "--db", str(db), "--since", "2024/12/01", "--until", "2024/02/01",
                                 "--eutils-url", "http://127.0.0.1:9/"])
    assert result.exit_code == 2
    assert "2024/12/01 is after --until 2024/02/01" in result.output
    assert not db.exists() or db.stat().st_size == 0


@pytest.mark.parametrize("command", ["harvest", "refresh"])
def test_an_empty_query_is_a_usage_error_not_the_default_query(runner, tmp_path, command):
    """``--query "$Q"`` with Q unset must not run (and record) the default query."""
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, [command, "--db", str(db), "--query", "", "--eutils-url", "http://127.0.0.1:9/"])
    assert result.exit_code == 2
    assert "--query" in result.output and "empty" in result.output
    assert not db.exists() or db.stat().st_size == 0


def test_evaluate_refuses_an_empty_gold_file_rather_than_score_it_perfect(runner, tmp_path, sample_xml):
    gold = tmp_path / "empty.jsonl"
    gold.write_text("")
    result = runner.invoke(cli, ["evaluate", str(gold), "--articles", str(sample_xml)])
    assert result.exit_code == 1
    assert f"no gold records in {gold}" in result.output


@pytest.mark.parametrize("problem", ["no articles beside it", "no records", "a line not JSON"])
def test_evaluate_names_a_gold_file_whose_name_is_not_utf8_with_its_odd_byte_escaped(runner, tmp_path, sample_xml,
                                                                                    problem):
    """A Latin-1 name from an old archive: "caf\\xe9.jsonl", as import names such files, not
    a lone surrogate ("caf\\udce9"), which the terminal may refuse."""
    import os

    gold = tmp_path / os.fsdecode(b"caf\xe9.jsonl")
    gold.write_text({"no articles beside it": json.dumps({"pmid": "92000001", "relevant": True}) + "\n",
                     "no records": "", "a line not JSON": "{\n"}[problem])
    articles = [] if problem == "no articles beside it" else ["--articles", str(sample_xml)]
    result = runner.invoke(cli, ["evaluate", str(gold), *articles])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{tmp_path}/caf\\xe9.jsonl" in result.output and "udce9" not in result.output


def test_evaluate_names_a_gold_pmid_missing_from_the_articles_given(runner, tmp_path, sample_xml):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"pmid": "92000001", "relevant": True}) + "\n")
    result = runner.invoke(cli, ["evaluate", str(gold), "--articles", str(sample_xml)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: gold PMID 92000001 has no article to compare with: it is not among "
                                     f"the articles of {sample_xml}")

    broken = tmp_path / "broken.xml"
    broken.write_bytes(sample_xml.read_bytes().replace(b"</ArticleTitle>", b" & more</ArticleTitle>", 1))
    (first,) = re.findall(rb"<PMID[^>]*>(\d+)</PMID>", broken.read_bytes())[:1]
    gold.write_text(json.dumps({"pmid": first.decode(), "relevant": True}) + "\n")
    result = runner.invoke(cli, ["evaluate", str(gold), "--articles", str(broken)])
    assert result.exit_code == 1
    assert f"gold PMID {first.decode()} has no article to compare with: its record could not be read (" in result.output


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_extract_to_a_full_disk_is_a_one_line_error(runner, sample_xml):
    result = runner.invoke(cli, ["extract", str(sample_xml), "-o", "/dev/full", "-q"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: [Errno 28] No space left on device"
    assert not isinstance(result.exception, OSError)  # raised by click's own closing, it escaped as a traceback


def test_an_output_that_is_the_database_an_input_or_a_sqlite_file_is_refused_and_left_alone(
        runner, tmp_path, sample_xml):
    db, other, medline = tmp_path / "cryokb.db", tmp_path / "other.sqlite", tmp_path / "export.nbib"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0
    Store(other).ensure_shape()
    medline.write_bytes((SAMPLES / "demo_medline.nbib").read_bytes())
    kept = {path: path.read_bytes() for path in (db, other, medline)}
    refusals = {
        ("graph", "--db", str(db), "-o", str(db)): f"{db} is the database",
        ("graph", "--db", str(db), "-o", str(other)): f"{other} is a SQLite database",
        ("extract", str(medline), "-o", str(medline)): f"{medline} is an input file",
        ("extract", str(medline), "-o", str(db)): f"{db} is a SQLite database",
    }
    for args, why in refusals.items():
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 2 and why in result.output, result.output
    assert {path: path.read_bytes() for path in kept} == kept


def test_graph_writes_to_standard_output_for_a_dash_and_leaves_no_file_of_that_name(runner, tmp_path,
                                                                                  monkeypatch):
    import json

    db = tmp_path / "cryokb.db"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["graph", "--db", str(db), "--format", "json", "-o", "-"])
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert graph["nodes"] and f"Wrote {len(graph['nodes'])} nodes" in result.stderr
    assert "to standard output" in result.stderr and not (tmp_path / "-").exists()


def test_a_failed_export_leaves_the_file_it_would_have_replaced(runner, tmp_path, monkeypatch):
    from kb import graph

    db, out = tmp_path / "cryokb.db", tmp_path / "concepts.graphml"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0
    assert runner.invoke(cli, ["graph", "--db", str(db), "-o", str(out)]).exit_code == 0
    before = out.read_bytes()

    def half_written(result, fmt, path):
        Path(path).write_text("<graphml")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(graph, "export", half_written)
    result = runner.invoke(cli, ["graph", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []


def test_an_export_that_cannot_be_written_names_the_file_asked_for_not_the_temporary_one(runner, tmp_path,
                                                                                          monkeypatch):
    """A read-only folder said "[Errno 30] Read-only file system: '.../.4242.tmp.concepts.graphml'"."""
    from kb import graph

    db, out = tmp_path / "cryokb.db", tmp_path / "concepts.graphml"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0

    def refused(result, fmt, path):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(graph, "export", refused)
    result = runner.invoke(cli, ["graph", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1] == (
        f"Error: cannot write {out}: Read-only file system")


def test_an_export_keeps_who_may_read_the_file_it_replaces_and_names_a_missing_folder(runner, tmp_path):
    db, out = tmp_path / "cryokb.db", tmp_path / "concepts.graphml"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0
    out.write_text("an older export")
    out.chmod(0o600)
    assert runner.invoke(cli, ["graph", "--db", str(db), "-o", str(out)]).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_text().startswith("<?xml")
    nowhere = tmp_path / "no-such-folder" / "concepts.graphml"
    result = runner.invoke(cli, ["graph", "--db", str(db), "-o", str(nowhere)])
    assert result.exit_code == 2 and f"{nowhere.parent}: no such folder" in result.output and ".tmp." not in result.output
    (tmp_path / "a-file").write_text("not a folder")
    result = runner.invoke(cli, ["graph", "--db", str(db), "-o", str(tmp_path / "a-file" / "concepts.graphml")])
    assert result.exit_code == 2 and f"{tmp_path / 'a-file'}: a file, not a folder" in result.output


def test_extract_writes_to_a_named_pipe_without_waiting_on_it(tmp_path, sample_xml):
    """The check against overwriting a database opened the output to read it: on a pipe that
    waited for the very bytes the command was to write."""
    import os
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "evidence.pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    run = subprocess.run([sys.executable, "-m", "kb.cli", "extract", str(sample_xml), "-o", str(fifo), "-q"],
                         capture_output=True, text=True, timeout=120)
    reader.join(10)
    assert run.returncode == 0, run.stderr
    assert received and len(received[0].splitlines()) > 30


def test_an_export_to_dev_stdout_appends_where_the_shell_appends(tmp_path, sample_xml):
    """`cryokb extract ... -o /dev/stdout >> all.jsonl`: opening /dev/stdout to write emptied
    the file, and the temporary file beside it was to be made in /proc."""
    import subprocess
    import sys

    out = tmp_path / "all.jsonl"
    out.write_text('{"pmid": "earlier"}\n')
    with open(out, "ab") as appended:
        run = subprocess.run([sys.executable, "-m", "kb.cli", "extract", str(sample_xml), "-o", "/dev/stdout", "-q"],
                             stdout=appended, stderr=subprocess.PIPE, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == '{"pmid": "earlier"}' and len(lines) > 30


def test_graph_only_reads_the_database(runner, tmp_path):
    """It made the store's missing tables and indexes first, so on read-only media it failed
    with "attempt to write a readonly database"."""
    import sqlite3

    db, out = tmp_path / "cryokb.db", tmp_path / "concepts.graphml"
    assert runner.invoke(cli, ["demo", "--no-serve", "-q", "--db", str(db)]).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("drop table cryokb_meta")
    result = runner.invoke(cli, ["graph", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        tables = {name for (name,) in conn.execute("select name from sqlite_master where type = 'table'")}
    assert "cryokb_meta" not in tables and out.read_text().startswith("<?xml")


def test_extract_writes_every_record_to_the_output_file(runner, tmp_path, sample_xml):
    from ingest.readers import read_records

    out = tmp_path / "evidence.jsonl"
    assert runner.invoke(cli, ["extract", str(sample_xml), "-o", str(out), "-q"]).exit_code == 0
    pmids = [json.loads(line)["pmid"] for line in out.read_text().splitlines()]
    assert pmids == [record.pmid for record in read_records(sample_xml)]


@pytest.mark.parametrize("stop, code, said, recorded", [
    ("SIGTERM", 143, "Terminated (SIGTERM)", "terminated (SIGTERM)"),
    ("SIGINT", 130, "Interrupted (Ctrl-C)", "interrupted (Ctrl-C)"),
])
def test_a_signal_ends_an_import_with_its_own_exit_code_and_the_run_says_what_it_stored(
        tmp_path, sample_xml, stop, code, said, recorded):
    """`systemctl stop` sends SIGTERM, Ctrl-C SIGINT: the run must not be left "running" with
    nothing said, and the exit code (128 + the signal's number, as shells report it) tells a
    script the run was stopped, not that its input was wrong (1, click's "Aborted!")."""
    import re
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    data = sample_xml.read_bytes()
    head, body = data.split(b"<PubmedArticleSet>", 1)
    body = body.rsplit(b"</PubmedArticleSet>", 1)[0]
    big = tmp_path / "big.xml"
    with big.open("wb") as out:
        out.write(head + b"<PubmedArticleSet>")
        for copy in range(300):  # 10,800 records: several seconds of import
            out.write(re.sub(rb'(<PMID Version="1">)99(\d{6})', lambda m: m.group(1) + b"%02d" % (copy % 100)
                             + b"%d" % (copy // 100) + m.group(2), body))
        out.write(b"</PubmedArticleSet>")
    db = tmp_path / "kb.db"
    importing = subprocess.Popen([sys.executable, "-m", "kb.cli", "import", str(big), "--db", str(db), "-q",
                                  "--batch-size", "200"], stderr=subprocess.PIPE, text=True)
    stored = 0
    deadline = time.monotonic() + 60
    while not stored and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with sqlite3.connect(db) as conn:
                stored = conn.execute("select count(*) from articles").fetchone()[0]
        except sqlite3.OperationalError:
            pass  # not created yet
    importing.send_signal(getattr(signal, stop))
    _, stderr = importing.communicate(timeout=60)
    assert importing.returncode == code and "Traceback" not in stderr and "Aborted!" not in stderr
    with sqlite3.connect(db) as conn:
        articles = conn.execute("select count(*) from articles").fetchone()[0]
        run = conn.execute("select outcome, error, new from harvest_runs").fetchone()
    assert 0 < articles < 10_800
    assert run == ("failed", recorded, articles)
    assert (f"{said}: import run #1 recorded as failed; the {articles} records of its committed batches "
            f"are stored ({articles} new, 0 revised)") in stderr


@pytest.mark.parametrize("command", [["stats", "--json"], ["reparse", "--dry-run"]])
def test_what_only_reads_works_on_a_database_on_read_only_media(runner, tmp_path, sample_xml, monkeypatch, command):
    """On a read-only mount SQLite cannot open a write-ahead-logged database for writing
    (no -shm file can be made); tests run as root, so chmod cannot stage that."""
    import sqlite3

    from ingest.readers import read_records

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    with sqlite3.connect(db) as conn:  # as it is once its writers are done, before it is copied there
        conn.execute("pragma wal_checkpoint(truncate)")
    real_connect = sqlite3.connect

    class ReadOnlyMedia(sqlite3.Connection):
        def execute(self, *args):
            raise sqlite3.OperationalError("unable to open database file")

    def connect(database, *args, uri=False, **kwargs):
        return real_connect(database, *args, uri=uri, factory=sqlite3.Connection if uri else ReadOnlyMedia, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    result = runner.invoke(cli, command + ["--db", str(db)])
    assert result.exit_code == 0, result.output
    records = sum(1 for _ in read_records(sample_xml))
    if command[0] == "stats":
        assert json.loads(result.output)["articles"] == records
    else:
        assert f"Read {records} stored records again: 0 would change" in result.output


def test_a_store_made_before_journals_had_medline_ta_is_read_and_given_the_column(runner, tmp_path, sample_xml):
    import sqlite3

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    with sqlite3.connect(db) as conn:  # as an earlier cryokb made it
        conn.execute("alter table journals drop column medline_ta")
        conn.execute("delete from cryokb_meta where key = 'schema_version'")
    conn.close()
    stats = runner.invoke(cli, ["stats", "--db", str(db), "--json"])
    assert stats.exit_code == 0, stats.output
    dry = runner.invoke(cli, ["reparse", "--dry-run", "--db", str(db)])
    assert dry.exit_code == 0 and "0 would change" not in dry.output  # the abbreviations to fill in
    assert runner.invoke(cli, ["reparse", "--db", str(db), "-q"]).exit_code == 0
    with sqlite3.connect(db) as conn:
        filled = conn.execute("select count(*) from journals where medline_ta is not null").fetchone()[0]
        version = conn.execute("select value from cryokb_meta where key = 'schema_version'").fetchone()[0]
    assert filled > 0 and version == "2"


def test_a_store_whose_iso_abbreviations_held_medlines_ta_has_it_moved_and_read_again(runner, tmp_path):
    import sqlite3

    data = Path(__file__).parent / "data"
    db = tmp_path / "kb.db"
    another = tmp_path / "another.nbib"  # another article of the XML record's journal, as MEDLINE text
    text = (data / "medline" / "full_record.nbib").read_text()
    another.write_text(text.replace("PMID- 39990001", "PMID- 39990991"))
    elsewhere = tmp_path / "elsewhere.nbib"  # one of a journal that only MEDLINE text gives
    elsewhere.write_text(text.replace("PMID- 39990001", "PMID- 39990992").replace("JID - 101999042", "JID - 101999777")
                         .replace("TA  - J Musculoskelet Interv Oncol", "TA  - Cryo Rep"))
    assert "39990991" in another.read_text() and "Cryo Rep" in elsewhere.read_text()
    assert runner.invoke(cli, ["import", str(data / "xml" / "full_record.xml"), str(another), str(elsewhere),
                               "--db", str(db), "-q"]).exit_code == 0
    with sqlite3.connect(db) as conn:  # as an earlier cryokb left it: MEDLINE's TA written last
        expected = conn.execute("select id, iso_abbreviation, medline_ta from journals order by id").fetchall()
        conn.execute("update journals set iso_abbreviation = medline_ta")
        conn.execute("alter table journals drop column medline_ta")
        conn.execute("delete from cryokb_meta where key = 'schema_version'")
    conn.close()
    assert runner.invoke(cli, ["reparse", "--db", str(db), "-q"]).exit_code == 0
    with sqlite3.connect(db) as conn:
        found = conn.execute("select id, iso_abbreviation, medline_ta from journals order by id").fetchall()
    conn.close()
    assert found == expected == [("101999042", "J. Musculoskelet. Interv. Oncol.", "J Musculoskelet Interv Oncol"),
                                 ("101999777", None, "Cryo Rep")]


def test_a_store_of_a_later_schema_is_not_written_to_and_still_read(runner, tmp_path, sample_xml):
    """A later cryokb's tables may take rows this one writes with INSERT OR IGNORE, and drop them silently."""
    import sqlite3

    from kb.store import SCHEMA_VERSION

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("select value from cryokb_meta where key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
        conn.execute("update cryokb_meta set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
        runs = conn.execute("select count(*) from harvest_runs").fetchone()
    conn.close()
    refused = runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert refused.exit_code == 1
    assert (f"{db} is of schema version {SCHEMA_VERSION + 1}, made by a later cryokb than this one (which knows "
            f"versions up to {SCHEMA_VERSION}): upgrade cryokb to write to it") in refused.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from harvest_runs").fetchone() == runs
    conn.close()
    assert runner.invoke(cli, ["stats", "--db", str(db)]).exit_code == 0


def test_indexes_a_killed_bulk_load_left_out_are_reported_until_the_next_write_makes_them(
        runner, tmp_path, sample_xml, capsys):
    import sqlite3

    from kb.cli import _warn_of_missing_indexes

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["stats", "--db", str(db), "--json"]).output)["indexes_missing"] == 0
    with sqlite3.connect(db) as conn:  # as a bulk load killed before its end leaves the store
        for (name,) in conn.execute("select name from sqlite_master where type = 'index' and sql is not null "
                                    "and tbl_name in ('articles', 'article_mesh')").fetchall():
            conn.execute(f"drop index [{name}]")
    conn.close()
    figures = runner.invoke(cli, ["stats", "--db", str(db)])
    assert ("indexes: 7 missing: queries go slowly without them; the next import, harvest, build, reparse or "
            "refresh makes them again") in figures.output
    _warn_of_missing_indexes(db)
    assert f"Warning: {db} lacks 7 of its indexes (articles(pub_year), articles(journal_id)" in capsys.readouterr().err
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    assert "indexes" not in runner.invoke(cli, ["stats", "--db", str(db)]).output


def test_stats_during_a_bulk_load_still_running_name_the_run_that_rebuilds_the_indexes(
        runner, tmp_path, sample_xml, capsys):
    """They were told as missing because an import was stopped while it rebuilt them,
    while the import that had dropped them was still loading (and builds them at its end)."""
    import os

    from kb.cli import _warn_of_missing_indexes

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    store = Store(db).ensure_shape()
    run = store.start_run(kind="import", source="pubmed21n1298.xml.gz")  # this process: alive
    with store.bulk_load(expected_records=30000, run_id=run) as deferred:
        assert deferred
        figures = runner.invoke(cli, ["stats", "--db", str(db)])
        _warn_of_missing_indexes(db)
        warned = capsys.readouterr().err
    told = f"import run #{run} (pid {os.getpid()}, started "
    assert re.search(rf"indexes: \d+ missing: {re.escape(told)}.*\) is still loading and builds them at its end; "
                     "queries go slowly until then", figures.output), figures.output
    assert "stopped" not in figures.output
    assert told in warned and "is still loading" in warned
    store.finish_run(run, outcome="ok")
    assert "indexes" not in runner.invoke(cli, ["stats", "--db", str(db)]).output


def test_a_writing_command_on_read_only_media_says_the_file_system_is_read_only(
        runner, tmp_path, sample_xml, monkeypatch):
    import os
    import sqlite3

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    real_connect, real_statvfs = sqlite3.connect, os.statvfs

    class ReadOnlyMedia(sqlite3.Connection):
        def execute(self, *args):
            raise sqlite3.OperationalError("unable to open database file")

    def read_only(folder):
        found = real_statvfs(folder)
        return os.statvfs_result(found[:8] + (found.f_flag | os.ST_RDONLY,) + found[9:])

    monkeypatch.setattr(sqlite3, "connect", lambda database, *a, uri=False, **k: real_connect(
        database, *a, uri=uri, factory=sqlite3.Connection if uri else ReadOnlyMedia, **k))
    monkeypatch.setattr(os, "statvfs", read_only)
    result = runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert result.exit_code == 1
    assert (f"cannot open database {db}: unable to open database file (the file system is read-only; commands "
            "that only read it, stats and serve among them, still work)") in result.output


def test_reading_a_database_we_may_not_write_leaves_nothing_beside_it(runner, tmp_path, sample_xml, monkeypatch):
    """SQLite made -wal and -shm files as read-only as the database and left them there:
    once the owner made the file writable again, every write failed on them."""
    import gc
    import os

    db = tmp_path / "kb.db"
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0
    gc.collect()  # the import's connection closed, as its writers leave it: -wal and -shm gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.db"]
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK and real_access(path, mode))
    store = Store.reading(db)  # tests run as root, whom chmod does not stop
    assert store.stats()["articles"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.db"]
    store.db.close()
    monkeypatch.undo()
    assert runner.invoke(cli, ["import", str(sample_xml), "--db", str(db), "-q"]).exit_code == 0


@pytest.mark.parametrize("ending", ["/", "/.", "/.."])
def test_a_db_ending_in_a_slash_or_a_dot_is_a_usage_error_and_makes_no_file(runner, tmp_path, sample_xml, ending):
    """As a Path, "kb/" and "kb/." are "kb": the import wrote a database file named after the folder."""
    result = runner.invoke(cli, ["import", str(sample_xml), "--db", f"{tmp_path}/kb{ending}"])
    assert result.exit_code == 2 and "ends with a slash or a dot, so it names a folder" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_file_none_of_whose_records_can_be_read_fails_the_import(runner, tmp_path, sample_xml):
    """It said "0 records ... 3 problems" and exited 0: a script could not tell nothing was imported."""
    tabbed = tmp_path / "tabbed.txt"
    tabbed.write_text("".join(f"PMID- 3999170{i}\nTI\t- Cryoablation of a synthetic lesion.\n\n" for i in range(3)))
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(sample_xml), str(tabbed), "--db", str(db)])
    assert result.exit_code == 1
    assert f"{tabbed}: none of its records could be read (3 problems, listed in the problems table)" in result.output
    stats = json.loads(runner.invoke(cli, ["stats", "--db", str(db), "--json"]).output)
    assert stats["articles"] >= 30 and stats["last_run"]["outcome"] == "failed"  # the good file's records kept


def test_a_file_of_an_unreadable_record_and_a_deletion_is_read_whether_or_not_the_pmid_was_stored(runner, tmp_path):
    """Whether it failed hung on the store: a deletion of a PMID never stored deleted no row."""
    path = tmp_path / "update.xml"
    path.write_text("<?xml version='1.0'?>\n<PubmedArticleSet>\n<PubmedArticle><MedlineCitation><PMID>draft"
                    "</PMID></MedlineCitation></PubmedArticle>\n<DeleteCitation><PMID Version=\"1\">39998877"
                    "</PMID></DeleteCitation>\n</PubmedArticleSet>\n")
    result = runner.invoke(cli, ["import", str(path), "--db", str(tmp_path / "kb.db")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", [["import", "FILE"], ["demo", "--no-serve"]])
@pytest.mark.parametrize("folder, said", [("missing", "no such folder"), ("a file", "a file, not a folder"),
                                          ("below a file", "no such folder ({tmp}/notes is a file)")])
def test_a_db_in_a_folder_that_does_not_exist_says_so(runner, tmp_path, sample_xml, command, folder, said):
    """SQLite says only "unable to open database file"; refresh already named the folder.
    Below a file, "no such folder" alone sent one to make a folder that cannot be made."""
    parent = tmp_path / "notes"
    if folder != "missing":
        parent.write_text("not a folder")
    if folder == "below a file":
        parent = parent / "kb"
    said = said.format(tmp=tmp_path)
    db = parent / "kb.db"
    args = [str(sample_xml) if arg == "FILE" else arg for arg in command]
    result = runner.invoke(cli, [*args, "--db", str(db), "-q"])
    assert result.exit_code == 1
    assert f"{parent}: {said}" in result.output and "unable to open" not in result.output


def test_a_bad_db_is_blamed_on_the_environment_variable_only_when_it_came_from_there(runner, tmp_path):
    typed = runner.invoke(cli, ["stats", "--db", str(tmp_path)])
    assert typed.exit_code == 2 and "Invalid value for '--db': " in typed.output and "CRYOKB_DB" not in typed.output
    inherited = runner.invoke(cli, ["stats"], env={"CRYOKB_DB": str(tmp_path)})
    assert inherited.exit_code == 2
    assert "Invalid value for '--db' (from the environment variable CRYOKB_DB): " in inherited.output


def test_an_empty_db_is_a_usage_error_naming_the_option(runner):
    result = runner.invoke(cli, ["stats", "--db", ""])
    assert result.exit_code == 2
    assert "Invalid value for '--db'" in result.output and "is empty" in result.output


def test_a_blank_cryokb_db_is_a_usage_error_naming_it_and_makes_no_file(runner, tmp_path, sample_xml, monkeypatch):
    """CRYOKB_DB=" " made a database named " " in the working directory."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = runner.invoke(cli, ["import", str(sample_xml), "-q"], env={"CRYOKB_DB": " "})
    assert result.exit_code == 2
    assert ("Invalid value for '--db' (from the environment variable CRYOKB_DB): ' ' is only blank space: give "
            "a database file") in result.output
    assert list(here.iterdir()) == []


def test_spaces_around_a_db_name_are_part_of_it_or_refused_never_stripped(runner, tmp_path, sample_xml, monkeypatch):
    """import and stats read CRYOKB_DB=" kb.db" as that file; refresh refuses it rather than
    publish kb.db (it stripped the spaces) or start a store beside the one meant."""
    from kb.config import ConfigError, resolve_settings

    monkeypatch.chdir(tmp_path)
    assert runner.invoke(cli, ["import", str(sample_xml), "-q"], env={"CRYOKB_DB": " kb.db"}).exit_code == 0
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == [" kb.db"]
    assert json.loads(runner.invoke(cli, ["stats", "--json"], env={"CRYOKB_DB": " kb.db"}).output)["articles"]
    with pytest.raises(ConfigError, match="' kb.db' has spaces around it"):
        resolve_settings({}, env={"CRYOKB_DB": " kb.db"}, cwd=tmp_path)


def test_the_import_summary_counts_one_record_and_one_problem_in_the_singular(runner, tmp_path, sample_xml):
    head, body = sample_xml.read_bytes().split(b"<PubmedArticleSet>", 1)
    first = body.split(b"</PubmedArticle>", 1)[0] + b"</PubmedArticle>"
    broken = first.replace(b"</ArticleTitle>", b"</ArticleTitl>", 1)
    one = tmp_path / "one.xml"
    one.write_bytes(head + b"<PubmedArticleSet>" + first + broken + b"</PubmedArticleSet>")
    result = runner.invoke(cli, ["import", str(one), "--db", str(tmp_path / "kb.db")])
    assert f"{one}: 1 record: 1 new, 0 revised, 0 unchanged, 0 deleted, 1 problem" in result.output


def test_import_reads_standard_input_named_by_a_dash(tmp_path):
    """As sqlite-utils and most tools do: `cat exports/*.nbib | cryokb import -` (only
    /dev/stdin was taken; "-" was "File '-' does not exist", exit 2)."""
    import subprocess
    import sys

    from ingest.readers import read_records

    medline = SAMPLES / "demo_medline.nbib"
    db = tmp_path / "kb.db"
    piped = subprocess.run([sys.executable, "-m", "kb.cli", "import", "-", "--db", str(db)],
                           input=medline.read_bytes(), capture_output=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    stored = {row["pmid"] for row in Store(db).db["articles"].rows}
    assert stored == {record.pmid for record in read_records(medline)} and stored


def test_extract_reads_standard_input_named_by_a_dash(tmp_path):
    """`zcat export.xml.gz | cryokb extract -`, as import takes it ("-" was "File '-' does
    not exist", exit 2): the same records as from the file itself."""
    import subprocess
    import sys

    from ingest.readers import read_records

    medline = SAMPLES / "demo_medline.nbib"
    command = [sys.executable, "-m", "kb.cli", "extract"]
    piped = subprocess.run(command + ["-"], input=medline.read_bytes(), capture_output=True, timeout=300)
    named = subprocess.run(command + [str(medline)], capture_output=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == named.stdout and piped.stdout.count(b"\n") == len(list(read_records(medline))) > 5


def test_a_file_that_cannot_be_opened_fails_the_import_in_one_line_and_the_others_are_imported(runner, tmp_path,
                                                                                              sample_xml):
    """An unreadable file was a usage error (exit 2) that imported none of the files given
    with it. Tests run as root, whom permissions do not stop: a socket cannot be opened by anyone."""
    import socket

    unopenable = tmp_path / "export.xml"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(unopenable))
        result = runner.invoke(cli, ["import", str(sample_xml), str(unopenable), "--db", str(tmp_path / "kb.db")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith(f"Error: {unopenable}: cannot open (")
    from ingest.readers import read_records

    assert Store(tmp_path / "kb.db").db["articles"].count == len({r.pmid for r in read_records(sample_xml)})
