"""cryokb_negation: ConText triggers with scope, uncertainty and exclusion criteria."""

import pytest

from extractors.negation import validate_rules
from extractors.vocabulary import VocabularyError


def flags(nlp, text):
    doc = nlp(text)
    return {s.id_: (s._.negated, s._.uncertain, s._.excluded) for s in doc.spans["cryokb_concepts"]}


@pytest.mark.parametrize(
    "text, key",
    [
        ("No patient needed surgery afterwards.", "surgery"),
        ("The lesions were treated without cementoplasty.", "cementoplasty"),
        ("None of the patients had received radiotherapy.", "radiotherapy"),
        ("There was no evidence of residual osteoid osteoma.", "osteoid_osteoma"),
        ("Chondrosarcoma was ruled out on biopsy.", "bone_sarcoma"),
        ("Recurrent desmoid was not observed at one year.", "desmoid_tumor"),
        ("The margin was free of chondrosarcoma.", "bone_sarcoma"),
        # a trigger after its concept, and a concept that begins inside its trigger
        ("Vertebroplasty was not performed in any patient.", "cementoplasty"),
        ("Radiotherapy was not given to any patient with rib metastases.", "radiotherapy"),
        ("Surgery was not performed because all patients were treated by cryoablation alone.", "surgery"),
        ("Cementoplasty of the femur was not performed.", "cementoplasty"),
        ("Surgery was not required.", "surgery"),
        ("The planned cementoplasty was not performed.", "cementoplasty"),
        ("Chemotherapy was continued and embolization was not performed.", "embolization"),
        ("None had received prior systemic therapy or radiotherapy.", "radiotherapy"),
        ("Twenty patients with bone metastases and no prior radiotherapy underwent cryoablation.", "radiotherapy"),
        # a negative phrase before a comma still denies what follows it
        ("In none of the patients, surgery was required.", "surgery"),
        ("In no case, radiotherapy was necessary after cryoablation.", "radiotherapy"),
        ("In none of the treated patients, surgery was required.", "surgery"),
        ("In none of the patients with advanced disease, radiotherapy was needed.", "radiotherapy"),
    ],
)
def test_negated(nlp, text, key):
    negated, _uncertain, _excluded = flags(nlp, text)[key]
    assert negated


@pytest.mark.parametrize(
    "text, key",
    [
        ("Exclusion criteria were prior radiotherapy and pregnancy.", "radiotherapy"),
        ("Patients with multiple myeloma were excluded.", "myeloma"),
        ("Lesions treated by prior surgery were not included.", "surgery"),
    ],
)
def test_exclusion_criteria_count_as_negated(nlp, text, key):
    negated, _uncertain, excluded = flags(nlp, text)[key]
    assert negated and excluded


@pytest.mark.parametrize(
    "text, key",
    [
        ("A suspected osteoid osteoma of the tibia was frozen.", "osteoid_osteoma"),
        ("The lesion was possibly an enchondroma.", "enchondroma"),
        ("A chondrosarcoma could not be excluded.", "bone_sarcoma"),
    ],
)
def test_uncertain(nlp, text, key):
    negated, uncertain, _excluded = flags(nlp, text)[key]
    assert uncertain and not negated


@pytest.mark.parametrize(
    "text, key",
    [
        ("No major complications occurred and pain decreased in all eleven patients with bone metastases.", "bone_metastasis"),
        ("There was no recurrence, but three patients later needed radiotherapy.", "radiotherapy"),
        ("Patients who were not candidates for surgery were treated.", "surgery"),
        ("Without recurrence at two years, the desmoid tumour had shrunk.", "desmoid_tumor"),
        ("Osteoid osteoma of the femur was treated. No complication occurred.", "osteoid_osteoma"),
    ],
)
def test_scope_ends_at_window_terminations_and_sentences(nlp, text, key):
    negated, _uncertain, _excluded = flags(nlp, text)[key]
    assert not negated


def test_helper_terms_are_negated_too(nlp):
    doc = nlp("Microwave ablation was used without cryoablation.")
    assert [t._.negated for t in doc.spans["cryokb_terms"] if t.id_ == "cryo"] == [True]


def test_a_malformed_rule_is_named():
    rules = {"rules": [{"literal": "no", "category": "denied", "direction": "forward", "max_scope": 5}],
             "pseudo": [], "terminations": []}
    with pytest.raises(VocabularyError, match=r"rule 0 \('no'\)"):
        validate_rules(rules, "context_rules.json")


def test_a_negated_finding_in_patients_with_a_lesion_leaves_the_lesion_alone(nlp):
    negated, _u, _e = flags(nlp, "There were no complications in patients with spinal metastases.")["bone_metastasis"]
    assert not negated


@pytest.mark.parametrize("text", [
    "Cryoablation was combined with cementoplasty in patients with or without prior radiotherapy.",
    "Outcomes were compared in patients with and without prior radiotherapy.",
])
def test_with_or_without_negates_nothing(nlp, text):
    negated, _u, _e = flags(nlp, text)["radiotherapy"]
    assert not negated


def test_no_prior_treatment_negates_the_treatments_and_not_the_guidance_after_them(nlp):
    for text in ("Patients with no prior radiotherapy were treated under CT guidance.",
                 "Patients with no previous radiotherapy were treated under CT guidance."):
        found = flags(nlp, text)
        assert found["radiotherapy"][0] and not found["ct"][0]


@pytest.mark.parametrize("text, key", [
    # a backward trigger does not reach across the clause before it
    ("Under CT guidance, general anaesthesia was not required.", "ct"),
    ("After failed radiotherapy, general anaesthesia was not used.", "radiotherapy"),
    # a treatment given is not denied by who responded to it
    ("None had responded to prior radiotherapy.", "radiotherapy"),
    # "was not needed" denies the clause's subject, not what qualifies it
    ("Cementoplasty of the femur was not performed.", "femur"),
    ("Opioids after radiotherapy were not needed.", "radiotherapy"),
    ("Analgesics following surgery were not required.", "surgery"),
    ("After radiotherapy opioids were not needed.", "radiotherapy"),
    ("Chemotherapy was continued and embolization was not performed.", "systemic_therapy"),
    # it denies a treatment, for every patient, not a site beside it or a treatment given before
    ("Cementoplasty was not needed in 18 of 20 patients.", "cementoplasty"),
    ("CT-guided cryoablation was not performed in 2 patients.", "ct"),
    ("Femoral cementoplasty was not performed.", "femur"),
    ("Cementoplasty of the femur and tibia was not performed.", "tibia"),
    ("Spinal metastases for which surgery was not performed were treated with cryoablation.", "spine"),
    ("Further radiotherapy was not given because the tumour had progressed.", "radiotherapy"),
    # "no prior" denies the treatment it names, not one further on
    ("Patients showed no prior response to chemotherapy.", "systemic_therapy"),
])
def test_a_trigger_keeps_to_its_own_clause_and_meaning(nlp, text, key):
    assert flags(nlp, text)[key][0] is False


@pytest.mark.parametrize("text, key", [
    ("Patients with non-resectable desmoid tumours were treated.", "salvage"),
    ("Patients who were not candidates for surgery were treated with cryoablation.", "salvage"),
    ("Tumours that were not amenable to surgery were treated with cryoablation.", "salvage"),
    ("A desmoid that was not eligible for surgery was frozen.", "salvage"),
])
def test_a_concept_that_begins_with_its_trigger_word_is_not_negated_by_it(nlp, text, key):
    assert flags(nlp, text)[key][0] is False


@pytest.mark.parametrize("text, keys", [
    # past the trigger's scope ("no prior" reaches two tokens)
    ("Patients with no prior surgery or radiotherapy underwent cryoablation.", ["surgery", "radiotherapy"]),
    ("There was no prior surgery, radiotherapy or chemotherapy.", ["surgery", "radiotherapy", "systemic_therapy"]),
    # before a "was not needed", which denies the subject of its clause
    ("Radiotherapy, surgery and chemotherapy were not needed after cryoablation.",
     ["radiotherapy", "surgery", "systemic_therapy"]),
    ("Surgery and radiotherapy were not performed.", ["surgery", "radiotherapy"]),
    ("Surgery, radiotherapy or chemotherapy was not needed.", ["surgery", "radiotherapy", "systemic_therapy"]),
    ("Surgery or radiotherapy was not required in any patient.", ["surgery", "radiotherapy"]),
    ("Patients had prior chemotherapy, and surgery and radiotherapy were not performed.", ["surgery", "radiotherapy"]),
    # a denied list that is the subject of its sentence
    ("Patients with no prior surgery or radiotherapy were included.", ["surgery", "radiotherapy"]),
    ("Twelve patients with no previous surgery, embolization and/or radiotherapy were treated.",
     ["surgery", "embolization", "radiotherapy"]),
    ("None of the patients had prior surgery, radiotherapy, chemotherapy or embolization before cryoablation.",
     ["surgery", "radiotherapy", "systemic_therapy", "embolization"]),
    ("Patients with no prior surgery and radiotherapy were included.", ["surgery", "radiotherapy"]),
    ("Patients with no prior surgery, radiotherapy, and chemotherapy were included.",
     ["surgery", "radiotherapy", "systemic_therapy"]),
    ("Patients who had not received surgery, radiotherapy and chemotherapy were included.",
     ["surgery", "radiotherapy", "systemic_therapy"]),
    ("Patients with no history of surgery, radiotherapy, chemotherapy or embolization were included.",
     ["surgery", "radiotherapy", "systemic_therapy", "embolization"]),
    ("No patient received surgery, radiotherapy and chemotherapy, and two received embolization.",
     ["surgery", "radiotherapy", "systemic_therapy"]),
    # a list that opens its clause, after a determiner, a modifier or a fronted phrase
    ("The planned embolization and cementoplasty were not performed.", ["embolization", "cementoplasty"]),
    ("Both surgery and radiotherapy were not needed after cryoablation.", ["surgery", "radiotherapy"]),
    ("Unlike embolization, cementoplasty and radiotherapy were not needed.", ["cementoplasty", "radiotherapy"]),
    # a denial by a verb, after a phrase or of a need
    ("Patients did not require surgery, radiotherapy or embolization during follow-up.",
     ["surgery", "radiotherapy", "embolization"]),
    ("There was no need for surgery, radiotherapy or embolization after cryoablation.",
     ["surgery", "radiotherapy", "embolization"]),
    ("No patient treated with cryoablation required surgery, radiotherapy or chemotherapy.",
     ["surgery", "radiotherapy", "systemic_therapy"]),
    # a first item of several words that begins inside the trigger's reach
    ("Patients with no prior external beam radiotherapy or surgery were included.", ["radiotherapy", "surgery"]),
])
def test_every_item_of_a_denied_list_is_negated(nlp, text, keys):
    found = flags(nlp, text)
    assert [key for key in keys if not found[key][0]] == []


@pytest.mark.parametrize("text, key", [
    # a comma alone does not make a list, nor does a clause after one
    ("After surgery, radiotherapy was not needed.", "surgery"),
    ("Patients had no prior surgery, radiotherapy was then given.", "radiotherapy"),
    ("No patient required surgery, radiotherapy was given to two.", "radiotherapy"),
    ("No complications occurred, and radiotherapy was given for pain.", "radiotherapy"),
    ("No complications occurred, and radiotherapy and cementoplasty were given for pain.", "radiotherapy"),
    ("Patients had no prior radiotherapy, and surgery or embolization was offered.", "surgery"),
    ("Cryoablation was performed without cementoplasty, and radiotherapy or surgery was offered later.", "surgery"),
    ("Patients received no surgery, and radiotherapy and chemotherapy were given as needed.", "systemic_therapy"),
    # a list after a preposition is not the clause's subject
    ("After surgery and radiotherapy, opioids were not needed.", "surgery"),
    # a treatment given in a clause before the one that denies another
    ("Cryoablation was combined with radiotherapy and surgery was not needed.", "radiotherapy"),
    ("Patients received chemotherapy and radiotherapy was not needed.", "systemic_therapy"),
    ("Pain was controlled by cementoplasty and radiotherapy was not needed.", "cementoplasty"),
    ("After cryoablation, patients received radiotherapy and surgery was not required.", "radiotherapy"),
    ("Patients underwent cryoablation and cementoplasty, and radiotherapy was not needed.", "cementoplasty"),
    # a denial that reaches a list across other words says nothing of the list
    ("No complications occurred in the femur, tibia, humerus or rib.", "tibia"),
    ("Patients without pain relief had bone metastases, myeloma or soft tissue sarcoma.", "myeloma"),
    ("Cryoablation was performed without complications in the femur, tibia and humerus.", "humerus"),
    ("No complications occurred, and adjuvant radiotherapy was given to three patients.", "radiotherapy"),
    ("No surgery was needed and radiotherapy was given to two patients.", "radiotherapy"),
    ("No patient received surgery, radiotherapy and chemotherapy, and two received embolization.", "embolization"),
    ("Unlike embolization, cementoplasty and radiotherapy were not needed.", "embolization"),
    ("There were no major complications, radiotherapy was given to two patients.", "radiotherapy"),
    # a negation word that denies nothing
    ("Not all patients underwent surgery or radiotherapy before cryoablation.", "radiotherapy"),
    ("Without exception, radiotherapy was given after cryoablation.", "radiotherapy"),
    ("Not surprisingly, surgery was avoided in most patients.", "surgery"),
])
def test_a_denial_does_not_reach_past_its_list(nlp, text, key):
    assert flags(nlp, text)[key][0] is False
