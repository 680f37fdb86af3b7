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


def test_a_bone_sarcoma_treated_for_pain_is_palliated_not_cured(nlp):
    text = ("Cryoablation of a Ewing sarcoma of the rib\n\nA 19-year-old man with recurrent Ewing sarcoma of the "
            "seventh rib after chemotherapy and radiotherapy underwent percutaneous cryoablation for pain relief.")
    found = indications(nlp, text)
    assert "pain_palliation" in found and "curative" not in found
    assert "curative" in indications(nlp, "Cryoablation of chondrosarcoma\n\nTen patients with low-grade "
                                           "chondrosarcoma of the femur underwent cryoablation after curettage.")


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


def test_progression_after_radiotherapy_is_salvage(nlp):
    text = ("Cryoablation of oligometastatic bone disease\n\n"
            "Seven patients had received radiotherapy to the target lesion, which had since progressed.")
    assert "salvage" in indications(nlp, text)


def test_pain_despite_anti_inflammatory_drugs_is_not_salvage(nlp):
    text = ("Cryoablation of a painful eosinophilic granuloma\n\n"
            "Pain persisted despite nonsteroidal anti-inflammatory drugs.")
    assert "salvage" not in indications(nlp, text)


def test_a_recurrence_rate_is_not_a_recurrent_lesion(nlp):
    text = "Cryoablation of osteoid osteoma\n\nRecurrence rates in osteoid osteoma are low."
    assert "salvage" not in indications(nlp, text)


def test_mixed_benign_series_is_curative(nlp):
    text = ("Cryoablation of benign bone tumours in children\n\n"
            "Osteoid osteomas, chondroblastomas and one eosinophilic granuloma were treated.")
    assert "curative" in indications(nlp, text)


def test_refractory_to_a_treatment_is_salvage_but_to_opioids_is_not(nlp):
    treated = "Cryoablation of venous malformations\n\nAll were lesions refractory to sclerotherapy."
    assert "salvage" in indications(nlp, treated)
    analgesia = "Cryoablation of painful rib metastases\n\nPain was refractory to opioids in all patients."
    assert "salvage" not in indications(nlp, analgesia)


def test_persistent_pain_after_earlier_sclerotherapy_is_salvage(nlp):
    text = ("Cryoablation of intramuscular haemangioma\n\n"
            "All had persistent pain after two sessions of sclerotherapy.")
    assert "salvage" in indications(nlp, text)


def test_recurrence_after_the_compared_ablations_is_an_outcome(nlp):
    text = ("Cryoablation versus radiofrequency ablation for osteoid osteoma\n\n"
            "We compared pain recurrence after percutaneous cryoablation and radiofrequency ablation.")
    assert "salvage" not in indications(nlp, text)
