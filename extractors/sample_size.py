"""Count the patients and lesions of a study (EVIDENCE_SCHEMA.md, n_patients, n_lesions).

An abstract usually states its population once in the methods ("A total of 23
patients with 31 lesions", "we reviewed 40 consecutive patients") and then reuses
smaller numbers for subgroups and results ("in 35 patients", "(n = 17)"). Each number
followed by a patient or lesion noun is a candidate; cues raise or lower its score
(a total, "consecutive", an enrolment verb; a subgroup, parentheses, a results
sentence, an exclusion) and the best candidate wins, the earliest on a tie. The
Conventions' special cases follow: patients excluded from the analysis are subtracted,
losses to follow-up are not, the arms of a comparative study are added up, a
systematic review counts only its pooled number, sessions are never lesions, and a
case report has one patient (its "45-year-old woman").

Cue patterns and scores are data (``data/sample_size_cues.json``).
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc, Span

from extractors.vocabulary import load_section

from .design import design_of
from .design import ensure_extensions as ensure_design_extensions
from .numbers import SPANS_KEY as NUMBERS_KEY
from .numbers import Number, char_span_expand, doc_sentences, doc_text, numbers_of
from .numbers import ensure_extensions as ensure_number_extensions

log = logging.getLogger("cryokb")

DATA_FILE = "sample_size_cues.json"
_PATTERNS = (
    "patient_after", "lesion_after", "not_lesions", "n_after_patients", "n_after_lesions", "total_before",
    "total_after", "consecutive", "subgroup_before", "excluded_after", "analysed_after", "analysed_before",
    "lost_after", "results_context", "pooled", "pooled_after", "single_patient", "group_words", "arm_after",
    "bare_analysed_before", "bare_analysed_after", "bare_analysed_sentence", "sex_after", "sex_pair_gap",
)
_LISTS = ("no_patient_designs", "pooled_only_designs", "single_designs")
_SCORES = {"total", "consecutive", "enrolment", "n_equals", "n_equals_lesions", "analysed", "subgroup",
           "in_parentheses", "results_sentence", "excluded", "lost", "title", "lesion_minimum"}


class SampleSizeRulesError(ValueError):
    """The sample-size cue file is malformed (missing or unknown key, bad regex)."""


@dataclass(frozen=True)
class _Rules:
    patterns: dict[str, re.Pattern]
    lists: dict[str, frozenset]
    scores: dict[str, int]


@lru_cache(maxsize=1)
def rules() -> _Rules:
    """Load, validate and compile ``data/sample_size_cues.json`` once per process."""
    expected = set(_PATTERNS) | set(_LISTS) | {"scores", "_about"}
    data = load_section(DATA_FILE, "sample_size", expected, SampleSizeRulesError, optional=())
    if set(data["scores"]) != _SCORES:
        raise SampleSizeRulesError(f"{DATA_FILE}: scores must name exactly {sorted(_SCORES)}")
    try:
        patterns = {key: re.compile(data[key], re.IGNORECASE) for key in _PATTERNS}
    except re.error as exc:
        raise SampleSizeRulesError(f"{DATA_FILE}: bad pattern: {exc}") from exc
    return _Rules(patterns, {k: frozenset(data[k]) for k in _LISTS}, dict(data["scores"]))


@dataclass
class Candidate:
    """One stated count of patients or lesions, with the score of its context."""

    what: str  # "patients" or "lesions"
    value: int
    start: int
    end: int
    score: int = 0
    total: bool = False
    analysed: bool = False
    excluded: bool = False
    sentence: int = 0


def count_population(text: str, sentences: list[tuple[int, int]], numbers: list[Number], design: str | None):
    """(n_patients, n_lesions), each ``(value, (start, end))`` or None."""
    r = rules()
    if design in r.lists["no_patient_designs"]:
        return None, None
    sent_starts = [s for s, _ in sentences] or [0]
    title_end = text.find("\n\n")
    candidates = [c for n in numbers for c in _candidates(text, n, sentences, sent_starts, title_end)]
    if design in r.lists["pooled_only_designs"]:
        return _pooled(text, candidates, "patients"), _pooled(text, candidates, "lesions")
    patients = _best_patients(text, candidates, sentences, numbers)
    if patients is None:
        patients = _fraction_total(text, numbers) or _single(text)
    elif design in r.lists["single_designs"] and patients[0] > 1 and _single(text) and not _said_plural(candidates):
        patients = _single(text)
    lesions = _best_lesions(text, candidates, patients)
    return patients, lesions


def _sentence_of(pos: int, sent_starts: list[int]) -> int:
    return max(0, bisect.bisect_right(sent_starts, pos) - 1)


def _candidates(text, n: Number, sentences, sent_starts, title_end):
    r = rules()
    p = r.patterns
    if n.kind == "n":
        before = text[max(0, n.start - 30) : n.start]
        for what, key, score in (("patients", "n_after_patients", "n_equals"), ("lesions", "n_after_lesions", "n_equals_lesions")):
            if p[key].search(before):
                cand = Candidate(what, int(n.value), n.start, n.end, score=r.scores[score])
                cand.sentence = _sentence_of(n.start, sent_starts)
                yield cand
        return
    if n.kind != "number" or not isinstance(n.value, int) or n.is_time or n.is_measurement or n.value < 1:
        return
    after = text[n.end : n.end + 70]
    pm = p["patient_after"].match(after)
    lm = p["lesion_after"].match(after)
    if lm and p["not_lesions"].search(lm.group(0)):
        lm = None
    if pm and lm:
        if pm.end() <= lm.end():
            lm = None
        else:
            pm = None
    match = pm or lm
    if match is None:
        yield from _bare_analysed(text, n, sentences, sent_starts)
        return
    what = "patients" if pm else "lesions"
    end = n.end + match.end()
    idx = _sentence_of(n.start, sent_starts)
    s_start, s_end = sentences[idx] if sentences else (0, len(text))
    cand = Candidate(what, int(n.value), n.start, end, sentence=idx)
    _score(cand, text, n, match.group(0), s_start, s_end, title_end)
    yield cand


def _bare_analysed(text, n: Number, sentences, sent_starts):
    """The number left for analysis after exclusions, stated without a noun.

    "... three were excluded from the analysis, leaving 45." names no patients after
    45, yet it is the population the Conventions count; only a sentence that speaks
    of exclusions or withdrawals makes such a bare number one.
    """
    p, s = rules().patterns, rules().scores
    idx = _sentence_of(n.start, sent_starts)
    s_start, s_end = sentences[idx] if sentences else (0, len(text))
    if not p["bare_analysed_before"].search(text[max(s_start, n.start - 20) : n.start]):
        return
    if not p["bare_analysed_after"].match(text[n.end : s_end]):
        return
    if not p["bare_analysed_sentence"].search(text, s_start, n.start):
        return
    yield Candidate("patients", int(n.value), n.start, n.end, score=s["analysed"], analysed=True, sentence=idx)


def _score(cand: Candidate, text: str, n: Number, noun_phrase: str, s_start: int, s_end: int, title_end: int) -> None:
    r = rules()
    p, s = r.patterns, r.scores
    before = text[max(s_start, n.start - 45) : n.start]
    rest = _PARENTHESES.sub("", text[cand.end : min(s_end, cand.end + 240)])  # "29 patients (17 women) were"
    sentence = text[s_start:s_end]
    if p["total_before"].search(before):
        cand.score += s["total"]
        cand.total = True
    if p["consecutive"].search(noun_phrase):
        cand.score += s["consecutive"]
        cand.total = True
    enrolled = p["total_after"].match(rest) is not None
    if enrolled:
        cand.score += s["enrolment"]
    if p["analysed_after"].match(rest) or p["analysed_before"].search(before):
        cand.score += s["analysed"]
        cand.analysed = True
    if p["subgroup_before"].search(before) and not (cand.analysed or cand.total):  # "performed in 23 patients"
        cand.score += s["subgroup"]
    if text.count("(", s_start, n.start) > text.count(")", s_start, n.start):
        cand.score += s["in_parentheses"]
    if not (cand.total or enrolled) and p["results_context"].search(sentence):
        cand.score += s["results_sentence"]
    if p["excluded_after"].match(rest):
        cand.score += s["excluded"]
        cand.excluded = True
    if p["lost_after"].match(rest):
        cand.score += s["lost"]
    if 0 <= title_end and n.start < title_end:
        cand.score += s["title"]


_PARENTHESES = re.compile(r"\s*[\(\[][^()\[\]]*[\)\]]")


def _best(cands: list[Candidate]) -> Candidate | None:
    if not cands:
        return None
    return max(cands, key=lambda c: (c.score, -c.start))


def _best_patients(text, candidates, sentences, numbers):
    pats = [c for c in candidates if c.what == "patients"]
    best = _best([c for c in pats if not c.excluded])
    if best is None:
        return None
    value = best.value
    if not best.analysed:
        excluded = [c for c in pats if c.excluded and c.start > best.start and c.value < best.value and c.start - best.end < 800]
        if excluded:
            value = best.value - excluded[0].value
        elif sexes := _sexes_total(text, best, numbers):
            value = sexes
        elif not best.total:
            value = _arms_total(text, best, sentences, numbers) or value
    return value, (best.start, best.end)


_OTHER_SEX = {"women": "men", "men": "women", "females": "males", "males": "females", "boys": "girls", "girls": "boys"}


def _sexes_total(text, best: Candidate, numbers) -> int | None:
    """A population stated only by sex ("25 women and 15 men"): the two added up.

    A count of one sex is never the whole population when the other sex follows, so
    this holds even after a total cue ("comprised 25 women and 15 men"); a stated total
    ("38 patients (25 women and 13 men)") outscores the sex counts and keeps its value.
    """
    p = rules().patterns
    first = next((n for n in numbers if n.start == best.start), None)
    m = p["sex_after"].match(text, first.end) if first is not None else None
    if m is None or m.end() != best.end:
        return None
    other = _OTHER_SEX[m.group("sex").lower()]
    for n in numbers:
        if n.start < best.end or n.kind != "number" or not isinstance(n.value, int) or n.is_time or n.is_measurement:
            continue
        if not p["sex_pair_gap"].search(text[best.end : n.start]):
            return None
        m2 = p["sex_after"].match(text, n.end)
        return best.value + n.value if m2 and m2.group("sex").lower() == other else None
    return None


def _arms_total(text, best: Candidate, sentences, numbers) -> int | None:
    """A comparative study's population: the arms of one sentence added up, unless the
    count chosen is already their total ("Fifty patients were included: 20 underwent
    cryoablation and 30 surgery")."""
    p = rules().patterns
    if not sentences:
        return None
    s_start, s_end = sentences[best.sentence]
    sentence = text[s_start:s_end]
    if len(p["group_words"].findall(sentence)) < 2:
        return None
    arms, others = [], []
    best_is_arm = False
    for n in numbers:
        if not (s_start <= n.start < s_end) or n.kind != "number" or not isinstance(n.value, int):
            continue
        if n.is_time or n.is_measurement or text.count("(", s_start, n.start) > text.count(")", s_start, n.start):
            continue
        if n.start == best.start or p["arm_after"].match(text, n.end) or p["patient_after"].match(text, n.end):
            arms.append(n.value)
            if n.start != best.start:
                others.append(n.value)
            else:
                best_is_arm = p["arm_after"].match(text, n.end) is not None
    if len(others) >= 2 and sum(others) == best.value and not best_is_arm:
        return best.value
    return sum(arms) if len(arms) >= 2 else None


def _pooled(text, candidates, what):
    p = rules().patterns
    for c in candidates:
        if c.what != what:
            continue
        if p["pooled"].search(text[max(0, c.start - 40) : c.start]) or p["pooled_after"].match(text, c.end):
            return c.value, (c.start, c.end)
    return None


def _fraction_total(text, numbers):
    p = rules().patterns
    for n in numbers:
        if n.kind == "fraction" and p["patient_after"].match(text, n.end):
            return n.total, (n.start, n.end)
    return None


def _single(text):
    m = rules().patterns["single_patient"].search(text)
    return (1, m.span()) if m else None


def _said_plural(candidates) -> bool:
    return any(c.what == "patients" and c.value > 1 and c.score >= 0 and not c.excluded for c in candidates)


def _best_lesions(text, candidates, patients):
    lesions = [c for c in candidates if c.what == "lesions" and not c.excluded]
    if not lesions:
        return None
    if patients is not None:
        start = patients[1][0]
        for c in lesions:
            lo, hi = sorted((c.start, start))
            between = _PARENTHESES.sub("", text[lo:hi])
            if len(between) < 80 and not re.search(r"[.;]\s", between):
                c.score += 2  # "23 patients with 31 lesions", "54 tumours in 50 patients"
    best = _best(lesions)
    if best.score < rules().scores["lesion_minimum"]:
        return None  # only a subgroup is counted ("three cysts persisted"): not the study's lesions
    return best.value, (best.start, best.end)


def ensure_extensions(patients_attr: str, lesions_attr: str) -> None:
    for attr in (patients_attr, lesions_attr):
        if not Doc.has_extension(attr):
            Doc.set_extension(attr, default=None)


@Language.factory(
    "cryokb_sample_size",
    default_config={
        "numbers_key": NUMBERS_KEY, "number_attr": "number", "design_attr": "cryokb_study_design",
        "patients_attr": "cryokb_n_patients", "lesions_attr": "cryokb_n_lesions",
    },
    assigns=["doc._.cryokb_n_patients", "doc._.cryokb_n_lesions"],
    requires=["doc.spans"],
)
def make_sample_size(nlp, name, numbers_key, number_attr, design_attr, patients_attr, lesions_attr):
    return SampleSize(nlp, name, numbers_key=numbers_key, number_attr=number_attr, design_attr=design_attr,
                      patients_attr=patients_attr, lesions_attr=lesions_attr)


class SampleSize:
    """Writes ``doc._.cryokb_n_patients`` and ``doc._.cryokb_n_lesions`` as (int, span) or None.

    Runs after ``cryokb_study_design``: the design decides whether patients are counted
    at all (not in a review, guideline or animal study) and how (pooled, single case).
    """

    def __init__(self, nlp: Language, name: str, *, numbers_key: str = NUMBERS_KEY, number_attr: str = "number",
                 design_attr: str = "cryokb_study_design", patients_attr: str = "cryokb_n_patients",
                 lesions_attr: str = "cryokb_n_lesions"):
        self.name = name
        self.numbers_key = numbers_key
        self.number_attr = number_attr
        self.design_attr = design_attr
        self.patients_attr = patients_attr
        self.lesions_attr = lesions_attr
        ensure_number_extensions(number_attr)
        ensure_extensions(patients_attr, lesions_attr)
        self.types_attr = "cryokb_publication_types"
        ensure_design_extensions(design_attr, self.types_attr)
        rules()

    def __call__(self, doc: Doc) -> Doc:
        design = doc._.get(self.design_attr)
        if design is None:  # the pipeline may run this before cryokb_study_design
            design = design_of(doc, self.types_attr)
        key = design[0] if design else None
        numbers = numbers_of(doc, self.numbers_key, self.number_attr)
        patients, lesions = count_population(doc_text(doc), doc_sentences(doc), numbers, key)
        doc._.set(self.patients_attr, self._with_span(doc, patients))
        doc._.set(self.lesions_attr, self._with_span(doc, lesions))
        return doc

    @staticmethod
    def _with_span(doc: Doc, found) -> tuple[int, Span] | None:
        if found is None:
            return None
        value, (start, end) = found
        span = char_span_expand(doc, start, end)
        return (value, span) if span is not None else None
