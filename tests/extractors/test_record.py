"""record.py: the evidence record exactly as ../shared/EVIDENCE_SCHEMA.md describes it."""

import pytest

from extractors.pipeline import extract

FIELD_ORDER = ["pmid", "relevant", "approach", "lesion_types", "anatomic_sites", "indications", "guidance",
               "treatments", "study_design", "n_patients", "n_lesions", "outcomes", "mentions"]
MENTION_KEYS = {"field", "key", "text", "start", "end", "sentence", "negated"}


@pytest.fixture(scope="module")
def osteoid_record(nlp, article):
    article = article(
        "CT-guided cryoablation of osteoid osteoma of the tibia and femur in young adults",
        "Twenty-two patients with osteoid osteoma of the tibia (n = 12) and femur underwent "
        "percutaneous cryoablation under CT guidance.",
        "Patients with prior radiofrequency ablation were excluded.",
        "Clinical success was achieved in 21 of 22 patients (95%). No major complications occurred.",
        pmid="90000042",
    )
    return article, extract(article, nlp)


def test_fields_in_schema_order(osteoid_record):
    _article, record = osteoid_record
    assert list(record) == FIELD_ORDER
    assert record["pmid"] == "90000042"


def test_list_fields_sorted_and_unique(osteoid_record):
    _article, record = osteoid_record
    assert record["relevant"] is True
    assert record["lesion_types"] == ["osteoid_osteoma"]
    assert record["anatomic_sites"] == ["femur", "tibia"]
    assert record["guidance"] == ["ct"]
    assert record["approach"] == ["percutaneous"]
    assert record["indications"] == ["curative"]


def test_an_exclusion_criterion_is_not_a_treatment_but_keeps_a_negated_mention(osteoid_record):
    _article, record = osteoid_record
    assert record["treatments"] == []
    negated = [m for m in record["mentions"] if m["key"] == "radiofrequency_ablation"]
    assert negated and all(m["negated"] for m in negated)


def test_every_mention_points_at_its_text_and_sentence(osteoid_record):
    article, record = osteoid_record
    text = article.text
    located = [m for m in record["mentions"] if m["start"] is not None]
    assert located
    for m in located:
        assert MENTION_KEYS <= set(m)
        assert text[m["start"]:m["end"]] == m["text"]
        assert m["text"] in m["sentence"]
        assert m["sentence"] in text


def test_every_reported_key_has_a_mention(osteoid_record):
    _article, record = osteoid_record
    mentioned = {(m["field"], m["key"]) for m in record["mentions"] if not m["negated"]}
    for field in ("approach", "lesion_types", "anatomic_sites", "indications", "guidance", "treatments"):
        for key in record[field]:
            assert (field, key) in mentioned


def test_an_inferred_indication_is_marked(osteoid_record):
    _article, record = osteoid_record
    curative = [m for m in record["mentions"] if m["field"] == "indications"]
    assert curative and curative[0]["inferred"] is True


def test_outcome_mentions_follow_the_outcomes(osteoid_record):
    _article, record = osteoid_record
    outcome_mentions = [m for m in record["mentions"] if m["field"] == "outcomes"]
    assert [m["key"] for m in outcome_mentions] == [o["measure"] for o in record["outcomes"]]


def test_an_off_topic_article_keeps_only_lesions_and_sites(nlp, article):
    off = article(
        "Cryoablation of pulmonary metastases from osteosarcoma",
        "Fourteen patients with lung metastases of osteosarcoma of the femur underwent CT-guided "
        "cryoablation with curative intent; local control was 80% at one year.",
    )
    record = extract(off, nlp)
    assert record["relevant"] is False
    assert record["lesion_types"] == ["bone_sarcoma"]
    assert record["anatomic_sites"] == ["femur"]
    for field in ("approach", "indications", "guidance", "treatments", "outcomes"):
        assert record[field] == []
    assert record["study_design"] is None and record["n_patients"] is None
    assert {m["field"] for m in record["mentions"]} <= {"lesion_types", "anatomic_sites"}


def test_intraoperative_cryosurgery_after_curettage(nlp, article):
    open_case = article(
        "Adjuvant treatment of giant cell tumour of bone",
        "After extended curettage, liquid nitrogen was poured into the cavity of the distal femur "
        "in 18 patients, and the cavity was packed with bone cement.",
    )
    record = extract(open_case, nlp)
    assert record["approach"] == ["intraoperative"]
    assert record["treatments"] == ["surgery"]
    assert record["guidance"] == []


def test_an_article_without_abstract(nlp, article):
    record = extract(article("Cryoablation of a sacral chordoma"), nlp)
    assert record["lesion_types"] == ["chordoma"]
    assert record["anatomic_sites"] == ["sacrum"]


def test_an_off_topic_article_reports_sites_only_where_a_lesion_is_named(nlp, article):
    lung = article(
        "Cryoablation of peripheral lung cancer",
        "Forty peripheral lung tumours were frozen under CT guidance.",
        "Two patients had a fracture of a rib, and in one the scalp was bruised.",
    )
    record = extract(lung, nlp)
    assert record["relevant"] is False
    assert record["anatomic_sites"] == []
