"""The store: schema, upsert by PMID, idempotence, deletions, one transaction a batch."""

import json
import sqlite3
import sys
import threading
import time
import zlib

import pytest

from ingest.model import (AbstractSection, Article, Author, Deletion, Journal, Link, MeshHeading,
                          MeshQualifier, ParseProblem, PublicationType)
from kb.store import ARTICLE_COLUMNS, BUSY_TIMEOUT, Store, StoreError


def make_article(pmid="90000001", title="Percutaneous cryoablation of desmoid tumours", revised="2024-03-01",
                 raw=None, **extra):
    article = Article(
        pmid=pmid,
        title=title,
        abstract_sections=[
            AbstractSection("Desmoid tumours recur after surgery.", "BACKGROUND", "BACKGROUND"),
            AbstractSection("Twelve patients were treated under CT guidance.", "METHODS", "METHODS"),
        ],
        authors=[Author("Okafor", "Adaeze", "A", affiliations=["Department of Radiology, Lagos"]),
                 Author(collective_name="Cryo Study Group")],
        journal=Journal("Cardiovascular and Interventional Radiology", "Cardiovasc Intervent Radiol",
                        "0174-1551", nlm_unique_id="8003538"),
        pub_year=2023,
        revised_date=revised,
        publication_types=[PublicationType("Journal Article", "D016428")],
        mesh_headings=[MeshHeading("Fibromatosis, Aggressive", "D018222", True,
                                   [MeshQualifier("therapy", "Q000628", True)])],
        keywords=["cryoablation", "desmoid"],
        raw=raw if raw is not None else f"<PubmedArticle>{pmid}{title}{revised}</PubmedArticle>".encode(),
        **extra,
    )
    return article


def test_schema_has_every_documented_table_and_foreign_keys(store):
    tables = set(store.db.table_names())
    assert {"articles", "authors", "article_authors", "journals", "mesh_terms", "article_mesh",
            "publication_types", "keywords", "article_links", "raw_records", "harvest_runs",
            "problems", "articles_fts"} <= tables
    fks = {(fk.column, fk.other_table) for fk in store.db["article_authors"].foreign_keys}
    assert fks == {("pmid", "articles"), ("author_id", "authors")}
    assert {(fk.column, fk.other_table) for fk in store.db["articles"].foreign_keys} == {("journal_id", "journals")}


def test_ensure_shape_twice_changes_nothing(store):
    before = store.db.schema
    store.ensure_shape()
    assert store.db.schema == before


def test_a_record_is_stored_with_its_children_and_raw_xml(store):
    counts = store.save_records([make_article()])
    assert (counts.new, counts.revised, counts.unchanged) == (1, 0, 0)
    row = store.db["articles"].get("90000001")
    assert row["abstract"] == "Desmoid tumours recur after surgery.\nTwelve patients were treated under CT guidance."
    assert row["journal_id"] == "8003538"
    assert store.db["article_authors"].count == 2
    assert store.db.execute("select qualifiers from article_mesh").fetchone()[0].startswith('[{"name": "therapy"')
    fmt, raw = store.raw_record("90000001")
    assert fmt == "xml" and raw.startswith(b"<PubmedArticle>")


def test_importing_the_same_record_again_changes_nothing(store):
    store.save_records([make_article()])
    dump = list(store.db.iterdump())
    counts = store.save_records([make_article()])
    assert (counts.new, counts.revised, counts.unchanged) == (0, 0, 1)
    assert list(store.db.iterdump()) == dump


def test_a_revised_record_replaces_the_older_version_and_keeps_its_revision_date(store):
    store.save_records([make_article()])
    first_seen = store.db["articles"].get("90000001")["first_seen"]
    revised = make_article(title="Cryoablation of desmoid tumours: a revised title", revised="2025-01-15")
    revised.keywords = ["cryoablation"]
    counts = store.save_records([revised])
    assert counts.revised == 1
    row = store.db["articles"].get("90000001")
    assert row["title"].endswith("a revised title")
    assert row["revised_date"] == "2025-01-15"
    assert row["first_seen"] == first_seen
    assert [r["keyword"] for r in store.db["keywords"].rows] == ["cryoablation"]
    assert store.db["article_authors"].count == 2


def test_one_batch_adds_new_articles_and_replaces_stored_ones_each_with_its_own_row(store):
    store.save_records([make_article(title="Cryoablation of desmoid tumours, first version")])
    counts = store.save_records([
        make_article(pmid="90000003", title="Cryoablation of chondroblastoma"),
        make_article(title="Cryoablation of desmoid tumours, second version", revised="2025-01-15"),
        make_article(pmid="90000004", title="Cryoablation of osteoid osteoma"),
    ])
    assert (counts.new, counts.revised) == (2, 1)
    titles = dict(store.db.execute("select pmid, title from articles").fetchall())
    assert titles == {"90000001": "Cryoablation of desmoid tumours, second version",
                      "90000003": "Cryoablation of chondroblastoma", "90000004": "Cryoablation of osteoid osteoma"}
    found = store.db.execute("select a.pmid from articles_fts join articles a on a.rowid = articles_fts.rowid "
                             "where articles_fts match 'version' order by a.pmid").fetchall()
    assert found == [("90000001",)]


def test_an_older_revision_does_not_overwrite_a_newer_one(store):
    store.save_records([make_article(title="Newer", revised="2025-01-15")])
    counts = store.save_records([make_article(title="Older", revised="2020-01-01")])
    assert counts.unchanged == 1
    assert store.db["articles"].get("90000001")["title"] == "Newer"


def test_a_deleted_citation_is_marked_not_lost(store):
    store.save_records([make_article(), make_article(pmid="90000002")])
    counts = store.save_records([Deletion(["90000001", "99999999"])])
    assert counts.deleted == 1
    assert store.db["articles"].get("90000001")["deleted"] == 1
    assert store.raw_record("90000001") is not None
    assert store.stats()["articles"] == 1


def test_stats_count_the_journals_authors_and_mesh_terms_of_live_articles_only(store):
    other = make_article(pmid="90000002")
    other.journal = Journal("Skeletal Radiology", nlm_unique_id="7701953")
    other.authors = [Author("Lindqvist", "Maja", "M")]
    other.mesh_headings = [MeshHeading("Sarcoma", "D012509", False)]
    store.save_records([make_article(), other])
    before = store.stats()
    assert (before["journals"], before["authors"], before["mesh_terms"]) == (2, 3, 2)
    revised = make_article(revised="2025-06-01")
    revised.authors = revised.authors[:1]  # the study group dropped
    store.save_records([revised])
    store.save_records([Deletion(["90000002"])])  # the only article of its journal, author and heading
    after = store.stats()
    assert (after["journals"], after["authors"], after["mesh_terms"]) == (1, 1, 1)


def test_stats_of_a_store_whose_creation_was_cut_short_say_nothing_is_stored(tmp_path):
    whole = Store(tmp_path / "whole.db").ensure_shape()
    first_two = whole.db.execute("select sql from sqlite_master where name in ('journals', 'articles')").fetchall()
    cut_short = Store(tmp_path / "cut.db")
    for (create,) in first_two:
        cut_short.db.execute(create)
    cut_short.refuse_foreign("cut.db")  # cryokb's, if unfinished
    empty = Store(tmp_path / "empty.db").ensure_shape().stats()
    assert cut_short.stats() == empty and empty["articles"] == 0


def test_importing_a_file_again_leaves_a_later_deletion_standing(store):
    baseline = [make_article(), make_article(pmid="90000002")]
    store.save_records(baseline)
    store.save_records([Deletion(["90000001"])])  # the update file that followed
    counts = store.save_records(baseline)  # the baseline imported again
    assert (counts.unchanged, counts.revised) == (2, 0)
    assert store.db["articles"].get("90000001")["deleted"] == 1


def test_a_new_version_of_a_deleted_citation_brings_it_back(store):
    store.save_records([make_article()])
    store.save_records([Deletion(["90000001"])])
    counts = store.save_records([make_article(title="Reinstated after correction", revised="2025-06-01")])
    assert counts.revised == 1 and store.db["articles"].get("90000001")["deleted"] == 0


# The ways a run's records can fall into batches (transactions): none may change what is stored.
BATCHINGS = {"one batch": lambda records: [records], "one by one": lambda records: [[r] for r in records],
             "split after two": lambda records: [records[:2], records[2:]]}


@pytest.mark.parametrize("batching", BATCHINGS)
def test_deletions_and_copies_apply_in_file_order_whatever_the_batches(store, batching):
    stored = make_article(pmid="90000002", title="Stored")
    store.save_records([make_article(), stored])
    records = [Deletion(["90000001"]), make_article(title="Reinstated", revised="2025-06-01"),
               make_article(pmid="90000002", title="Newer copy", revised="2025-05-01"),
               make_article(pmid="90000002", title="Older copy", revised="2025-04-01"),
               # an older copy after a deletion is passed over, and does not undo the deletion
               make_article(pmid="90000003", title="Withdrawn", revised="2025-06-01"), Deletion(["90000003"]),
               make_article(pmid="90000003", title="Stale copy", revised="2025-01-01")]
    for group in BATCHINGS[batching](records):
        store.save_records(group)
    assert [(row["pmid"], row["title"], row["deleted"]) for row in store.db["articles"].rows] == [
        ("90000001", "Reinstated", 0), ("90000002", "Newer copy", 0), ("90000003", "Withdrawn", 1)]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_the_very_record_stored_coming_after_its_deletion_in_one_run_brings_it_back(store, batching):
    """As in the file, whatever the batches: a run's batches share the PMIDs it withdrew."""
    store.save_records([make_article(), make_article(pmid="90000002")])
    store.save_records([Deletion(["90000002"])])  # an earlier run's withdrawal
    records = [Deletion(["90000001", "90000002"]), make_article(), make_article(pmid="90000002")]
    withdrawn = set()
    for group in BATCHINGS[batching](records):
        store.save_records(group, withdrawn=withdrawn)
    assert [row["deleted"] for row in store.db.query("select deleted from articles order by pmid")] == [0, 0]
    assert [r["rowid"] for r in store.db.query("select rowid from articles_fts where articles_fts match 'desmoid'")]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_after_a_deletion_a_copy_older_than_the_one_stored_leaves_it_deleted_whatever_the_batches(store, batching):
    """The stored record (from an earlier run) is newer than the copy that follows the
    deletion in the file: in one batch the copy undid the deletion, batch by batch it did
    not. And the MEDLINE text of the XML record stored brings it back with the XML kept."""
    store.save_records([make_article(title="Newer revision", revised="2027-01-01"),
                        make_article(pmid="90000002", title="The XML record")])
    records = [Deletion(["90000001", "90000002"]), make_article(title="Older revision", revised="2003-01-01"),
               make_article(pmid="90000002", title="The MEDLINE text", raw=b"PMID- 90000002", source_format="medline")]
    withdrawn = set()
    for group in BATCHINGS[batching](records):
        store.save_records(group, withdrawn=withdrawn)
    assert [(row["title"], row["deleted"]) for row in store.db.query("select * from articles order by pmid")] == [
        ("Newer revision", 1), ("The XML record", 0)]
    indexed = [r["rowid"] for r in store.db.query("select rowid from articles_fts where articles_fts match 'xml'")]
    assert indexed == [next(store.db.query("select rowid from articles where pmid = '90000002'"))["rowid"]]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_an_older_copy_does_not_withdraw_again_what_a_newer_one_brought_back(store, batching):
    store.save_records([make_article(title="Stored", revised="2001-01-01")])
    records = [Deletion(["90000001"]), make_article(title="Newer marigold", revised="2005-01-01"),
               make_article(title="Older", revised="2002-01-01")]
    withdrawn = set()
    for group in BATCHINGS[batching](records):
        store.save_records(group, withdrawn=withdrawn)
    row = store.db["articles"].get("90000001")
    assert (row["title"], row["deleted"]) == ("Newer marigold", 0)
    assert [r["rowid"] for r in store.db.query("select rowid from articles_fts where articles_fts match 'marigold'")]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_which_copy_of_a_pmid_is_kept_in_a_batch_follows_the_rule_against_the_store(store, batching):
    """Two copies in one batch were weighed by PMID version across formats, and the MEDLINE
    text of the XML record at the same revision replaced it there: not so batch by batch.
    MEDLINE text carries no version: it reads as version 1, below an XML version 2 whatever
    its date, and is weighed by date against version 1."""
    records = [make_article(title="XML", version=2, revised="2020-01-01"),
               make_article(title="MEDLINE text", raw=b"PMID- 90000001", source_format="medline",
                            revised="2020-01-01"),
               make_article(pmid="90000002", title="XML", revised="2020-01-01"),
               make_article(pmid="90000002", title="MEDLINE, revised since", raw=b"PMID- 90000002 later",
                            source_format="medline", revised="2022-01-01"),
               make_article(pmid="90000003", title="XML version 2", version=2, revised="2020-01-01"),
               make_article(pmid="90000003", title="MEDLINE, revised since", raw=b"PMID- 90000003 later",
                            source_format="medline", revised="2022-01-01")]
    for group in BATCHINGS[batching](records):
        store.save_records(group)
    assert [row["title"] for row in store.db.query("select title from articles order by pmid")] == [
        "XML", "MEDLINE, revised since", "XML version 2"]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_a_copy_not_said_to_be_revised_is_older_than_any_that_is(store, batching):
    """It once tied with both: batch by batch it let a copy revised in 2019 replace one
    revised in 2021, in one batch it did not."""
    store.save_records([make_article(title="Revised 2021", revised="2021-05-01")])
    records = [make_article(title="Not dated", revised=None), make_article(title="Revised 2019", revised="2019-05-01")]
    for group in BATCHINGS[batching](records):
        store.save_records(group)
    assert store.db["articles"].get("90000001")["title"] == "Revised 2021"


@pytest.mark.parametrize("batching", BATCHINGS)
def test_older_copies_after_a_deletion_leave_it_standing_whatever_the_batches(store, batching):
    records = [make_article(title="Revised 2021", revised="2021-05-01"), Deletion(["90000001"]),
               make_article(title="Not dated", revised=None), make_article(title="Revised 2019", revised="2019-05-01")]
    withdrawn = set()
    for group in BATCHINGS[batching](records):
        store.save_records(group, withdrawn=withdrawn)
    row = store.db["articles"].get("90000001")
    assert (row["title"], row["deleted"]) == ("Revised 2021", 1)


@pytest.mark.parametrize("batching", BATCHINGS)
def test_the_medline_text_of_a_record_after_its_deletion_brings_the_xml_back_whatever_the_batches(store, batching):
    records = [make_article(title="The XML record"), Deletion(["90000001"]),
               make_article(title="The MEDLINE text", raw=b"PMID- 90000001", source_format="medline")]
    withdrawn = set()
    for group in BATCHINGS[batching](records):
        store.save_records(group, withdrawn=withdrawn)
    row = store.db["articles"].get("90000001")
    assert (row["title"], row["source_format"], row["deleted"]) == ("The XML record", "xml", 0)


def test_copies_whose_versions_and_dates_disagree_settle_and_stay_settled_on_a_re_run(store):
    """Version 2 revised before version 1, and the MEDLINE text of version 1: ranked by
    version across formats as well, they no longer outrank one another in a circle, which
    flipped the stored copy (and its deletion) on every re-run."""
    files = [[make_article(title="Version one", revised="2021-05-01")],
             [make_article(title="Version one as MEDLINE", raw=b"PMID- 90000001", source_format="medline",
                           revised="2021-05-01")],
             [Deletion(["90000001"]), make_article(title="Version two", version=2, revised="2020-05-01")]]

    def run() -> list:
        withdrawn = set()
        return [store.save_records(records, withdrawn=withdrawn) for records in files]

    run()
    again = run()
    row = store.db["articles"].get("90000001")
    assert (row["title"], row["deleted"]) == ("Version two", 0)
    assert [(c.new, c.revised, c.deleted) for c in again[:2]] == [(0, 0, 0), (0, 0, 0)]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_a_journal_keeps_the_issn_one_of_its_records_gave_whatever_the_batches(store, batching):
    sparse = make_article(pmid="90000002")
    sparse.journal = Journal("Cardiovascular and Interventional Radiology", None, None, nlm_unique_id="8003538")
    records = [make_article(), sparse, make_article(pmid="90000003")]
    records[2].journal = sparse.journal
    for group in BATCHINGS[batching](records):
        store.save_records(group)
    journal = store.db["journals"].get("8003538")
    assert (journal["iso_abbreviation"], journal["issn"]) == ("Cardiovasc Intervent Radiol", "0174-1551")


@pytest.mark.parametrize("batching", BATCHINGS)
def test_an_authors_spelling_and_a_headings_ui_are_the_first_given_whatever_the_batches(store, batching):
    """One id for "DeSouza" and "Desouza" (the name in lower case): inside a batch the last
    spelling was kept, across batches the first."""
    records = [make_article(pmid=pmid) for pmid in ("90000001", "90000002", "90000003")]
    for record, last_name in zip(records, ("DeSouza", "Desouza", "DESOUZA")):
        record.authors = [Author(last_name, "Ann", "A")]
    records[0].mesh_headings = [MeshHeading("Fibromatosis, Aggressive", None, True, [])]
    records[2].mesh_headings = [MeshHeading("Fibromatosis, Aggressive", "D018222", True, [])]
    for group in BATCHINGS[batching](records):
        store.save_records(group)
    assert [row["last_name"] for row in store.db["authors"].rows] == ["DeSouza"]
    assert store.db["mesh_terms"].get("Fibromatosis, Aggressive")["ui"] == "D018222"


@pytest.mark.parametrize("batching", BATCHINGS)
def test_a_lower_pmid_version_never_replaces_a_higher_one(store, batching):
    records = [make_article(title="Version two", version=2), make_article(title="Version one", version=1)]
    for group in BATCHINGS[batching](records):
        store.save_records(group)
    assert (store.db["articles"].get("90000001")["title"], store.db["articles"].get("90000001")["version"]) == (
        "Version two", 2)


def test_the_medline_text_of_the_xml_record_stored_keeps_the_xml(store):
    """At the same version and revision, XML carries what MEDLINE drops; importing both
    exports of one search, in either order and again, settles on the XML."""
    xml = make_article(raw=b"<PubmedArticle>the record</PubmedArticle>")
    medline = make_article(raw=b"PMID- 90000001\nTI  - the record", source_format="medline")
    medline.publication_types = [PublicationType("Journal Article", None)]
    assert store.save_records([medline]).new == 1
    assert store.save_records([xml]).revised == 1
    for again in (medline, xml, medline):
        assert store.save_records([again]).unchanged == 1
    row = store.db["articles"].get("90000001")
    assert row["source_format"] == "xml"
    assert store.db["publication_types"].get(("90000001", "Journal Article"))["ui"] == "D016428"
    later = make_article(raw=b"PMID- 90000001\nTI  - corrected", source_format="medline", revised="2025-01-01")
    assert store.save_records([later]).revised == 1  # a later revision wins, whatever its format
    assert store.db["articles"].get("90000001")["source_format"] == "medline"
    store.save_records([make_article(raw=b"<PubmedArticle>version two</PubmedArticle>", version=2)])
    assert store.save_records([later]).unchanged == 1  # MEDLINE says no version: it reads as 1
    assert store.db["articles"].get("90000001")["version"] == 2


def test_a_record_that_leaves_out_its_journal_issn_does_not_erase_it(store):
    store.save_records([make_article()])
    sparse = make_article(pmid="90000002")
    sparse.journal = Journal("Cardiovascular and Interventional Radiology", None, None, nlm_unique_id="8003538")
    store.save_records([sparse])
    journal = store.db["journals"].get("8003538")
    assert (journal["iso_abbreviation"], journal["issn"]) == ("Cardiovasc Intervent Radiol", "0174-1551")


def test_a_retraction_link_flags_the_article(store):
    store.save_records([make_article(links=[Link("RetractionIn", "90000099", "J Fict 2025")])])
    assert store.db["articles"].get("90000001")["retracted"] == 1


def test_full_text_search_finds_title_and_abstract_words(store):
    store.save_records([make_article(), make_article(pmid="90000002", title="Renal cryoablation")])
    hits = [r["rowid"] for r in store.db.query(
        "select rowid from articles_fts where articles_fts match 'guidance'")]
    assert len(hits) == 2
    pmids = [r["pmid"] for r in store.db["articles"].search("renal")]
    assert pmids == ["90000002"]


def test_problems_are_recorded_with_where_they_happened(store):
    run = store.start_run(kind="import", source="bad.xml")
    store.save_records([ParseProblem("bad.xml", "record 3", "PMID is missing")], run_id=run)
    row = next(store.db["problems"].rows)
    assert (row["run_id"], row["location"], row["message"]) == (run, "record 3", "PMID is missing")


def test_a_failing_batch_leaves_the_database_as_it_was(store, monkeypatch):
    store.save_records([make_article()])
    before = list(store.db.iterdump())
    with pytest.raises(TypeError):
        store.save_records([make_article(pmid="90000002"), object()])
    assert list(store.db.iterdump()) == before

    import kb.store

    real_write_rows = kb.store._write_rows

    def fail_on_raw(conn, table, rows, **kwargs):
        if table == "raw_records":  # the last write of a batch: everything else is written
            raise sqlite3.OperationalError("disk I/O error")
        return real_write_rows(conn, table, rows, **kwargs)

    monkeypatch.setattr(kb.store, "_write_rows", fail_on_raw)
    revised = make_article(title="A revision that never lands", revised="2026-01-01")
    with pytest.raises(sqlite3.OperationalError):
        store.save_records([revised, make_article(pmid="90000002")])
    assert list(store.db.iterdump()) == before


def test_a_batch_waits_for_another_writer_rather_than_fail_as_locked(store, db_path, monkeypatch):
    """Another process commits while a batch is between its read (which PMIDs are stored)
    and its first write: the batch must wait its turn, not fail with "database is locked"."""
    import threading

    other = Store(db_path)
    looked_up = store._existing
    writers = []

    def existing_then_someone_writes(pmids):
        found = looked_up(pmids)
        writer = threading.Thread(target=other.save_records, args=([make_article("90000777")],))
        writer.start()
        writer.join(1.0)  # the other writer commits now, or waits for this batch's lock
        writers.append(writer)
        return found

    monkeypatch.setattr(store, "_existing", existing_then_someone_writes)
    counts = store.save_records([make_article("90000001")])
    writers[0].join()
    assert counts.new == 1
    assert {row["pmid"] for row in store.db.query("select pmid from articles")} == {"90000001", "90000777"}


def test_a_run_says_what_its_committed_batches_stored_before_it_records_its_end(store):
    """A run killed outright (SIGKILL) never records its end: its counts must already be there."""
    run = store.start_run(kind="import", source="update.xml")
    store.save_records([make_article(), make_article(pmid="90000002")], run_id=run)
    store.save_records([make_article(pmid="90000002", title="Corrected", revised="2025-01-01"),
                        Deletion(["90000001"]), ParseProblem("update.xml", "record 4", "PMID is missing")],
                       run_id=run)
    row = store.db["harvest_runs"].get(run)
    assert (row["fetched"], row["new"], row["revised"], row["unchanged"], row["deleted"], row["problems"]) == (
        3, 2, 1, 0, 1, 1)
    assert row["outcome"] == "running"


def test_runs_are_recorded_and_the_last_successful_one_found(store):
    first = store.start_run(kind="harvest", query="cryoablation", since=None, until="2024/01/01")
    store.finish_run(first, outcome="ok")
    second = store.start_run(kind="harvest", query="cryoablation", since="2024/01/01", until="2024/06/01")
    store.finish_run(second, outcome="failed", error="HTTP 500")
    assert store.last_successful_run("harvest")["id"] == first
    assert store.last_successful_run("import") is None


def test_a_run_whose_end_cannot_be_recorded_quietly_leaves_the_error_on_its_way_out(store, monkeypatch, caplog):
    run = store.start_run(kind="import", source="update.xml")

    def full_disk():
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "transaction", full_disk)
    with pytest.raises(sqlite3.OperationalError):
        store.finish_run(run, outcome="ok")
    store.finish_run(run, outcome="failed", error="the import's own error",
                     cause=RuntimeError("the import's own error"))
    assert f"could not record the end of run {run}" in caplog.text


def test_a_run_failing_on_a_lock_another_process_holds_records_its_end_without_waiting_it_out(
        store, db_path, monkeypatch, caplog):
    """Its end waited BUSY_TIMEOUT for the same lock, then printed a traceback under -q."""
    import kb.store

    run = store.start_run(kind="import", source="update.xml")
    monkeypatch.setattr(kb.store, "QUIET_WAIT", 0.05)
    other = sqlite3.connect(db_path)
    other.execute("begin immediate")
    try:
        started = time.monotonic()
        store.finish_run(run, outcome="failed", error="database is locked",
                         cause=sqlite3.OperationalError("database is locked"))
        waited = time.monotonic() - started
    finally:
        other.rollback()
        other.close()
    assert waited < BUSY_TIMEOUT / 2
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert f"could not record the end of run {run}: database is locked" in warning.getMessage()
    assert warning.exc_info is None
    assert store.db.execute("pragma busy_timeout").fetchone()[0] == BUSY_TIMEOUT * 1000
    store.finish_run(run, outcome="failed", error="database is locked", cause=sqlite3.OperationalError("locked"))
    assert store.db["harvest_runs"].get(run)["outcome"] == "failed"


def test_a_run_failing_for_another_reason_waits_out_a_passing_lock_to_record_its_end(store, db_path, monkeypatch):
    """Only a failure that was itself the lock shortens the wait: a harvest that failed on
    "HTTP 500" while a build held the lock for a moment was left "running"."""
    import kb.store

    run = store.start_run(kind="harvest", query="cryoablation")
    monkeypatch.setattr(kb.store, "QUIET_WAIT", 0.05)
    other = sqlite3.connect(db_path, check_same_thread=False)
    other.execute("begin immediate")
    releases = threading.Timer(0.5, other.rollback)
    releases.start()
    try:
        store.finish_run(run, outcome="failed", error="HTTP 500", cause=RuntimeError("HTTP 500"))
    finally:
        releases.join()
        other.close()
    assert (store.db["harvest_runs"].get(run)["outcome"], store.db["harvest_runs"].get(run)["error"]) == (
        "failed", "HTTP 500")


def test_a_bulk_load_locked_out_by_another_process_leaves_the_index_build_to_the_next_command(store, monkeypatch):
    """The build waited out the same lock a second time before the import could say why it failed."""
    from kb.store import SECONDARY_INDEXES

    built = []
    monkeypatch.setattr(Store, "_ensure_indexes", lambda self: built.append(True))
    with pytest.raises(sqlite3.OperationalError):
        with store.bulk_load(expected_records=5000):
            raise sqlite3.OperationalError("database is locked")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during SQLite's wait comes with the lock error
        with store.bulk_load(expected_records=5000):
            try:
                raise sqlite3.OperationalError("database is locked")
            except sqlite3.OperationalError:
                raise KeyboardInterrupt
    assert built == []
    assert store.db.execute("pragma wal_autocheckpoint").fetchone()[0] == 1000
    monkeypatch.undo()
    assert store.missing_indexes()
    store.ensure_shape()
    assert not store.missing_indexes()
    assert len(store.db.execute("select name from sqlite_master where name like 'idx_%'").fetchall()) == sum(
        map(len, SECONDARY_INDEXES.values()))


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database " * 100)
    with pytest.raises(StoreError, match="not a SQLite database|cannot open"):
        Store(bogus).ensure_shape()
    assert bogus.read_text().startswith("these are my notes")


def test_raw_records_are_compressed(store):
    raw = b"<PubmedArticle>" + b"cryoablation " * 500 + b"</PubmedArticle>"
    store.save_records([make_article(raw=raw)])
    blob = store.db.execute("select compressed from raw_records").fetchone()[0]
    assert len(blob) < len(raw) / 5
    assert zlib.decompress(blob) == raw


def test_raw_records_are_compressed_without_isal_too(monkeypatch):
    """The standard zlib's level 0 stores the bytes as they are: where no isal wheel
    installs, the raw records must still be compressed."""
    import kb.store

    monkeypatch.setitem(sys.modules, "isal.isal_zlib", None)  # what an import then finds: nothing
    compress, level = kb.store._raw_compression()
    assert compress is zlib.compress
    raw = b"<PubmedArticle>" + b"cryoablation " * 500 + b"</PubmedArticle>"
    assert len(compress(raw, level)) < len(raw) / 5 and zlib.decompress(compress(raw, level)) == raw


def test_a_record_is_compressed_and_hashed_where_it_is_read_and_left_out_where_it_is_stored_as_read():
    """sealed runs in an import's reader process: the writer stores what it is given."""
    import hashlib

    from kb.store import FLAT_FIELDS, flatten_article, sealed

    raw = b"<PubmedArticle>" + b"cryoablation " * 500 + b"</PubmedArticle>"
    flat = flatten_article(make_article(raw=raw))
    kept = sealed(flat)
    digest = hashlib.sha1(raw).hexdigest()
    assert kept[:-2] == flat[:-2] and zlib.decompress(kept[-2]) == raw and kept[-1] == digest
    assert FLAT_FIELDS[-2:] == ("raw", "digest")
    assert sealed(flat, stored_sha1=digest)[-2:] == (None, digest)  # kb.reparse: the stored record stays
    assert zlib.decompress(sealed(flat, stored_sha1="0" * 40)[-2]) == raw


def test_the_search_index_follows_revisions_deletions_and_revivals(store):
    def search(word):
        return sorted(r["pmid"] for r in store.db["articles"].search(word))

    store.save_records([make_article(), make_article(pmid="90000002", title="Renal cryoablation")])
    assert search("renal") == ["90000002"]
    store.save_records([make_article(pmid="90000002", title="Hepatic cryoablation", revised="2025-02-01")])
    assert search("renal") == [] and search("hepatic") == ["90000002"]
    store.save_records([Deletion(["90000002"])])
    assert search("hepatic") == []
    store.save_records([make_article(pmid="90000002", title="Hepatic cryoablation revived", revised="2025-03-01")])
    assert search("revived") == ["90000002"]
    assert store.db.execute("insert into articles_fts(articles_fts) values('integrity-check')") is not None


@pytest.mark.parametrize("items", [
    ["eng", "fre"],
    ['Department of Radiology, "Hôpital Saint-Éloi", Montpellier'],
    ["Ørsted Institute\\Copenhagen", "line\nbreak", "tab\there", "bell\x07"],
    ["Müller–Łukasiewicz ☃", ""],
])
def test_json_columns_are_exactly_what_the_json_module_writes(items):
    import json

    from kb.store import _json

    assert _json(items) == json.dumps(items, ensure_ascii=False)
    assert json.loads(_json(items)) == items


def test_lists_of_plain_strings_are_joined_without_the_encoder(monkeypatch):
    import kb.store

    def refuse(value):
        raise AssertionError(f"the encoder was asked for {value!r}")

    monkeypatch.setattr(kb.store, "_encode", refuse)
    assert kb.store._json(["Aged", "Bone Neoplasms", "Cryosurgery"]) == '["Aged", "Bone Neoplasms", "Cryosurgery"]'


@pytest.mark.parametrize("sections", [
    [("Desmoid tumours recur after surgery.", "BACKGROUND", "BACKGROUND"), ("Twelve patients were treated.", None, None)],
    [('The "ice ball" covered the lesion.', "RESULTS", "RESULTS")],
    [("Pain fell\tfrom 7 to 2.", "RESULTS", None), ("Müller ≥ 5 mm", 'A "label"', "X")],
    [("Back\\slash", "CONCLUSIONS", "CONCLUSIONS")],
])
def test_section_json_is_exactly_what_the_json_module_writes(sections):
    import json

    from kb.store import _sections_json

    expected = [{"label": label, "nlm_category": category, "text": text} for text, label, category in sections]
    assert _sections_json(sections) == json.dumps(expected, ensure_ascii=False)


def test_authors_of_one_name_share_one_id_across_articles(store):
    first = make_article(pmid="90000011")
    second = make_article(pmid="90000012", title="Cryoablation of extra-abdominal desmoids")
    second.authors = [Author("Okafor", "Adaeze", "A", affiliations=["Another hospital, Abuja"]),
                      Author("Okafor", "Chidi", "C")]
    store.save_records([first, second])
    rows = list(store.db.query("select pmid, position, author_id, affiliations from article_authors "
                               "order by pmid, position"))
    assert rows[0]["author_id"] == rows[2]["author_id"] != rows[3]["author_id"]
    assert rows[2]["affiliations"] == '["Another hospital, Abuja"]'
    assert store.db["authors"].count == 3


def test_qualifier_json_matches_the_encoder_for_plain_and_awkward_names():
    import json

    from kb.store import _qualifiers_json

    qualifiers = [("therapy", "Q000628", True), ("adverse effects", None, False)]
    expected = json.dumps([{"name": n, "ui": u, "major": m} for n, u, m in qualifiers], ensure_ascii=False)
    assert _qualifiers_json(qualifiers) == expected
    awkward = [('say "cryo"', "Q1", False), ("back\\slash", "Q2", True)]
    assert json.loads(_qualifiers_json(awkward)) == [
        {"name": 'say "cryo"', "ui": "Q1", "major": False}, {"name": "back\\slash", "ui": "Q2", "major": True}]


def test_rows_hold_what_the_article_says(store):
    retracted = make_article()
    retracted.publication_types.append(PublicationType("Retracted Publication", "D016441"))
    store.save_records([retracted])
    row = store.db["articles"].get("90000001")
    assert row["abstract"] == "Desmoid tumours recur after surgery.\nTwelve patients were treated under CT guidance."
    assert row["authors"] == '["Okafor A", "Cryo Study Group"]'
    assert row["keywords"] == '["cryoablation", "desmoid"]' and row["retracted"] == 1
    assert row["journal_id"] == "8003538" and row["first_seen"] == row["last_updated"]
    links = list(store.db.query("select position, author_id, affiliations from article_authors order by position"))
    assert [r["position"] for r in links] == [1, 2]
    assert links[0]["affiliations"] == '["Department of Radiology, Lagos"]' and links[1]["affiliations"] == "[]"
    assert {r["id"] for r in store.db["authors"].rows} == {r["author_id"] for r in links}
    mesh = store.db["article_mesh"].get(("90000001", "Fibromatosis, Aggressive"))
    assert mesh["major"] == 1 and '"major": true' in mesh["qualifiers"]


def test_a_revision_keeps_when_the_article_was_first_seen(store):
    store.save_records([make_article()])
    store.db.execute("update articles set first_seen = '2020-01-01T00:00:00+00:00'")
    store.db.conn.commit()
    store.save_records([make_article(title="Percutaneous cryoablation of desmoid tumours: update",
                                     revised="2025-06-01")])
    row = store.db["articles"].get("90000001")
    assert row["first_seen"] == "2020-01-01T00:00:00+00:00" and row["last_updated"] > row["first_seen"]


def test_a_flattened_article_survives_marshal_as_the_reader_process_sends_it():
    import marshal

    from kb.store import FLAT_FIELDS, flatten_article, prepare_article, prepare_flat, sealed

    article = make_article(links=[Link("RetractionIn", "90000099", "Cryobiology. 2024;1:1")])
    flat = sealed(flatten_article(article))
    assert len(flat) == len(FLAT_FIELDS)
    sent = marshal.loads(marshal.dumps(flat))
    assert sent == flat
    prepared = prepare_flat(sent)
    assert prepared == prepare_article(article)
    assert prepared.row[list(ARTICLE_COLUMNS).index("retracted")] == 1
    assert prepared.children[-1] == [("90000001", 1, "RetractionIn", "90000099", "Cryobiology. 2024;1:1")]


def test_an_article_without_raw_bytes_is_hashed_from_its_fields(store):
    from kb.store import record_hash

    article = make_article()
    article.raw = None
    store.save_records([article])
    assert store.db["articles"].get("90000001")["record_hash"] == record_hash(article)
    assert store.save_records([article]).unchanged == 1


def _integrity(store):
    """SQLite's own checks: every declared reference resolves, the search index is sound, and it
    holds exactly the live articles' text (withdrawn ones are left out of it on purpose)."""
    dangling = store.db.execute("pragma foreign_key_check").fetchall()
    store.db.execute("insert into articles_fts(articles_fts) values('integrity-check')")
    live = store.db.execute("select rowid, title, abstract from articles where deleted = 0 order by rowid").fetchall()
    for rowid, title, abstract in live:
        word = title.split()[-1]
        assert rowid in [r for (r,) in store.db.execute(
            "select rowid from articles_fts where articles_fts match ?", [f'title:"{word}"'])], title
    return dangling


def test_references_hold_without_enforcement_through_revisions_and_deletions(store):
    assert store.db.execute("pragma foreign_keys").fetchone()[0] == 0
    store.save_records([make_article(), make_article(pmid="90000002", title="Renal cryoablation")])
    store.save_records([make_article(pmid="90000002", title="Hepatic cryoablation", revised="2025-02-01",
                                     links=[Link("CommentIn", "90000001", "J Fict 2025")]),
                        make_article(pmid="90000003", title="Spinal cryoablation")])
    store.save_records([Deletion(["90000001"])])
    assert _integrity(store) == []
    assert store.db["article_mesh"].count == 3 and store.db["mesh_terms"].count == 1


def test_a_new_store_keeps_an_articles_rows_in_tables_without_rowid(store):
    for table in ("article_authors", "article_mesh", "publication_types", "keywords", "article_links"):
        assert store.db[table].schema.rstrip().endswith("WITHOUT ROWID"), table
    store.save_records([make_article()])
    assert [r["keyword"] for r in store.db["keywords"].rows_where(order_by="keyword")] == ["cryoablation", "desmoid"]


def test_a_store_made_with_rowid_tables_reads_and_writes_as_before(db_path):
    store = Store(db_path).ensure_shape()
    store.db["keywords"].drop()  # as the store was made before the link tables lost their rowids
    store.db["keywords"].create({"pmid": str, "keyword": str}, pk=("pmid", "keyword"),
                                foreign_keys=[("pmid", "articles", "pmid")])
    store.db.conn.close()
    store = Store(db_path).ensure_shape()
    assert "WITHOUT ROWID" not in store.db["keywords"].schema
    store.save_records([make_article()])
    revised = make_article(revised="2025-01-01")
    revised.keywords = ["cryotherapy"]
    store.save_records([revised])
    assert [r["keyword"] for r in store.db["keywords"].rows] == ["cryotherapy"]
    assert _integrity(store) == []


def test_each_new_article_is_found_by_the_search_index_under_its_own_row(store):
    """New articles are indexed from the rows in hand, under the rowids they were given."""
    store.save_records([make_article(pmid=str(90000001 + i), title=f"Cryoablation case {word}")
                        for i, word in enumerate(["alpha", "bravo", "charlie"])])
    store.db.execute("update articles set deleted = 1 where pmid = '90000002'")  # a gap in the live rows
    store.save_records([make_article(pmid="90000010", title="Cryoablation case delta"),
                        make_article(pmid="90000001", title="Cryoablation case echo", revised="2025-05-01")])
    for word, pmid in [("alpha", None), ("charlie", "90000003"), ("delta", "90000010"), ("echo", "90000001")]:
        found = [r["pmid"] for r in store.db["articles"].search(word)]
        assert found == ([pmid] if pmid else []), word
    _integrity(store)


def test_only_a_bulk_load_whose_process_lives_is_taken_for_one_in_progress(store):
    """stats names that run as rebuilding the indexes; a harvest or a small import never
    drops them, and an import killed outright still reads "running" until the next run
    closes it."""
    import subprocess
    import sys

    assert store.bulk_loading_run() is None
    store.start_run(kind="harvest", query="cryoablation[tiab]")
    assert store.bulk_loading_run() is None
    small = store.start_run(kind="import", source="few.xml")
    with store.bulk_load(expected_records=100, run_id=small) as deferred:
        assert not deferred and store.bulk_loading_run() is None
    killed = store.start_run(kind="import", source="pubmed21n1298.xml.gz")
    store.db["harvest_runs"].update(killed, {"details": json.dumps({
        **json.loads(store.db["harvest_runs"].get(killed)["details"]), "bulk_load": True})})
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    details = json.loads(store.db["harvest_runs"].get(killed)["details"])
    store.db["harvest_runs"].update(killed, {"details": json.dumps({**details, "pid": ended.pid})})
    assert store.bulk_loading_run() is None
    loading = store.start_run(kind="import", source="pubmed21n1299.xml.gz")
    assert store.bulk_loading_run() is None
    with store.bulk_load(expected_records=5000, run_id=loading) as deferred:
        assert deferred and store.bulk_loading_run()["id"] == loading


def test_a_bulk_load_builds_the_indexes_after_the_rows_however_it_ends(store):
    from kb.store import SECONDARY_INDEXES

    def indexes():
        return {name for (name,) in store.db.execute(
            "select name from sqlite_master where type = 'index' and name like 'idx_%'")}

    every = indexes()
    assert len(every) == sum(map(len, SECONDARY_INDEXES.values()))
    def checkpoint_every():
        return store.db.execute("pragma wal_autocheckpoint").fetchone()[0]

    def cache():
        return store.db.execute("pragma cache_size").fetchone()[0]

    usual, usual_cache = checkpoint_every(), cache()
    with store.bulk_load(expected_records=5000) as deferred:
        assert deferred and indexes() == {"idx_harvest_runs_kind_outcome"}
        assert checkpoint_every() > usual
        store.save_records([make_article()])
    # the indexes are built with a small page cache, and the store's comes back after
    assert indexes() == every and checkpoint_every() == usual and cache() == usual_cache
    with pytest.raises(RuntimeError):
        with store.bulk_load(expected_records=5000):
            raise RuntimeError("the import failed half-way")
    assert indexes() == every
    assert store.db.execute("select pmid from articles where pub_year = 2023").fetchall() == [("90000001",)]


def test_a_small_import_or_a_large_store_keeps_the_indexes(store, monkeypatch):
    import kb.store

    with store.bulk_load(expected_records=100) as deferred:
        assert not deferred
    monkeypatch.setattr(kb.store, "BULK_LOAD_MIN", 1)
    store.save_records([make_article(pmid=str(90000001 + i)) for i in range(5)])
    with store.bulk_load(expected_records=2) as deferred:  # 5 stored > 2 x 2 expected
        assert not deferred
    with store.bulk_load(expected_records=3) as deferred:
        assert deferred


def test_indexes_lost_with_a_killed_bulk_load_come_back_with_the_next_command(db_path):
    store = Store(db_path).ensure_shape()
    store.db.execute("drop index idx_articles_pub_year")  # as a kill between drop and rebuild leaves it
    store.db.conn.close()
    assert "idx_articles_pub_year" in {i.name for i in Store(db_path).ensure_shape().db["articles"].indexes}


def test_two_commands_creating_one_new_database_at_once_both_get_it_whole(tmp_path, monkeypatch):
    """The loser of the race between "is there a full-text index?" and "create it" found
    the other's index there: "table articles_fts already exists", a traceback."""
    import sqlite_utils

    path = tmp_path / "new.db"
    first, second = Store(path), Store(path)
    listed = sqlite_utils.Database.table_names

    def the_other_one_first(db, *args, **kwargs):
        names = listed(db, *args, **kwargs)
        if db is second.db and "articles_fts" not in names and "cryokb_meta" in names and not first_done:
            first_done.append(first.ensure_shape())  # between our look and our CREATE
        return names

    first_done = []
    monkeypatch.setattr(sqlite_utils.Database, "table_names", the_other_one_first)
    second.ensure_shape()
    assert first_done and {"articles", "articles_fts", "raw_records"} <= set(listed(second.db))


def test_many_commands_creating_one_new_database_at_once_all_succeed(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(3):
        path = tmp_path / f"new-{round_}.db"
        with context.Pool(4) as pool:
            shaped = pool.map(_shape, [str(path)] * 4)
        assert shaped == ["ok"] * 4
        assert Store(path).ensure_shape().db["articles"].count == 0


def test_many_commands_opening_a_store_older_than_a_column_at_once_all_succeed(tmp_path):
    """The first day after an upgrade, a scheduled refresh and a person's import: the loser
    of the race to add journals.medline_ta failed with "duplicate column name"."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(4):
        path = tmp_path / f"old-{round_}.db"
        Store(path).ensure_shape().db.execute("alter table journals drop column medline_ta")
        with context.Pool(6) as pool:
            shaped = pool.map(_shape, [str(path)] * 6)
        assert shaped == ["ok"] * 6
        assert "medline_ta" in Store(path).db["journals"].columns_dict


def _shape(path: str) -> str:
    try:
        Store(path).ensure_shape()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - the test reports it
        return f"{type(exc).__name__}: {exc}"


def test_a_table_in_the_way_of_cryokbs_own_is_an_error_at_once_not_a_race_waited_out(tmp_path):
    path = tmp_path / "kb.db"
    Store(path).ensure_shape().db.execute("drop table articles_fts")
    with sqlite3.connect(path) as conn:
        conn.execute("create table articles_fts_data (x)")  # the name of one of FTS5's own tables
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot give the database cryokb's tables: .*already exists"):
        Store(path).ensure_shape()
    assert time.monotonic() - started < BUSY_TIMEOUT / 3  # it waited the whole BUSY_TIMEOUT out


def test_a_full_text_index_made_anew_holds_only_the_live_articles(store):
    store.save_records([make_article(title="Live marigold"), make_article(pmid="90000002", title="Withdrawn marigold")])
    store.save_records([Deletion(["90000002"])])
    store.db.execute("drop table articles_fts")
    store.ensure_shape()
    store.db.execute("insert into articles_fts(articles_fts) values('integrity-check')")
    found = [r["title"] for r in store.db.query(
        "select articles.title from articles_fts join articles on articles.rowid = articles_fts.rowid "
        "where articles_fts match 'marigold'")]
    assert found == ["Live marigold"]


def _articles_in_the_file(db_path) -> int:
    """What a reader of the database file alone (no write-ahead log) finds; -1 where it read
    the file while a checkpoint was writing it ("malformed")."""
    from kb.store import immutable_uri

    conn = sqlite3.connect(immutable_uri(db_path), uri=True)
    try:
        return conn.execute("select count(*) from articles").fetchone()[0]
    except sqlite3.DatabaseError:
        return -1
    finally:
        conn.close()


def test_the_log_is_copied_into_the_database_beside_the_block_that_runs_meanwhile(store, db_path):
    """A bulk load builds its indexes while another connection checkpoints (copies the
    write-ahead log into the database file): the copy is done when the block is."""
    from kb.store import _checkpointing

    store.db.execute("pragma wal_checkpoint(TRUNCATE)")
    store.db.execute("pragma wal_autocheckpoint = 0")
    store.save_records([make_article(pmid=str(90000001 + n)) for n in range(5)])
    assert _articles_in_the_file(db_path) == 0
    with _checkpointing(store.db):
        store.db.execute("select count(*) from articles").fetchone()
    assert _articles_in_the_file(db_path) == 5
    assert not [t for t in threading.enumerate() if t.name == "cryokb-checkpoint"]


def test_during_a_bulk_load_the_log_is_copied_into_the_database_as_it_grows(store, db_path, monkeypatch):
    """The copy goes on beside the writes, rather than waiting for the end of the load
    (or for the writer to copy it itself, every BULK_CHECKPOINT pages)."""
    import kb.store

    monkeypatch.setattr(kb.store, "BULK_CHECKPOINT_EVERY", 0.01)
    store.db.execute("pragma wal_checkpoint(TRUNCATE)")
    with store.bulk_load(expected_records=5000):
        store.save_records([make_article(pmid=str(90000001 + n)) for n in range(5)])
        deadline = time.monotonic() + 30
        while _articles_in_the_file(db_path) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        copied_during_the_load = _articles_in_the_file(db_path)
        assert [t for t in threading.enumerate() if t.name == "cryokb-checkpoint"]
    assert copied_during_the_load == 5
    assert not [t for t in threading.enumerate() if t.name == "cryokb-checkpoint"]


def test_without_a_write_ahead_log_nothing_waits_to_copy_one(store, monkeypatch):
    """Where a file system refused write-ahead logging, a checkpointing connection would
    wait out the busy timeout behind the index build's lock, and the build behind it."""
    from kb import store as store_module
    from kb.store import _checkpointing

    started, thread = [], threading.Thread
    monkeypatch.setattr(store_module.threading, "Thread",
                        lambda *args, **kwargs: started.append(kwargs) or thread(*args, **kwargs))
    store.db.disable_wal()
    with store.transaction(), _checkpointing(store.db):
        store.save_records([make_article()])
    assert started == []
    store.db.enable_wal()
    with _checkpointing(store.db):
        pass
    assert [kwargs["name"] for kwargs in started] == ["cryokb-checkpoint"]
