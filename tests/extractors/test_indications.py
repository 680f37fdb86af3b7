"""cryokb_indications: stated and inferred reasons for cryoablation."""


def indications(nlp, text):
    doc = nlp(text)
    return {key: inferred for key, _span, inferred in doc._.cryokb_indications}


def test_stated_cue_phrases(nlp):
    text = ("Cryoablation for pain palliation of bone metastases\n\n"
            "Patients unfit for surgery were treated with curative intent when oligometastatic.")
    found = indications(nlp, text)
    assert {"pain_palliation", "salvage", "curative", "local_tumor_control"} <= set(found)
    assert not any(found.values())


def test_osteoid_osteoma_is_curative_even_when_painful(nlp):
    text = "Cryoablation of painful osteoid osteoma\n\nAll nine children had night pain relieved by NSAIDs."
    found = indications(nlp, text)
    assert found == {"curative": True}


def test_salvage_after_a_failed_treatment(nlp):
    text = "Cryoablation of vascular malformations\n\nAll lesions had failed sclerotherapy twice."
    assert "salvage" in indications(nlp, text)


def test_salvage_for_recurrence_after_surgery(nlp):
    text = "Cryoablation of chordoma\n\nThe tumour recurred after resection and proton therapy."
    assert "salvage" in indications(nlp, text)


def test_recurrence_after_cryoablation_is_an_outcome_not_salvage(nlp):
    text = "Cryoablation of bone metastases\n\nLocal recurrence after cryoablation occurred in two patients."
    assert "salvage" not in indications(nlp, text)


def test_limb_salvage_surgery_is_not_salvage(nlp):
    text = "Cryoablation of a bone sarcoma\n\nThe alternative was limb salvage surgery."
    assert "salvage" not in indications(nlp, text)


def test_desmoid_infers_local_tumour_control(nlp):
    text = "Cryoablation of desmoid tumours\n\nTwenty tumours were frozen."
    assert indications(nlp, text).get("local_tumor_control") is True
