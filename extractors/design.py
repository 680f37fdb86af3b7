"""Decide the study design of an article (EVIDENCE_SCHEMA.md, ``study_design``).

PubMed's publication types are curated by indexers, so a strong one (randomised
trial, systematic review, guideline, case report) decides. Otherwise the abstract's own
words decide, tried in an order that resolves the usual overlaps: "a systematic review"
beats "review", "non-randomised" beats "randomised", a case report with a review of the
literature is a case report, and "a retrospective analysis of prospectively collected
data" is retrospective. A clinical text that names no design is a retrospective case
series, as the schema's Conventions say.

Publication types arrive in ``doc._.cryokb_publication_types`` (set by the pipeline
from the Article before the components run). Cues are data (``data/design_cues.json``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc, Span

from extractors.vocabulary import load_section

from .numbers import char_span_expand, doc_text, prefix_finder, scan
from .outcomes import doc_lower_text, lower_pattern, lower_text

log = logging.getLogger("cryokb")

DATA_FILE = "design_cues.json"
DESIGNS = (
    "randomized_trial", "prospective", "retrospective", "case_report", "review",
    "systematic_review", "guideline", "preclinical",
)
_REQUIRED = {
    "publication_types", "strong_publication_types", "publication_type_priority", "order", "cues",
    "cue_keys", "blocked_before", "blocked_after", "clinical_evidence", "human_cohort", "default",
    "single_person",
}


class DesignRulesError(ValueError):
    """The design cue file is malformed (unknown key, unknown design, bad regex)."""


@dataclass(frozen=True)
class _Rules:
    publication_types: dict[str, str]
    strong: frozenset[str]
    priority: tuple[str, ...]
    order: tuple[str, ...]
    combined: re.Pattern
    finder: re.Pattern | None
    cue_keys: dict[str, str]
    blocked_before: dict[str, re.Pattern]
    blocked_after: dict[str, re.Pattern]
    clinical_evidence: re.Pattern
    single_person: re.Pattern
    human_cohort: re.Pattern
    default: str


@lru_cache(maxsize=1)
def rules() -> _Rules:
    """Load, validate and compile ``data/design_cues.json`` once per process."""
    data = load_section(DATA_FILE, "study_design", _REQUIRED, DesignRulesError)
    cue_keys = {group: data["cue_keys"].get(group, group) for group in data["order"]}
    named = set(data["publication_types"].values()) | set(cue_keys.values()) | {data["default"]}
    if not named <= set(DESIGNS):
        raise DesignRulesError(f"{DATA_FILE}: not schema designs: {sorted(named - set(DESIGNS))}")
    if set(data["order"]) != set(data["cues"]):
        raise DesignRulesError(f"{DATA_FILE}: 'order' and 'cues' name different groups")
    flags = re.IGNORECASE
    try:
        groups = "|".join(
            f"(?P<{group}>(?:" + "|".join(f"(?:{p})" for p in data["cues"][group]) + r")(?![\w-]))"
            for group in data["order"]
        )
        combined = re.compile(lower_pattern(rf"(?<![\w-])(?:{groups})"))
        return _Rules(
            publication_types={k.lower(): v for k, v in data["publication_types"].items()},
            strong=frozenset(data["strong_publication_types"]),
            priority=tuple(data["publication_type_priority"]),
            order=tuple(data["order"]),
            combined=combined,
            finder=prefix_finder(combined.pattern),
            cue_keys=cue_keys,
            blocked_before={k: re.compile(v, flags) for k, v in data["blocked_before"].items()},
            blocked_after={k: re.compile(v, flags) for k, v in data["blocked_after"].items()},
            clinical_evidence=re.compile(lower_pattern(data["clinical_evidence"])),
            single_person=re.compile(lower_pattern(data["single_person"])),
            human_cohort=re.compile(data["human_cohort"], flags),
            default=data["default"],
        )
    except re.error as exc:
        raise DesignRulesError(f"{DATA_FILE}: bad pattern: {exc}") from exc


def decide_design(text: str, publication_types=(), low: str | None = None) -> tuple[str, tuple[int, int] | None] | None:
    """The design key of an article and the character span of the cue that supports it.

    Returns None for a text that says nothing of a study (no design cue, no patients).
    ``low`` is ``lower_text(text)`` when the caller has it already.
    """
    r = rules()
    text = lower_text(text) if low is None else low  # same length: spans still point into the original
    firsts = _first_matches(text)
    if "case_report" not in firsts and "old" in text:
        person = r.single_person.search(text)
        if person is not None:
            firsts["case_report"] = person.span()
    from_types = _from_publication_types(publication_types)
    if from_types in r.strong:
        return from_types, _cue_for(firsts, from_types)
    cue = _first_cue(text, firsts, from_types)
    if cue is not None:
        return cue
    if from_types is not None:
        return from_types, None
    if r.clinical_evidence.search(text):
        return r.default, None
    return None


def _from_publication_types(publication_types) -> str | None:
    r = rules()
    keys = {r.publication_types.get(str(name).lower()) for name in publication_types or ()}
    for key in r.priority:
        if key in keys:
            return key
    return None


def _first_matches(text: str) -> dict[str, tuple[int, int]]:
    """The first unvetoed cue of every group, found in one scan of the text."""
    r = rules()
    firsts: dict[str, tuple[int, int]] = {}
    for m in scan(r.combined, r.finder, text):
        group = m.lastgroup
        if group in firsts:
            continue
        key = r.cue_keys[group]
        before = r.blocked_before.get(key) or r.blocked_before.get(group)
        after = r.blocked_after.get(key) or r.blocked_after.get(group)
        if before is not None and before.search(text[max(0, m.start() - 80) : m.start()]):
            continue
        if after is not None and after.match(text[m.end() : m.end() + 60]):
            continue
        firsts[group] = m.span()
    return firsts


def _cue_for(firsts: dict, key: str) -> tuple[int, int] | None:
    r = rules()
    for group in r.order:
        if r.cue_keys[group] == key and group in firsts:
            return firsts[group]
    return None


def _first_cue(text: str, firsts: dict, from_types: str | None):
    """Walk the cue groups in order; the first group found decides, with its exceptions."""
    r = rules()
    for group in r.order:
        key = r.cue_keys[group]
        if key == "preclinical" and group in firsts and r.human_cohort.search(text):
            continue
        if key == "review" and from_types == "prospective":
            continue
        if group in ("retrospective", "prospective"):
            return _series_design(firsts)
        if group in firsts:
            return key, firsts[group]
    return None


def _series_design(firsts: dict):
    """A clinical series: retrospective if it says so (even of prospective data), else
    prospective if it says so."""
    for group in ("retrospective", "prospective"):
        if group in firsts:
            return group, firsts[group]
    return None


_DECISION_KEY = "cryokb_design_decision"


def design_of(doc: Doc, types_attr: str = "cryokb_publication_types"):
    """:func:`decide_design` for a doc, computed once: the sample-size component needs it
    too, and may run first."""
    if _DECISION_KEY not in doc.user_data:
        doc.user_data[_DECISION_KEY] = decide_design(doc_text(doc), doc._.get(types_attr) or (), doc_lower_text(doc))
    return doc.user_data[_DECISION_KEY]


def ensure_extensions(attr: str = "cryokb_study_design", types_attr: str = "cryokb_publication_types") -> None:
    """Register the doc attributes once; the pipeline may have registered the types already."""
    if not Doc.has_extension(attr):
        Doc.set_extension(attr, default=None)
    if not Doc.has_extension(types_attr):
        Doc.set_extension(types_attr, default=None)


@Language.factory(
    "cryokb_study_design",
    default_config={"attr": "cryokb_study_design", "types_attr": "cryokb_publication_types"},
    assigns=["doc._.cryokb_study_design"],
    requires=[],
)
def make_design(nlp: Language, name: str, attr: str, types_attr: str) -> "StudyDesign":
    return StudyDesign(nlp, name, attr=attr, types_attr=types_attr)


class StudyDesign:
    """Writes ``doc._.cryokb_study_design`` as (key, evidence span or None), or None."""

    def __init__(self, nlp: Language, name: str, *, attr: str = "cryokb_study_design",
                 types_attr: str = "cryokb_publication_types"):
        self.name = name
        self.attr = attr
        self.types_attr = types_attr
        ensure_extensions(attr, types_attr)
        rules()

    def __call__(self, doc: Doc) -> Doc:
        decided = design_of(doc, self.types_attr)
        if decided is None:
            doc._.set(self.attr, None)
            return doc
        key, where = decided
        span: Span | None = None
        if where is not None:
            span = char_span_expand(doc, where[0], where[1])
        doc._.set(self.attr, (key, span))
        return doc
