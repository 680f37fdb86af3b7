"""cryokb_relevance: cryo treatment of a musculoskeletal tumour, and nothing else."""

import pytest


def relevant(nlp, title, abstract=""):
    doc = nlp(f"{title}\n\n{abstract}" if abstract else title)
    return doc._.cryokb_relevant, doc._.cryokb_relevance_reason


@pytest.mark.parametrize(
    "title, abstract",
    [
        ("Percutaneous cryoablation of osteoid osteoma in teenagers.", "Nineteen nidi were frozen under CT guidance."),
        ("Cryoablation of painful bone metastases from renal cell carcinoma.", "Eleven patients with metastatic renal cell carcinoma were treated."),
        ("Liquid nitrogen cryosurgery after curettage of giant cell tumour of bone.", "Forty patients were followed for five years."),
        ("Cryoablation of extra-abdominal desmoid tumours.", "Local control was durable."),
        ("Thermal protection during soft-tissue cryoablation near the sciatic nerve.", "Carbon dioxide was insufflated around the nerve."),
        ("Cryoablation of bone metastases in a swine model.", "Eight pigs underwent vertebral cryoablation with thermocouples."),
    ],
)
def test_relevant_articles(nlp, title, abstract):
    assert relevant(nlp, title, abstract)[0] is True


@pytest.mark.parametrize(
    "title, abstract, reason",
    [
        ("Percutaneous cryoablation of small renal masses.", "Sixty kidney tumours were frozen; renal function was preserved.", "no musculoskeletal"),
        ("Cryoablation of pulmonary metastases from osteosarcoma.", "Twenty lung nodules were treated.", "no musculoskeletal"),
        ("Cryoablation of lung metastases in sarcoma.", "Twenty pulmonary nodules from osteosarcoma were frozen.", "off-topic"),
        ("Cryoballoon ablation for paroxysmal atrial fibrillation.", "Pulmonary vein isolation was achieved.", "no musculoskeletal"),
        ("Cryotherapy of plantar warts in children.", "Liquid nitrogen was applied every two weeks.", "no musculoskeletal"),
        ("Ice packs and cold compression after knee arthroplasty.", "Cryotherapy reduced swelling.", "no musculoskeletal"),
        ("Cryoneurolysis of the intercostal nerves after thoracotomy.", "Pain scores were lower.", "no musculoskeletal"),
        ("Radiofrequency ablation of osteoid osteoma: 200 cases.", "Cryoablation is an alternative that we did not use.", "another ablation"),
        ("Microwave ablation of spinal metastases.", "Vertebral augmentation followed.", "no cryo"),
        ("Radiotherapy and surgery for spinal metastases: a review.",
         "Options include separation surgery and ablation with laser, radiofrequency ablation or cryoablation.", "in passing"),
        ("Morton's neurinoma cryoablation.", "Thirty patients with Morton's neurinoma of the third intermetatarsal space "
         "underwent ultrasound-guided percutaneous cryoablation.", "no musculoskeletal"),
        ("Spray cryotherapy of skin metastases of melanoma.", "Subcutaneous metastases were frozen with liquid nitrogen.", "off-topic"),
    ],
)
def test_off_topic_articles(nlp, title, abstract, reason):
    decision, why = relevant(nlp, title, abstract)
    assert decision is False
    assert reason in why


def test_morton_neuroma_cryoablation_is_not_relevant(nlp):
    title = "Ultrasound-guided cryoablation of Morton neuroma."
    abstract = "Thirty interdigital neuromas of the foot were frozen for forefoot pain."
    assert relevant(nlp, title, abstract)[0] is False


def test_negated_cryo_does_not_count(nlp):
    title = "Radiofrequency ablation of bone metastases."
    assert relevant(nlp, title, "No cryoablation was performed.")[0] is False


def test_the_primary_cancer_of_bone_metastases_is_not_an_off_topic_target(nlp):
    title = "Cryoablation with zoledronic acid for osteolytic bone metastases of lung cancer"
    abstract = "Patients with bone metastases from non-small cell lung cancer were treated."
    assert relevant(nlp, title, abstract)[0] is True
