"""cryokb_concepts: vocabulary matches, judged in context."""

import pytest


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Cryoablation of an osteoid osteoma of the tibia.", {("lesion_types", "osteoid_osteoma"), ("anatomic_sites", "tibia")}),
        ("Two OSTEOID OSTEOMAS were frozen.", {("lesion_types", "osteoid_osteoma")}),
        ("Aggressive vertebral haemangiomas were treated.", {("lesion_types", "hemangioma"), ("anatomic_sites", "spine")}),
        ("A low-grade chondrosarcoma of the humerus.", {("lesion_types", "bone_sarcoma"), ("anatomic_sites", "humerus")}),
        ("Atypical cartilaginous tumours of long bones.", {("lesion_types", "bone_sarcoma")}),
        ("A plasmacytoma of the sternum.", {("lesion_types", "myeloma"), ("anatomic_sites", "sternum")}),
        ("Aggressive fibromatosis of the gluteal muscles.", {("lesion_types", "desmoid_tumor"), ("anatomic_sites", "trunk_soft_tissue")}),
        ("A schwannoma of the thigh.", {("lesion_types", "nerve_sheath_tumor"), ("anatomic_sites", "extremity_soft_tissue")}),
        ("Painful metastases to the iliac bone.", {("lesion_types", "bone_metastasis"), ("anatomic_sites", "pelvis"), ("indications", "pain_palliation")}),
        ("Metastatic deposits in the vastus lateralis muscle.", {("lesion_types", "soft_tissue_metastasis"), ("anatomic_sites", "extremity_soft_tissue")}),
    ],
)
def test_lesions_and_sites(concepts, text, expected):
    assert expected <= concepts(text)


@pytest.mark.parametrize(
    "text, site",
    [
        ("Lesions of the femoral neck.", "femur"),
        ("A tibial lesion.", "tibia"),
        ("Vertebral lesions.", "spine"),
        ("An iliac lesion.", "pelvis"),
        ("A tumour of the coccyx.", "sacrum"),
        ("A desmoid of the forearm soft tissue.", "extremity_soft_tissue"),
        ("A lesion of the distal radius.", "forearm"),
        ("A mass in the gluteal region.", "trunk_soft_tissue"),
        ("An osteoid osteoma of the medial malleolus.", "tibia"),
        ("An osteoid osteoma of the talus.", "foot"),
        ("A metastasis at T12-L1.", "spine"),
        ("A metastasis at S2.", "sacrum"),
    ],
)
def test_adjectives_and_synonyms_map_to_sites(concepts, text, site):
    assert ("anatomic_sites", site) in concepts(text)


def test_a_forearm_soft_tissue_lesion_is_not_a_forearm_bone_one(concepts):
    found = concepts("A venous malformation of the forearm soft tissue.")
    assert ("anatomic_sites", "forearm") not in found


@pytest.mark.parametrize(
    "text",
    [
        "Access was through the femoral artery.",
        "A femoral nerve block was given.",
        "A 22-gauge spinal needle was used.",
        "The ablation zone radius was 2 cm.",
        "On the other hand, costs were lower.",
        "Sagittal T1-weighted images were obtained.",
        "He had thigh pain for a year.",
        "One patient had a foot drop.",
        "The ice ball radius was measured on CT.",
        "Cryoablation of 5 tumours of the renal pelvis.",
    ],
)
def test_site_words_that_are_not_sites(concepts, text):
    assert not {k for f, k in concepts(text) if f == "anatomic_sites"}


def test_morton_neuroma_is_not_a_nerve_sheath_tumour(concepts):
    assert ("lesion_types", "nerve_sheath_tumor") not in concepts("Cryoablation of Morton neuroma.")
    assert ("lesion_types", "nerve_sheath_tumor") not in concepts("Cryoablation of Morton's neurinoma of the foot.")
    assert ("lesion_types", "nerve_sheath_tumor") in concepts("Cryoablation of a neurinoma of the thigh.")
    assert ("lesion_types", "nerve_sheath_tumor") in concepts("A patient's neurinoma of the tibial nerve was frozen.")


def test_a_cue_word_ending_the_text_is_read_without_error(concepts):
    assert ("guidance", "ct") in concepts("Probes were placed under CT guidance after")


@pytest.mark.parametrize("text, site", [
    ("Probes lay along the posterior face of the vertebral body of T12.", "spine"),
    ("An osteoid osteoma lay on the anterior face of the tibia.", "tibia"),
    ("An osteoid osteoma on the medial face of the tibia was frozen.", "tibia"),
    ("A metastasis in the neck of the femur was frozen.", "femur"),
    ("A chondroblastoma near the neck of the humerus was treated with cryoablation.", "humerus"),
    ("An osteoid osteoma of the neck of the fibula was frozen.", "fibula"),
    ("A metastasis of the neck of the rib was treated with cryoablation.", "rib"),
])
def test_a_part_of_a_bone_named_like_a_region_is_the_bone(concepts, text, site):
    sites = {k for f, k in concepts(text) if f == "anatomic_sites"}
    assert site in sites and "head_neck" not in sites


@pytest.mark.parametrize("text", [
    "A desmoid tumour in the neck of a 12-year-old girl was frozen.",
    "A venous malformation of the lateral face was treated with cryoablation.",
    "Venous malformations of the face of 9 children were frozen.",
])
def test_the_head_and_neck_named_in_words_that_also_name_parts_of_bones(concepts, text):
    assert ("anatomic_sites", "head_neck") in concepts(text)


def test_palliative_radiotherapy_before_cryoablation_is_not_why_it_was_done(concepts):
    found = concepts("Metastases that progressed after palliative radiotherapy were treated by cryoablation.")
    assert ("indications", "pain_palliation") not in found and ("treatments", "radiotherapy") in found


@pytest.mark.parametrize(
    "text, key",
    [
        ("CT-guided cryoablation was performed.", "ct"),
        ("Probes were placed under CT guidance.", "ct"),
        ("Placement used CT fluoroscopy.", "ct"),
        ("The ice ball was monitored with MRI.", "mri"),
        ("Under MR guidance, two probes were placed.", "mri"),
        ("Ultrasound-guided cryoablation of the lesion.", "ultrasound"),
        ("Cone-beam CT guidance with needle navigation.", "cbct"),
        ("Probes were positioned under fluoroscopy.", "fluoroscopy"),
        ("Cryoablation was performed under CT (n = 12) or MRI (n = 3) guidance.", "mri"),
        ("FDG PET/CT-guided cryoablation.", "pet_ct"),
        # the first modality's count lies between the cue and the second modality
        ("Guidance was by CT in 23 patients and by ultrasound combined with CT in five.", "ultrasound"),
        ("Probe placement was guided by CT in 14 cases and by MRI in 3.", "mri"),
        ("Cryoprobes were positioned with CT in 9 and with ultrasound in 2 procedures.", "ultrasound"),
        # a time or place after the cue is no follow-up examination
        ("Cryoablation was performed under MRI guidance at 1.5 T.", "mri"),
        ("Cryoablation was performed under CT guidance at 2 centres.", "ct"),
        ("CT monitoring at 5 and 10 minutes of freezing showed the ice ball.", "ct"),
        ("CT-guided treatment with cryoablation was performed.", "ct"),
        ("Patients were treated with cryoablation using CT guidance within 24 hours of embolization.", "ct"),
        ("MRI monitoring of the ice ball was used.", "mri"),
    ],
)
def test_imaging_that_guided_the_procedure(concepts, text, key):
    assert ("guidance", key) in concepts(text)


@pytest.mark.parametrize(
    "text",
    [
        "The lesion was diagnosed on CT.",
        "MRI at follow-up showed no residual tumour.",
        "Response was assessed on contrast-enhanced MRI every 6 months.",
        "CT-guided biopsy confirmed the diagnosis.",
        # a count does not carry a cue across a sentence that has none
        "Recurrence was found in 4 patients and by MRI in two more.",
        # a cue word that names a follow-up examination
        "Contrast-enhanced MRI was used to monitor treatment response at 3, 6 and 12 months.",
        "MRI monitoring of response after cryoablation of desmoid tumours.",
        "CT control at 1 month showed complete devascularisation.",
        "CT control after cryoablation of sacral metastases.",
        "CT control at 1, 3 and 6 months showed shrinkage.",
        "MRI control at 3-month follow-up showed no residual tumour.",
    ],
)
def test_imaging_for_diagnosis_or_follow_up_is_not_guidance(concepts, text):
    assert not {k for f, k in concepts(text) if f == "guidance"}


def test_mr_guided_focused_ultrasound_is_hifu_not_mri_guidance(concepts):
    found = concepts("MR-guided focused ultrasound was the alternative.")
    assert ("treatments", "hifu") in found
    assert ("guidance", "mri") not in found


def test_cement_after_open_curettage_is_surgery(concepts):
    found = concepts("After curettage the cavity was packed with bone cement.")
    assert ("treatments", "surgery") in found
    assert ("treatments", "cementoplasty") not in found


def test_percutaneous_cement_is_cementoplasty(concepts):
    found = concepts("Cryoablation was followed by percutaneous cement injection.")
    assert ("treatments", "cementoplasty") in found


@pytest.mark.parametrize(
    "text, key",
    [
        ("Patients had failed radiofrequency ablation (RFA).", "radiofrequency_ablation"),
        ("Stereotactic body radiotherapy was the alternative.", "radiotherapy"),
        ("Vertebroplasty was added.", "cementoplasty"),
        ("Zoledronic acid was continued.", "bone_modifying_agents"),
        ("Transarterial embolisation preceded ablation.", "embolization"),
        ("Sclerotherapy with polidocanol had failed.", "sclerotherapy"),
        ("Wide excision was declined.", "surgery"),
    ],
)
def test_treatments(concepts, text, key):
    assert ("treatments", key) in concepts(text)


def test_concept_spans_carry_field_and_key(nlp):
    doc = nlp("Cryoablation of a desmoid tumour of the abdominal wall.")
    spans = {(s.label_, s.id_, s.text) for s in doc.spans["cryokb_concepts"]}
    assert ("lesion_types", "desmoid_tumor", "desmoid tumour") in spans
    assert ("anatomic_sites", "abdominal_wall", "abdominal wall") in spans
    assert {s.id_ for s in doc.spans["cryokb_terms"]} >= {"cryo"}


def test_guidance_of_an_earlier_procedure_is_not_guidance(concepts):
    found = concepts("Five had pain after previous CT-guided radiofrequency ablation; cryoablation used MRI guidance.")
    assert ("guidance", "ct") not in found
    assert ("guidance", "mri") in found


def test_imaging_named_before_its_use_for_placement(concepts):
    found = concepts("Ultrasound and cone-beam CT were used for probe placement.")
    assert {("guidance", "ultrasound"), ("guidance", "cbct")} <= found


def test_the_ice_ball_seen_on_imaging_is_guidance(concepts):
    assert ("guidance", "mri") in concepts("The ice ball is visible on MRI throughout the freeze.")


def test_sites_of_complications_and_protection_are_not_lesion_sites(concepts):
    found = concepts("Desmoid tumours were frozen. The scalp was protected with warm saline. One gluteal skin burn healed.")
    assert not {k for f, k in found if f == "anatomic_sites"}


def test_limbs_of_a_bone_tumour_are_bones(concepts):
    assert ("anatomic_sites", "extremity_soft_tissue") not in concepts("Giant cell tumours of the limbs were curetted.")
    assert ("anatomic_sites", "extremity_soft_tissue") in concepts("Desmoid tumours of the limbs were frozen.")


def test_the_forearm_of_a_soft_tissue_lesion_is_soft_tissue_and_of_a_bone_lesion_bone(concepts):
    """EVIDENCE_SCHEMA.md: `forearm` means the radius and ulna."""
    soft = concepts("A schwannoma of the forearm was treated with percutaneous cryoablation.")
    assert ("anatomic_sites", "extremity_soft_tissue") in soft and ("anatomic_sites", "forearm") not in soft
    bone = concepts("An osteoid osteoma of the forearm was treated with percutaneous cryoablation.")
    assert ("anatomic_sites", "forearm") in bone and ("anatomic_sites", "extremity_soft_tissue") not in bone
    both = concepts("A desmoid tumour and a giant cell tumour of the forearm were treated with cryoablation.")
    assert ("anatomic_sites", "forearm") in both


def test_the_primary_of_a_metastasis_is_not_a_site(concepts):
    found = concepts("Lung metastases from head and neck cancer were frozen.")
    assert ("anatomic_sites", "head_neck") not in found


def test_the_primary_of_metastases_is_not_a_treated_lesion(concepts):
    found = concepts("Muscle metastases from soft-tissue sarcoma were frozen.")
    assert ("lesion_types", "soft_tissue_metastasis") in found
    assert ("lesion_types", "soft_tissue_sarcoma") not in found
    assert ("lesion_types", "bone_sarcoma") not in concepts("Osteosarcoma metastases to the lung.")


def test_cement_next_to_curettage_is_surgery_even_in_a_percutaneous_sentence(concepts):
    found = concepts("Recurrence after curettage and cementation was treated with percutaneous cryoablation.")
    assert ("treatments", "surgery") in found
    assert ("treatments", "cementoplasty") not in found


def test_metastases_take_their_kind_from_a_bone_title(nlp):
    doc = nlp("Thermal ablation of bone tumours\n\nCryoablation suits larger metastases.")
    assert {s.id_ for s in doc.spans["cryokb_concepts"] if s.label_ == "lesion_types"} == {"bone_metastasis"}
