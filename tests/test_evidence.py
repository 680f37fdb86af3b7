"""Evidence tables and views, from evidence records written as the schema defines them."""

import json
from pathlib import Path

import pytest

from ingest.model import AbstractSection, Article, PublicationType
from kb import evidence, graph
from kb.store import Store

from evidence_records import mention, sentence_spans

TITLE = "Percutaneous cryoablation of desmoid tumours"
ABSTRACT = ("Twelve patients with extra-abdominal desmoid tumours were treated under CT guidance. "
            "Local control was achieved in 10 of 12 patients (83%) at 1 year. "
            "There were no major complications.")


def article(pmid, title=TITLE, abstract=ABSTRACT, retracted=False):
    a = Article(pmid=pmid, title=title, abstract_sections=[AbstractSection(abstract)],
                publication_types=[PublicationType("Journal Article")], pub_year=2022, raw=f"<r>{pmid}{title}</r>".encode())
    if retracted:
        a.publication_types.append(PublicationType("Retracted Publication"))
    return a


def desmoid_record(a, lesion="desmoid_tumor"):
    text = a.text
    spans = sentence_spans(text)
    record = {
        "pmid": a.pmid, "relevant": True, "approach": ["percutaneous"], "lesion_types": [lesion],
        "anatomic_sites": [], "indications": ["local_tumor_control"], "guidance": ["ct"], "treatments": [],
        "study_design": "retrospective", "n_patients": 12, "n_lesions": None,
        "outcomes": [
            {"measure": "local_control", "count": 10, "total": 12, "percent": 83, "timepoint": "1 year"},
            {"measure": "complications", "grade": "major", "count": 0},
        ],
        "mentions": [
            mention(text, spans, "approach", "percutaneous", "Percutaneous"),
            mention(text, spans, "lesion_types", lesion, "desmoid tumours"),
            mention(text, spans, "guidance", "ct", "CT guidance"),
            mention(text, spans, "indications", "local_tumor_control", "Local control", inferred=True),
            mention(text, spans, "outcomes", "local_control", "Local control was achieved in 10 of 12 patients (83%)"),
            mention(text, spans, "outcomes", "complications", "no major complications", negated=True),
        ],
    }
    return record, text, spans


@pytest.fixture
def kb(store):
    articles = [article("90000001"), article("90000002"), article("90000003", retracted=True)]
    store.save_records(articles)
    evidence.ensure_evidence_shape(store)
    evidence.load_concepts(store)
    items = [desmoid_record(a) for a in articles]
    evidence.write_evidence(store, items, "test-1", {a.pmid: None for a in articles})
    evidence.apply_views(store)
    return store


def test_every_outcome_points_at_the_sentence_its_numbers_came_from(kb):
    rows = list(kb.db.query(
        "select o.*, s.text as sentence, a.title, a.abstract from outcomes o join sentences s on s.id = o.sentence_id "
        "join articles a on a.pmid = o.pmid"))
    assert len(rows) == 6
    for row in rows:
        text = f"{row['title']}\n\n{row['abstract']}"
        assert text[row["start"]:row["end"]] == row["evidence_text"]
        assert row["evidence_text"] in row["sentence"]
        if row["percent"] is not None:
            assert str(int(row["percent"])) in row["sentence"]


def test_the_stored_record_is_exactly_the_extracted_one(kb):
    stored = json.loads(kb.db["evidence"].get("90000001")["record"])
    assert stored == desmoid_record(article("90000001"))[0]


def test_article_columns_hold_json_arrays_for_array_facets(kb):
    row = kb.db["articles"].get("90000001")
    assert json.loads(row["lesion_types"]) == ["desmoid_tumor"]
    assert row["relevant"] == 1 and row["n_patients"] == 12
    facet = list(kb.db.query(
        "select j.value, count(*) n from articles, json_each(articles.lesion_types) j group by j.value"))
    assert facet == [{"value": "desmoid_tumor", "n": 3}]


def test_affirmed_article_concepts_mirror_the_json_arrays_so_concept_filters_find_the_same_articles(kb):
    from kb.datasette_plugin import KEY_ARRAY_COLUMNS

    checked = 0
    for row in kb.db["articles"].rows:
        for column in KEY_ARRAY_COLUMNS:
            listed = set(json.loads(row[column] or "[]"))
            indexed = {r["concept"] for r in kb.db.query(
                "select concept from article_concepts where pmid = ? and field = ? and negated = 0", [row["pmid"], column])}
            assert listed == indexed, (row["pmid"], column)
            checked += len(listed)
    assert checked >= 6


def test_an_inferred_indication_is_marked_inferred(kb):
    row = next(kb.db.query("select * from article_concepts where pmid = '90000001' and field = 'indications'"))
    assert (row["concept"], row["inferred"]) == ("local_tumor_control", 1)


def test_summaries_leave_out_retracted_articles(kb):
    by_lesion = next(kb.db.query("select * from evidence_by_lesion where lesion_type = 'desmoid_tumor'"))
    assert by_lesion["studies"] == 2 and by_lesion["patients"] == 24
    assert by_lesion["local_control_median"] == 83
    cell = next(kb.db.query("select * from evidence_map"))
    assert (cell["lesion_type"], cell["indication"], cell["studies"]) == ("desmoid_tumor", "local_tumor_control", 2)
    reasons = {r["reason"] for r in kb.db.query("select reason from articles_needing_review")}
    assert reasons == {"retracted, but has evidence"}


def test_a_stated_zero_counts_in_the_medians_and_every_value_names_the_outcome_it_came_from(kb):
    by_lesion = next(kb.db.query("select * from evidence_by_lesion where lesion_type = 'desmoid_tumor'"))
    assert by_lesion["major_complications_median"] == 0  # "There were no major complications."
    values = list(kb.db.query("select metric, v, outcome_id, pmid from group_outcome_values"))
    assert {v["metric"] for v in values} == {"local_control", "complications:major"}
    for value in values:
        source = next(kb.db.query("select pmid, percent, count, sentence from outcome_sentences where outcome_id = ?",
                                  [value["outcome_id"]]))
        assert source["pmid"] == value["pmid"] and source["sentence"]
        assert value["v"] == (source["percent"] if source["percent"] is not None else 0)


def test_rewriting_an_article_replaces_its_rows(kb):
    a = article("90000001")
    record, text, spans = desmoid_record(a, lesion="soft_tissue_sarcoma")
    record["outcomes"] = record["outcomes"][:1]
    record["mentions"] = [m for m in record["mentions"] if m["key"] != "complications"]
    record["mentions"][1]["key"] = "soft_tissue_sarcoma"
    evidence.write_evidence(kb, [(record, text, spans)], "test-2", {})
    assert kb.db.execute("select count(*) from outcomes where pmid = '90000001'").fetchone()[0] == 1
    concepts = {r["concept"] for r in kb.db.query("select concept from article_concepts where pmid = '90000001'")}
    assert "desmoid_tumor" not in concepts and "soft_tissue_sarcoma" in concepts
    assert kb.db.execute("select count(*) from sentences where pmid = '90000001'").fetchone()[0] == len(spans)


def test_ids_of_rewritten_evidence_are_never_handed_out_again(kb):
    def ids(table):
        return {r[0] for r in kb.db.execute(f"select id from {table} where pmid = '90000002'")}

    seen = {table: ids(table) for table in evidence.ID_TABLES}
    assert all(seen.values())
    for _ in range(2):  # after the first rewrite its rows hold the highest ids
        record, text, spans = desmoid_record(article("90000002"))
        evidence.write_evidence(kb, [(record, text, spans)], "test-2", {})
        for table in evidence.ID_TABLES:
            assert ids(table) and not ids(table) & seen[table], table
            seen[table] |= ids(table)


def test_every_declared_reference_holds_after_a_build_and_a_rewrite(kb, built):
    """The store does not enforce foreign keys (kb.store), so the evidence writes must
    keep them by themselves: SQLite's own check finds nothing dangling."""
    a = article("90000001")
    record, text, spans = desmoid_record(a, lesion="soft_tissue_sarcoma")
    evidence.write_evidence(kb, [(record, text, spans)], "test-2", {})
    for store in (kb, built[0]):
        assert store.db["mentions"].count and store.db.execute("pragma foreign_key_check").fetchall() == []


def test_sentences_are_searchable(kb):
    hits = list(kb.db["sentences"].search("complications"))
    assert {h["pmid"] for h in hits} == {"90000001", "90000002", "90000003"}


def test_concept_graph_links_co_reported_concepts_with_their_pmids(kb):
    g = graph.rebuild(kb)
    assert g["desmoid_tumor"]["local_control"]["weight"] == 2
    assert g["desmoid_tumor"]["local_control"]["pmids"] == ["90000001", "90000002"]
    node = kb.db["graph_nodes"].get("desmoid_tumor")
    assert node["articles"] == 2 and node["degree"] == g.degree("desmoid_tumor")


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_graph_exports_read_back_with_the_same_nodes_and_weights(kb, tmp_path, fmt):
    import networkx as nx

    g = graph.add_metrics(graph.concept_graph(kb))
    path = tmp_path / f"g.{fmt}"
    graph.export(g, fmt, path)
    if fmt == "graphml":
        back = nx.read_graphml(path)
    elif fmt == "gexf":
        back = nx.read_gexf(path)
    else:
        back = nx.node_link_graph(json.loads(path.read_text()), edges="links")
    assert set(back.nodes) == set(g.nodes)
    assert {tuple(sorted((a, b))): int(d["weight"]) for a, b, d in back.edges(data=True)} == \
           {tuple(sorted((a, b))): d["weight"] for a, b, d in g.edges(data=True)}


DEMO = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo_pubmed.xml"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from ingest.readers import read_records

    db = tmp_path_factory.mktemp("built") / "kb.db"
    store = Store(db).ensure_shape()
    store.save_records(read_records(DEMO))
    result = evidence.build(store)
    return store, result


def test_the_database_and_cryokb_extract_never_disagree(built):
    from click.testing import CliRunner

    from kb.cli import cli

    store, result = built
    out = CliRunner().invoke(cli, ["extract", str(DEMO)])
    assert out.exit_code == 0, out.output
    extracted = {r["pmid"]: r for r in map(json.loads, out.output.splitlines())}
    stored = {row["pmid"]: json.loads(row["record"]) for row in store.db["evidence"].rows}
    assert result.extracted == len(extracted) > 30
    assert stored == extracted


def test_every_mention_and_outcome_lies_in_its_sentence(built):
    store, _ = built
    rows = list(store.db.query(
        "select m.text, m.start, m.end, s.start as s_start, s.end as s_end, s.text as sentence, "
        "a.title, a.abstract from mentions m join sentences s on s.id = m.sentence_id join articles a on a.pmid = m.pmid"))
    outside_text = list(store.db.query("select field, inferred from mentions where start is null"))
    # only a design read from the publication types, or an inferred indication, has no words of its own
    assert all(m["field"] == "study_design" or (m["field"] == "indications" and m["inferred"]) for m in outside_text)
    assert rows and len(rows) == store.db["mentions"].count - len(outside_text)
    for row in rows:
        text = f"{row['title']}\n\n{row['abstract']}" if row["abstract"] else row["title"]
        assert text[row["start"]:row["end"]] == row["text"]
        assert text[row["s_start"]:row["s_end"]] == row["sentence"]
        assert row["s_start"] <= row["start"] and row["end"] <= row["s_end"]
    orphans = store.db.execute("select count(*) from outcomes where sentence_id is null").fetchone()[0]
    assert orphans == 0


def test_a_second_build_extracts_nothing_and_a_new_version_everything_stale(built, monkeypatch):
    store, _ = built
    assert evidence.build(store).extracted == 0
    from ingest.readers import read_records

    first = next(a for a in read_records(DEMO) if hasattr(a, "title"))
    first.title += " (revised)"
    first.raw += b" "
    store.save_records([first])
    assert evidence.build(store).extracted == 1
    import extractors.pipeline

    monkeypatch.setattr(extractors.pipeline, "EXTRACTOR_VERSION", extractors.pipeline.EXTRACTOR_VERSION + ".test")
    assert evidence.build(store).extracted == store.db.execute(
        "select count(*) from articles where deleted = 0").fetchone()[0]


def test_summary_medians_equal_a_plain_python_median_of_the_same_outcomes(built):
    import statistics

    def share(percent, count, total):
        """As stated, else count over total; a stated zero is 0%."""
        if percent is not None:
            return percent
        if count == 0:
            return 0.0
        return round(100 * count / total, 1) if count is not None and total else None

    store, _ = built
    values: dict[str, list[float]] = {}
    for row in store.db.query("select pmid, lesion_types from articles where relevant = 1 and retracted = 0 "
                              "and deleted = 0"):
        percents = [v for v in (share(*r) for r in store.db.execute(
            "select percent, count, total from outcomes where pmid = ? and measure = 'clinical_success'",
            [row["pmid"]])) if v is not None]
        for lesion in json.loads(row["lesion_types"]):
            values.setdefault(lesion, []).extend(percents)
    summary = {r["lesion_type"]: r for r in store.db.query("select * from evidence_by_lesion")}
    checked = 0
    for lesion, percents in values.items():
        if percents:
            assert summary[lesion]["clinical_success_median"] == round(statistics.median(percents), 1)
            assert summary[lesion]["clinical_success_range"] == f"{round(min(percents), 1)}-{round(max(percents), 1)}"
            checked += 1
    assert checked >= 2


def test_editing_any_rule_file_makes_stored_evidence_stale(monkeypatch, tmp_path):
    import shutil

    import cryokb_data

    copy = tmp_path / "data"
    shutil.copytree(Path(cryokb_data.__file__).parent, copy)
    monkeypatch.setattr(cryokb_data, "path", lambda name: copy / name)
    before = evidence.current_version()
    rules = copy / "outcome_patterns.json"
    rules.write_text(rules.read_text() + "\n")
    assert evidence.current_version() != before


def test_a_deleted_article_leaves_no_evidence_behind_after_the_next_build(store):
    from ingest.model import Deletion
    from ingest.readers import read_records

    store.save_records(read_records(DEMO))
    evidence.build(store)
    pmid = store.db.execute("select pmid from outcomes order by pmid limit 1").fetchone()[0]
    store.save_records([Deletion([pmid])])
    evidence.build(store)
    for table in evidence.EVIDENCE_TABLES:
        assert store.db.execute(f"select count(*) from {table} where pmid = ?", [pmid]).fetchone()[0] == 0, table
    assert store.db["articles"].get(pmid)["extracted_hash"] is None
