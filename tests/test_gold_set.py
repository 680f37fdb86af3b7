"""The gold sets are well-formed: the extractor is scored on them, so a typo would mis-score it."""

import json
from pathlib import Path

import pytest

from cryokb_data import path as data_path
from ingest.readers import read_records

DATA = Path(__file__).resolve().parent / "data"
GOLD_FILES = [p for folder in ("gold", "holdout", "holdout2") for p in sorted((DATA / folder).glob("*.jsonl"))]
SCHEMA = json.loads(data_path("schema_keys.json").read_text())["fields"]
LIST_FIELDS = ("approach", "lesion_types", "anatomic_sites", "indications", "guidance", "treatments")
RECORD_KEYS = {"pmid", "relevant", *LIST_FIELDS, "study_design", "n_patients", "n_lesions", "outcomes", "mentions"}
OUTCOME_KEYS = {"measure", "percent", "count", "total", "grade", "scale", "before", "after", "timepoint", "direction"}


def gold_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_development_set_is_as_large_and_varied_as_the_issue_asks():
    records = [r for p in sorted((DATA / "gold").glob("*.jsonl")) for r in gold_lines(p)]
    assert len(records) >= 60
    assert sum(not r["relevant"] for r in records) >= 15
    for field in ("lesion_types", "anatomic_sites", "indications", "guidance", "treatments"):
        seen = {key for r in records for key in r[field]}
        assert seen == set(SCHEMA[field]), f"{field} never used in gold: {set(SCHEMA[field]) - seen}"
    designs = {r["study_design"] for r in records if r["relevant"]}
    assert designs == set(SCHEMA["study_design"])


@pytest.mark.parametrize("path", GOLD_FILES, ids=lambda p: p.name)
def test_gold_records_use_schema_keys_in_sorted_lists_and_match_their_articles(path):
    records = gold_lines(path)
    articles = [a.pmid for a in read_records(path.with_suffix(".xml")) if hasattr(a, "pmid")]
    assert [r["pmid"] for r in records] == articles
    for r in records:
        assert set(r) == RECORD_KEYS, r["pmid"]
        for field in LIST_FIELDS:
            assert r[field] == sorted(set(r[field])), (r["pmid"], field)
            assert set(r[field]) <= set(SCHEMA[field]), (r["pmid"], field)
        assert r["study_design"] is None or r["study_design"] in SCHEMA["study_design"]
        for o in r["outcomes"]:
            assert set(o) <= OUTCOME_KEYS and o["measure"] in SCHEMA["outcome_measures"], (r["pmid"], o)
            if o.get("percent") is not None:
                assert 0 <= o["percent"] <= 100
        if not r["relevant"]:
            assert not any(r[f] for f in ("approach", "indications", "guidance", "treatments", "outcomes"))
            assert r["study_design"] is None and r["n_patients"] is None
