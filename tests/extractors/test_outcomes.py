"""cryokb_outcomes: results sentences read as the schema's outcome objects.

Every expected object below was written from EVIDENCE_SCHEMA.md's Outcomes table and
Conventions by reading the sentence, not copied from the extractor's output.
"""

import cryokb_data
import json
from collections import Counter

import pytest

from extractors.evaluate import numeric_facts
from extractors.pipeline import make_doc
from ingest.pubmed_xml import iter_records
from ingest.model import Article


@pytest.fixture
def read(nlp, article):
    """``read(text, publication_types)`` -> the doc of a synthetic article with that abstract."""

    def run(text, publication_types=()):
        return nlp(make_doc(nlp, article("Cryoablation of bone tumours", text, publication_types=publication_types)))

    return run


@pytest.fixture
def outcomes(read):
    """``outcomes(text)`` -> the outcome dicts of a synthetic article, in text order."""

    def run(text, publication_types=()):
        return [outcome for outcome, _ in read(text, publication_types)._.cryokb_outcomes]

    return run


CASES = [
    # technical success
    ("Technical success was 100%.", [{"measure": "technical_success", "percent": 100}]),
    ("Technical success was achieved in 30 of 34 sessions (88%).",
     [{"measure": "technical_success", "count": 30, "total": 34, "percent": 88}]),
    ("Complete ablation was achieved in 28 (93%) of 30 tumours.",
     [{"measure": "technical_success", "count": 28, "total": 30, "percent": 93}]),
    ("Cryoablation was successfully performed in all 23 patients.",
     [{"measure": "technical_success", "count": 23, "total": 23}]),
    # clinical success, numbers in words, British spelling
    ("Clinical success was achieved in 48 of 50 patients (96%).",
     [{"measure": "clinical_success", "count": 48, "total": 50, "percent": 96}]),
    ("Primary clinical success was obtained in nineteen of twenty-one tumours (90.5%).",
     [{"measure": "clinical_success", "count": 19, "total": 21, "percent": 90.5}]),
    # pain scores: one object per before/after pair, scale named
    ("VAS decreased from 7.1 to 1.4 at 4 weeks.",
     [{"measure": "pain_score", "scale": "vas", "before": 7.1, "after": 1.4, "timepoint": "4 weeks"}]),
    ("The mean NRS score fell from 8.2 ± 1.1 at baseline to 3.1 ± 2.0 at 1 week and 1.9 ± 1.5 at 3 months.",
     [{"measure": "pain_score", "scale": "nrs", "before": 8.2, "after": 3.1, "timepoint": "1 week"},
      {"measure": "pain_score", "scale": "nrs", "before": 8.2, "after": 1.9, "timepoint": "3 months"}]),
    ("Median worst pain on the Brief Pain Inventory improved from 8 (IQR 7-9) to 2 (IQR 1-3) at 24 hours.",
     [{"measure": "pain_score", "scale": "bpi", "before": 8, "after": 2, "timepoint": "24 hours"}]),
    ("At 1 month the mean visual analogue scale score was 2.1, compared with 6.8 before the procedure.",
     [{"measure": "pain_score", "scale": "vas", "before": 6.8, "after": 2.1, "timepoint": "1 month"}]),
    ("VAS scores before and 1, 3 and 6 months after cryoablation were 7.2, 3.1, 2.5 and 2.0, respectively.",
     [{"measure": "pain_score", "scale": "vas", "before": 7.2, "after": 3.1, "timepoint": "1 month"},
      {"measure": "pain_score", "scale": "vas", "before": 7.2, "after": 2.5, "timepoint": "3 months"},
      {"measure": "pain_score", "scale": "vas", "before": 7.2, "after": 2.0, "timepoint": "6 months"}]),
    # no baseline, no pain_score
    ("The VAS score at 1 month was 1.2.", []),
    # pain response
    ("Pain response was observed in 17 of 20 patients (85%).",
     [{"measure": "pain_response", "count": 17, "total": 20, "percent": 85}]),
    ("Twenty-five of 29 patients (86%) reported a decrease of at least 2 points.",
     [{"measure": "pain_response", "count": 25, "total": 29, "percent": 86}]),
    # local control with timepoints
    ("The local control rate was 85% at 1 year.", [{"measure": "local_control", "percent": 85, "timepoint": "1 year"}]),
    ("The 1- and 2-year local tumour control rates were 90% and 80%, respectively.",
     [{"measure": "local_control", "percent": 90, "timepoint": "1 year"},
      {"measure": "local_control", "percent": 80, "timepoint": "2 years"}]),
    ("Local progression-free survival was 78% at 3 years.",
     [{"measure": "local_control", "percent": 78, "timepoint": "3 years"}]),
    # recurrence, stated zeros
    ("Local recurrence occurred in 3 of 40 tumours (7.5%).",
     [{"measure": "recurrence", "count": 3, "total": 40, "percent": 7.5}]),
    ("No residual tumour was seen on follow-up MRI.", [{"measure": "recurrence", "count": 0}]),
    ("None of the 15 patients developed a local recurrence.", [{"measure": "recurrence", "count": 0}]),
    ("Pain recurred in two patients (4%) and was successfully re-treated.",
     [{"measure": "recurrence", "count": 2, "percent": 4}]),
    # complications: grades, serious = major, totals with a split, zeros
    ("Minor complications occurred in 3 patients (6%).",
     [{"measure": "complications", "grade": "minor", "count": 3, "percent": 6}]),
    ("There were three minor complications (6%) and no major complications.",
     [{"measure": "complications", "grade": "minor", "count": 3, "percent": 6},
      {"measure": "complications", "grade": "major", "count": 0}]),
    ("No serious adverse events were reported.", [{"measure": "complications", "grade": "major", "count": 0}]),
    ("No complications occurred.", [{"measure": "complications", "grade": "any", "count": 0}]),
    ("Complications occurred in seven patients (17%): two were major and five minor.",
     [{"measure": "complications", "grade": "any", "count": 7, "percent": 17},
      {"measure": "complications", "grade": "major", "count": 2},
      {"measure": "complications", "grade": "minor", "count": 5}]),
    ("Major and minor complication rates were 2% and 8%, respectively.",
     [{"measure": "complications", "grade": "major", "percent": 2},
      {"measure": "complications", "grade": "minor", "percent": 8}]),
    ("There were 2 grade 3 adverse events (4%).", [{"measure": "complications", "grade": "major", "count": 2, "percent": 4}]),
    ("A small pneumothorax was the only complication.", [{"measure": "complications", "grade": "any", "count": 1}]),
    ("Three patients (6%) had minor complications, including two skin burns and one transient neuropraxia.",
     [{"measure": "complications", "grade": "minor", "count": 3, "percent": 6}]),
    # directions
    ("Opioid consumption decreased after cryoablation.", [{"measure": "analgesic_use", "direction": "decreased"}]),
    ("Analgesics were discontinued within a week.", [{"measure": "analgesic_use", "direction": "decreased"}]),
    ("Quality of life improved significantly after treatment (p < 0.001).",
     [{"measure": "quality_of_life", "direction": "improved"}]),
    ("Quality of life, measured with the EQ-5D, remained stable.", [{"measure": "quality_of_life", "direction": "unchanged"}]),
    # comparators are left out
    ("Technical success was 100% for cryoablation and 95% for RFA.", [{"measure": "technical_success", "percent": 100}]),
    ("Radiofrequency ablation achieved a local control rate of 90%.", []),
    ("The recurrence rate was 10% after cryoablation compared with 30% after surgical resection.",
     [{"measure": "recurrence", "percent": 10}]),
    # a breakdown after the headline count is not a finding of its own
    ("Complications occurred in 12 patients (16%): postoperative fracture in six, wound complications in four "
     "and transient nerve palsy in two.", [{"measure": "complications", "grade": "any", "count": 12, "percent": 16}]),
    ("Local recurrence occurred in 11 of 73 patients (15%): nine with giant cell tumour and two with cysts.",
     [{"measure": "recurrence", "count": 11, "total": 73, "percent": 15}]),
    ("Three minor complications occurred (paresthesia in two patients and a skin burn in one).",
     [{"measure": "complications", "grade": "minor", "count": 3}]),
    # thresholds and entry criteria are not results
    ("Quality thresholds are proposed: technical success above 95% and a major complication rate below 5%.", []),
    ("Patients with a worst pain score of at least 4 on the NRS were treated in 29 sessions.", []),
    ("No other neurological complications occurred.", []),
    ("Pain decreased from 8/10 to 1/10 on a numeric rating scale at 2 weeks.",
     [{"measure": "pain_score", "scale": "nrs", "before": 8, "after": 1, "timepoint": "2 weeks"}]),
    # freedom from progression is local control; a history of recurrence is not a result
    ("At 12 months, 25 of 27 patients (93%) were free of local progression.",
     [{"measure": "local_control", "count": 25, "total": 27, "percent": 93, "timepoint": "12 months"}]),
    ("After a median follow-up of 34 months, 9 of 11 tumours (82%) showed no local progression.",
     [{"measure": "local_control", "count": 9, "total": 11, "percent": 82}]),
    ("Twelve patients were enrolled; five had recurrent pain after previous radiofrequency ablation.", []),
    ("There were no neurological or other major complications.", [{"measure": "complications", "grade": "major", "count": 0}]),
    ("Heterogeneity was substantial for local control (I² = 64%).", []),
    # definitions, objectives and background are not results
    ("Technical success was defined as complete coverage of the tumour with a 5-mm margin.", []),
    ("To evaluate local control and complications after cryoablation of desmoid tumours.", []),
    ("Clinical success, defined as a decrease of at least 2 points, was achieved in 13 of 15 patients (87%).",
     [{"measure": "clinical_success", "count": 13, "total": 15, "percent": 87}]),
    # a negated success counts the failures: no outcome rather than the failures as successes
    ("Technical success was not achieved in 2 of 30 lesions.", []),
    ("Local control failed in 4 of 20 tumours.", []),
    ("Five patients (25%) had no pain response.", []),
    ("Clinical success was achieved in 20 of 22 patients (91%); it was not achieved in two.",
     [{"measure": "clinical_success", "count": 20, "total": 22, "percent": 91}]),
    # a negated finding with a partial rate or an exception is no stated zero
    ("There was no evidence of residual tumour in 18 of 20 patients.", []),
    ("Fifteen of 16 patients remained free of recurrence.", []),
    ("No recurrence was seen in 17 patients (85%).", []),
    ("Local recurrence was not observed except in one patient.", []),
    ("No complications occurred apart from two minor skin burns.", []),
    ("Complications were not recorded systematically.", []),
    ("All 20 patients remained free of recurrence.", [{"measure": "recurrence", "count": 0}]),
    ("No complications occurred and technical success was 100%.",
     [{"measure": "complications", "grade": "any", "count": 0}, {"measure": "technical_success", "percent": 100}]),
    # decimals written with a raised dot, as the Lancet's journals do
    ("Mean pain score decreased from 6·2 to 1·8 at 6 months.",
     [{"measure": "pain_score", "scale": "other", "before": 6.2, "after": 1.8, "timepoint": "6 months"}]),
    ("Technical success was 96·7% (29 of 30).",
     [{"measure": "technical_success", "percent": 96.7, "count": 29, "total": 30}]),
    # a citation or a figure after the last score is not a score
    ("Mean VAS decreased from 8 to 3 [22].", [{"measure": "pain_score", "scale": "vas", "before": 8, "after": 3}]),
    ("Mean VAS decreased from 8 to 3 (Fig. 2).", [{"measure": "pain_score", "scale": "vas", "before": 8, "after": 3}]),
    # scores labelled after them take the labels' order
    ("Mean VAS was 7.1 vs. 2.3 before and after treatment, respectively.",
     [{"measure": "pain_score", "scale": "vas", "before": 7.1, "after": 2.3}]),
    ("Mean NRS was 2.3 and 7.1 after and before ablation, respectively.",
     [{"measure": "pain_score", "scale": "nrs", "before": 7.1, "after": 2.3}]),
    # the patients whose pain improved are a response, not a score
    ("Pain decreased in 7 of 9 patients (78%).", [{"measure": "pain_response", "count": 7, "total": 9, "percent": 78}]),
    ("Pain improved in all 20 patients.", [{"measure": "pain_response", "count": 20, "total": 20}]),
    # "none of them major" is the zero of a grade, not of the complications counted before it
    ("Four patients (20%) had complications, none of them major.",
     [{"measure": "complications", "grade": "any", "count": 4, "percent": 20},
      {"measure": "complications", "grade": "major", "count": 0}]),
    # another grade after "but" is no exception to the zero; an exception is
    ("No major complications occurred, but 4 minor complications (20%) were recorded.",
     [{"measure": "complications", "grade": "major", "count": 0},
      {"measure": "complications", "grade": "minor", "count": 4, "percent": 20}]),
    ("No major complications occurred except for one nerve palsy; minor complications occurred in 3 patients.",
     [{"measure": "complications", "grade": "minor", "count": 3}]),
    # a count after a table's number is still a count
    ("As shown in Table 2, 14 patients (35%) had minor complications.",
     [{"measure": "complications", "grade": "minor", "count": 14, "percent": 35}]),
    # the patients whose pain grew worse or stayed the same are no response
    ("Pain decreased in 30 patients and increased in 5.", [{"measure": "pain_response", "count": 30}]),
    ("Pain decreased in 30 patients, remained stable in 8 and worsened in 2.",
     [{"measure": "pain_response", "count": 30}]),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0][:50] for c in CASES])
def test_results_sentences(outcomes, text, expected):
    assert outcomes(text) == expected


@pytest.mark.parametrize("text", ["Clinical success was 110% of the target.",
                                  "Technical success was 100%, and the ice ball covered 120% of the tumour volume."])
def test_a_percentage_over_100_is_never_a_rate(outcomes, text):
    found = outcomes(text)
    assert found and all(0 <= o.get("percent", 0) <= 100 for o in found)


@pytest.mark.parametrize("text", [
    "Technical success was achieved in all but one patient.",
    "Technical success was achieved in all patients but one.",
    "Not all patients achieved clinical success.",
    "Pain response was seen in all but 3 patients.",
])
def test_all_but_some_and_not_all_are_neither_everyone_nor_the_exceptions(outcomes, text):
    found = outcomes(text)
    assert not any(o.get("percent") == 100 or o.get("count") in (1, 3) for o in found), found


@pytest.mark.parametrize("text, measure", [
    ("Local recurrence occurred in 6 patients (20%). Survival was longer in patients without local recurrence.",
     "recurrence"),
    ("Major complications occurred in 3 patients (10%). Patients without major complications went home the next day.",
     "complications"),
])
def test_patients_without_a_finding_are_a_subgroup_not_a_stated_zero(outcomes, text, measure):
    found = [o for o in outcomes(text) if o["measure"] == measure]
    assert len(found) == 1 and found[0]["count"] > 0, found


def test_a_procedure_without_complications_is_still_a_stated_zero(outcomes):
    assert outcomes("All procedures were completed without major complications.") == [
        {"measure": "complications", "grade": "major", "count": 0}]


@pytest.mark.parametrize("text, expected", [
    ("Local recurrence was observed in 3 patients (10%) and minor complications in 2 patients (7%).",
     [{"measure": "recurrence", "percent": 10, "count": 3},
      {"measure": "complications", "grade": "minor", "percent": 7, "count": 2}]),
    ("Technical success was achieved in 30 patients (100%) and clinical success in 26 patients (87%).",
     [{"measure": "technical_success", "percent": 100, "count": 30},
      {"measure": "clinical_success", "percent": 87, "count": 26}]),
])
def test_a_finding_joined_by_and_keeps_its_own_numbers(outcomes, text, expected):
    assert outcomes(text) == expected


def test_respectively_shares_numbers_out_across_different_measures(outcomes):
    text = "Technical success, clinical success and local control were 100%, 87% and 80%, respectively."
    assert outcomes(text) == [{"measure": "technical_success", "percent": 100},
                              {"measure": "clinical_success", "percent": 87},
                              {"measure": "local_control", "percent": 80}]


def test_complete_pain_relief_is_clinical_success_for_osteoid_osteoma(outcomes):
    text = "Thirty patients with osteoid osteoma were treated. Complete pain relief was obtained in 28 of 30 patients (93%)."
    assert outcomes(text) == [{"measure": "clinical_success", "count": 28, "total": 30, "percent": 93}]


def test_pain_relief_is_pain_response_for_metastases(outcomes):
    text = "Thirty patients with painful bone metastases were treated. Pain relief was obtained in 24 of 30 patients (80%)."
    assert outcomes(text) == [{"measure": "pain_response", "count": 24, "total": 30, "percent": 80}]


def test_symptoms_resolved_is_a_clinical_success_without_numbers(outcomes):
    text = "A 45-year-old woman was treated with cryoablation. Her symptoms resolved within two days."
    assert outcomes(text, ["Case Reports"]) == [{"measure": "clinical_success"}]


def test_a_general_claim_is_not_a_finding(outcomes):
    text = "Thirty patients were treated. Cryoablation provides effective symptom relief with few complications."
    assert outcomes(text) == []


def test_a_case_report_baseline_pairs_with_later_scores(outcomes):
    text = (
        "Pain persisted despite analgesics, with a score of 6/10 on a numeric rating scale. "
        "Her pain score was 1/10 at 1 week and 0/10 at 1 month."
    )
    assert outcomes(text, ["Case Reports"]) == [
        {"measure": "pain_score", "scale": "nrs", "before": 6, "after": 1, "timepoint": "1 week"},
        {"measure": "pain_score", "scale": "nrs", "before": 6, "after": 0, "timepoint": "1 month"},
    ]


def test_outcomes_come_in_text_order_with_evidence_spans(read):
    text = "No major complications occurred. Technical success was 100%. Local recurrence occurred in 2 patients (5%)."
    doc = read(text)
    measures = [o["measure"] for o, _ in doc._.cryokb_outcomes]
    assert measures == ["complications", "technical_success", "recurrence"]
    for outcome, span in doc._.cryokb_outcomes:
        assert span.doc is doc
    spans = [span.text for _, span in doc._.cryokb_outcomes]
    assert "major complications" in spans[0]
    assert "100%" in spans[1]
    assert "2 patients (5%)" in spans[2]


def test_a_repeated_finding_is_reported_once(outcomes):
    text = "There were no major complications. Cryoablation is safe, without major complications."
    assert outcomes(text) == [{"measure": "complications", "grade": "major", "count": 0}]


def test_gold_set_outcomes_do_not_regress(nlp, gold_dir):
    """Outcome measures and numeric facts on the gold set stay near what they reach today."""
    tp = fp = fn = hits = total = 0
    for gold_path in sorted(gold_dir.glob("*.jsonl")):
        articles = {a.pmid: a for a in iter_records(gold_path.with_suffix(".xml")) if isinstance(a, Article)}
        for line in gold_path.read_text(encoding="utf-8").splitlines():
            gold = json.loads(line)
            if not gold["relevant"]:
                continue
            doc = nlp(make_doc(nlp, articles[gold["pmid"]]))
            predicted = [o for o, _ in doc._.cryokb_outcomes]
            g = Counter((o["measure"], o.get("grade")) for o in gold["outcomes"])
            p = Counter((o["measure"], o.get("grade")) for o in predicted)
            overlap = sum((g & p).values())
            tp, fp, fn = tp + overlap, fp + sum(p.values()) - overlap, fn + sum(g.values()) - overlap
            g_facts, p_facts = numeric_facts(gold["outcomes"]), numeric_facts(predicted)
            total += sum(g_facts.values())
            hits += sum((g_facts & p_facts).values())
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.85, f"outcome measure F1 {f1:.3f}"
    assert hits / total >= 0.85, f"numeric facts {hits}/{total}"


def test_a_rules_file_with_an_unknown_key_is_refused(rules_file):
    from extractors import outcomes as module

    good = json.loads(cryokb_data.path(module.DATA_FILE).read_text(encoding="utf-8"))
    good["outcomes"]["typo_key"] = "x"
    rules = rules_file(module.rules, module.DATA_FILE, good)
    with pytest.raises(module.OutcomeRulesError, match=r"outcome_patterns.json: unknown keys \['typo_key'\]"):
        rules()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Local control was 84% (95% CI 70-92) at 1 year and 76% (95% CI 60-87) at 2 years.",
         [{"measure": "local_control", "percent": 84, "timepoint": "1 year"},
          {"measure": "local_control", "percent": 76, "timepoint": "2 years"}]),
        ("Local tumour control rates were 91% (95% CI, 80-96) at 6 months and 79% (95% CI, 65-88) at 18 months.",
         [{"measure": "local_control", "percent": 91, "timepoint": "6 months"},
          {"measure": "local_control", "percent": 79, "timepoint": "18 months"}]),
        ("Local progression-free survival was 88% (95% confidence interval: 75-95) at 1 year and 70% "
         "(95% confidence interval: 52-83) at 3 years.",
         [{"measure": "local_control", "percent": 88, "timepoint": "1 year"},
          {"measure": "local_control", "percent": 70, "timepoint": "3 years"}]),
    ],
)
def test_each_rate_keeps_its_timepoint_across_a_confidence_interval(outcomes, text, expected):
    assert outcomes(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The mean VAS score was 6.9 ± 1.4 before treatment, 2.3 ± 1.7 at one month and 1.5 ± 1.2 at six months.",
         [{"measure": "pain_score", "scale": "vas", "before": 6.9, "after": 2.3, "timepoint": "one month"},
          {"measure": "pain_score", "scale": "vas", "before": 6.9, "after": 1.5, "timepoint": "six months"}]),
        ("The mean NRS score was 6.8 at baseline, 3.0 at 1 week and 1.2 at 6 months.",
         [{"measure": "pain_score", "scale": "nrs", "before": 6.8, "after": 3.0, "timepoint": "1 week"},
          {"measure": "pain_score", "scale": "nrs", "before": 6.8, "after": 1.2, "timepoint": "6 months"}]),
        # a later value that states its own baseline still pairs the other way round
        ("The VAS score was 2 at 4 weeks versus 7 at baseline.",
         [{"measure": "pain_score", "scale": "vas", "before": 7, "after": 2, "timepoint": "4 weeks"}]),
    ],
)
def test_a_baseline_stated_once_is_the_before_of_every_later_score(outcomes, text, expected):
    assert outcomes(text) == expected


COMPARATIVE = "We compared 64 cryoablations with 72 microwave ablations (MWA) of painful bone metastases. "


@pytest.mark.parametrize(
    "text, expected",
    [
        # the comparator arm's count is left out, a plural abbreviation included
        ("Major complications occurred in 2 of 64 cryoablations (3%) and 3 of 72 MWAs (4%).",
         [{"measure": "complications", "grade": "major", "count": 2, "total": 64, "percent": 3}]),
        ("Minor complications were seen after 6 of 64 cryoablation procedures and 9 of 72 microwave ablations.",
         [{"measure": "complications", "grade": "minor", "count": 6, "total": 64}]),
        # a total pooled over both techniques is not the cryoablation arm's
        ("Overall, complications followed 11 procedures (8.1%), with no significant difference between techniques.", []),
        ("In total, complications occurred in 9 of 136 ablations (6.6%) across both techniques.", []),
        ("Overall, complications followed 12 procedures (8.8%), with no difference between the two techniques: "
         "major complications occurred after 3 of 64 cryoablations (5%) and 4 of 72 MWAs (6%).",
         [{"measure": "complications", "grade": "major", "count": 3, "total": 64, "percent": 5}]),
    ],
)
def test_a_comparative_study_reports_the_cryoablation_arm_only(outcomes, text, expected):
    assert outcomes(COMPARATIVE + text) == expected


def test_a_subgroup_difference_in_a_single_arm_study_keeps_its_finding(outcomes):
    text = ("Forty patients underwent cryoablation. Complications occurred in 4 of 40 patients (10%), with no "
            "difference between the two groups.")
    assert outcomes(text) == [{"measure": "complications", "grade": "any", "count": 4, "total": 40, "percent": 10}]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("One patient with a 35-mm tumor had residual tumor on the first follow-up MRI.",
         [{"measure": "recurrence", "count": 1}]),
        ("Two patients with tumours larger than 40 mm had residual disease at 3 months.",
         [{"measure": "recurrence", "count": 2}]),
        ("Three patients aged over 70 years developed local recurrence.",
         [{"measure": "recurrence", "count": 3}]),
        # a second count in the gap is its own fact: the first one is not carried across it
        ("Of 5 patients with sacral tumours, 2 had residual tumor.", [{"measure": "recurrence", "count": 2}]),
    ],
)
def test_a_count_reaches_its_cue_across_a_size_or_an_age(outcomes, text, expected):
    assert outcomes(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("One patient developed a sciatic neuropathy with persistent weakness of ankle dorsiflexion.",
         [{"measure": "complications", "grade": "any", "count": 1}]),
        ("Two patients experienced transient paresthesia of the thigh.",
         [{"measure": "complications", "grade": "any", "count": 2}]),
        ("Three patients had a pathological fracture of the treated femur within 6 months.",
         [{"measure": "complications", "grade": "any", "count": 3}]),
        ("One patient developed a grade 3 skin necrosis that required debridement.",
         [{"measure": "complications", "grade": "major", "count": 1}]),
        # an event present before treatment is no complication of it
        ("Four patients had a pathological fracture at presentation.", []),
        ("Two patients had a previous fracture of the same vertebra.", []),
        ("Nine cysts were in the humerus; 6 had presented with a pathological fracture.", []),
        ("Twenty patients were treated, none of whom had a neurological deficit.", []),
        # a grade stated later in the sentence is the event's
        ("One patient developed a peroneal neuropathy with lasting foot weakness (Clavien-Dindo grade III).",
         [{"measure": "complications", "grade": "major", "count": 1}]),
    ],
)
def test_an_adverse_event_named_after_its_verb_is_a_complication(outcomes, text, expected):
    assert outcomes(text) == expected


@pytest.mark.parametrize("text, grade", [
    ("SIR grade C complications were seen in 2 patients.", "major"),
    ("Two patients had SIR grade D complications.", "major"),
    ("SIR grade B complications occurred in 3 patients.", "minor"),
])
def test_sir_grades_written_as_grades_are_graded(outcomes, text, grade):
    assert [(o["grade"], o["count"]) for o in outcomes(text)] == [(grade, 2 if grade == "major" else 3)]


def test_grade_a_evidence_is_no_complication(outcomes):
    assert outcomes("Grade A evidence supports its use in 12 centres.") == []


@pytest.mark.parametrize("arms", [
    "Thirty patients had cryoablation and 40 had radiofrequency ablation. ",
    "Thirty patients had surgery and 25 had cryoablation. ",
])
def test_a_respectively_series_over_arms_credits_no_arm_to_cryoablation(outcomes, arms):
    """Which value is cryoablation's was said in another sentence: none is kept rather than the comparator's."""
    assert outcomes(arms + "Clinical success rates were 93% and 95%, respectively.") == []


def test_a_respectively_series_over_timepoints_is_kept_in_a_comparative_article(outcomes):
    text = ("Two patients had prior radiotherapy. Local control rates at 1 and 2 years were 90% and 80%, "
            "respectively.")
    assert [(o["percent"], o["timepoint"]) for o in outcomes(text)] == [(90, "1 year"), (80, "2 years")]


@pytest.mark.parametrize("text, expected", [
    ("Two patients had a minor skin burn and one had a major nerve injury.", [("minor", 2), ("major", 1)]),
    ("One patient had a grade 4 nerve injury and two had grade 1 skin burns.", [("major", 1), ("minor", 2)]),
    ("Two patients (5%) had grade 2 and one (2.5%) had grade 4 neuropathy.", [("minor", 2), ("major", 1)]),
])
def test_a_count_after_and_belongs_to_the_event_its_verb_names(outcomes, text, expected):
    assert [(o["grade"], o["count"]) for o in outcomes(text)] == expected


@pytest.mark.parametrize("text, expected", [
    ("Technical success was achieved in 20 tumours and minor complications in 3.",
     [{"measure": "technical_success", "count": 20}, {"measure": "complications", "grade": "minor", "count": 3}]),
    # "progression" is no cue of its own, but its count is not local control's either
    ("Local control was achieved in 18 patients and progression occurred in 4.",
     [{"measure": "local_control", "count": 18}]),
])
def test_a_count_stays_with_its_own_finding_across_and(outcomes, text, expected):
    assert outcomes(text) == expected


def test_thresholds_a_guideline_sets_are_not_results(outcomes):
    assert outcomes("Reported technical success thresholds are 95%, and major complication thresholds 5%.",
                    publication_types=("Practice Guideline",)) == []


@pytest.mark.parametrize("text, expected", [
    ("Clinical success was achieved in 20 patients, 15 of whom (75%) were women.",
     [{"measure": "clinical_success", "count": 20}]),
    ("Recurrence occurred in 4 patients, 3 of whom were retreated.", [{"measure": "recurrence", "count": 4}]),
])
def test_a_count_of_whom_describes_the_patients_it_is_not_a_result(outcomes, text, expected):
    assert outcomes(text) == expected


def test_a_zero_beside_a_count_of_the_same_grade_gives_way_to_the_count(outcomes):
    text = ("Complications were Clavien-Dindo grade I in 4 patients and grade IIIa in 1 patient. "
            "No grade IV or V complications occurred.")
    assert [(o["grade"], o["count"]) for o in outcomes(text)] == [("minor", 4), ("major", 1)]


def test_a_zero_of_another_grade_stands(outcomes):
    assert [(o["grade"], o["count"]) for o in outcomes(
        "No major complications occurred; minor complications occurred in 3 patients.")] == [("major", 0), ("minor", 3)]
