"""Coverage of the rule classes added for issue 3 ("Quality"): how results, guidance and
study populations are phrased across the literature, beyond the gold set's wording.

Each table row is one synthetic sentence (written for this file, not taken from any
abstract) and what EVIDENCE_SCHEMA.md says it must give, read from the schema's
Outcomes table and Conventions, not copied from the extractor's output.
"""

import pytest

from extractors.pipeline import extract

ON_TOPIC = "Percutaneous cryoablation of musculoskeletal tumours: a retrospective single-centre series"
OSTEOID_TITLE = "Percutaneous cryoablation of osteoid osteoma: a retrospective single-centre series"


@pytest.fixture
def record(nlp, article):
    """``record(sentence, title=..., publication_types=())`` -> the evidence record."""

    def run(sentence, title=ON_TOPIC, publication_types=()):
        return extract(article(title, sentence, publication_types=publication_types), nlp=nlp)

    return run


def _has(outcomes, expected):
    """Whether one outcome holds every key/value of ``expected``."""
    return any(all(o.get(k) == v for k, v in expected.items()) for o in outcomes)


# --- analgesic use written with a hyphenated equivalent dose ---------------------------

ANALGESICS = [
    ("Mean daily morphine-equivalent dose decreased from 60 mg to 20 mg at 4 weeks.", "decreased"),
    ("Oral morphine-equivalent doses were reduced in most patients after the procedure.", "decreased"),
    ("The opioid-equivalent dose remained unchanged at 3 months.", "unchanged"),
    ("Daily morphine equivalents increased in two patients with progressive disease.", "increased"),
]


@pytest.mark.parametrize("sentence, direction", ANALGESICS)
def test_hyphenated_equivalent_doses_are_analgesic_use(record, sentence, direction):
    assert _has(record(sentence)["outcomes"], {"measure": "analgesic_use", "direction": direction})


# --- returning pain with a qualifier is recurrence (osteoid osteoma) ---------------------

RECURRENT_PAIN = [
    ("Three children had persistent or recurrent night pain after the first session.", 3),
    ("Two patients had recurrent nocturnal pain and were retreated.", 2),
    ("Recurrent night-time pain occurred in one patient at 7 months.", 1),
]


@pytest.mark.parametrize("sentence, count", RECURRENT_PAIN)
def test_qualified_recurrent_pain_is_recurrence(record, sentence, count):
    outcomes = record(sentence, title=OSTEOID_TITLE)["outcomes"]
    assert _has(outcomes, {"measure": "recurrence", "count": count})


# --- technical success phrased as ice-ball coverage or planned ablations completed -------

TECHNICAL = [
    ("Complete coverage of the tumour by the ice ball was obtained in 18 of 19 patients (95%).",
     {"count": 18, "total": 19, "percent": 95}),
    ("Complete coverage of the target lesion was achieved in 40 of 42 procedures (95%).",
     {"count": 40, "total": 42, "percent": 95}),
    ("The ice ball completely encompassed the tumor in 27 of 28 ablations (96%).",
     {"count": 27, "total": 28, "percent": 96}),
    ("The planned ablations were completed in 30 of 31 sessions (97%).",
     {"count": 30, "total": 31, "percent": 97}),
]


@pytest.mark.parametrize("sentence, facts", TECHNICAL)
def test_coverage_and_completion_are_technical_success(record, sentence, facts):
    assert _has(record(sentence)["outcomes"], {"measure": "technical_success", **facts})


# --- pain response phrased as "less pain"; a threshold is not a rate ----------------------

PAIN_RESPONSE = [
    ("Nine of 12 patients (75%) reported less pain at 4 weeks.", {"count": 9, "total": 12, "percent": 75}),
    ("Five patients reported less back or leg pain after treatment.", {"count": 5}),
    ("Reduced pain was noted in 20 of 25 patients (80%).", {"count": 20, "total": 25, "percent": 80}),
]


@pytest.mark.parametrize("sentence, facts", PAIN_RESPONSE)
def test_less_pain_is_pain_response(record, sentence, facts):
    assert _has(record(sentence)["outcomes"], {"measure": "pain_response", **facts})


THRESHOLDS = [
    ("Pain improvement of 50% or more was achieved in 14 of 20 patients (70%).", 50),
    ("A pain reduction of 30% and above was recorded in 11 of 16 patients (69%).", 30),
]


@pytest.mark.parametrize("sentence, threshold", THRESHOLDS)
def test_a_threshold_is_not_reported_as_a_rate(record, sentence, threshold):
    outcomes = record(sentence)["outcomes"]
    responses = [o for o in outcomes if o["measure"] == "pain_response"]
    assert len(responses) == 1
    assert responses[0].get("percent") != threshold


# --- complications named by grade or by the event itself ---------------------------------

COMPLICATIONS = [
    ("Grade 1-2 events were recorded in 4 patients (10%).", {"grade": "minor", "count": 4, "percent": 10}),
    ("Grade 3 toxicity occurred in two patients.", {"grade": "major", "count": 2}),
    ("Pneumothorax occurred after three of 40 sessions (8%).", {"grade": "any", "count": 3, "total": 40, "percent": 8}),
    ("Transient sensory neuropathy developed in two patients.", {"grade": "any", "count": 2}),
    ("Postoperative fractures were observed in 3 patients (5%).", {"grade": "any", "count": 3, "percent": 5}),
    ("Skin burns occurred in four patients; all healed with local care.", {"grade": "any", "count": 4}),
]


@pytest.mark.parametrize("sentence, facts", COMPLICATIONS)
def test_graded_and_named_events_are_complications(record, sentence, facts):
    assert _has(record(sentence)["outcomes"], {"measure": "complications", **facts})


NOT_COMPLICATIONS = [
    "No fractures occurred.",
    "No infections were observed during follow-up.",
    "Patients with an impending pathological fracture were excluded.",
    "Skeletal-related events occurred in 12 patients during follow-up.",
]


@pytest.mark.parametrize("sentence", NOT_COMPLICATIONS)
def test_an_event_named_without_a_count_is_no_outcome(record, sentence):
    assert not _has(record(sentence)["outcomes"], {"measure": "complications"})


def test_minor_and_major_split_goes_to_each_grade(record):
    sentence = "Complications followed 6 of 50 procedures (12%): five were minor and one was major."
    outcomes = record(sentence)["outcomes"]
    assert _has(outcomes, {"measure": "complications", "grade": "minor", "count": 5})
    assert _has(outcomes, {"measure": "complications", "grade": "major", "count": 1})
    assert not _has(outcomes, {"measure": "complications", "grade": "minor", "count": 1})


# --- the study population ------------------------------------------------------------------

POPULATION = [
    ("Our cohort comprised thirty-two adults with painful spinal metastases. "
     "In a previous series of 45 patients treated with radiotherapy, pain relief was slower.", 32),
    ("Nineteen patients had received chemotherapy before referral. "
     "The study population consisted of 27 patients (15 women; median age 58 years).", 27),
    ("Twelve patients had previously received sclerotherapy. Eighteen patients (10 women) with 21 "
     "venous malformations of the thigh and calf underwent 25 sessions.", 18),
]


@pytest.mark.parametrize("sentence, n", POPULATION)
def test_whole_cohort_is_the_population(record, sentence, n):
    assert record(sentence)["n_patients"] == n


POOLED = [
    ("Nine studies (two prospective, seven retrospective) with 214 patients met the inclusion criteria.", 214),
    ("Studies of at least five patients were eligible. In all, 187 patients were included.", 187),
]


@pytest.mark.parametrize("sentence, n", POOLED)
def test_pooled_population_of_a_systematic_review(record, sentence, n):
    title = "Percutaneous cryoablation of bone metastases: a systematic review and meta-analysis"
    assert record(sentence, title=title, publication_types=("Systematic Review",))["n_patients"] == n


# --- guidance named as the standard modality for placing probes ---------------------------

GUIDANCE = [
    ("CT is the preferred modality for probe placement and ice-ball monitoring.", "ct"),
    ("Ultrasound is the standard technique for cryoprobe positioning in superficial tumours.", "ultrasound"),
    ("MRI is routinely used for cryoprobe placement near the sciatic nerve.", "mri"),
    ("Probe placement was performed with ultrasound and CT.", "ultrasound"),
    ("The cryoprobes were positioned with sonography in every case.", "ultrasound"),
    ("Needle insertion was confirmed with CT before freezing.", "ct"),
]


@pytest.mark.parametrize("sentence, key", GUIDANCE)
def test_standard_modality_for_probe_placement_is_guidance(record, sentence, key):
    assert key in record(sentence)["guidance"]


FOLLOW_UP = [
    "MRI is the standard modality for follow-up after cryoablation of the femur.",
    "Cryoprobes were placed in the tumour of the femur, and MRI at 6 months showed no residual disease.",
]


@pytest.mark.parametrize("sentence", FOLLOW_UP)
def test_follow_up_modality_is_not_guidance(record, sentence):
    assert "mri" not in record(sentence)["guidance"]


# --- sites and lesions that the sentence sets aside ----------------------------------------

SET_ASIDE = [
    ("Weakness of ankle plantar flexion after cryoablation of a sacral chordoma resolved.", "anatomic_sites", "foot", "sacrum"),
    ("Cryoablation of non-spinal osteoid osteomas of the femur was effective.", "anatomic_sites", "spine", "femur"),
    ("Bone lesions other than osteoid osteoma, such as chondroblastoma, were treated with cryoablation.",
     "lesion_types", "osteoid_osteoma", "chondroblastoma"),
]


@pytest.mark.parametrize("sentence, field, absent, present", SET_ASIDE)
def test_set_aside_concepts_are_not_reported(record, sentence, field, absent, present):
    values = record(sentence)[field]
    assert absent not in values
    assert present in values


# --- instruments and wordings of pain, quality of life, analgesics, symptom freedom -------

INSTRUMENTS = [
    ("Mean visual analogue pain scale decreased from 7.8 to 2.1 at 1 month.",
     {"measure": "pain_score", "scale": "vas", "before": 7.8, "after": 2.1}),
    ("The visual analog pain scale score fell from 6 to 1 at 3 months.",
     {"measure": "pain_score", "scale": "vas", "before": 6, "after": 1}),
    ("PedsQL scores improved after treatment.", {"measure": "quality_of_life", "direction": "improved"}),
    ("Global health status on the QLQ-C30 improved at 6 months.", {"measure": "quality_of_life", "direction": "improved"}),
    ("FACT-BP scores were unchanged at 3 months.", {"measure": "quality_of_life", "direction": "unchanged"}),
    ("Eight patients discontinued codeine within 2 weeks.", {"measure": "analgesic_use", "direction": "decreased"}),
    ("Daily pregabalin doses were tapered after the procedure.", {"measure": "analgesic_use", "direction": "decreased"}),
]


@pytest.mark.parametrize("sentence, expected", INSTRUMENTS)
def test_instruments_and_drugs_are_read(record, sentence, expected):
    assert _has(record(sentence)["outcomes"], expected)


def test_symptom_free_is_clinical_success(record):
    outcomes = record("Symptom-free status was reached in 18 of 20 patients (90%).", title=OSTEOID_TITLE)["outcomes"]
    assert _has(outcomes, {"measure": "clinical_success", "count": 18, "total": 20, "percent": 90})


# --- prior treatments named by their modern names ------------------------------------------

TREATMENTS = [
    ("Recurrent sacral chordoma after resection and carbon-ion therapy was treated with cryoablation.", "radiotherapy"),
    ("Nodules that progressed after proton beam therapy were treated with cryoablation.", "radiotherapy"),
    ("Desmoid tumours progressing on antiestrogen therapy were treated with cryoablation.", "systemic_therapy"),
    ("Bone metastases of breast cancer treated with aromatase inhibitors underwent cryoablation.", "systemic_therapy"),
]


@pytest.mark.parametrize("sentence, key", TREATMENTS)
def test_prior_treatments_are_named(record, sentence, key):
    assert key in record(sentence)["treatments"]


def test_symptom_free_survival_is_not_clinical_success(record):
    outcomes = record("Symptom-free survival was 70% at 2 years.", title=OSTEOID_TITLE)["outcomes"]
    assert not _has(outcomes, {"measure": "clinical_success"})


# --- clinical success phrased as a successful treatment or a symptom-free patient ---------

CLINICAL = [
    ("Treatment succeeded in 14 of 16 patients (88%).", {"count": 14, "total": 16, "percent": 88}),
    ("The treatment was successful in 9 of 10 children (90%).", {"count": 9, "total": 10, "percent": 90}),
    ("At 12 months the patient was asymptomatic, with no residual nidus on CT.", {}),
    ("She remains symptom-free two years after the procedure.", {}),
    ("All patients had become completely asymptomatic by 6 weeks.", {}),
]


@pytest.mark.parametrize("sentence, facts", CLINICAL)
def test_successful_treatment_and_no_symptoms_are_clinical_success(record, sentence, facts):
    outcomes = record(sentence, title=OSTEOID_TITLE)["outcomes"]
    assert _has(outcomes, {"measure": "clinical_success", **facts})


def test_asymptomatic_as_an_entry_criterion_is_not_clinical_success(record):
    outcomes = record("Patients who were asymptomatic were not treated.", title=OSTEOID_TITLE)["outcomes"]
    assert not _has(outcomes, {"measure": "clinical_success"})


# --- imaging that watches the ice ball, or supplements the main modality, is guidance -------

GUIDANCE = [
    ("Cryoprobes were placed under fluoroscopy and CT was used to monitor the ice ball.", {"ct", "fluoroscopy"}),
    ("Probes were positioned under CT guidance, supplemented by ultrasound for superficial lesions.",
     {"ct", "ultrasound"}),
    ("Ablations were performed percutaneously under 1.5-T MRI guidance in all patients.", {"mri"}),
    ("Follow-up CT at 3 months showed no residual tumour; probes had been placed under ultrasound guidance.",
     {"ultrasound"}),
]


@pytest.mark.parametrize("sentence, modalities", GUIDANCE)
def test_monitoring_and_supplementary_imaging_is_guidance(record, sentence, modalities):
    assert set(record(sentence)["guidance"]) == modalities
