"""Synthetic PubMed records in bulk, for benchmarks.

The benchmarks need PubMed XML at the scale of a baseline file (an import of 10,000 and
100,000 records, extraction over 5,000 and more, a 100,000-article store) without the
network and without copying real abstracts. This module composes invented abstracts
from many small template fragments (lesion types, sites, designs, numbers, outcomes,
and about one in five off-topic records that a PubMed query would also return), so that
an extractor has real work to do and no two abstracts are the same.

Every record is a pure function of ``(seed, index)``: record *i* is the same whatever
``n`` is, so a benchmark at 10,000 reads the first 10,000 records of the 100,000 one.
Writing streams one record at a time; nothing holds the whole set in memory.

The fragments live here rather than in ``data/`` because they are test scaffolding,
not project data: the knowledge base never reads them.

Usage::

    python3 tests/benchmarks/synth.py /tmp/synth100k.xml.gz -n 100000 --seed 0
"""

from __future__ import annotations

import argparse
import gzip as gzip_module
import io
import random
from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

FIRST_PMID = 80_000_001
OFF_TOPIC_SHARE = 0.2
MIN_WORDS, MAX_WORDS = 150, 300

XML_HEAD = (
    '<?xml version="1.0" ?>\n'
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    "<PubmedArticleSet>\n"
)
XML_TAIL = "</PubmedArticleSet>\n"

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# --- vocabulary of the on-topic records -------------------------------------------------
# Each lesion: phrases as authors write them, MeSH heading, where it occurs, and the goal
# of treatment, which decides the outcomes reported.
LESIONS = (
    {"names": ("osteoid osteoma", "osteoid osteomas", "painful osteoid osteoma"),
     "mesh": ("Osteoma, Osteoid", "D010018"), "goal": "curative",
     "sites": ("femur", "tibia", "femoral neck", "proximal tibia", "acetabulum", "talus",
               "humerus", "lumbar vertebra", "posterior elements of the spine", "fibula")},
    {"names": ("bone metastases", "painful bone metastases", "osseous metastases",
               "skeletal metastases"),
     "mesh": ("Bone Neoplasms", "D001859"), "goal": "palliative",
     "sites": ("pelvis", "iliac bone", "sacrum", "ribs", "scapula", "spine", "acetabulum",
               "femur", "sternum", "humerus", "thoracic vertebrae")},
    {"names": ("oligometastatic bone disease", "bone metastases", "osseous oligometastases"),
     "mesh": ("Bone Neoplasms", "D001859"), "goal": "control",
     "sites": ("spine", "pelvis", "ribs", "sacrum", "femur", "iliac wing", "scapula")},
    {"names": ("desmoid tumours", "desmoid tumors", "desmoid-type fibromatosis",
               "aggressive fibromatosis", "extra-abdominal desmoid tumours"),
     "mesh": ("Fibromatosis, Aggressive", "D018222"), "goal": "control",
     "sites": ("abdominal wall", "chest wall", "thigh", "shoulder girdle", "gluteal region",
               "forearm", "paraspinal muscles", "popliteal fossa")},
    {"names": ("soft-tissue sarcoma", "recurrent soft-tissue sarcoma",
               "soft tissue sarcomas"),
     "mesh": ("Sarcoma", "D012509"), "goal": "control",
     "sites": ("thigh", "retroperitoneum", "buttock", "chest wall", "calf", "upper arm")},
    {"names": ("soft-tissue metastases", "extraosseous metastases", "muscle metastases"),
     "mesh": ("Soft Tissue Neoplasms", "D012983"), "goal": "control",
     "sites": ("paraspinal muscles", "abdominal wall", "gluteal muscles", "chest wall",
               "thigh")},
    {"names": ("venous malformations", "low-flow vascular malformations",
               "fibro-adipose vascular anomaly", "intramuscular venous malformations"),
     "mesh": ("Vascular Malformations", "D054079"), "goal": "palliative",
     "sites": ("thigh", "calf", "forearm", "hand", "foot", "knee", "gluteal region")},
    {"names": ("giant cell tumour of bone", "giant cell tumor of bone",
               "giant cell tumours"),
     "mesh": ("Bone Neoplasms", "D001859"), "goal": "control", "intraop": True,
     "sites": ("distal femur", "proximal tibia", "distal radius", "sacrum",
               "proximal humerus")},
    {"names": ("chondroblastoma", "epiphyseal chondroblastoma"),
     "mesh": ("Chondroblastoma", "D002804"), "goal": "curative",
     "sites": ("proximal humerus", "femoral head", "proximal tibia", "calcaneus",
               "distal femur")},
    {"names": ("multiple myeloma", "plasmacytoma", "myeloma bone lesions"),
     "mesh": ("Multiple Myeloma", "D009101"), "goal": "palliative",
     "sites": ("spine", "pelvis", "ribs", "sternum", "femur")},
    {"names": ("chordoma", "sacral chordoma", "recurrent chordoma"),
     "mesh": ("Chordoma", "D002817"), "goal": "control",
     "sites": ("sacrum", "coccyx", "lumbar spine", "clivus")},
    {"names": ("aneurysmal bone cysts", "primary aneurysmal bone cyst"),
     "mesh": ("Bone Cysts, Aneurysmal", "D017824"), "goal": "curative",
     "sites": ("tibia", "fibula", "pelvis", "humerus", "vertebral body", "calcaneus")},
    {"names": ("low-grade chondrosarcoma", "atypical cartilaginous tumours",
               "grade 1 chondrosarcoma"),
     "mesh": ("Chondrosarcoma", "D002813"), "goal": "curative", "intraop": True,
     "sites": ("proximal humerus", "distal femur", "proximal femur", "proximal tibia")},
    {"names": ("aggressive vertebral haemangiomas", "symptomatic vertebral hemangiomas"),
     "mesh": ("Hemangioma", "D006391"), "goal": "palliative",
     "sites": ("thoracic spine", "lumbar spine", "vertebral body")},
    {"names": ("schwannomas", "peripheral nerve sheath tumours", "neurofibromas"),
     "mesh": ("Neurilemmoma", "D009442"), "goal": "palliative",
     "sites": ("thigh", "upper arm", "popliteal fossa", "forearm")},
    {"names": ("glomus tumours", "subungual glomus tumour"),
     "mesh": ("Glomus Tumor", "D005918"), "goal": "curative",
     "sites": ("hand", "finger", "foot")},
    {"names": ("eosinophilic granuloma", "Langerhans cell histiocytosis of bone"),
     "mesh": ("Histiocytosis, Langerhans-Cell", "D006646"), "goal": "curative",
     "sites": ("ilium", "skull", "femur", "vertebral body", "rib")},
)

PRIMARIES = ("renal cell carcinoma", "lung cancer", "breast cancer", "prostate cancer",
             "thyroid carcinoma", "colorectal cancer", "hepatocellular carcinoma",
             "melanoma", "sarcoma")

GUIDANCE = (
    ("CT", "CT-guided", "Tomography, X-Ray Computed", "D014057"),
    ("CT", "computed tomography-guided", "Tomography, X-Ray Computed", "D014057"),
    ("MRI", "MR-guided", "Magnetic Resonance Imaging", "D008279"),
    ("ultrasound", "ultrasound-guided", "Ultrasonography, Interventional", "D018084"),
    ("cone-beam CT", "cone-beam CT-guided", None, None),
    ("CT and fluoroscopy", "CT-fluoroscopy-guided", "Tomography, X-Ray Computed", "D014057"),
)

DESIGNS = (
    # (phrase used in the methods, publication types, MeSH design heading)
    ("In this retrospective single-centre study", (), ("Retrospective Studies", "D012189")),
    ("This retrospective review included", (), ("Retrospective Studies", "D012189")),
    ("We retrospectively analysed", (), ("Retrospective Studies", "D012189")),
    ("In a prospective single-arm trial", (("Clinical Trial", "D016430"),),
     ("Prospective Studies", "D011446")),
    ("This prospective multicentre study enrolled", (("Multicenter Study", "D016448"),),
     ("Prospective Studies", "D011446")),
    ("In this case series", (), None),
    ("This randomised controlled trial enrolled", (("Randomized Controlled Trial", "D016449"),),
     None),
)

COMPARATORS = ("radiofrequency ablation", "microwave ablation", "external beam radiotherapy",
               "surgical resection", "curettage", "MR-guided focused ultrasound",
               "laser ablation", "stereotactic body radiotherapy")
PRIOR = ("radiotherapy", "systemic therapy", "chemotherapy", "surgery", "sclerotherapy",
         "embolization", "denosumab", "bisphosphonates", "tyrosine kinase inhibitors")
ADJUNCTS = ("cementoplasty", "vertebroplasty", "transarterial embolization",
            "osteosynthesis", "percutaneous screw fixation")
PROTECTION = ("hydrodissection", "carbon dioxide insufflation", "warm saline irrigation",
              "thermocouple monitoring", "motor evoked potential monitoring",
              "skin warming with a saline-filled glove")
COMPLICATIONS_MINOR = ("transient paraesthesia", "skin frostbite", "haematoma",
                       "post-procedural pain flare", "transient nerve palsy", "skin blistering")
COMPLICATIONS_MAJOR = ("fracture at the ablation site", "permanent foot drop",
                       "deep infection", "myonecrosis requiring debridement",
                       "bowel injury", "sciatic nerve injury")
TIMEPOINTS = ("24 hours", "1 week", "4 weeks", "6 weeks", "1 month", "3 months",
              "6 months", "12 months")
PAIN_SCALES = (("VAS", "visual analogue scale (VAS)"), ("NRS", "numeric rating scale (NRS)"),
               ("BPI", "Brief Pain Inventory (BPI) worst pain"))
BACKGROUNDS = (
    "Image-guided cryoablation is increasingly used in musculoskeletal oncology.",
    "Percutaneous thermal ablation has become an alternative to surgery for selected bone "
    "and soft-tissue tumours.",
    "The visible ice ball allows precise monitoring of the ablation zone during freezing.",
    "Evidence on the durability of percutaneous ablation remains limited to small series.",
    "Minimally invasive options are needed for patients who are poor surgical candidates.",
    "Cryoablation can treat large and irregular tumours by combining several probes.",
    "Thermal injury to adjacent nerves and skin remains the main concern of ablation near "
    "the surface.",
)
PURPOSES = (
    "To evaluate the safety and efficacy of {guid} percutaneous cryoablation for {lesion}.",
    "To report our experience with cryoablation of {lesion} of the {site}.",
    "To assess mid-term outcomes after image-guided cryoablation of {lesion}.",
    "This study aimed to determine whether cryoablation provides durable results in "
    "{lesion}.",
    "To compare cryoablation with {comparator} for the treatment of {lesion}.",
)
TECHNIQUES = (
    "Procedures were performed under general anaesthesia with {probes} argon-based "
    "cryoprobes and two freeze-thaw cycles of {freeze} minutes.",
    "A triple freeze-thaw protocol was applied using {probes} probes under conscious "
    "sedation.",
    "Ablations used {probes} cryoprobes placed under {guidance} guidance, with an ice ball "
    "margin of at least {margin} mm.",
    "Thermal protection included {protection} in {nprot} procedures.",
    "Liquid nitrogen was poured into the cavity after extended curettage, followed by "
    "{adjunct}.",
)
CONCLUSIONS = (
    "Cryoablation is a safe and effective treatment for {lesion}.",
    "Percutaneous cryoablation offers durable {goalword} with a low rate of major "
    "complications.",
    "These results support cryoablation as a first-line option for selected patients with "
    "{lesion}.",
    "Larger prospective studies are needed to confirm these findings.",
    "Cryoablation should be considered when {comparator} is not feasible.",
)
FILLERS = (
    "Follow-up included clinical examination and contrast-enhanced imaging.",
    "Patient characteristics, procedural details and adverse events were recorded.",
    "Median follow-up was {fu} months (range, {fu_lo}-{fu_hi}).",
    "Tumour size ranged from {size_lo} to {size_hi} cm.",
    "All procedures were performed by interventional radiologists with experience in "
    "thermal ablation.",
    "Ablation margins were assessed on imaging at {tp}.",
    "Outcomes did not differ significantly by tumour size (P = 0.{pval}).",
    "Quality of life scores improved during follow-up.",
    "Mean procedure time was {proc} minutes and patients were discharged the next day.",
    "Tumours larger than {size_lo} cm required three or more probes.",
    "Pain and function were assessed before treatment and at every follow-up visit.",
    "Previous treatments had included {prior} in {k2} patients.",
    "Contrast-enhanced MRI was obtained at {tp} and every six months thereafter.",
    "The mean number of cryoprobes per session was {probes}.",
    "Adverse events were graded according to the CIRSE classification.",
    "Patients were followed for a mean of {fu} months.",
    "Retreatment was required in {k2} cases.",
    "Mean ice ball coverage of the tumour was {pct2}%.",
)
OFF_FILLERS = (
    "Baseline characteristics were similar between groups.",
    "Median follow-up was {fu} months (range, {fu_lo}-{fu_hi}).",
    "Patient-reported outcomes were collected at every visit.",
    "Procedures were performed in an outpatient setting.",
    "Mean patient age was {age} years and {pct2}% were women.",
    "Data were collected prospectively and analysed retrospectively.",
    "Secondary end points included procedure time, cost and patient satisfaction.",
    "Multivariable analysis identified no independent predictor of failure.",
    "Mean procedure time was {proc} minutes.",
    "Adverse events were recorded for {fu_lo} weeks after treatment.",
    "Results were consistent across prespecified subgroups.",
    "Outcomes were compared with a historical cohort treated at the same institution.",
    "Two independent reviewers assessed all imaging studies.",
    "Costs were estimated from institutional billing records.",
    "Loss to follow-up was below {fu_lo}0%.",
    "The study was approved by the institutional review board and consent was waived.",
    "Continuous variables are reported as mean and standard deviation.",
)

# --- off-topic records a broad cryoablation query also returns -------------------------
OFF_TOPIC = (
    {"title": "Percutaneous cryoablation of small renal masses: {outcome} in {n} patients",
     "mesh": ("Kidney Neoplasms", "D007680"),
     "sentences": (
         "Small renal masses are increasingly detected incidentally on cross-sectional "
         "imaging.",
         "We reviewed {n} patients who underwent CT-guided cryoablation of T1a renal tumours.",
         "Mean tumour diameter was {size_lo}.{pval} cm.",
         "Local recurrence occurred in {k} patients ({pct}%) at a median of {fu} months.",
         "Estimated glomerular filtration rate was preserved after ablation.",
         "Clavien-Dindo grade III complications occurred in {k2} cases.",
         "Renal cryoablation is an effective nephron-sparing option for elderly patients.")},
    {"title": "Cryoballoon ablation for paroxysmal atrial fibrillation: {outcome} in {n} "
              "patients",
     "mesh": ("Atrial Fibrillation", "D001281"),
     "sentences": (
         "Pulmonary vein isolation is the cornerstone of rhythm control.",
         "We enrolled {n} consecutive patients undergoing second-generation cryoballoon "
         "ablation.",
         "Acute isolation of all pulmonary veins was achieved in {pct}% of patients.",
         "Freedom from atrial arrhythmia at {fu} months was {pct2}%.",
         "Phrenic nerve palsy occurred in {k} patients and resolved within {fu_lo} months.",
         "Cryoballoon ablation is safe and effective for paroxysmal atrial fibrillation.")},
    {"title": "Cryoneurolysis of the genicular nerves for chronic knee pain: {outcome}",
     "mesh": ("Osteoarthritis, Knee", "D020370"),
     "sentences": (
         "Chronic knee pain from osteoarthritis is common in older adults.",
         "We treated {n} patients with ultrasound-guided cryoneurolysis of the genicular "
         "nerves.",
         "Mean WOMAC pain scores decreased by {pct}% at {tp}.",
         "VAS decreased from {v0}.{pval} to {v1}.{pval} at {tp}.",
         "No serious adverse events were reported.",
         "Cryoneurolysis may delay the need for total knee arthroplasty.")},
    {"title": "Cryoneurolysis for Morton neuroma: a {outcome}",
     "mesh": ("Pain", "D010146"),
     "sentences": (
         "Morton neuroma is a frequent cause of forefoot pain.",
         "{n} patients underwent percutaneous cryoneurolysis of the interdigital nerve.",
         "Pain resolved in {pct}% of patients at {tp}.",
         "Two patients required surgical neurectomy.",
         "Cryoneurolysis is a minimally invasive alternative to neurectomy.")},
    {"title": "Liquid nitrogen cryotherapy versus salicylic acid for plantar warts: {outcome}",
     "mesh": ("Warts", "D014860"),
     "sentences": (
         "Cutaneous warts are common in children and adults.",
         "In a randomised trial, {n} patients were allocated to cryotherapy or salicylic "
         "acid.",
         "Clearance at {fu} weeks was {pct}% with cryotherapy and {pct2}% with salicylic "
         "acid.",
         "Blistering and pain were more frequent after cryotherapy.",
         "Cryotherapy was not superior to salicylic acid for plantar warts.")},
    {"title": "Cold therapy after total knee arthroplasty: {outcome} in {n} patients",
     "mesh": ("Pain, Postoperative", "D010149"),
     "sentences": (
         "Cryotherapy is widely used after knee replacement to reduce swelling.",
         "We randomised {n} patients to continuous cold compression or standard care.",
         "Opioid consumption at {fu_lo} days did not differ between groups.",
         "Pain scores were {v1}.{pval} and {v0}.{pval} at discharge.",
         "Routine cold therapy cannot be recommended on the basis of these findings.")},
    {"title": "CT-guided cryoablation of lung tumours: {outcome} in {n} patients",
     "mesh": ("Lung Neoplasms", "D008175"),
     "sentences": (
         "Thermal ablation is an option for inoperable lung cancer.",
         "We treated {n} patients with {k2} pulmonary tumours by percutaneous cryoablation.",
         "Local tumour progression occurred in {k} tumours at {fu} months.",
         "Pneumothorax requiring chest tube placement occurred in {pct}% of sessions.",
         "Cryoablation of lung tumours is safe with acceptable local control.")},
    {"title": "Microwave ablation of hepatocellular carcinoma: {outcome} in {n} patients",
     "mesh": ("Carcinoma, Hepatocellular", "D006528"),
     "sentences": (
         "Thermal ablation is a curative option for early hepatocellular carcinoma.",
         "We reviewed {n} patients treated with ultrasound-guided microwave ablation.",
         "Complete ablation was achieved in {pct}% of nodules.",
         "Local tumour progression at {fu} months was {pct2}%.",
         "Microwave ablation provides results comparable to resection for small tumours.")},
    {"title": "Cryoablation of breast fibroadenomas: {outcome} in {n} women",
     "mesh": ("Fibroadenoma", "D005354"),
     "sentences": (
         "Fibroadenomas are the most common benign breast tumours.",
         "{n} women underwent ultrasound-guided cryoablation in an office setting.",
         "The palpable mass resolved in {pct}% at {fu} months.",
         "Patient satisfaction was high and cosmetic results were excellent.")},
)
OUTCOME_WORDS = ("mid-term results", "a retrospective analysis", "five-year outcomes",
                 "a single-centre experience", "a prospective study", "long-term follow-up")

# --- metadata ------------------------------------------------------------------------
SURNAMES = ("Albrecht", "Bayard", "Castellano", "Dahlgren", "Ekwueme", "Fontaine", "Garnier",
            "Halvorsen", "Ibarra", "Jovanovic", "Kaczmarek", "Lindqvist", "Moreau", "Nakamura",
            "Okonkwo", "Petrakis", "Quintero", "Rasmussen", "Sato", "Tanaka", "Ueda",
            "Valente", "Wieczorek", "Xu", "Yilmaz", "Zanetti", "Brandt", "Ferreira", "Haddad",
            "Kowalczyk", "Lemaire", "Marchetti", "Novak", "Oyelaran", "Pellegrini", "Roussel",
            "Strand", "Thorsen", "Vasquez", "Weber", "Achterberg", "Bellamy", "Delacroix",
            "Engstrom", "Gallo", "Hoffmann", "Ivanova", "Jaramillo", "Kimura", "Laurent")
FORENAMES = ("Anna", "Bruno", "Chiara", "David", "Elena", "Farid", "Greta", "Hiroshi",
             "Ines", "Jonas", "Katarzyna", "Luca", "Marie", "Nils", "Olga", "Pierre",
             "Rania", "Sofia", "Thomas", "Yuki", "Adebayo", "Beatriz", "Camille", "Emeka",
             "Hanna", "Jun", "Lars", "Mei", "Paolo", "Selin")
DEPARTMENTS = ("Department of Interventional Radiology", "Department of Radiology",
               "Department of Orthopaedic Surgery", "Department of Musculoskeletal Oncology",
               "Department of Medical Oncology", "Division of Image-Guided Therapy",
               "Department of Radiation Oncology", "Department of Anaesthesiology")
INSTITUTIONS = (("Riverside University Hospital", "Lyon", "France"),
                ("North Harbour Cancer Centre", "Aarhus", "Denmark"),
                ("St Aldric General Hospital", "Leeds", "United Kingdom"),
                ("Lakeview Medical Center", "Minneapolis, MN", "USA"),
                ("Kitahama University Hospital", "Osaka", "Japan"),
                ("Ospedale San Teodoro", "Bologna", "Italy"),
                ("Westfield Comprehensive Cancer Center", "Cleveland, OH", "USA"),
                ("Hospital Universitario del Norte", "Valencia", "Spain"),
                ("Maplewood Institute of Oncology", "Toronto, ON", "Canada"),
                ("Elbtal Klinikum", "Dresden", "Germany"))
JOURNALS = (("Cardiovascular and interventional radiology", "Cardiovasc Intervent Radiol",
             "0174-1551", "8003538"),
            ("Journal of vascular and interventional radiology : JVIR",
             "J Vasc Interv Radiol", "1051-0443", "9203369"),
            ("Skeletal radiology", "Skeletal Radiol", "0364-2348", "7701953"),
            ("European radiology", "Eur Radiol", "0938-7994", "9114774"),
            ("AJR. American journal of roentgenology", "AJR Am J Roentgenol", "0361-803X",
             "7708173"),
            ("Radiology", "Radiology", "0033-8419", "0401260"),
            ("International journal of hyperthermia", "Int J Hyperthermia", "0265-6736",
             "8508395"))
HUMAN_MESH = (("Humans", "D006801"),)
SEX_MESH = (("Female", "D005260"), ("Male", "D008297"))
AGE_MESH = (("Adult", "D000328"), ("Middle Aged", "D008875"), ("Aged", "D000368"),
            ("Adolescent", "D000293"), ("Child", "D002648"), ("Young Adult", "D055815"))
TREATMENT_MESH = (("Cryosurgery", "D003452"), ("Treatment Outcome", "D016896"),
                  ("Follow-Up Studies", "D005500"), ("Pain Measurement", "D010147"),
                  ("Neoplasm Recurrence, Local", "D009364"))
KEYWORDS = ("cryoablation", "interventional radiology", "thermal ablation", "bone tumour",
            "pain palliation", "local control", "percutaneous", "image-guided therapy",
            "musculoskeletal oncology", "ice ball", "complications")


def iter_synthetic_records(n: int, seed: int = 0) -> Iterator[dict]:
    """Yield ``n`` full synthetic records (text and metadata), one at a time."""
    for index in range(n):
        yield _record(seed, index)


def iter_synthetic_articles(n: int, seed: int = 0) -> Iterator[dict]:
    """Yield ``n`` dicts with ``pmid``, ``title``, ``abstract``, ``publication_types``.

    ``abstract`` is the sections' texts joined by ``"\\n"`` (labels left out), as
    ``Article.abstract`` reads it from the XML; ``publication_types`` is a list of names.
    """
    for record in iter_synthetic_records(n, seed):
        yield {
            "pmid": record["pmid"],
            "title": record["title"],
            "abstract": "\n".join(text for _, _, text in record["sections"]),
            "publication_types": [name for name, _ in record["publication_types"]],
        }


def write_pubmed_xml(path, n: int, seed: int = 0, gzip: bool = False) -> int:
    """Write ``n`` records as a PubMed efetch XML file at ``path``; return the characters written.

    Records are rendered and written one at a time through a buffered stream, so memory
    does not grow with ``n``. ``gzip=True`` writes a gzip file (as NLM ships baselines).
    """
    raw = gzip_module.open(path, "wb", compresslevel=1) if gzip else open(path, "wb")
    written = 0
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="\n",
                               write_through=False) as out:
        written += out.write(XML_HEAD)
        for record in iter_synthetic_records(n, seed):
            written += out.write(render_record(record))
        written += out.write(XML_TAIL)
    return written


def _pick(rng: random.Random, seq):
    """``rng.choice`` without its overhead: the generator calls this ~50 times a record."""
    return seq[int(rng.random() * len(seq))]


def _int(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` (both ends included), several times faster."""
    return low + int(rng.random() * (high - low + 1))


# --- composing one record ---------------------------------------------------------------

def _record(seed: int, index: int) -> dict:
    """Compose record ``index`` of the set ``seed``: text first, then metadata."""
    rng = random.Random(seed * 1_000_003 + index)
    pmid = str(FIRST_PMID + index)
    if rng.random() < OFF_TOPIC_SHARE:
        body = _off_topic_body(rng)
    else:
        body = _on_topic_body(rng)
    body.update(_metadata(rng, pmid, body))
    return body


def _numbers(rng: random.Random) -> dict:
    """Plausible numbers for one study, consistent with each other."""
    n = _pick(rng, (_int(rng, 5, 40), _int(rng, 20, 120), _int(rng, 3, 15)))
    k = _int(rng, 0, max(1, n // 4))
    fu_lo = _int(rng, 1, 6)
    return {
        "n": n, "k": k, "k2": _int(rng, 0, max(1, n // 6)),
        "pct": round(100 * (n - k) / n), "pct2": _int(rng, 55, 98),
        "fu": _int(rng, fu_lo + 3, 60), "fu_lo": fu_lo, "fu_hi": _int(rng, 61, 110),
        "size_lo": _int(rng, 1, 3), "size_hi": _int(rng, 4, 14), "pval": _int(rng, 10, 89),
        "v0": _int(rng, 6, 9), "v1": _int(rng, 1, 4), "tp": _pick(rng, TIMEPOINTS),
        "proc": _int(rng, 35, 180), "age": _int(rng, 24, 78), "prior": _pick(rng, PRIOR),
        "probes": _int(rng, 2, 8),
    }


def _on_topic_body(rng: random.Random) -> dict:
    """An abstract about cryoablation of a musculoskeletal tumour, 150-300 words."""
    lesion = _pick(rng, LESIONS)
    name = _pick(rng, lesion["names"])
    sites = rng.sample(lesion["sites"], k=min(len(lesion["sites"]), _int(rng, 1, 3)))
    guid = _pick(rng, GUIDANCE)
    design = _pick(rng, DESIGNS)
    num = _numbers(rng)
    ctx = {**num, "lesion": name, "site": sites[0], "guid": guid[1], "guidance": guid[0],
           "comparator": _pick(rng, COMPARATORS),
           "freeze": _pick(rng, (8, 10, 12, 15)), "margin": _pick(rng, (3, 5, 10)),
           "protection": _pick(rng, PROTECTION), "nprot": _int(rng, 1, num["n"]),
           "adjunct": _pick(rng, ADJUNCTS),
           "goalword": {"curative": "cure", "palliative": "pain relief",
                        "control": "local tumour control"}[lesion["goal"]]}
    background = rng.sample(BACKGROUNDS, k=2)
    purpose = [_pick(rng, PURPOSES).format(**ctx)]
    methods = [_methods_sentence(rng, design[0], name, sites, ctx)]
    methods += [t.format(**ctx) for t in rng.sample(TECHNIQUES, k=2)
                if lesion.get("intraop") or "curettage" not in t]
    results = _results(rng, lesion["goal"], ctx)
    conclusion = [_pick(rng, CONCLUSIONS).format(**ctx)]
    fillers = [f.format(**ctx) for f in rng.sample(FILLERS, k=len(FILLERS))]
    sections = _fit_length(rng, background, purpose, methods, results, conclusion, fillers)
    title = _on_topic_title(rng, name, sites, guid, ctx)
    return {"title": title, "sections": sections, "topic": "on",
            "design": design, "mesh_core": [lesion["mesh"]] + ([guid[2:]] if guid[2] else []),
            "lesion": name}


def _methods_sentence(rng, design_phrase, name, sites, ctx) -> str:
    where = ", ".join(sites[:-1]) + (" and " if len(sites) > 1 else "") + sites[-1]
    lesions = ctx["n"] + _pick(rng, (0, 0, _int(rng, 1, 12)))
    age = _int(rng, 12, 34) if ctx["goalword"] == "cure" else _int(rng, 38, 74)
    who = f"{ctx['n']} patients ({_int(rng, 20, 80)}% women; mean age {age} years)"
    if lesions != ctx["n"]:
        who += f" with {lesions} tumours"
    if design_phrase.endswith(("included", "enrolled", "analysed")):
        return f"{design_phrase} {who} treated for {name} of the {where}."
    return f"{design_phrase}, {who} underwent {ctx['guid']} cryoablation of {name} of the {where}."


def _results(rng: random.Random, goal: str, ctx: dict) -> list[str]:
    n, k = ctx["n"], ctx["k"]
    ok = n - k
    out = [_pick(rng, (
        f"Technical success was {_pick(rng, (100, 100, 96, 94))}%.",
        f"Technical success was achieved in {n - _int(rng, 0, 1)} of {n} procedures.",
        "All ablations were technically successful."))]
    scale = _pick(rng, PAIN_SCALES)
    before = f"{ctx['v0']}.{_int(rng, 0, 9)}"
    after = f"{ctx['v1']}.{_int(rng, 0, 9)}"
    if goal == "curative":
        out.append(f"Clinical success was obtained in {ok} of {n} patients ({ctx['pct']}%).")
        out.append(f"Mean {scale[1]} decreased from {before} to {after} at {ctx['tp']}.")
        out.append(_pick(rng, (f"Pain recurred in {k} patients, who were retreated.",
                               "No recurrence was observed during follow-up.")))
    elif goal == "palliative":
        out.append(f"Mean {scale[1]} scores decreased from {before} before treatment to "
                   f"{after} at {ctx['tp']} (P < .001).")
        out.append(f"A pain response was reported by {ok} of {n} patients ({ctx['pct']}%).")
        out.append(_pick(rng, ("Opioid use decreased in most patients.",
                               "Analgesic consumption was unchanged.")))
    else:
        out.append(f"Local tumour control at 1 year was {ctx['pct2']}%.")
        out.append(_pick(rng, (f"Local recurrence occurred in {k} of {n} patients.",
                               f"Residual tumour was seen in {k} tumours ({round(100 * k / n)}%).",
                               "No local progression was observed.")))
    minor, major = _int(rng, 0, 5), _pick(rng, (0, 0, 0, 1, 2))
    out.append(_pick(rng, (
        f"Minor complications ({_pick(rng, COMPLICATIONS_MINOR)}) occurred in {minor} patients.",
        f"There were {minor} minor complications and {major} major complications.",
        f"No major complications occurred; {minor} patients had "
        f"{_pick(rng, COMPLICATIONS_MINOR)}.",
        f"One major complication ({_pick(rng, COMPLICATIONS_MAJOR)}) was recorded.")))
    return out


def _fit_length(rng, background, purpose, methods, results, conclusion, fillers):
    """Sections (label, category, text) whose total is 150-300 words."""
    core = [background, purpose, methods, results, conclusion]
    words = sum(len(s.split()) for part in core for s in part)
    goal_words = MIN_WORDS + _int(rng, 0, 90)
    for sentence in fillers:
        if words >= goal_words:
            break
        target = _pick(rng, (methods, results))
        target.append(sentence)
        words += len(sentence.split())
    while words > MAX_WORDS and len(background) > 0:
        words -= len(background.pop().split())
    if rng.random() < 0.35:
        labelled = (("BACKGROUND", "BACKGROUND", background + purpose),
                    ("METHODS", "METHODS", methods), ("RESULTS", "RESULTS", results),
                    ("CONCLUSION", "CONCLUSIONS", conclusion))
        return [(label, cat, " ".join(text)) for label, cat, text in labelled if text]
    return [(None, None, " ".join(s for part in core for s in part))]


def _on_topic_title(rng, name, sites, guid, ctx) -> str:
    forms = (
        f"{guid[1].capitalize()} cryoablation of {name}: {_pick(rng, OUTCOME_WORDS)}",
        f"Percutaneous cryoablation for {name} of the {sites[0]}",
        f"Safety and efficacy of cryoablation in {name}: {ctx['n']} patients",
        f"Cryoablation versus {ctx['comparator']} for {name}",
        f"Is cryoablation effective for {name}? {_pick(rng, OUTCOME_WORDS).capitalize()}",
        f"Image-guided cryotherapy of {name} of the {sites[0]} in patients with "
        f"{_pick(rng, PRIMARIES)}",
    )
    return _pick(rng, forms) + "."


def _off_topic_body(rng: random.Random) -> dict:
    """A record about another use of cold or ablation, which the query also returns."""
    topic = _pick(rng, OFF_TOPIC)
    num = _numbers(rng)
    sentences = [s.format(**num) for s in topic["sentences"]]
    fillers = [f.format(**num) for f in rng.sample(OFF_FILLERS, k=len(OFF_FILLERS))]
    background = rng.sample(BACKGROUNDS[1:4], k=2)
    sections = _fit_length(rng, background, [], sentences[:-1], [], sentences[-1:], fillers)
    title = topic["title"].format(outcome=_pick(rng, OUTCOME_WORDS), **num)
    design = _pick(rng, DESIGNS[:3])
    return {"title": title[0].upper() + title[1:] + ".", "sections": sections,
            "topic": "off", "design": design, "mesh_core": [topic["mesh"]], "lesion": None}


def _metadata(rng: random.Random, pmid: str, body: dict) -> dict:
    year = _int(rng, 1990, 2025)
    month = _int(rng, 1, 12)
    day = _int(rng, 1, 28)
    journal = _pick(rng, JOURNALS)
    authors = []
    for _ in range(_int(rng, 2, 8)):
        fore = _pick(rng, FORENAMES)
        inst = _pick(rng, INSTITUTIONS)
        authors.append((_pick(rng, SURNAMES), fore, fore[0],
                        f"{_pick(rng, DEPARTMENTS)}, {inst[0]}, {inst[1]}, {inst[2]}."))
    design = body["design"]
    pub_types = [("Journal Article", "D016428"), *design[1]]
    if rng.random() < 0.3:
        pub_types.append(("Research Support, Non-U.S. Gov't", "D013485"))
    mesh = list(body["mesh_core"])
    if body["topic"] == "on":
        mesh += rng.sample(TREATMENT_MESH, k=_int(rng, 1, 4))
        if design[2]:
            mesh.append(design[2])
    mesh += HUMAN_MESH + tuple(rng.sample(SEX_MESH, k=_int(rng, 1, 2)))
    mesh += tuple(rng.sample(AGE_MESH, k=_int(rng, 1, 3)))
    mesh = sorted(dict.fromkeys(mesh))
    return {
        "pmid": pmid, "year": year, "month": month, "day": day, "journal": journal,
        "volume": str(_int(rng, 1, 60)), "issue": str(_int(rng, 1, 12)),
        "first_page": _int(rng, 1, 2400), "authors": authors,
        "publication_types": pub_types, "mesh": mesh,
        "keywords": rng.sample(KEYWORDS, k=_int(rng, 0, 5)),
        "doi": f"10.99999/synth.{year}.{pmid}",
        "completed": (min(year + 1, 2025), _int(rng, 1, 12), _int(rng, 1, 28)),
        "revised": (_int(rng, min(year + 1, 2025), 2025), _int(rng, 1, 12),
                    _int(rng, 1, 28)),
    }


# --- rendering -----------------------------------------------------------------------

def _date(tag: str, ymd: tuple, indent: str) -> str:
    y, m, d = ymd
    return (f"{indent}<{tag}>\n{indent}  <Year>{y}</Year>\n{indent}  <Month>{m:02d}</Month>\n"
            f"{indent}  <Day>{d:02d}</Day>\n{indent}</{tag}>\n")


def render_record(record: dict) -> str:
    """One PubmedArticle element as text, indented as efetch writes it."""
    ymd = (record["year"], record["month"], record["day"])
    title, iso, issn, nlm_id = record["journal"]
    first = record["first_page"]
    parts = [
        "<PubmedArticle>\n",
        '  <MedlineCitation Status="MEDLINE" Owner="NLM">\n',
        f'    <PMID Version="1">{record["pmid"]}</PMID>\n',
        _date("DateCompleted", record["completed"], "    "),
        _date("DateRevised", record["revised"], "    "),
        '    <Article PubModel="Print-Electronic">\n',
        "      <Journal>\n",
        f'        <ISSN IssnType="Print">{issn}</ISSN>\n',
        '        <JournalIssue CitedMedium="Print">\n',
        f"          <Volume>{record['volume']}</Volume>\n",
        f"          <Issue>{record['issue']}</Issue>\n",
        f"          <PubDate>\n            <Year>{ymd[0]}</Year>\n"
        f"            <Month>{MONTHS[ymd[1] - 1]}</Month>\n          </PubDate>\n",
        "        </JournalIssue>\n",
        f"        <Title>{escape(title)}</Title>\n",
        f"        <ISOAbbreviation>{escape(iso)}</ISOAbbreviation>\n",
        "      </Journal>\n",
        f"      <ArticleTitle>{escape(record['title'])}</ArticleTitle>\n",
        f"      <Pagination>\n        <StartPage>{first}</StartPage>\n"
        f"        <EndPage>{first + 7}</EndPage>\n"
        f"        <MedlinePgn>{first}-{first + 7}</MedlinePgn>\n      </Pagination>\n",
        f'      <ELocationID EIdType="doi" ValidYN="Y">{record["doi"]}</ELocationID>\n',
        "      <Abstract>\n",
    ]
    for label, category, text in record["sections"]:
        attrs = f" Label={quoteattr(label)} NlmCategory={quoteattr(category)}" if label else ""
        parts.append(f"        <AbstractText{attrs}>{escape(text)}</AbstractText>\n")
    parts.append("      </Abstract>\n")
    parts.append('      <AuthorList CompleteYN="Y">\n')
    for last, fore, initials, affiliation in record["authors"]:
        parts.append(
            f'        <Author ValidYN="Y">\n          <LastName>{last}</LastName>\n'
            f"          <ForeName>{fore}</ForeName>\n          <Initials>{initials}</Initials>\n"
            f"          <AffiliationInfo>\n            <Affiliation>{escape(affiliation)}"
            f"</Affiliation>\n          </AffiliationInfo>\n        </Author>\n")
    parts.append("      </AuthorList>\n      <Language>eng</Language>\n")
    parts.append("      <PublicationTypeList>\n")
    for name, ui in record["publication_types"]:
        parts.append(f'        <PublicationType UI="{ui}">{escape(name)}</PublicationType>\n')
    parts.append("      </PublicationTypeList>\n    </Article>\n")
    parts.append(
        f"    <MedlineJournalInfo>\n      <Country>United States</Country>\n"
        f"      <MedlineTA>{escape(iso)}</MedlineTA>\n      <NlmUniqueID>{nlm_id}</NlmUniqueID>\n"
        f"      <ISSNLinking>{issn}</ISSNLinking>\n    </MedlineJournalInfo>\n"
        "    <CitationSubset>IM</CitationSubset>\n    <MeshHeadingList>\n")
    for name, ui in record["mesh"]:
        parts.append(f'      <MeshHeading>\n        <DescriptorName UI="{ui}" MajorTopicYN="N">'
                     f"{escape(name)}</DescriptorName>\n      </MeshHeading>\n")
    parts.append("    </MeshHeadingList>\n")
    if record["keywords"]:
        parts.append('    <KeywordList Owner="NOTNLM">\n')
        parts += [f'      <Keyword MajorTopicYN="N">{k}</Keyword>\n' for k in record["keywords"]]
        parts.append("    </KeywordList>\n")
    parts.append("  </MedlineCitation>\n  <PubmedData>\n    <History>\n")
    for status in ("pubmed", "medline", "entrez"):
        parts.append(f'      <PubMedPubDate PubStatus="{status}">\n'
                     f"        <Year>{ymd[0]}</Year>\n        <Month>{ymd[1]}</Month>\n"
                     f"        <Day>{ymd[2]}</Day>\n      </PubMedPubDate>\n")
    parts.append(
        "    </History>\n    <PublicationStatus>ppublish</PublicationStatus>\n"
        f'    <ArticleIdList>\n      <ArticleId IdType="pubmed">{record["pmid"]}</ArticleId>\n'
        f'      <ArticleId IdType="doi">{record["doi"]}</ArticleId>\n    </ArticleIdList>\n'
        "  </PubmedData>\n</PubmedArticle>\n")
    return "".join(parts)


def main(argv=None) -> None:
    """Command line: write a synthetic file for a benchmark run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_pubmed_xml(args.path, args.n, seed=args.seed, gzip=args.path.endswith(".gz"))


if __name__ == "__main__":
    main()
