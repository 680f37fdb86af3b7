"""cryokb_sample_size: the study population and its lesions, as the Conventions count them."""

import pytest

from extractors.pipeline import make_doc


@pytest.fixture
def population(nlp, article):
    """``population(text, types)`` -> (n_patients, n_lesions) values of a synthetic article."""

    def run(text, publication_types=()):
        doc = nlp(make_doc(nlp, article("Cryoablation of musculoskeletal tumours", text, publication_types=publication_types)))
        patients, lesions = doc._.cryokb_n_patients, doc._.cryokb_n_lesions
        return (patients[0] if patients else None, lesions[0] if lesions else None)

    return run


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Fifty-four tumours in 50 patients were treated with cryoablation.", (50, 54)),
        ("A total of 23 patients with 31 lesions underwent cryoablation.", (23, 31)),
        ("We reviewed 40 consecutive patients treated between 2012 and 2020.", (40, None)),
        ("Twenty-two patients (n = 22) with desmoid tumours were included.", (22, None)),
        ("Patients (n = 23) with painful bone metastases were enrolled.", (23, None)),
        # the schema's example: a parenthesised n is a subgroup
        ("Fifty patients with osteoid osteoma of the femur (n = 30) and tibia underwent cryoablation.", (50, None)),
        # sessions and procedures are not lesions
        ("Eighteen patients with 21 desmoid tumours underwent 27 cryoablation sessions.", (18, 21)),
        ("Twelve patients underwent 15 procedures.", (12, None)),
        # a subgroup of results does not replace the population
        ("Thirty patients were treated. Clinical success was achieved in 27 patients.", (30, None)),
        ("Nine patients with 13 nodules were treated. In the seven patients with pain, VAS decreased.", (9, 13)),
        # an enrolment verb after a parenthesis and a lesion phrase still marks the population
        ("Between 2017 and 2023, 29 patients (17 women; mean age 66 years) with 34 painful metastases of the "
         "spine (n = 21) or acetabulum (n = 13) were treated. Eleven patients received radiotherapy afterwards.", (29, 34)),
        # lesions named by an abbreviation
        ("Twenty-seven patients (21 women) with 29 DTs of the abdominal wall were treated.", (27, 29)),
        # patients and lesions written as one ratio
        ("We treated 9 patients/12 lesions with CT-guided cryoablation.", (9, 12)),
        # only a subgroup of lesions is counted: no lesion count
        ("Twenty-three children were treated. Three cysts persisted and were curetted.", (23, None)),
        # "in N patients" after a lesion count or a procedure verb is the population, not a subgroup
        ("Nineteen schwannomas in 17 patients were treated with cryoablation. One patient developed a "
         "transient foot drop.", (17, 19)),
        ("Cryoablation was performed in 23 patients with painful bone metastases. One patient had a haematoma.",
         (23, None)),
        ("Thirty-one desmoid tumours in 27 patients were treated. Three patients required a second session.", (27, 31)),
        ("Nineteen schwannomas of the thigh and arm in 17 patients were treated. One patient developed a foot drop.",
         (17, 19)),
        ("We analysed 48 procedures in 44 patients with bone tumours. Two patients had a nerve injury.", (44, None)),
        # a non-breaking space between a count and its noun
        ("Twenty\u00a0patients underwent cryoablation of desmoid tumours. Local progression occurred in 3 patients.",
         (20, None)),
    ],
)
def test_stated_populations(population, text, expected):
    assert population(text) == expected


def test_a_number_ending_the_title_is_not_the_patients_the_abstract_begins_with(nlp, article):
    doc = nlp(make_doc(nlp, article("Cryoablation of painful bone metastases: interim report of phase 2",
                                    "Patients with painful bone metastases of the pelvis were treated with CT-guided "
                                    "percutaneous cryoablation.")))
    assert not doc._.cryokb_n_patients


def test_a_count_of_hospitals_is_not_a_count_of_patients(population):
    assert population("Cryoablation was performed in 3 university hospitals in patients with bone metastases.") == \
        (None, None)


def test_patients_excluded_from_the_analysis_are_subtracted(population):
    text = "Sixty-eight patients were enrolled; six were excluded from the analysis, leaving 62 patients with 71 tumours."
    assert population(text) == (62, 71)


def test_an_exclusion_without_the_number_left_is_subtracted(population):
    text = "Forty patients were enrolled. Four patients were excluded because of missing imaging."
    assert population(text)[0] == 36


def test_losses_to_follow_up_do_not_reduce_the_population(population):
    text = "Forty patients were enrolled. Three patients were lost to follow-up."
    assert population(text)[0] == 40


@pytest.mark.parametrize("text, total", [
    ("Twenty patients treated with cryoablation and 25 treated with radiofrequency ablation were compared.", 45),
    # the second arm's verb left out, or "had"
    ("In this comparative study, 40 patients underwent cryoablation and 35 microwave ablation.", 75),
    ("Thirty patients had cryoablation and 40 had radiofrequency ablation.", 70),
    # a first arm as large as the others together is still an arm, not their total
    ("Twenty patients underwent cryoablation, 12 underwent radiofrequency ablation and 8 underwent microwave ablation.",
     40),
])
def test_a_comparative_study_counts_all_arms(population, text, total):
    assert population(text)[0] == total


@pytest.mark.parametrize("text", [
    "Fifty patients were included: 20 underwent cryoablation and 30 underwent surgical resection.",
    "Of the 50 patients, 20 were treated with cryoablation and 30 with surgery.",
])
def test_a_total_stated_before_its_arms_is_not_added_to_them(population, text):
    assert population(text)[0] == 50


def test_a_systematic_review_counts_its_pooled_patients(population):
    text = (
        "We searched three databases. Fifteen studies comprising a total of 812 patients were included. "
        "The largest series included 120 patients."
    )
    assert population(text, ["Systematic Review"])[0] == 812


def test_a_narrative_review_has_no_population(population):
    text = "This review discusses cryoablation. In one series of 50 patients, local control was 80%."
    assert population(text, ["Review"]) == (None, None)


def test_a_case_report_has_one_patient(population):
    text = "We report a case of a 45-year-old woman with a painful osteoid osteoma of the talus."
    assert population(text, ["Case Reports"]) == (1, None)


def test_an_animal_study_has_no_patients(population):
    text = "Twelve swine underwent cryoablation of the femur in an animal model."
    assert population(text) == (None, None)


def test_the_evidence_span_covers_the_count(nlp, article):
    doc = nlp(make_doc(nlp, article("Cryoablation", "A total of 23 patients with 31 lesions underwent cryoablation.")))
    value, span = doc._.cryokb_n_patients
    assert value == 23 and "23 patients" in span.text
    value, span = doc._.cryokb_n_lesions
    assert value == 31 and "31 lesions" in span.text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Fifty-two patients were enrolled; four withdrew before treatment and three were excluded from the "
         "analysis, leaving 45.", 45),
        ("We enrolled 61 patients. Five withdrew consent and two were excluded from the analysis because of "
         "missing imaging, leaving 54 for the analysis of pain.", 54),
        ("Of 47 patients treated, two died before follow-up imaging and three were excluded, leaving 42.", 42),
        ("Seventy patients were randomised; six withdrew and were excluded from the analysis, leaving 64 "
         "(32 in each arm).", 64),
    ],
)
def test_the_number_left_after_exclusions_is_analysed_without_a_noun(population, text, expected):
    assert population(text)[0] == expected


def test_a_bare_remaining_number_without_exclusions_is_not_a_population(population):
    text = "Forty patients with 52 tumours were treated; 12 tumours were in the spine and the remaining 28."
    assert population(text)[0] == 40


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The cohort comprised 25 women and 15 men with painful bone metastases.", 40),
        ("Twelve men and 9 women with desmoid tumours underwent cryoablation.", 21),
        ("Eleven boys and seven girls with osteoid osteoma underwent CT-guided cryoablation.", 18),
        # a stated total keeps its own value
        ("Thirty-eight patients (25 women and 12 men) were treated with cryoablation.", 38),
        # two counts of the same sex are not summed
        ("Fourteen women with breast cancer and 6 women with myeloma underwent cryoablation.", 14),
    ],
)
def test_a_population_stated_by_sex_is_added_up(population, text, expected):
    assert population(text)[0] == expected
