"""cryokb_abbreviations: short forms defined in the text take their long form's concept."""

from extractors.abbreviations import is_short_form_candidate, matches_long_form


def spans(nlp, text):
    doc = nlp(text)
    return [(s.text, s.label_, s.id_) for s in doc.spans["cryokb_concepts"]]


def test_a_defined_short_form_is_resolved_where_it_is_used_alone(nlp):
    text = "Desmoid tumours (DT) of the trunk were frozen. Each DT shrank by half."
    assert ("DT", "lesion_types", "desmoid_tumor") in spans(nlp, text)


def test_the_same_letters_mean_what_this_document_defines(nlp):
    chondro = "Conventional chondrosarcoma (CS) was excluded. CS grade 1 was treated."
    assert ("CS", "lesion_types", "bone_sarcoma") in spans(nlp, chondro)
    other = "Cryoablation of the clivus was done with cone-beam CT. CS lesions were rare."
    assert not [s for s in spans(nlp, other) if s[0] == "CS"]


def test_a_local_definition_overrides_a_global_abbreviation(nlp):
    text = "Malignant melanoma (MM) metastases to bone were treated. MM responded."
    doc = nlp(text)
    assert ["MM", "melanoma", None, None] in doc._.cryokb_abbreviations
    assert not [s for s in doc.spans["cryokb_concepts"] if s.text == "MM"]


def test_cryo_terms_can_be_abbreviated_too(nlp):
    doc = nlp("Cryoablation (CA) is safe. CA of OO works.")
    assert [t.text for t in doc.spans["cryokb_terms"] if t.id_ == "cryo"].count("CA") == 1


def test_plural_short_forms(nlp):
    text = "Giant cell tumour of bone (GCTB) is aggressive. Two GCTBs were treated."
    assert ("GCTBs", "lesion_types", "giant_cell_tumor") in spans(nlp, text)


def test_schwartz_hearst_letter_match():
    assert matches_long_form("OO", "osteoid osteoma")
    assert matches_long_form("RFA", "radiofrequency ablation")
    assert matches_long_form("GCTB", "giant cell tumour of bone")
    assert not matches_long_form("MWA", "radiofrequency ablation")
    assert not matches_long_form("XY", "osteoid osteoma")


def test_short_form_candidates():
    assert is_short_form_candidate("OO")
    assert is_short_form_candidate("MRgFUS")
    assert not is_short_form_candidate("n")
    assert not is_short_form_candidate("30")
    assert not is_short_form_candidate("range")
