"""The pipeline on the few real PubMed records near the topic (../shared/pubmed-real/on-topic).

Real abstracts written by other people are the best check that the rules were not
written for our own synthetic style. Skipped when the shared folder is absent.
"""

import pytest

from extractors.pipeline import extract
from ingest.pubmed_xml import iter_records

pytestmark = pytest.mark.real_data


@pytest.fixture
def records(pubmed_real, nlp):
    path = pubmed_real / "on-topic" / "four-records.xml"
    return {a.pmid: extract(a, nlp) for a in iter_records(path) if hasattr(a, "pmid")}


def test_cryoablation_of_a_bone_metastasis_is_relevant(records):
    record = records["33951570"]
    assert record["relevant"] is True
    assert record["lesion_types"] == ["bone_metastasis"]
    assert "embolization" in record["treatments"]
    assert "pain_palliation" in record["indications"]


def test_radiofrequency_ablation_of_bone_tumours_is_not(records):
    record = records["34094020"]
    assert record["relevant"] is False
    assert record["treatments"] == [] and record["outcomes"] == []


def test_a_review_naming_cryoablation_once_among_other_ablations_is_not(records):
    assert records["34023467"]["relevant"] is False
    assert records["34023467"]["lesion_types"] == ["bone_metastasis"]
