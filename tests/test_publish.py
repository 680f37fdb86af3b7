"""Publishing through Datasette: metadata, links, pictures, banner and escaping.

Every page is fetched with Datasette's own test client (httpx over ASGI) from an app
built exactly as ``cryokb serve`` builds it (kb.publish.make_datasette). The knowledge
base is written by hand from evidence records as the schema defines them (as
tests/test_evidence.py does), so these tests need neither the extractor nor the network.

The abstracts below are invented for these tests; they describe no real study.
"""

from __future__ import annotations

import asyncio
import re
import os
import sqlite3
from pathlib import Path

import pytest

from ingest.model import AbstractSection, Article, Journal, PublicationType
from kb import evidence, graph
from kb.store import Store

from evidence_records import mention, sentence_spans

# --- a small synthetic knowledge base --------------------------------------------------------

EVIL_TITLE = "Cryoablation <script>alert(1)</script> of spinal osteoid osteoma"

# (pmid, year, title, abstract, facts). Every phrase in facts occurs in the text.
ARTICLES = [
    ("91000001", 2016, "CT-guided cryoablation of extra-abdominal desmoid tumours: a single-centre series",
     "Fourteen patients with extra-abdominal desmoid tumours underwent CT-guided percutaneous cryoablation. "
     "Local control was achieved in 12 of 14 patients (86%) at 2 years. "
     "There were no major complications.",
     {"lesion": ("desmoid_tumor", "desmoid tumours"), "indication": ("local_tumor_control", "Local control"),
      "guidance": ("ct", "CT-guided"), "design": "retrospective", "n": 14,
      "outcomes": [({"measure": "local_control", "count": 12, "total": 14, "percent": 86, "timepoint": "2 years"},
                    "Local control was achieved in 12 of 14 patients (86%)"),
                   ({"measure": "complications", "grade": "major", "count": 0}, "no major complications", True)]}),
    ("91000002", 2019, "Percutaneous cryoablation for painful bone metastases of the pelvis",
     "Thirty-one patients with painful bone metastases were treated for pain palliation. "
     "Mean VAS pain fell from 7.2 to 2.1 at 4 weeks. "
     "Minor complications occurred in 3 of 31 patients (10%).",
     {"lesion": ("bone_metastasis", "bone metastases"), "indication": ("pain_palliation", "pain palliation"),
      "guidance": None, "design": "prospective", "n": 31,
      "outcomes": [({"measure": "pain_score", "scale": "vas", "before": 7.2, "after": 2.1, "timepoint": "4 weeks"},
                    "Mean VAS pain fell from 7.2 to 2.1"),
                   ({"measure": "complications", "grade": "minor", "count": 3, "total": 31, "percent": 10},
                    "Minor complications occurred in 3 of 31 patients (10%)")]}),
    ("91000003", 2021, "Cryoablation of recurrent desmoid-type fibromatosis after failed systemic therapy",
     "Nine patients with recurrent desmoid tumours after failed systemic therapy received salvage cryoablation. "
     "Local control was achieved in 7 of 9 patients (78%).",
     {"lesion": ("desmoid_tumor", "desmoid tumours"), "indication": ("salvage", "salvage cryoablation"),
      "guidance": None, "design": "retrospective", "n": 9,
      "outcomes": [({"measure": "local_control", "count": 7, "total": 9, "percent": 78},
                    "Local control was achieved in 7 of 9 patients (78%)")]}),
    ("91000004", 2021, EVIL_TITLE,
     "Twenty children with osteoid osteoma were treated with curative intent. "
     "Clinical success was achieved in 19 of 20 patients (95%).",
     {"lesion": ("osteoid_osteoma", "osteoid osteoma"), "indication": ("curative", "curative intent"),
      "guidance": None, "design": "retrospective", "n": 20,
      "outcomes": [({"measure": "clinical_success", "count": 19, "total": 20, "percent": 95},
                    "Clinical success was achieved in 19 of 20 patients (95%)")]}),
    ("91000005", 2023, "Cryoablation of oligometastatic bone disease for local tumour control",
     "Twenty-two patients with bone metastases were ablated for local control. "
     "Local control was achieved in 20 of 22 patients (91%) at 1 year. "
     "A major adverse event occurred in one patient (5%).",
     {"lesion": ("bone_metastasis", "bone metastases"), "indication": ("local_tumor_control", "local control"),
      "guidance": None, "design": "prospective", "n": 22,
      "outcomes": [({"measure": "local_control", "count": 20, "total": 22, "percent": 91, "timepoint": "1 year"},
                    "Local control was achieved in 20 of 22 patients (91%)"),
                   ({"measure": "complications", "grade": "major", "count": 1, "percent": 5},
                    "A major adverse event occurred in one patient (5%)")]}),
    ("91000006", 2024, "Cryoablation of desmoid tumours: early results without an outcome",
     "Six patients with desmoid tumours were treated under MRI guidance. "
     "Follow-up is ongoing.",
     {"lesion": ("desmoid_tumor", "desmoid tumours"), "indication": None,
      "guidance": ("mri", "MRI guidance"), "design": "case_report", "n": 6, "outcomes": []}),
]


def _item(a, facts):
    text = a.text
    spans = sentence_spans(text)
    lesion, phrase = facts["lesion"]
    mentions = [mention(text, spans, "lesion_types", lesion, phrase)]
    record = {"pmid": a.pmid, "relevant": True, "approach": ["percutaneous"], "lesion_types": [lesion],
              "anatomic_sites": [], "indications": [], "guidance": [], "treatments": [],
              "study_design": facts["design"], "n_patients": facts["n"], "n_lesions": None, "outcomes": []}
    for name in ("indication", "guidance"):
        if facts[name]:
            key, phrase = facts[name]
            field = "indications" if name == "indication" else "guidance"
            record[field] = [key]
            mentions.append(mention(text, spans, field, key, phrase))
    for outcome, phrase, *negated in facts["outcomes"]:
        record["outcomes"].append(outcome)
        mentions.append(mention(text, spans, "outcomes", outcome["measure"], phrase, bool(negated)))
    record["mentions"] = mentions
    return record, text, spans


def make_kb(path: Path, *, synthetic: bool = True) -> Path:
    """Write the six articles above, their evidence, views, graph and one harvest run."""
    store = Store(path).ensure_shape()
    run = store.start_run(kind="harvest", query="cryoablation AND (bone OR soft tissue)", query_version="1")
    articles = []
    for pmid, year, title, abstract, _ in ARTICLES:
        articles.append(Article(
            pmid=pmid, title=title, abstract_sections=[AbstractSection(abstract)], pub_year=year,
            journal=Journal(title="Journal of Invented Interventional Radiology", nlm_unique_id="9999001"),
            publication_types=[PublicationType("Journal Article")], doi=f"10.9999/jiir.{pmid}",
            raw=f"<synthetic>{pmid}</synthetic>".encode()))
    counts = store.save_records(articles)
    store.finish_run(run, outcome="ok", counts=counts, fetched=len(articles))
    evidence.ensure_evidence_shape(store)
    evidence.load_concepts(store)
    items = [_item(a, facts) for a, (*_, facts) in zip(articles, ARTICLES)]
    evidence.write_evidence(store, items, "test-1", {a.pmid: None for a in articles})
    evidence.apply_views(store)
    graph.rebuild(store)
    if synthetic:
        store.set_meta("synthetic", "true")
    store.db.close()
    return path


# --- fixtures ---------------------------------------------------------------------------------

EVIL_LABEL = "Desmoid <script>alert(2)</script> tumour"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The demo knowledge base (flagged synthetic), with a hostile label on one concept too."""
    path = make_kb(tmp_path_factory.mktemp("demo") / "cryokb-demo.db")
    with sqlite3.connect(path) as conn:
        conn.execute("update concepts set label = ? where key = 'desmoid_tumor'", [EVIL_LABEL])
        conn.execute("update graph_nodes set label = ? where id = 'desmoid_tumor'", [EVIL_LABEL])
    from kb.evidence import apply_views
    from kb.store import Store

    apply_views(Store(path))  # the stored summaries carry labels too, as after a build
    return path


@pytest.fixture(scope="module")
def plain_db(tmp_path_factory):
    """The same articles in a database that is not the demo (no synthetic flag)."""
    return make_kb(tmp_path_factory.mktemp("plain") / "cryokb.db", synthetic=False)


@pytest.fixture(scope="module")
def demo(demo_db):
    from kb.publish import make_datasette

    return make_datasette(demo_db)


@pytest.fixture(scope="module")
def plain(plain_db):
    from kb.publish import make_datasette

    return make_datasette(plain_db)


def fetch(ds, path, status=200):
    """GET through Datasette's own ASGI client; check the status."""
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == status, f"{path}: {response.status_code}\n{response.text[:800]}"
    return response


def test_a_served_file_written_in_place_gets_a_page_that_says_so_and_a_replaced_one_is_served_on(tmp_path):
    """An import into the file a server reads immutable made every page "database disk
    image is malformed", the file being sound; a refresh puts a new file in its place."""
    from kb.publish import make_datasette

    db = make_kb(tmp_path / "cryokb.db", synthetic=False)
    ds = make_datasette(db)
    before = fetch(ds, "/cryokb/articles.json?_shape=array&_size=max").json()
    (tmp_path / "next").mkdir()
    replacement = make_kb(tmp_path / "next" / "cryokb.db", synthetic=False)
    os.replace(replacement, db)  # as refresh publishes: the opened file stays whole
    assert fetch(ds, "/cryokb/articles.json?_shape=array&_size=max").json() == before
    served = make_datasette(db)
    fetch(served, "/")
    with sqlite3.connect(db) as conn:  # as an import into the served file does
        conn.execute("update articles set title = title || ' (revised)'")
    conn.close()
    for path in ("/", "/cryokb/articles", "/cryokb.json?sql=select+1"):
        page = fetch(served, path, status=503)
        assert f"{db} has been written since this server opened it" in page.text
        assert "restart cryokb serve" in page.text and "not damaged" in page.text


def rows(ds, path):
    """The rows of a table, view or canned query page, through its JSON twin."""
    page, _, query = path.partition("?")
    return fetch(ds, f"{page}.json?{query}&_shape=objects&_size=max").json()["rows"]


HTML_PAGES = [
    "/", "/cryokb", "/cryokb/articles", "/cryokb/articles/91000001", "/cryokb/evidence_by_lesion",
    "/cryokb/outcomes", "/cryokb/evidence_for_lesion?lesion_type=desmoid_tumor", "/-/cryokb",
    "/-/cryokb/evidence-map", "/-/cryokb/outcomes-by-year", "/-/cryokb/graph",
]


# --- metadata ---------------------------------------------------------------------------------

def test_every_table_view_and_column_of_the_knowledge_base_is_described(demo_db):
    from kb.publish import load_metadata

    tables = load_metadata()["databases"]["cryokb"]["tables"]
    conn = sqlite3.connect(demo_db)
    names = [r[0] for r in conn.execute(
        "select name from sqlite_master where type in ('table', 'view') and name not like '%_fts%' "
        "and name not like 'sqlite_%'")]
    assert {"articles", "outcomes", "evidence_by_lesion", "evidence_map", "graph_edges"} <= set(names)
    missing = []
    for name in names:
        described = tables.get(name, {})
        if not described.get("description"):
            missing.append(name)
        for (column,) in conn.execute(f"select name from pragma_table_info('{name}')"):
            if not described.get("columns", {}).get(column):
                missing.append(f"{name}.{column}")
    assert missing == []


def test_metadata_names_the_query_its_version_and_the_last_refresh(demo_db, plain_db):
    from kb.publish import build_metadata

    run = sqlite3.connect(plain_db).execute("select finished from harvest_runs").fetchone()[0]
    source = build_metadata(plain_db)["source"]
    assert "PubMed" in source and "cryoablation AND (bone OR soft tissue)" in source
    assert "version 1" in source and f"last refresh: {run[:10]}" in source
    assert "SYNTHETIC" not in source
    assert "SYNTHETIC" in build_metadata(demo_db)["source"]


class _ReadOnlyMedia(sqlite3.Connection):
    """What SQLite does with a write-ahead-logged database on a read-only mount: nothing
    that needs its -shm file can be opened (tests run as root, so chmod would not do)."""

    def execute(self, sql, *args):
        if "wal_checkpoint" in sql:
            raise sqlite3.OperationalError("unable to open database file")
        return super().execute(sql, *args)


def test_a_database_on_read_only_media_is_described_and_served_immutable(plain_db, monkeypatch):
    from kb.publish import build_metadata

    real_connect = sqlite3.connect
    opened = []

    def connect(database, *args, uri=False, **kwargs):
        opened.append(str(database))
        factory = sqlite3.Connection if uri else _ReadOnlyMedia
        return real_connect(database, *args, uri=uri, factory=factory, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    metadata = build_metadata(plain_db)
    assert "cryoablation AND (bone OR soft tissue)" in metadata["source"]
    assert "evidence_for_lesion" in metadata["databases"]["cryokb"]["queries"]  # not dropped as unreadable
    assert opened[-1].endswith("?immutable=1")


def test_the_source_line_is_shown_on_the_home_page(plain):
    page = fetch(plain, "/").text
    assert "cryoablation AND (bone OR soft tissue)" in page
    assert "Citations and abstracts: PubMed/MEDLINE terms" in page


def test_default_facets_count_articles_by_lesion_indication_design_and_year(demo):
    facets = fetch(demo, "/cryokb/articles.json").json()["facet_results"]
    assert set(facets) >= {"lesion_types", "indications", "study_design", "pub_year"}
    assert facets["lesion_types"]["type"] == "concept"
    lesions = {r["value"]: r["count"] for r in facets["lesion_types"]["results"]}
    assert lesions == {"desmoid_tumor": 3, "bone_metastasis": 2, "osteoid_osteoma": 1}
    years = {r["value"]: r["count"] for r in facets["pub_year"]["results"]}
    assert years[2021] == 2


def test_an_array_facet_filters_articles_by_two_values_at_once(demo):
    found = rows(demo, "/cryokb/articles?lesion_types__arraycontains=desmoid_tumor"
                       "&indications__arraycontains=salvage")
    assert [r["pmid"] for r in found] == ["91000003"]


@pytest.mark.parametrize("query", ["", "_concept=desmoid_tumor", "_search=cryoablation", "study_design=retrospective",
                                   "_concept=bone_metastasis&_concept=pain_palliation", "_concept=no_such_concept"])
@pytest.mark.parametrize("column", ["lesion_types", "indications", "anatomic_sites"])
def test_concept_facets_count_what_datasette_s_array_facet_counts(demo, query, column):
    data = fetch(demo, f"/cryokb/articles.json?{query}&_facet_concept={column}&_facet_array={column}").json()
    results = {facet["type"]: {r["value"]: r["count"] for r in facet["results"]}
               for facet in data["facet_results"].values() if facet["name"] == column}
    assert results["concept"] == results["array"]


def test_concept_filters_keep_the_articles_whose_arrays_hold_every_chosen_key(demo):
    assert {r["pmid"] for r in rows(demo, "/cryokb/articles?_concept=desmoid_tumor")} == {"91000001", "91000003", "91000006"}
    both = rows(demo, "/cryokb/articles?_concept=desmoid_tumor&_concept=salvage")
    assert [r["pmid"] for r in both] == ["91000003"]
    assert rows(demo, "/cryokb/articles?_concept=desmoid_tumor&_concept=bone_metastasis") == []
    page = fetch(demo, "/cryokb/articles?_concept=desmoid_tumor&_concept=salvage").text
    assert "desmoid tumor is reported" in page and "salvage is reported" in page


def test_a_concept_facet_value_toggles_its_filter(demo):
    facets = fetch(demo, "/cryokb/articles.json?_concept=desmoid_tumor").json()["facet_results"]
    lesions = {r["value"]: r for r in facets["lesion_types"]["results"]}
    assert lesions["desmoid_tumor"]["selected"] and set(lesions) == {"desmoid_tumor"}
    assert "_concept=desmoid_tumor" not in lesions["desmoid_tumor"]["toggle_url"]
    salvage = {r["value"]: r for r in facets["indications"]["results"]}["salvage"]
    assert not salvage["selected"] and salvage["count"] == 1 and salvage["label"]
    narrowed = salvage["toggle_url"].split("/cryokb/articles.json?", 1)[1]
    assert [r["pmid"] for r in rows(demo, f"/cryokb/articles?{narrowed}")] == ["91000003"]


def test_concept_facets_are_left_to_the_articles_table(demo):
    data = fetch(demo, "/cryokb/outcomes.json?_facet_concept=measure").json()
    assert not [f for f in data["facet_results"].values() if f["type"] == "concept"]


def test_full_text_search_finds_articles_and_sentences(demo):
    assert {r["pmid"] for r in rows(demo, "/cryokb/articles?_search=fibromatosis")} == {"91000003"}
    sentences = rows(demo, "/cryokb/sentences?_search=complications")
    assert {r["pmid"] for r in sentences} == {"91000001", "91000002"}
    assert all("omplications" in r["text"] for r in sentences)


# --- canned queries ----------------------------------------------------------------------------

@pytest.mark.parametrize("table, key", [("evidence_by_lesion", "lesion_type"), ("evidence_by_indication", "indication")])
def test_every_figure_of_a_summary_links_to_what_it_was_made_from_down_to_the_sentences(demo, table, key):
    """The summaries showed medians and counts as plain text: no way from a number to its sentences."""
    import html
    import statistics
    import urllib.parse

    page = fetch(demo, f"/cryokb/{table}").text
    summary = {r[key]: r for r in rows(demo, f"/cryokb/{table}")}
    followed = 0
    for href, shown in re.findall(r'<a href="(/cryokb/(?:group_outcome_values|article_\w+)\?[^"]+)"[^>]*>([^<]+)</a>',
                                  page):
        path, query = html.unescape(href).split("?", 1)
        listed = rows(demo, f"{path}?{query}")
        assert listed, href
        if path.endswith("group_outcome_values"):
            values = sorted(r["v"] for r in listed)
            if "-" in shown:  # a range
                assert shown == f"{round(values[0], 1)}-{round(values[-1], 1)}"
            else:
                assert abs(statistics.median(values) - float(shown)) <= 0.051
            for value in listed:
                (sentence,) = rows(demo, f"/cryokb/outcome_sentences?outcome_id={value['outcome_id']}")
                assert sentence["sentence"] and sentence["pmid"] == value["pmid"]
        else:
            assert len(listed) == summary[dict(urllib.parse.parse_qsl(query))[key]]["studies"]
        followed += 1
    assert followed >= 3 * len(summary)
    assert 'href="/cryokb/outcome_sentences?outcome_id=' in fetch(demo, "/cryokb/group_outcome_values").text

def test_evidence_for_a_lesion_type_lists_its_articles_newest_first(demo):
    found = rows(demo, "/cryokb/evidence_for_lesion?lesion_type=desmoid_tumor")
    assert [r["pmid"] for r in found] == ["91000006", "91000003", "91000001"]
    first = next(r for r in found if r["pmid"] == "91000001")
    assert "local_control: 86.0%" in first["outcomes"] or "local_control: 86%" in first["outcomes"]
    assert rows(demo, "/cryokb/evidence_for_lesion?lesion_type=chordoma") == []


def test_outcomes_for_a_lesion_and_measure_come_with_their_sentences(demo):
    found = rows(demo, "/cryokb/outcomes_for_lesion_and_measure?lesion_type=desmoid_tumor&measure=local_control")
    assert {(r["pmid"], r["percent"]) for r in found} == {("91000001", 86), ("91000003", 78)}
    for r in found:
        assert f"{r['count']} of {r['total']}" in r["sentence"]


def test_the_evidence_map_query_has_one_row_per_lesion_and_indication(demo):
    found = rows(demo, "/cryokb/evidence_map_matrix")
    cells = {(r["lesion_type"], r["indication"]): (r["studies"], r["patients"]) for r in found}
    assert cells == {("desmoid_tumor", "local_tumor_control"): (1, 14), ("desmoid_tumor", "salvage"): (1, 9),
                     ("bone_metastasis", "pain_palliation"): (1, 31),
                     ("bone_metastasis", "local_tumor_control"): (1, 22), ("osteoid_osteoma", "curative"): (1, 20)}


def test_the_review_queue_holds_the_relevant_article_without_outcomes(demo):
    found = rows(demo, "/cryokb/review_queue")
    assert [(r["pmid"], r["reasons"]) for r in found] == [("91000006", "relevant, but no outcome extracted")]


def test_what_changed_lists_only_articles_touched_since_the_last_run_started(tmp_path):
    from kb.publish import make_datasette

    path = make_kb(tmp_path / "refreshed.db", synthetic=False)
    with sqlite3.connect(path) as conn:
        conn.execute("update articles set first_seen = '2026-01-05T10:00:00+00:00', "
                     "last_updated = '2026-01-05T10:00:00+00:00'")
        conn.execute("update harvest_runs set started = '2026-01-05T09:59:00+00:00'")
        conn.execute("insert into harvest_runs (kind, started, finished, outcome) values "
                     "('harvest', '2026-03-01T08:00:00+00:00', '2026-03-01T08:05:00+00:00', 'ok')")
        conn.execute("insert into harvest_runs (kind, started, outcome) values "
                     "('harvest', '2026-04-01T08:00:00+00:00', 'failed')")
        conn.execute("update articles set last_updated = '2026-03-01T08:01:00+00:00' where pmid = '91000002'")
    found = rows(make_datasette(path), "/cryokb/changed_in_last_refresh")
    assert [(r["pmid"], r["change"]) for r in found] == [("91000002", "revised")]


def test_a_reparse_run_leaves_where_the_data_came_from_and_what_changed_since_the_harvest(tmp_path):
    """A reparse only reads stored records again: the source line still names the harvest's
    query, and what changed is still counted from the harvest, the rewritten articles revised."""
    from kb.publish import build_metadata, make_datasette

    path = make_kb(tmp_path / "kb.db", synthetic=False)
    with sqlite3.connect(path) as conn:
        conn.execute("update articles set first_seen = '2026-01-05T10:00:00+00:00', "
                     "last_updated = '2026-01-05T10:00:00+00:00'")
        conn.execute("update harvest_runs set started = '2026-03-01T07:00:00+00:00', "
                     "finished = '2026-03-01T07:05:00+00:00'")
        conn.execute("update articles set last_updated = '2026-03-01T07:01:00+00:00' where pmid = '91000003'")
        conn.execute("insert into harvest_runs (kind, started, finished, source, outcome) values "
                     "('reparse', '2026-03-02T08:00:00+00:00', '2026-03-02T08:01:00+00:00', 'raw_records', 'ok')")
        conn.execute("update articles set last_updated = '2026-03-02T08:00:30+00:00' where pmid = '91000002'")
    source = build_metadata(path)["source"]
    assert "cryoablation AND (bone OR soft tissue)" in source and "last refresh: 2026-03-01 (harvest)" in source
    ds = make_datasette(path)
    found = {r["pmid"]: r["change"] for r in rows(ds, "/cryokb/changed_in_last_refresh")}
    assert found == {"91000003": "revised", "91000002": "revised"}
    assert "last harvest: 2026-03-01" in fetch(ds, "/").text
    with sqlite3.connect(path) as conn:  # withdrawn before the harvest, rewritten by the reparse
        conn.execute("update articles set deleted = 1, deleted_at = '2026-02-01T00:00:00+00:00', "
                     "last_updated = '2026-03-02T08:00:40+00:00' where pmid = '91000004'")
    found = {r["pmid"]: r["change"] for r in rows(make_datasette(path), "/cryokb/changed_in_last_refresh")}
    assert "91000004" not in found


def test_every_column_of_the_refresh_runs_is_described():
    from kb.publish import load_metadata
    from kb.refresh import RUN_COLUMNS

    described = load_metadata()["databases"]["cryokb"]["tables"]["refresh_runs"]["columns"]
    assert [name for name in RUN_COLUMNS if not described.get(name)] == []


def test_a_deleted_article_drops_out_of_the_home_figures_the_graph_links_and_says_deleted(tmp_path):
    from ingest.model import Deletion
    from kb.publish import make_datasette

    path = make_kb(tmp_path / "kb.db", synthetic=False)
    before = fetch(make_datasette(path), "/").text
    store = Store(path)
    store.save_records([Deletion(["91000001"])])
    evidence.build(store)
    store.db.close()
    ds = make_datasette(path)
    count = lambda page, what: int(re.search(rf"<strong>([\d,]+)</strong> {what}", page).group(1))  # noqa: E731
    live = sqlite3.connect(path).execute(
        "select count(*) from outcomes o join articles a using (pmid) where a.deleted = 0").fetchone()[0]
    assert count(fetch(ds, "/").text, "outcomes") == live == count(before, "outcomes") - 2
    node = fetch(ds, "/-/cryokb/graph/node.json?id=desmoid_tumor").json()
    assert {r["pmid"] for r in rows(ds, node["all_url"])} == {"91000003", "91000006"}
    changed = {r["pmid"]: r["change"] for r in rows(ds, "/cryokb/changed_in_last_refresh")}
    assert changed.get("91000001") == "deleted"
    assert "Withdrawn from PubMed" in fetch(ds, "/cryokb/articles/91000001").text  # its page said nothing of it
    assert "Withdrawn from PubMed" not in fetch(ds, "/cryokb/articles/91000003").text


def test_the_doi_link_of_an_article_page_is_quoted(tmp_path):
    """A DOI holding "#" was cut short at it by the browser, one holding "<" broke the link."""
    from kb.publish import make_datasette

    path = make_kb(tmp_path / "kb.db", synthetic=False)
    doi = "10.1002/(SICI)1097-0142(19990101)85:1<1::AID-CNCR1>3.0.CO;2-#"
    with sqlite3.connect(path) as conn:
        conn.execute("update articles set doi = ? where pmid = '91000001'", [doi])
    page = fetch(make_datasette(path), "/cryokb/articles/91000001").text
    links = re.findall(r'href="(https://doi\.org/[^"]*)"', page)
    assert links and set(links) == {"https://doi.org/10.1002/(SICI)1097-0142(19990101)85:1%3C1::AID-CNCR1%3E3.0.CO;2-%23"}


def test_canned_queries_the_database_cannot_run_are_left_out_of_its_menu(tmp_path, demo_db):
    from kb.publish import build_metadata

    assert "latest_refresh_runs" not in build_metadata(demo_db)["databases"]["cryokb"]["queries"]
    with_runs = tmp_path / "refreshed.db"
    with_runs.write_bytes(Path(demo_db).read_bytes())
    with sqlite3.connect(with_runs) as conn:
        conn.execute("create table refresh_runs (id integer primary key, started text, finished text, outcome text, "
                     "since text, until text, fetched int, new int, revised int, deleted int, extracted int, "
                     "reextracted int, problems int, error text, summary text)")
    queries = build_metadata(with_runs)["databases"]["cryokb"]["queries"]
    assert {"latest_refresh_runs", "evidence_for_lesion", "changed_in_last_refresh"} <= set(queries)
    bare = Store(tmp_path / "harvested.db").ensure_shape()
    bare.db.close()
    assert build_metadata(tmp_path / "harvested.db")["databases"]["cryokb"].get("queries", {}) == {}


# --- links ------------------------------------------------------------------------------------

def test_paging_through_the_articles_table_and_its_full_csv_gives_every_article_once(demo, demo_db):
    """Datasette 0.65 breaks ties of a sort column by primary key on later pages only, so a
    default sort on a column with ties (pub_year) skipped some articles and repeated others."""
    with sqlite3.connect(demo_db) as conn:
        stored = sorted(pmid for (pmid,) in conn.execute("select pmid from articles"))
    paged, path = [], "/cryokb/articles.json?_shape=objects&_size=3"
    while path:
        page = fetch(demo, path).json()
        paged += [row["pmid"] for row in page["rows"]]
        path = page["next_url"] and page["next_url"].split("://", 1)[-1].partition("/")[2]
        path = path and "/" + path
    assert sorted(paged) == stored
    exported = fetch(demo, "/cryokb/articles.csv?_stream=on&_size=3").text.splitlines()[1:]
    assert sorted(line.split(",", 1)[0] for line in exported) == stored


def test_pmid_cells_open_pubmed_and_the_article_page(demo):
    page = fetch(demo, "/cryokb/outcomes").text
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/91000001/"' in page
    assert 'href="/cryokb/articles/91000001"' in page
    query = fetch(demo, "/cryokb/review_queue").text
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/91000006/"' in query


def test_the_articles_table_adds_pubmed_links_to_its_key_column_with_our_script(demo):
    page = fetch(demo, "/cryokb/articles").text
    assert '<script src="/-/cryokb/static/cryokb.js"' in page
    script = fetch(demo, "/-/cryokb/static/cryokb.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "https://pubmed.ncbi.nlm.nih.gov/" in script.text and "td.col-pmid.type-pk" in script.text


def test_doi_cells_open_the_publisher_through_doi_org(demo):
    page = fetch(demo, "/cryokb/articles/91000002").text
    assert 'href="https://doi.org/10.9999/jiir.91000002"' in page


# --- the article page -------------------------------------------------------------------------

def test_an_article_page_shows_its_abstract_with_the_evidence_marked(demo):
    page = fetch(demo, "/cryokb/articles/91000001").text
    assert 'class="cryokb-abstract"' in page
    assert re.search(r'<mark class="cryokb-m cryokb-f-lesion_types" title="lesion_types: desmoid_tumor">'
                     r"desmoid tumours</mark>", page)
    assert re.search(r'<mark class="cryokb-m cryokb-f-outcomes cryokb-neg" '
                     r'title="outcomes: complications \(negated\)">no major complications</mark>', page)
    outcomes = page[page.index('class="cryokb-outcomes"'):]
    assert "local control 86% (12/14) at 2 years" in outcomes
    assert "Local control was achieved in 12 of 14 patients (86%) at 2 years." in outcomes


def test_an_article_without_outcomes_says_so(demo):
    assert "No outcome was extracted from this article." in fetch(demo, "/cryokb/articles/91000006").text


def test_overlapping_mentions_are_marked_without_losing_or_repeating_text():
    from markupsafe import Markup

    from kb.datasette_plugin import highlight

    text = "Title\n\nLocal control <b> was 9 of 10."
    mentions = [{"field": "outcomes", "concept": "local_control", "start": 7, "end": len(text) - 1},
                {"field": "indications", "concept": "local_tumor_control", "start": 7, "end": 20}]
    html = highlight(text, mentions, 7, len(text))
    assert isinstance(html, Markup)
    assert re.sub(r"<[^>]+>", "", str(html)) == "Local control &lt;b&gt; was 9 of 10."
    assert str(html).startswith('<mark class="cryokb-m cryokb-f-indications" '
                                'title="outcomes: local_control; indications: local_tumor_control">Local control</mark>')


# --- the pictures -----------------------------------------------------------------------------

def test_the_heat_map_has_a_cell_per_lesion_and_indication_linking_to_its_articles(demo):
    page = fetch(demo, "/-/cryokb/evidence-map").text
    start = page.index('<svg class="cryokb-heatmap"')
    svg = page[start:page.index("</svg>", start)]
    links = re.findall(r'<a href="([^"]+)"><title>([^<]+)</title><rect class="cell"', svg)
    assert len(links) == 5
    for href, tip in links:
        studies = int(re.search(r": (\d+) studies", tip).group(1))
        target = href.replace("&amp;", "&")
        assert len(rows(demo, target)) == studies, tip
    assert "20 / 20" not in svg and "1 / 20" in svg


def test_heat_map_colours_go_from_light_to_dark():
    from kb.datasette_plugin import colour_scale

    light, dark = colour_scale(0.0), colour_scale(1.0)
    assert sum(int(light[i:i + 2], 16) for i in (1, 3, 5)) > sum(int(dark[i:i + 2], 16) for i in (1, 3, 5))


def test_the_evidence_map_json_matches_the_view(demo):
    data = fetch(demo, "/-/cryokb/evidence-map.json").json()
    assert {(c["lesion_type"], c["indication"], c["studies"]) for c in data["cells"]} == \
           {(r["lesion_type"], r["indication"], r["studies"]) for r in rows(demo, "/cryokb/evidence_map")}
    assert data["lesion_types"][0] in ("bone_metastasis", "desmoid_tumor")


def test_outcomes_by_year_counts_articles_per_measure_and_plots_the_chosen_one(demo):
    data = fetch(demo, "/-/cryokb/outcomes-by-year.json").json()
    counts = {(c["year"], c["measure"]): c["articles"] for c in data["counts"]}
    assert counts[(2021, "local_control")] == 1 and counts[(2016, "complications")] == 1
    assert data["measure"] == "local_control"
    assert sorted(v["percent"] for v in data["values"]) == [78, 86, 91]
    page = fetch(demo, "/-/cryokb/outcomes-by-year?measure=clinical_success").text
    assert '<option value="clinical_success" selected>' in page
    assert page.count('<circle class="dot"') == 1
    for value in data["values"]:  # each dot leads to its sentence
        source = rows(demo, f"/cryokb/outcome_sentences?outcome_id={value['outcome_id']}")
        assert source[0]["percent"] == value["percent"] and source[0]["sentence"]


def test_each_measure_s_chart_links_to_exactly_the_sentences_it_plots_or_says_it_has_no_percentages(demo):
    """The link also listed retracted articles' and unplottable values (17 sentences for 13
    values), and a measure with no percentage showed a heading over an empty figure."""
    import html

    for measure in fetch(demo, "/-/cryokb/outcomes-by-year.json").json()["measures"]:
        grades = fetch(demo, f"/-/cryokb/outcomes-by-year.json?measure={measure}").json()["grades"] or [""]
        for grade in grades:
            plotted = fetch(demo, f"/-/cryokb/outcomes-by-year.json?measure={measure}&grade={grade}").json()["values"]
            page = fetch(demo, f"/-/cryokb/outcomes-by-year?measure={measure}&grade={grade}").text
            if not plotted:
                assert "No percentage was extracted for" in page, measure
                continue
            behind = html.unescape(re.search(r'<a href="([^"]+)">The sentences behind them</a>', page).group(1))
            listed = rows(demo, behind)
            assert sorted(r["outcome_id"] for r in listed) == sorted(v["outcome_id"] for v in plotted), (measure, grade)


def test_complication_rates_are_plotted_one_grade_at_a_time(demo):
    """Major and minor complication rates pooled in one series read as scatter."""
    data = fetch(demo, "/-/cryokb/outcomes-by-year.json?measure=complications").json()
    assert {"major", "minor"} <= set(data["grades"]) and data["grade"] == data["grades"][0]
    for grade in data["grades"]:
        plotted = fetch(demo, f"/-/cryokb/outcomes-by-year.json?measure=complications&grade={grade}").json()["values"]
        assert plotted, grade
        for value in plotted:
            assert rows(demo, f"/cryokb/outcomes?id={value['outcome_id']}")[0]["grade"] == grade
    page = fetch(demo, "/-/cryokb/outcomes-by-year?measure=complications&grade=minor").text
    assert '<option value="minor" selected>' in page and "complications (minor): percentages" in page
    assert fetch(demo, "/-/cryokb/outcomes-by-year.json?measure=complications&grade=nonsense").json()["grade"] == \
        data["grades"][0]
    assert fetch(demo, "/-/cryokb/outcomes-by-year.json?measure=local_control&grade=major").json()["grade"] is None


def test_a_measure_or_grade_typed_by_hand_is_found_in_any_case_and_an_unknown_one_is_said(demo):
    """?grade=MAJOR showed the first grade, silently, as did a misspelt measure."""
    for typed in ("Clinical%20Success", "clinical-success"):
        found = fetch(demo, f"/-/cryokb/outcomes-by-year.json?measure={typed}").json()
        assert found["measure"] == "clinical_success" and found["notices"] == [], typed
    graded = fetch(demo, "/-/cryokb/outcomes-by-year.json?measure=COMPLICATIONS&grade=Minor").json()
    assert (graded["measure"], graded["grade"], graded["notices"]) == ("complications", "minor", [])
    page = fetch(demo, "/-/cryokb/outcomes-by-year?measure=complications&grade=severe").text
    assert "Complications have no grade &#39;severe&#39; (grades: " in page and 'class="message-warning"' in page
    page = fetch(demo, "/-/cryokb/outcomes-by-year?measure=local_contrl").text
    assert "There is no outcome measure &#39;local_contrl&#39;; showing local control." in page
    assert fetch(demo, "/-/cryokb/outcomes-by-year.json?measure=local_control&grade=major").json()["notices"] == [
        "Local control is not graded; showing every value."]
    assert fetch(demo, "/-/cryokb/outcomes-by-year.json").json()["notices"] == []


def test_asking_for_measures_that_do_not_exist_does_not_grow_the_cache(demo):
    from kb.datasette_plugin import _state

    fetch(demo, "/-/cryokb/outcomes-by-year.json")
    size = len(_state(demo).cache)
    for n in range(50):
        assert fetch(demo, f"/-/cryokb/outcomes-by-year.json?measure=nonsense-{n}").json()["measure"] == "local_control"
    assert len(_state(demo).cache) == size


def test_the_graph_page_draws_every_node_and_edge_of_the_stored_graph(demo, demo_db):
    conn = sqlite3.connect(demo_db)
    n_nodes = conn.execute("select count(*) from graph_nodes").fetchone()[0]
    n_edges = conn.execute("select count(*) from graph_edges").fetchone()[0]
    page = fetch(demo, "/-/cryokb/graph").text
    assert page.count('<g class="node"') == n_nodes and page.count('<line class="edge"') == n_edges
    assert '<script src="/-/cryokb/static/cryokb-graph.js" defer></script>' in page
    data = fetch(demo, "/-/cryokb/graph.json").json()
    ids = {n["id"] for n in data["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in data["edges"])
    assert all(0 <= n["x"] <= 1000 and 0 <= n["y"] <= 700 for n in data["nodes"])


def test_clicking_a_concept_or_a_link_lists_its_articles(demo):
    node = fetch(demo, "/-/cryokb/graph/node.json?id=desmoid_tumor").json()
    assert [a["pmid"] for a in node["articles"]] == ["91000006", "91000003", "91000001"]
    assert {r["pmid"] for r in rows(demo, node["all_url"])} == {"91000001", "91000003", "91000006"}
    edge = fetch(demo, "/-/cryokb/graph/edge.json?source=local_control&target=desmoid_tumor").json()
    assert edge["weight"] == 2 and {a["pmid"] for a in edge["articles"]} == {"91000001", "91000003"}
    assert {r["pmid"] for r in rows(demo, edge["all_url"])} == {"91000001", "91000003"}
    assert "error" in fetch(demo, "/-/cryokb/graph/node.json?id=no_such_concept", status=404).json()


# --- banner, escaping, offline ----------------------------------------------------------------

@pytest.mark.parametrize("path", HTML_PAGES + ["/cryokb/no_such_table"])
def test_every_page_of_the_demo_says_its_data_is_synthetic(demo, plain, path):
    status = 404 if "no_such" in path else 200
    assert "Synthetic data." in fetch(demo, path, status).text
    assert "Synthetic data." not in fetch(plain, path, status).text


@pytest.mark.parametrize("path", ["/cryokb/articles", "/cryokb/articles/91000004", "/cryokb/outcome_sentences",
                                  "/cryokb/articles?_search=osteoid", "/-/cryokb/outcomes-by-year?measure=clinical_success",
                                  "/-/cryokb/evidence-map", "/-/cryokb/graph", "/cryokb/evidence_by_lesion"])
def test_titles_and_labels_holding_markup_are_shown_inert(demo, path):
    page = fetch(demo, path).text
    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(" in page


def test_json_endpoints_return_titles_as_data_for_the_script_to_set_as_text(demo):
    node = fetch(demo, "/-/cryokb/graph/node.json?id=osteoid_osteoma").json()
    assert node["articles"][0]["title"] == EVIL_TITLE
    script = fetch(demo, "/-/cryokb/static/cryokb-graph.js").text
    assert "innerHTML" not in script and "textContent" in script


@pytest.mark.parametrize("path", HTML_PAGES)
def test_pages_load_nothing_from_other_sites(demo, path):
    page = fetch(demo, path).text
    external = re.findall(r'<(?:script[^>]+src|link rel="stylesheet" href|img[^>]+src)="(?:https?:)?//[^"]*"', page)
    assert external == []


def test_static_files_are_served_with_their_types_and_nothing_else(demo):
    assert fetch(demo, "/-/cryokb/static/cryokb.css").headers["content-type"].startswith("text/css")
    fetch(demo, "/-/cryokb/static/missing.css", status=404)
    escaped = asyncio.run(demo.client.get("/-/cryokb/static/..%2Fmetadata.yml"))
    assert escaped.status_code != 200 and "databases:" not in escaped.text


@pytest.mark.parametrize("path", ["/cryokb/articles/x/y/z", "/no/such/page/at/all", "/cryokb/articles/99999999",
                                  "/cryokb/no_such_table", "/-/static-plugins/cryokb/no_such.css"])
def test_a_page_that_is_not_there_is_a_404_page_saying_the_data_is_synthetic(demo, path, capfd):
    """Datasette printed every error with rich (which spaCy installs) outside an except
    block, where rich refuses: such URLs got no reply, and each 404 filled the log."""
    page = fetch(demo, path, status=404)
    assert "synthetic" in page.text.lower()
    assert fetch(demo, path + ".json", status=404).json()["ok"] is False
    assert "Traceback" not in "".join(capfd.readouterr())


@pytest.mark.parametrize("search", ["", "%20", "%09", "%22", "%22%22"])
def test_a_search_without_a_word_lists_everything_instead_of_an_invalid_sql_page(demo, search):
    """The home page's box sent empty gave 'Invalid SQL: fts5: syntax error near ""'."""
    total = fetch(demo, "/cryokb/articles.json?_size=0").json()["filtered_table_rows_count"]
    found = fetch(demo, f"/cryokb/articles.json?_search={search}&_size=0").json()
    assert found["filtered_table_rows_count"] == total
    fetch(demo, f"/cryokb/sentences?_search={search}")
    assert fetch(demo, "/cryokb/articles.json?_search=desmoid&_size=0").json()["filtered_table_rows_count"] < total


@pytest.mark.parametrize("path", ["/cryokb/articles?_sort=doi", "/cryokb/articles.json?_sort_desc=no_such_column",
                                  "/cryokb/articles?_sort=pmid&_sort_desc=title", "/cryokb/outcome_sentences?_next=abc",
                                  "/cryokb/articles?_timelimit=abc", "/cryokb/articles.json?_through=abc"])
def test_a_visitor_s_mistake_in_a_url_is_a_400_page_not_a_500(demo, path):
    page = fetch(demo, path, status=400)
    if ".json" in path:
        assert page.json()["ok"] is False and page.json()["status"] == 400
    else:
        assert "synthetic" in page.text.lower()


def test_a_store_never_built_links_only_to_pages_it_has_and_refuses_concept_filters(tmp_path):
    """Before cryokb build the menu, the cards and the description led to 404s, and a
    concept filter was dropped without a word: every article listed as if filtered."""
    from cryokb_data import path as data_path
    from kb.importing import import_files
    from kb.publish import make_datasette

    db = tmp_path / "harvested.db"
    store = Store(db).ensure_shape()
    import_files(store, [str(data_path("samples/demo_pubmed.xml"))], processes=False)
    store.db.close()
    ds = make_datasette(db)
    links = set()
    for page in ("/", "/cryokb", "/cryokb/articles"):
        links.update(href.replace("&amp;", "&") for href in re.findall(r'href="(/[^"#]*)"', fetch(ds, page).text))
    assert "/cryokb/articles" in links
    for href in sorted(links):
        assert asyncio.run(ds.client.get(href)).status_code < 400, href
    refused = fetch(ds, "/cryokb/articles.json?_concept=desmoid_tumor", status=400).json()
    assert "run cryokb build" in refused["error"]


def test_an_empty_concept_filter_filters_nothing(demo):
    """It said "0 rows where  is reported"."""
    total = fetch(demo, "/cryokb/articles.json?_size=0").json()["filtered_table_rows_count"]
    assert fetch(demo, "/cryokb/articles.json?_concept=&_size=0").json()["filtered_table_rows_count"] == total
    assert " is reported" not in fetch(demo, "/cryokb/articles?_concept=").text


def test_an_outcome_node_names_its_table_for_what_it_lists(demo):
    """Offered as "all of them in a table" beside 22 articles, it opened 29 outcome rows."""
    node = fetch(demo, "/-/cryokb/graph/node.json?id=complications").json()
    assert node["all_label"] == "their outcomes, with the sentences"
    assert {r["pmid"] for r in rows(demo, node["all_url"])} >= {a["pmid"] for a in node["articles"]}
    assert fetch(demo, "/-/cryokb/graph/node.json?id=bone_metastasis").json()["all_label"] is None


def test_importing_the_plugin_first_leaves_datasette_s_plugins_whole():
    """The plugin, imported before Datasette's plugin manager (as test_evidence does), made
    that manager load it through its entry point half-imported: our cells and facets and
    Datasette's own error handler went missing, and every error page failed."""
    import subprocess
    import sys

    code = ("import kb.datasette_plugin, datasette.plugins as p; "
            "print(sorted({i.plugin_name for i in p.pm.hook.handle_exception.get_hookimpls()}), "
            "sorted({i.plugin_name for i in p.pm.hook.render_cell.get_hookimpls()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "datasette.handle_exception" in out and "cryokb" in out.split("] [")[1]


def test_the_menu_links_the_pictures(demo):
    page = fetch(demo, "/").text
    for href in ("/-/cryokb/evidence-map", "/-/cryokb/graph", "/-/cryokb/outcomes-by-year",
                 "/cryokb/evidence_by_lesion"):
        assert f'href="{href}"' in page


# --- serving ----------------------------------------------------------------------------------

def test_publishing_a_missing_or_foreign_database_is_a_one_line_error(tmp_path):
    from kb.publish import PublishError, make_datasette

    with pytest.raises(PublishError, match="no database at"):
        make_datasette(tmp_path / "nothing.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)")
    with pytest.raises(PublishError, match="not a cryokb database"):
        make_datasette(other)


def test_serve_command_reports_a_missing_database(tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "absent.db"), "-q"])
    assert result.exit_code == 1
    assert "no database at" in result.output


def test_serve_on_a_port_in_use_is_a_one_line_error_not_uvicorns_exit_3(demo_db):
    import socket

    from click.testing import CliRunner

    from kb.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--db", str(demo_db), "--port", str(port), "-q"])
    assert result.exit_code == 1
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in result.output
    assert "(is another server there? choose another --port or --host)" in result.output


@pytest.mark.parametrize("host, hint", [
    ("no-such-host.invalid", "(no such host: check --host)"),
    ("192.0.2.1", "(not an address of this machine: check --host)"),  # TEST-NET-1: on no interface here
])
def test_serve_on_a_host_it_cannot_listen_on_says_to_check_the_host_not_the_port(demo_db, host, hint):
    from click.testing import CliRunner

    from kb.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--db", str(demo_db), "--host", host, "--port", "0", "-q"])
    assert result.exit_code == 1
    assert f"cannot serve on {host}:0: " in result.output and result.output.rstrip().endswith(hint)
    assert "another server" not in result.output


def test_a_host_lookup_that_fails_for_now_is_not_called_a_host_that_does_not_exist(monkeypatch):
    import socket

    from kb import publish

    def resolver_down(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(publish.socket, "getaddrinfo", resolver_down)
    with pytest.raises(publish.PublishError) as refused:
        publish._bind("kb.radiology.example", 8001)
    assert str(refused.value) == ("cannot serve on kb.radiology.example:8001: Temporary failure in name resolution "
                                  "(the host name could not be looked up now: check --host and the network)")


def test_the_knowledge_base_is_read_through_a_memory_map(demo):
    mapped = asyncio.run(demo.get_database("cryokb").execute("pragma mmap_size")).first()[0]
    assert mapped > 0


def test_the_database_is_served_read_only(demo):
    response = asyncio.run(demo.client.post("/cryokb/-/query", data={"sql": "delete from articles"}))
    assert response.status_code in (403, 400, 405)
    assert len(rows(demo, "/cryokb/articles")) == len(ARTICLES)
    assert not demo.get_database("cryokb").is_mutable


def test_cryokb_serve_answers_over_http(demo_db):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--db", str(demo_db), "--port", str(port),
                               "-q"], cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/cryokb/evidence-map", timeout=5) as reply:
                    body = reply.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        assert "cryokb-heatmap" in body and "Synthetic data." in body
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_announces_the_port_it_bound_and_that_url_answers(demo_db):
    import re
    import subprocess
    import sys
    import urllib.request

    server = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--db", str(demo_db), "--port", "0"],
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        announced = server.stderr.readline()
        url = re.fullmatch(rf"Serving {re.escape(str(demo_db))} at (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C to stop\)\n",
                           announced)
        assert url and url.group(2) != "0", announced
        with urllib.request.urlopen(url.group(1) + "-/cryokb/evidence-map", timeout=30) as reply:
            assert "cryokb-heatmap" in reply.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_server_stopped_by_ctrl_c_or_sigterm_exits_0_without_a_word(demo_db, stop):
    """That is how a server is stopped (systemctl stop, a restart after each refresh): it
    exited 1 with "Aborted!", and then 130 or 143, which systemd counts as failures."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    server = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--db", str(demo_db), "--port", "0"],
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        url = re.search(r"(http://\S+/)", server.stderr.readline()).group(1)
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.status == 200
        server.send_signal(getattr(signal, stop))
        _, said = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, said
    assert "Aborted" not in said and "Interrupted" not in said and "Traceback" not in said


def test_serve_says_nothing_of_serving_when_the_database_cannot_be_served(tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    junk = tmp_path / "notes.db"
    junk.write_text("not a database")
    result = CliRunner().invoke(cli, ["serve", "--db", str(junk), "--port", "0"])
    assert result.exit_code == 1
    assert result.output == f"Error: cannot read {junk}: file is not a database\n"


def test_the_home_page_lists_only_the_knowledge_base(demo):
    databases = fetch(demo, "/.json").json()
    assert list(databases) == ["cryokb"]


@pytest.mark.parametrize("value", [1, 3, 4, 5, 9, 10, 13, 99, 101, 1234, 48000])
def test_chart_axes_end_on_a_round_number_of_four_whole_steps(value):
    from kb.datasette_plugin import _nice_top

    top = _nice_top(value)
    assert top >= value and top % 4 == 0
    assert top < 2.5 * value + 4


def test_the_landing_page_counts_articles_per_lesion_type_and_links_their_evidence(demo):
    page = fetch(demo, "/").text
    assert '<strong>6</strong> articles' in page
    lesions = dict(re.findall(r'lesion_type=([a-z_]+)">[^<]+</a> <span>(\d+)</span>', page))
    assert lesions == {"desmoid_tumor": "3", "bone_metastasis": "2", "osteoid_osteoma": "1"}
    assert 'action="/cryokb/articles"' in page and 'name="_search"' in page


def test_datasette_s_own_list_of_tables_stays_on_the_database_page(demo):
    page = fetch(demo, "/cryokb").text
    for name in ("articles", "outcomes", "evidence_by_lesion", "evidence_for_lesion"):
        assert f'href="/cryokb/{name}"' in page


def test_the_articles_table_shows_key_columns_with_titles_and_keys_as_links(demo):
    page = fetch(demo, "/cryokb/articles").text
    headers = re.findall(r'<th [^>]*data-column="([a-z_]+)"', page)
    assert headers == ["pmid", "title", "pub_year", "doi", "retracted", "study_design", "n_patients",
                       "lesion_types", "indications"]
    assert '<a class="cryokb-article-link" href="/cryokb/articles/91000003">' in page
    assert '<a href="/cryokb/articles?_concept=salvage">salvage</a>' in page
    chosen = fetch(demo, "/cryokb/articles?_col=record_hash").text
    assert re.findall(r'<th [^>]*data-column="([a-z_]+)"', chosen) == ["pmid", "record_hash"]


def test_array_filters_look_articles_up_through_the_concept_index_with_the_same_result(demo_db, demo):
    data = fetch(demo, "/cryokb/articles.json?lesion_types__arraycontains=desmoid_tumor&_shape=objects").json()
    assert "article_concepts" in data["query"]["sql"]
    conn = sqlite3.connect(demo_db)
    by_json = {r[0] for r in conn.execute(
        "select pmid from articles where 'desmoid_tumor' in (select value from json_each(lesion_types))")}
    assert {r["pmid"] for r in data["rows"]} == by_json == {"91000001", "91000003", "91000006"}
    assert "article_concepts" not in fetch(demo, "/cryokb/articles.json?study_design=prospective").json()["query"]["sql"]


def test_a_store_without_evidence_yet_is_served_and_says_so(tmp_path):
    from kb.publish import make_datasette

    store = Store(tmp_path / "harvested.db").ensure_shape()
    store.save_records([Article(pmid="91000009", title="Cryoablation of a chordoma of the sacrum", pub_year=2020)])
    store.db.close()
    ds = make_datasette(tmp_path / "harvested.db")
    assert "Cryoablation of a chordoma of the sacrum" in fetch(ds, "/cryokb/articles").text
    facets = fetch(ds, "/cryokb/articles.json").json()["facet_results"]
    assert set(facets) == {"pub_year"}
    assert "No evidence yet" in fetch(ds, "/-/cryokb/evidence-map").text
    assert "No outcomes yet" in fetch(ds, "/-/cryokb/outcomes-by-year").text
    assert "No graph yet" in fetch(ds, "/-/cryokb/graph").text
    assert "error" in fetch(ds, "/-/cryokb/graph/node.json?id=chordoma", status=404).json()
    assert "error" in fetch(ds, "/-/cryokb/graph/edge.json?source=a&target=b", status=404).json()
    assert "<strong>1</strong> articles" in fetch(ds, "/").text
    assert "Cryoablation of a chordoma of the sacrum" in fetch(ds, "/cryokb/articles/91000009").text
    assert "Synthetic data." not in fetch(ds, "/").text
