"""cryokb_study_design: publication types first, then the abstract's own words."""

import json

import cryokb_data
import pytest

from extractors.design import DESIGNS, decide_design
from extractors.pipeline import make_doc


def design(text, publication_types=()):
    decided = decide_design(text, publication_types)
    return decided[0] if decided else None


@pytest.mark.parametrize(
    "publication_types, expected",
    [
        (["Randomized Controlled Trial", "Journal Article"], "randomized_trial"),
        (["Systematic Review"], "systematic_review"),
        (["Meta-Analysis", "Review"], "systematic_review"),
        (["Practice Guideline"], "guideline"),
        (["Consensus Development Conference"], "guideline"),
        (["Case Reports", "Review"], "case_report"),
        (["Review", "Journal Article"], "review"),
        (["Clinical Trial", "Journal Article"], "prospective"),
    ],
)
def test_publication_types_decide(publication_types, expected):
    text = "Cryoablation of bone tumours.\n\nWe treated patients with painful lesions."
    assert design(text, publication_types) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Patients were randomised to cryoablation or radiofrequency ablation.", "randomized_trial"),
        ("In this randomized controlled trial, 60 patients were enrolled.", "randomized_trial"),
        ("A prospective non-randomised trial of 30 patients.", "prospective"),
        ("We prospectively enrolled 30 patients with bone metastases.", "prospective"),
        ("This retrospective study included 38 consecutive adults.", "retrospective"),
        ("A retrospective analysis of prospectively collected registry data of 40 patients.", "retrospective"),
        ("We report a case series of 12 patients with desmoid tumours.", "retrospective"),
        ("We report a case of a 45-year-old woman with a painful chondroblastoma.", "case_report"),
        ("A nine-year-old boy presented with night pain of the tibia.", "case_report"),
        ("Cryoablation was performed in a swine model of bone tumour.", "preclinical"),
        ("Ice ball dimensions were measured in a gel phantom and in ex vivo bovine bone.", "preclinical"),
        ("Ten human cadaveric femora were ablated with two freeze-thaw cycles.", "preclinical"),
        ("We performed a systematic review and meta-analysis of 15 studies (812 patients).", "systematic_review"),
        ("This consensus statement summarises the recommendations of an expert panel.", "guideline"),
        ("These standards of practice define thresholds for percutaneous ablation.", "guideline"),
        ("This narrative review summarises the current role of cryoablation in bone metastases.", "review"),
        # the Conventions: a series that names no design is retrospective
        ("Twenty patients with osteoid osteoma underwent cryoablation.", "retrospective"),
    ],
)
def test_cue_phrases(text, expected):
    assert design(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # a named standard used for grading is not a guideline
        ("Complications in 40 patients were graded according to the SIR standards of practice.", "retrospective"),
        # a call for trials is not a trial
        ("In 25 patients pain decreased. Larger randomized trials are needed.", "retrospective"),
        # animals named in the background of a clinical series
        ("We treated 20 consecutive patients; earlier swine studies had shown safety.", "retrospective"),
        # a review cited, a trial denied
        ("We retrospectively reviewed 20 patients. Pain response was 80%, consistent with a recent meta-analysis.",
         "retrospective"),
        ("No randomized controlled trial has compared cryoablation with radiotherapy. We report 20 consecutive "
         "patients.", "retrospective"),
        ("This was not a randomized study. Twenty patients were treated with cryoablation.", "retrospective"),
    ],
)
def test_cues_in_the_wrong_context_do_not_decide(text, expected):
    assert design(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("There were no differences between the randomized groups. Sixty patients were randomized to cryoablation or "
     "radiotherapy.", "randomized_trial"),
    ("No patients randomized to cryoablation had a fracture.", "randomized_trial"),
    # a meta-analysis of a comparison is one, title and abstract read together
    ("Cryoablation compared to surgery for desmoids: a meta-analysis\n\nWe pooled 12 studies.", "systematic_review"),
    ("Cryoablation compared with surgery\n\nThis meta-analysis pooled 12 studies of desmoid tumours.",
     "systematic_review"),
    ("Recent studies were pooled in a meta-analysis of desmoid cryoablation.", "systematic_review"),
    ("There was no heterogeneity in the meta-analysis of 12 studies.", "systematic_review"),
])
def test_a_veto_keeps_to_the_words_that_deny_or_cite_a_design(text, expected):
    assert design(text) == expected


def test_text_without_a_study_has_no_design():
    assert decide_design("Cryoablation of bone tumours.") is None


def test_the_cue_span_points_at_its_words():
    text = "This retrospective study included 38 patients."
    key, (start, end) = decide_design(text)
    assert key == "retrospective"
    assert text[start:end] == "retrospective"


def test_component_sets_key_and_evidence_span(nlp, article):
    doc = nlp(make_doc(nlp, article("Cryoablation of desmoid tumours", "We prospectively enrolled 30 patients.")))
    key, span = doc._.cryokb_study_design
    assert key == "prospective"
    assert span.text == "prospectively"
    doc = nlp(make_doc(nlp, article("Cryoablation", "A 60-year-old man.", publication_types=["Case Reports"])))
    key, _ = doc._.cryokb_study_design
    assert key == "case_report"


def test_keys_are_the_schema_keys():
    assert set(DESIGNS) == {
        "randomized_trial", "prospective", "retrospective", "case_report", "review",
        "systematic_review", "guideline", "preclinical",
    }


def test_a_cue_file_naming_an_unknown_design_is_refused(rules_file):
    from extractors import design as module

    data = json.loads(cryokb_data.path(module.DATA_FILE).read_text(encoding="utf-8"))
    data["study_design"]["publication_types"]["Editorial"] = "opinion"
    rules = rules_file(module.rules, module.DATA_FILE, data)
    with pytest.raises(module.DesignRulesError, match=r"design_cues.json: not schema designs: \['opinion'\]"):
        rules()
