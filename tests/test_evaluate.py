"""Scoring: each metric counts what the issue says it counts."""

import json

import pytest

from extractors.evaluate import GoldFileError, load_gold, numeric_facts, score, sibling_articles


def record(pmid, **fields):
    base = {"pmid": pmid, "relevant": True, "approach": ["percutaneous"], "lesion_types": [],
            "anatomic_sites": [], "indications": [], "guidance": [], "treatments": [],
            "study_design": "retrospective", "n_patients": 20, "n_lesions": None, "outcomes": [], "mentions": []}
    base.update(fields)
    return base


def test_list_fields_are_micro_averaged_over_keys():
    gold = [record("1", anatomic_sites=["femur", "tibia"]), record("2", anatomic_sites=["spine"])]
    pred = {"1": record("1", anatomic_sites=["femur"]), "2": record("2", anatomic_sites=["spine", "rib"])}
    m = score(gold, pred).prf["anatomic_sites"]
    assert (m.tp, m.fp, m.fn) == (2, 1, 1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)


def test_relevance_is_scored_with_relevant_as_the_positive_class():
    gold = [record("1"), record("2", relevant=False), record("3", relevant=False)]
    pred = {"1": record("1", relevant=False), "2": record("2", relevant=False), "3": record("3", relevant=True)}
    m = score(gold, pred).prf["relevant"]
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)


def test_design_and_sample_size_are_scored_on_relevant_articles_only():
    gold = [record("1", n_patients=50), record("2", relevant=False, study_design=None, n_patients=None)]
    pred = {"1": record("1", n_patients=48), "2": record("2", relevant=False, study_design="review", n_patients=3)}
    report = score(gold, pred)
    assert report.shares["n_patients"].total == 1 and report.shares["n_patients"].hits == 0
    assert report.shares["study_design"].value == 1.0


def test_outcome_measures_compare_measure_and_grade_as_a_multiset():
    complications = [{"measure": "complications", "grade": "minor", "count": 3},
                     {"measure": "complications", "grade": "major", "count": 0}]
    gold = [record("1", outcomes=complications)]
    pred = {"1": record("1", outcomes=[{"measure": "complications", "grade": "any", "count": 3},
                                       {"measure": "complications", "grade": "major", "count": 0}])}
    m = score(gold, pred).prf["outcome_measures"]
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)


def test_numeric_facts_need_the_same_numbers_measure_and_grade():
    gold_outcomes = [{"measure": "clinical_success", "count": 48, "total": 50, "percent": 96},
                     {"measure": "pain_score", "scale": "vas", "before": 7.5, "after": 0.6}]
    assert len(numeric_facts(gold_outcomes)) == 3
    pred_outcomes = [{"measure": "clinical_success", "count": 48, "total": 50, "percent": 96.0},
                     {"measure": "pain_score", "scale": "vas", "before": 7.5, "after": 6.0}]
    share = score([record("1", outcomes=gold_outcomes)], {"1": record("1", outcomes=pred_outcomes)}).shares["numeric_facts"]
    assert (share.hits, share.total) == (2, 3)


def test_a_missing_prediction_is_an_error_not_a_zero():
    with pytest.raises(GoldFileError, match="gold PMID 7 has no article to compare with"):
        score([record("7")], {})


def test_a_broken_gold_line_is_named_by_file_and_line(tmp_path):
    gold = tmp_path / "part.jsonl"
    gold.write_text(json.dumps(record("1")) + "\n{not json\n")
    with pytest.raises(GoldFileError, match=r"part.jsonl, line 2: not JSON"):
        load_gold(gold)


@pytest.mark.parametrize("line, why", [
    ('{"pmid": "2", "relevant": true, "note": "caf\u00e9"}'.encode("latin-1"),
     r"line 2: not UTF-8 \(byte 45 of the line\)"),
    (b'{"pmid": "2", "relevant": true, "outcomes": "x"}', r"line 2: 'outcomes' must be a list of objects"),
    (b'{"pmid": "2", "relevant": true, "lesion_types": "chordoma"}', r"line 2: 'lesion_types' must be a list"),
    (b'{"pmid": "2", "relevant": true, "outcomes": [{"measure": "pain", "percent": "80"}]}',
     r"line 2: an outcome's 'percent' must be a number, not \"80\""),
    (b'{"pmid": "2", "relevant": true, "outcomes": [{"measure": ["pain"]}]}',
     r"line 2: an outcome's 'measure' and 'grade' must be strings"),
    (b'{"pmid": "2", "relevant": true, "outcomes": [{"measure": "pain", "count": 1e999}]}',
     r"line 2: an outcome's 'count' must be a number, not Infinity"),
], ids=["Latin-1", "outcomes a string", "a list field a string", "a number as text", "a measure a list",
        "an infinite count"])
def test_a_gold_line_of_the_wrong_shape_is_named_by_file_and_line(tmp_path, line, why):
    gold = tmp_path / "part.jsonl"
    gold.write_bytes(json.dumps(record("1")).encode() + b"\n" + line + b"\n")
    with pytest.raises(GoldFileError, match=rf"part.jsonl, {why}"):
        load_gold(gold)


def test_articles_are_found_beside_the_gold_file(tmp_path):
    gold = tmp_path / "part_bone.jsonl"
    gold.write_text("")
    with pytest.raises(GoldFileError, match="no article file beside"):
        sibling_articles(gold)
    (tmp_path / "part_bone.xml").write_text("<PubmedArticleSet/>")
    assert sibling_articles(gold).name == "part_bone.xml"
