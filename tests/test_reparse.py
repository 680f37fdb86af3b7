"""Reading stored articles again from their raw records (kb.reparse, `cryokb reparse`).

An older parser is played by editing the rows an import wrote, the way a parser bug
leaves them (a PMC id missed, a keyword lost, markup cutting a title short): reading
the raw records again must give back the rows an import writes today.
"""

import importlib
import json
import sqlite3
import sys
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.model import Deletion
from kb.cli import _say_what_was_kept, cli
from kb.evidence import count_stale, ensure_evidence_shape
from kb.importing import import_files
from kb.refresh import count_reextract
from kb.reparse import PARSER_MODULES, PARSERS_KEY, current_parsers, parsers_changed, read_again, reparse
from kb.store import CHILD_TABLES, Store, _index, _unindex

DATA = Path(__file__).parent / "data"
FILES = [DATA / "xml" / name for name in ("full_record.xml", "markup.xml", "book.xml", "medline_citation_set.xml")]
FILES += [DATA / "medline" / name for name in ("authors.txt", "links_and_ids.txt", "structured_abstract.txt")]
# What the store says of an article beyond its record, which a fresh import sets anew.
STORE_OWN = {"first_seen", "last_updated"}


def imported(path: Path) -> Store:
    store = Store(path).ensure_shape()
    results = import_files(store, FILES, processes=False)
    assert not [r.error for r in results if r.error]
    return store


def record_rows(store: Store, leave_out=STORE_OWN) -> dict:
    """Every row an article's record makes, table by table, in a stable order."""
    found = {}
    for table in ("articles", "journals", "authors", "mesh_terms", *CHILD_TABLES, "raw_records"):
        columns = [c for c in store.db[table].columns_dict if c not in leave_out]
        found[table] = sorted(store.db.execute(f"select {', '.join(columns)} from [{table}]").fetchall(), key=repr)
    return found


def as_an_older_parser_left_it(store: Store) -> None:
    """Rows as a parser with a few bugs would have written them."""
    store.db.execute("update articles set pmcid = null where pmcid is not null")
    _unindex(store.db.conn, ["39990101"])  # a title cut short was indexed so
    store.db.execute("update articles set title = 'Argon-based cryoablation of' where pmid = '39990101'")
    _index(store.db.conn, ["39990101"])
    store.db.execute("delete from keywords where pmid = '39990101'")
    store.db.execute("update article_mesh set major = 1 - major where pmid = '39990001'")
    store.db.conn.commit()


@pytest.fixture
def tampered(tmp_path):
    store = imported(tmp_path / "old.db")
    as_an_older_parser_left_it(store)
    return store


def test_a_store_read_again_right_after_its_import_changes_nothing(tmp_path):
    store = imported(tmp_path / "kb.db")
    before = record_rows(store, leave_out=())
    result = reparse(store)
    assert result.read == store.db["raw_records"].count > 10
    assert (result.changed, result.problems, result.unchanged) == (0, 0, result.read)
    assert record_rows(store, leave_out=()) == before  # last_updated included: nothing was written


def test_a_heading_listed_twice_reads_as_the_one_row_stored(tmp_path):
    """The store keeps the first of two rows with one key (INSERT OR IGNORE); read again,
    the record must compare as that row, or every run would rewrite it."""
    xml = (DATA / "xml" / "full_record.xml").read_text(encoding="utf-8")
    twice = xml.replace('<DescriptorName UI="D006801" MajorTopicYN="N">Humans</DescriptorName>\n            </MeshHeading>',
                        '<DescriptorName UI="D006801" MajorTopicYN="N">Humans</DescriptorName>\n            </MeshHeading>\n'
                        '            <MeshHeading>\n'
                        '                <DescriptorName UI="D006801" MajorTopicYN="Y">Humans</DescriptorName>\n'
                        '            </MeshHeading>')
    assert twice.count(">Humans<") == 2
    path = tmp_path / "twice.xml"
    path.write_text(twice, encoding="utf-8")
    store = Store(tmp_path / "kb.db").ensure_shape()
    import_files(store, [path], processes=False)
    assert store.db.execute("select major from article_mesh where descriptor = 'Humans'").fetchall() == [(0,)]
    assert reparse(store).changed == 0


def test_rows_an_older_parser_wrote_come_back_as_an_import_writes_them_today(tampered, tmp_path):
    fresh = imported(tmp_path / "fresh.db")
    assert record_rows(tampered) != record_rows(fresh)
    with_pmc = fresh.db.execute("select count(*) from articles where pmcid is not null").fetchone()[0]
    assert with_pmc >= 1

    result = reparse(tampered)

    assert record_rows(tampered) == record_rows(fresh)
    assert result.fields == {"pmcid": with_pmc, "title": 1, "keywords": 1, "article_mesh": 1}
    assert result.changed == len({"39990101", "39990001"} | pmids_with_pmc(fresh))
    assert reparse(tampered).changed == 0  # and a second run changes nothing


def pmids_with_pmc(store: Store) -> set[str]:
    return {row[0] for row in store.db.execute("select pmid from articles where pmcid is not null")}


def test_the_full_text_index_holds_the_text_read_again(tampered):
    def found(words):
        return [row[0] for row in tampered.db.execute(
            "select articles.pmid from articles_fts join articles on articles.rowid = articles_fts.rowid "
            "where articles_fts match ?", [words])]

    assert found("desmoid chest wall") == []
    reparse(tampered)
    assert found("desmoid chest wall") == ["39990101"]
    # the index against the text it indexes (rank 1; no article is withdrawn here): raises where they disagree
    tampered.db.execute("insert into articles_fts(articles_fts, rank) values('integrity-check', 1)")


def test_what_the_store_knows_beyond_the_record_stays(tampered):
    tampered.save_records([Deletion(["39990101"])])
    tampered.db.execute("update articles set last_updated = '2020-01-31T09:00:00+00:00'")  # stored long ago
    tampered.db.conn.commit()
    before = {row["pmid"]: row for row in tampered.db.query("select * from articles")}
    raw_before = tampered.db.execute("select * from raw_records order by pmid").fetchall()

    reparse(tampered)

    after = {row["pmid"]: row for row in tampered.db.query("select * from articles")}
    withdrawn = after["39990101"]
    assert withdrawn["title"].startswith("Argon-based cryoablation of desmoid tumours")
    assert (withdrawn["deleted"], withdrawn["deleted_at"]) == (1, before["39990101"]["deleted_at"])
    assert tampered.db.execute("select count(*) from articles_fts where articles_fts match 'desmoid'"
                               ).fetchone()[0] == 0  # withdrawn: still out of the search index
    assert all(after[pmid]["first_seen"] == row["first_seen"] for pmid, row in before.items())
    unchanged = set(before) - {"39990101", "39990001"} - pmids_with_pmc(tampered)
    assert unchanged and all(after[pmid]["last_updated"] == before[pmid]["last_updated"] for pmid in unchanged)
    assert after["39990001"]["last_updated"] > before["39990001"]["last_updated"]
    assert tampered.db.execute("select * from raw_records order by pmid").fetchall() == raw_before


def test_the_evidence_of_a_rewritten_article_is_extracted_again(tampered):
    ensure_evidence_shape(tampered)
    tampered.db.execute("update articles set extracted_hash = record_hash, extractor_version = 'v'")
    tampered.db.conn.commit()
    result = reparse(tampered)
    assert count_stale(tampered, "v") == result.changed > 0
    assert count_reextract(tampered, "v", False) == result.changed  # extracted before, and again
    stale = {row[0] for row in tampered.db.execute("select pmid from articles where extractor_version is null")}
    assert {"39990101", "39990001"} <= stale


def test_a_dry_run_says_what_would_change_and_writes_nothing(tampered):
    before = record_rows(tampered, leave_out=())
    runs = tampered.db["harvest_runs"].count
    result = reparse(tampered, dry_run=True)
    assert result.changed > 0 and result.fields["title"] == 1
    assert record_rows(tampered, leave_out=()) == before
    assert tampered.db["harvest_runs"].count == runs


def test_the_run_is_recorded_with_its_counts(tampered):
    result = reparse(tampered)
    run = next(tampered.db.query("select * from harvest_runs order by id desc limit 1"))
    assert (run["kind"], run["outcome"]) == ("reparse", "ok")
    assert (run["fetched"], run["revised"], run["unchanged"], run["new"]) == (result.read, result.changed,
                                                                             result.unchanged, 0)


def test_only_the_articles_asked_for_are_read_again(tampered):
    result = reparse(tampered, pmids=["39990101"])
    assert (result.read, result.changed) == (1, 1)
    run = next(tampered.db.query("select * from harvest_runs order by id desc limit 1"))
    assert run["source"] == "raw_records: PMID 39990101"  # not every record (kb.refresh looks for those)
    assert tampered.db.execute("select count(*) from articles where pmcid is not null").fetchone()[0] == 0


def test_a_record_that_no_longer_reads_is_a_problem_and_its_article_stays(tampered):
    broken = b"<PubmedArticle><MedlineCitation><PMID Version=\"1\">39990101</PMID>"
    tampered.db.execute("update raw_records set compressed = ? where pmid = '39990101'", [zlib.compress(broken)])
    tampered.db.conn.commit()
    problems = []

    result = reparse(tampered, on_problem=problems.append)

    assert [p.where for p in problems] == ["PMID 39990101"] and "cannot be read again" in problems[0].message
    assert result.problems == 1 and result.changed > 0  # the others are read again all the same
    assert tampered.db["articles"].get("39990101")["title"] == "Argon-based cryoablation of"
    stored = list(tampered.db.query("select * from problems"))
    assert [(p["source"], p["location"]) for p in stored] == [("raw_records", "PMID 39990101")]


def test_a_run_stopped_midway_keeps_the_pages_it_committed(tampered, capsys):
    pages = []

    def stop_after_the_first(n):
        pages.append(n)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reparse(tampered, page_size=3, on_page=stop_after_the_first)
    run = next(tampered.db.query("select * from harvest_runs order by id desc limit 1"))
    assert (run["kind"], run["outcome"], run["fetched"]) == ("reparse", "failed", 3)
    _say_what_was_kept(tampered, KeyboardInterrupt())  # what the command says on Ctrl-C
    assert f"the 3 records of its committed batches were read again ({run['revised']} articles rewritten)" in (
        capsys.readouterr().err)
    rest = reparse(tampered)
    assert rest.changed == rest.read - rest.unchanged and rest.read > 3
    assert reparse(tampered).changed == 0


# -- the command ---------------------------------------------------------------

def test_the_command_says_what_changed(tampered):
    path = tampered.db.conn.execute("pragma database_list").fetchone()[2]
    dry = CliRunner().invoke(cli, ["reparse", "--db", path, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would change (pmcid" in dry.output and "title 1" in dry.output
    done = CliRunner().invoke(cli, ["reparse", "--db", path])
    assert done.exit_code == 0 and " changed (pmcid" in done.output
    again = CliRunner().invoke(cli, ["reparse", "--db", path])
    assert "0 changed," in again.output


def test_the_command_says_one_problem_in_the_singular(tampered):
    broken = b"<PubmedArticle><MedlineCitation><PMID Version=\"1\">39990101</PMID>"
    tampered.db.execute("update raw_records set compressed = ? where pmid = '39990101'", [zlib.compress(broken)])
    tampered.db.conn.commit()
    path = tampered.db.conn.execute("pragma database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["reparse", "--db", path])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("unchanged, 1 problem")


def test_the_command_refuses_what_it_cannot_do(tampered, tmp_path):
    path = tampered.db.conn.execute("pragma database_list").fetchone()[2]
    unknown = CliRunner().invoke(cli, ["reparse", "--db", path, "--pmid", "39990101", "--pmid", "12345"])
    assert unknown.exit_code == 1 and "no record of PMID 12345" in unknown.output
    assert "Traceback" not in unknown.output
    two = CliRunner().invoke(cli, ["reparse", "--db", path, "--pmid", "54321", "--pmid", "12345"])
    assert two.exit_code == 1 and "no record of PMIDs 12345, 54321" in two.output
    odd = CliRunner().invoke(cli, ["reparse", "--db", path, "--pmid", "PMC123"])
    assert odd.exit_code == 2 and "'PMC123' is not a PMID" in odd.output
    missing = CliRunner().invoke(cli, ["reparse", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no database at" in missing.output
    assert not (tmp_path / "none.db").exists()


def test_the_command_helps_with_examples():
    result = CliRunner().invoke(cli, ["reparse", "--help"])
    assert result.exit_code == 0 and "cryokb reparse --dry-run -v" in result.output


def test_a_store_of_another_program_is_left_alone(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table articles (id integer primary key, body text)")
    result = CliRunner().invoke(cli, ["reparse", "--db", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_a_record_replaced_while_it_was_read_again_keeps_the_newer_rows(tampered, tmp_path, monkeypatch):
    """An import or a harvest into the store between reading a page and writing it:
    the rows read from the older raw record must not overwrite the newer record's."""
    newer = tmp_path / "newer.xml"
    newer.write_text((DATA / "xml" / "full_record.xml").read_text(encoding="utf-8")
                     .replace('<PMID Version="2">39990001</PMID>', '<PMID Version="3">39990001</PMID>'),
                     encoding="utf-8")
    compare = tampered.differences

    def an_import_meanwhile(prepared):
        found = compare(prepared)
        if "39990001" in found:
            import_files(tampered, [newer], processes=False)
        return found

    monkeypatch.setattr(tampered, "differences", an_import_meanwhile)
    result = reparse(tampered)

    article = tampered.db["articles"].get("39990001")
    assert article["version"] == 3
    assert tampered.raw_record("39990001")[1].count(b'<PMID Version="3">39990001</PMID>') == 1
    assert "article_mesh" not in result.fields  # the heading flags were the v2 rows' difference
    monkeypatch.undo()
    assert reparse(tampered).changed == 0


# -- what an older version stored, and odd stored data ----------------------------------

def test_medline_text_an_older_version_kept_in_another_form_is_rewritten_with_it(tmp_path):
    """Older versions kept MEDLINE text with the line ends of the file (CRLF from Windows);
    today's keeps LF, and the record's hash is that of the text kept. A reparse that took
    the new hash for an import meanwhile would never fix the article."""
    import hashlib

    store = imported(tmp_path / "old.db")
    pmid = "39991101"
    fmt, raw = store.raw_record(pmid)
    assert fmt == "medline" and b"\r" not in raw
    crlf = raw.replace(b"\n", b"\r\n")
    old_hash = hashlib.sha1(crlf).hexdigest()
    store.db.execute("update raw_records set compressed = ?, sha1 = ? where pmid = ?",
                     [zlib.compress(crlf), old_hash, pmid])
    store.db.execute("update articles set record_hash = ?, title = 'ffiliations follow their authors.' "
                     "where pmid = ?", [old_hash, pmid])
    store.db.conn.commit()

    result = reparse(store)

    assert set(result.fields) == {"title", "record_hash"} and result.changed == 1
    assert record_rows(store) == record_rows(imported(tmp_path / "fresh.db"))  # raw records and hashes too
    assert reparse(store).changed == 0


def test_a_rewrite_leaves_the_journal_row_a_later_record_gave(tmp_path):
    """Two records of one journal spell it differently; the later one imported gave the
    journal's row. Rewriting the earlier one (for a field of its own) must not bring its
    spelling back: the store would then differ from a fresh import."""
    xml = (DATA / "xml" / "full_record.xml").read_text(encoding="utf-8")
    older = xml.replace(">39990001<", ">39990900<").replace(
        "J. Musculoskelet. Interv. Oncol.</ISOAbbreviation>", "J. Musculoskel. Interv. Oncol.</ISOAbbreviation>")
    (tmp_path / "older.xml").write_text(older, encoding="utf-8")
    (tmp_path / "later.xml").write_text(xml, encoding="utf-8")

    def store_of(name):
        store = Store(tmp_path / name).ensure_shape()
        import_files(store, [tmp_path / "older.xml", tmp_path / "later.xml"], processes=False)
        return store

    store = store_of("kb.db")
    store.db.execute("delete from publication_types where pmid = '39990900'")  # a parser bug of its own
    store.db.conn.commit()
    assert reparse(store).fields == {"publication_types": 1}
    assert record_rows(store) == record_rows(store_of("fresh.db"))
    assert store.db["journals"].get("101999042")["iso_abbreviation"] == "J. Musculoskelet. Interv. Oncol."


def test_what_an_older_parser_left_out_of_the_shared_rows_is_filled_in(tmp_path):
    store = imported(tmp_path / "old.db")
    store.db.execute("update journals set iso_abbreviation = null where id = '101999042'")
    store.db.execute("update mesh_terms set ui = null where descriptor = 'Cryosurgery'")
    store.db.execute("update authors set fore_name = null where last_name = 'Achterberg'")
    store.db.conn.commit()

    result = reparse(store)

    assert {"journals table", "mesh_terms table", "authors table"} <= set(result.fields)
    assert record_rows(store) == record_rows(imported(tmp_path / "fresh.db"))
    assert reparse(store).changed == 0


def test_an_article_whose_authors_column_and_authors_rows_both_change_counts_once_under_each(tmp_path):
    store = imported(tmp_path / "old.db")
    pmid = store.db.execute(  # an article none of whose authors wrote another
        "select pmid from article_authors group by pmid having max((select count(distinct other.pmid) from "
        "article_authors as other where other.author_id = article_authors.author_id)) = 1 limit 1").fetchone()[0]
    store.db.execute("update articles set authors = '[]' where pmid = ?", [pmid])
    store.db.execute("delete from article_authors where pmid = ?", [pmid])
    store.db.execute("delete from authors where id not in (select author_id from article_authors)")
    store.db.conn.commit()

    result = reparse(store, dry_run=True)

    assert result.changed == 1
    assert result.fields["authors"] == 1 and result.fields["article_authors"] == 1
    assert result.fields["authors table"] == 1


@pytest.mark.parametrize("blob", [zlib.compress(b"<PubmedArticle>")[:-3], None], ids=["damaged", "null"])
def test_a_raw_record_that_does_not_decompress_is_a_problem_and_the_run_goes_on(tampered, blob):
    tampered.db.execute("update raw_records set compressed = ? where pmid = '39990101'", [blob])
    tampered.db.conn.commit()
    problems = []
    result = reparse(tampered, on_problem=problems.append)
    assert [(p.where, "cannot be decompressed" in p.message) for p in problems] == [("PMID 39990101", True)]
    assert result.changed > 0 and tampered.db["articles"].get("39990101")["title"] == "Argon-based cryoablation of"


def test_a_raw_record_without_its_article_is_a_problem_and_left_alone(tampered):
    tampered.db.execute("delete from keywords where pmid = '39990101'")
    tampered.db.execute("delete from articles where pmid = '39990101'")
    tampered.db.conn.commit()
    problems = []
    result = reparse(tampered, on_problem=problems.append)
    assert [p.message for p in problems] == ["a raw record without its article; left as it is"]
    assert result.problems == 1 and result.changed > 0
    assert tampered.db.execute("select count(*) from articles where pmid = '39990101'").fetchone()[0] == 0


# -- which parsers read the stored records ----------------------------------------------


def test_a_new_store_notes_that_this_cryokbs_parsers_read_its_records(tmp_path):
    store = imported(tmp_path / "kb.db")
    assert store.get_meta(PARSERS_KEY) == current_parsers()
    assert not parsers_changed(store)


def test_records_read_by_other_parsers_are_noted_as_read_again_only_once_all_are(tampered):
    tampered.set_meta(PARSERS_KEY, "an older cryokb's")
    assert parsers_changed(tampered)
    reparse(tampered, dry_run=True)
    reparse(tampered, pmids=["39990101"])
    assert parsers_changed(tampered)  # the others are still as the older parsers read them
    reparse(tampered)
    assert tampered.get_meta(PARSERS_KEY) == current_parsers()
    assert not parsers_changed(tampered)


def test_a_store_an_older_release_filled_counts_as_read_by_other_parsers(tmp_path):
    store = imported(tmp_path / "kb.db")
    store.db.execute(f"delete from cryokb_meta where key = '{PARSERS_KEY}'")
    store.db.conn.commit()
    assert parsers_changed(Store(tmp_path / "kb.db").ensure_shape())  # opened again: not taken for a new store
    empty = Store(tmp_path / "empty.db").ensure_shape()
    empty.db.execute(f"delete from cryokb_meta where key = '{PARSERS_KEY}'")
    empty.db.conn.commit()
    assert not parsers_changed(empty)  # nothing in it to read again


def test_the_parsers_noted_change_with_biopython_which_reads_medline_text(monkeypatch):
    import Bio

    before = current_parsers()
    monkeypatch.setattr(Bio, "__version__", Bio.__version__ + ".post1")
    current_parsers.cache_clear()
    try:
        assert current_parsers() != before
    finally:
        current_parsers.cache_clear()


def test_the_parsers_noted_cover_every_module_that_reads_a_stored_record(tmp_path):
    """A module that reads records and is left out of PARSER_MODULES would let a fix in
    it go unnoticed: the stores it would correct never read again."""
    import kb

    store = imported(tmp_path / "kb.db")
    pages = list(store.raw_pages(None, 1000))
    assert {raw.format for page in pages for raw in page} == {"xml", "medline"}
    ran: set[str] = set()

    def note(frame, event, arg):
        if event == "call":
            ran.add(frame.f_code.co_filename)

    sys.setprofile(note)
    try:
        for page in pages:
            read_again(page)
    finally:
        sys.setprofile(None)
    root = Path(kb.__file__).resolve().parents[1]
    files = {Path(name).resolve() for name in ran if Path(name).is_absolute()}  # not "<frozen abc>"
    ours = {path.relative_to(root).as_posix() for path in files  # not a .venv inside the checkout (CI's)
            if path.is_relative_to(root) and path.relative_to(root).parts[0] in ("ingest", "kb", "extractors")}
    noted = {Path(importlib.import_module(name).__file__).resolve().relative_to(root).as_posix()
             for name in PARSER_MODULES}
    assert "ingest/medline.py" in ours and "kb/store.py" in ours
    assert ours - {"kb/reparse.py"} <= noted


def test_stats_say_when_the_records_should_be_read_again(tampered):
    db = tampered.db.conn.execute("pragma database_list").fetchone()[2]
    runner = CliRunner()
    assert "reparse" not in runner.invoke(cli, ["stats", "--db", db]).output
    tampered.set_meta(PARSERS_KEY, "an older cryokb's")
    said = runner.invoke(cli, ["stats", "--db", db])
    assert said.exit_code == 0
    assert "reparse: needed" in said.output and "cryokb reparse" in said.output
    assert json.loads(runner.invoke(cli, ["stats", "--db", db, "--json"]).output)["reparse_needed"] is True
