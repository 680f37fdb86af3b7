"""Read the results of an abstract as schema outcomes (EVIDENCE_SCHEMA.md, Outcomes).

A results sentence names a measure ("technical success", "minor complications", "VAS")
and gives its facts as numbers nearby ("in 48 of 50 patients (96%)", "from 7.1 to 1.4
at 4 weeks"), or states a zero ("no major complications"). The rules here work one
sentence at a time:

1. find the measure cues (one compiled regex, named group per measure) and, for
   complications, the grade words that modify them or stand alone ("2 major and 3 minor");
2. turn the sentence's numbers (from ``cryokb_numbers``) into facts: a count or fraction
   merged with the percent beside it, plus "in all patients";
3. give each fact to the nearest cue of its clause, before it ("success was 96%") or
   after it through a linking verb ("three patients (6%) had minor complications");
4. read pain-score pairs, directions (analgesics, quality of life) and stated zeros.

Facts that belong to a comparator ("90% for RFA", "versus 75%") are dropped, because the
schema reports the cryoablation arm only. Every cue phrase, grade word and relation rule
is data (``data/outcome_patterns.json``).
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc, Span

from extractors.vocabulary import load_section

from .numbers import SPANS_KEY as NUMBERS_KEY
from .numbers import Number, ensure_extensions as ensure_number_extensions
from .numbers import Prefilter, doc_sentences, doc_text, fold_safe, numbers_of, parse_value, pattern_plain_or_word
from .numbers import char_span_expand, prefix_finder, scan

log = logging.getLogger("cryokb")

DATA_FILE = "outcome_patterns.json"
SCHEMA_MEASURES = (
    "technical_success", "clinical_success", "pain_score", "pain_response", "local_control",
    "recurrence", "complications", "analgesic_use", "quality_of_life",
)
_REQUIRED = {
    "measure_order", "measures", "contextual", "grades", "scales", "zero_measures", "zero_before",
    "zero_blockers", "zero_after", "link_after", "link_after_blockers", "not_a_rate_before",
    "not_a_rate_after", "count_blockers_before", "count_units", "all_fact", "comparators", "cryo",
    "comparator_after", "listing", "skip_sentence", "hedges", "clause_breaks", "directions",
    "pain_before_marker", "pain_before_after_value", "pain_stops", "followup_timepoint", "definition",
    "before_gap_blockers", "vs_pair", "pain_before_anywhere", "one_before", "breakdown",
    "pain_value_followers", "pain_value_gap", "prior_treatment_after_cue", "non_progression_before",
    "interval_parenthesis", "pain_labels_respectively",
    "pooled_over_arms",
    "measure_in_gap",
    "named_event_after_verb",
    "named_event_blockers",
    "negated_before",
    "negated_after",
    "zero_exceptions",
}
_TIME_WORDS = {
    "h": "h", "hr": "h", "hrs": "h", "hour": "hour", "hours": "hour", "d": "day", "day": "day", "days": "day",
    "week": "week", "weeks": "week", "wk": "week", "wks": "week", "month": "month", "months": "month",
    "mo": "month", "mos": "month", "year": "year", "years": "year", "yr": "year", "yrs": "year",
}


class OutcomeRulesError(ValueError):
    """The outcome rules file is malformed (missing or unknown key, bad regex)."""


# A pattern that names a space character literally may tell apart the spaces that
# lower_text() makes all " ": then the lower-cased scan is not used in its place.
_LITERAL_SPACE = re.compile(r"\s|\\[tnrfvx]|\\u|\\N")


def _alt(fragments) -> str:
    return "|".join(f"(?:{f})" for f in fragments)


def _words(fragments) -> str:
    return rf"(?<![\w-])(?:{_alt(fragments)})(?![\w-])"


def lower_pattern(pattern: str) -> str:
    """A case-insensitive pattern rewritten for lower-cased text (escapes and group names kept).

    Matching lower-cased text without re.IGNORECASE is about twice as fast.
    """
    return re.sub(r"(\\.|\(\?P<\w+>)|([A-Z])", lambda m: m.group(1) or m.group(2).lower(), pattern)


_SPACE_CHARS = "\t\n\r\f\v\u00a0\u2002\u2003\u2009\u202f"
_LOW_KEY = "cryokb_lower_text"


def lower_text(text: str) -> str:
    """``text.lower()`` with every space made " " and the same length, so that offsets
    still point into ``text`` (the scanners' prefixes assume single spaces)."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    for space in _SPACE_CHARS:  # str.replace of the few present: several times faster than str.translate
        if space in low:
            low = low.replace(space, " ")
    return low


def doc_lower_text(doc: Doc) -> str:
    """:func:`lower_text` of the article text, made once per doc (outcomes and design read it)."""
    low = doc.user_data.get(_LOW_KEY)
    if low is None:
        low = lower_text(doc_text(doc))
        doc.user_data[_LOW_KEY] = low
    return low


def _named_words(groups) -> str:
    """One regex for several named groups of whole-word phrases.

    The word-start check comes first, once, so that the alternatives are only tried
    where a word begins: several times faster than a boundary inside each alternative.
    """
    named = "|".join(rf"(?P<{name}>(?:{_alt(fragments)})(?![\w-]))" for name, fragments in groups)
    return rf"(?<![\w-])(?:{named})"


@dataclass(frozen=True)
class _Rules:
    cues: re.Pattern
    cues_low: re.Pattern
    cue_finder: re.Pattern | None
    cues_low_exact: bool
    scales_low: re.Pattern
    scales_finder: re.Pattern | None
    prefilters: dict
    grades: re.Pattern
    scales: re.Pattern
    contextual: dict
    zero_measures: frozenset
    zero_before: re.Pattern
    zero_blockers: re.Pattern
    zero_after: re.Pattern
    link_after: re.Pattern
    link_after_blockers: re.Pattern
    not_a_rate_before: re.Pattern
    not_a_rate_after: re.Pattern
    count_blockers_before: re.Pattern
    count_units: frozenset
    all_fact: re.Pattern
    comparators: re.Pattern
    comparator_after: re.Pattern
    cryo_after: re.Pattern
    cryo: re.Pattern
    listing: re.Pattern
    skip_sentence: re.Pattern
    hedges: re.Pattern
    clause_breaks: re.Pattern
    directions: dict
    pain_before_marker: re.Pattern
    pain_before_after_value: re.Pattern
    pain_stops: re.Pattern
    followup_timepoint: re.Pattern
    definition: re.Pattern
    before_gap_blockers: re.Pattern
    vs_pair: re.Pattern
    pain_labels_respectively: re.Pattern
    pain_before_anywhere: re.Pattern
    one_before: re.Pattern
    breakdown: re.Pattern
    pain_value_followers: re.Pattern
    pain_value_gap: int
    prior_treatment_after_cue: re.Pattern
    non_progression_before: re.Pattern
    named_event_blockers: re.Pattern
    named_event_after_verb: re.Pattern
    measure_in_gap: re.Pattern
    pooled_over_arms: re.Pattern
    interval_parenthesis: re.Pattern
    negated_before: re.Pattern
    negated_after: re.Pattern
    zero_exceptions: re.Pattern


@lru_cache(maxsize=1)
def rules() -> _Rules:
    """Load, validate and compile ``data/outcome_patterns.json`` once per process."""
    data = load_section(DATA_FILE, "outcomes", _REQUIRED, OutcomeRulesError)
    order = data["measure_order"]
    if set(order) != set(data["measures"]):
        raise OutcomeRulesError(f"{DATA_FILE}: measure_order and measures name different measures")
    for name in order:
        if name not in SCHEMA_MEASURES and name not in data["contextual"]:
            raise OutcomeRulesError(f"{DATA_FILE}: measure {name!r} is neither a schema measure nor contextual")
    flags = re.IGNORECASE
    try:
        cues = re.compile(_named_words((m, data["measures"][m]) for m in order), flags)
        grades = re.compile(_named_words(data["grades"].items()), flags)
        scales = re.compile(_named_words(data["scales"].items()), flags)
        directions = {
            measure: re.compile(_named_words(dirs.items()), flags) for measure, dirs in data["directions"].items()
        }
        contextual = {
            key: (re.compile(lower_pattern(spec["if_doc_matches"])), spec["then"], spec["else"])
            for key, spec in data["contextual"].items()
        }
        comparator_words = _words(data["comparators"])
        compiled = {
            key: re.compile(data[key], flags)
            for key in (
                "zero_before", "zero_blockers", "zero_after", "link_after", "link_after_blockers",
                "not_a_rate_before", "not_a_rate_after", "count_blockers_before", "all_fact", "listing",
                "skip_sentence", "hedges", "clause_breaks", "pain_before_marker", "pain_before_after_value",
                "pain_stops", "followup_timepoint", "definition", "before_gap_blockers", "vs_pair",
                "pain_before_anywhere", "one_before", "breakdown", "pain_value_followers",
                "non_progression_before", "interval_parenthesis", "pain_labels_respectively",
                "pooled_over_arms",
                "measure_in_gap",
                "named_event_after_verb",
                "named_event_blockers",
                "negated_before",
                "negated_after",
                "zero_exceptions",
            )
        }
        return _Rules(
            cues=cues,
            cues_low=re.compile(lower_pattern(cues.pattern)),
            cue_finder=prefix_finder(lower_pattern(cues.pattern)),
            cues_low_exact=not _LITERAL_SPACE.search(cues.pattern),
            scales_low=re.compile(lower_pattern(scales.pattern)),
            scales_finder=prefix_finder(lower_pattern(scales.pattern)),
            prefilters={key: Prefilter(data[key], flags) for key in _PREFILTERED}
            | {"grades": Prefilter(grades.pattern, flags), "comparators": Prefilter(comparator_words, flags)},
            grades=grades,
            scales=scales,
            contextual=contextual,
            zero_measures=frozenset(data["zero_measures"]),
            count_units=frozenset(u.lower() for u in data["count_units"]),
            comparators=re.compile(comparator_words, flags),
            comparator_after=re.compile(data["comparator_after"] + f"(?:{comparator_words})", flags),
            cryo_after=re.compile(data["comparator_after"] + f"(?:{_words(data['cryo'])})", flags),
            cryo=re.compile(_words(data["cryo"]), flags),
            directions=directions,
            pain_value_gap=int(data["pain_value_gap"]),
            prior_treatment_after_cue=re.compile(data["prior_treatment_after_cue"] + f"(?:{comparator_words})", flags),
            **compiled,
        )
    except re.error as exc:
        raise OutcomeRulesError(f"{DATA_FILE}: bad pattern: {exc}") from exc


# Sentence rules searched only where a literal they need occurs (numbers.Prefilter).
_PREFILTERED = (
    "skip_sentence", "definition", "clause_breaks", "hedges", "all_fact", "not_a_rate_before", "count_blockers_before",
)


def _maybe(name: str, low: str | None) -> bool:
    """Whether rule ``name`` can match the sentence whose lower-cased text is ``low``
    (None: not known to be safe to tell, so search)."""
    return low is None or rules().prefilters[name].maybe(low)


@dataclass
class _Cue:
    measure: str
    start: int
    end: int
    grade: str | None = None
    zero: bool = False
    zero_start: int | None = None
    facts: list = field(default_factory=list)
    dropped: bool = False  # negated, but not a stated zero: no outcome at all
    turned: bool = False  # "no local progression", read as local control: its negation is taken


@dataclass
class _Fact:
    start: int
    end: int
    count: int | None = None
    total: int | None = None
    percent: int | float | None = None


@dataclass
class _Context:
    """What the whole article says that sentence rules need: its pain scale, its lesion
    focus, whether it names a comparator treatment, and a pain baseline stated alone,
    waiting for the values after treatment."""

    scale: str
    contextual: dict
    comparative: bool = False
    pending_baseline: int | float | None = None


def find_outcomes(
    text: str, sentences: list[tuple[int, int]], numbers: list[Number], low: str | None = None
) -> list[tuple[dict, int, int]]:
    """All outcomes of ``text`` as (outcome, start, end) in text order, duplicates dropped.

    ``low`` is ``lower_text(text)`` when the caller has it already."""
    if low is None:
        low = lower_text(text)
    r = rules()
    cue_matches = [(_skip_space(low, m.start()), m.end(), m.lastgroup) for m in scan(r.cues_low, r.cue_finder, low)]
    events = r.named_event_after_verb.search(text) is not None  # "two patients developed a neuropathy"
    if not cue_matches and not events:
        return []
    ctx = _doc_context(low)
    safe = fold_safe(text)
    starts = [n.start for n in numbers]
    cue_starts = [c[0] for c in cue_matches]
    found: list[tuple[dict, int, int]] = []
    bare_success: list[tuple[dict, int, int]] = []
    for s_start, s_end in sentences:
        c_lo = bisect.bisect_left(cue_starts, s_start)
        c_hi = bisect.bisect_left(cue_starts, s_end)
        if c_lo == c_hi and not (events and r.named_event_after_verb.search(text, s_start, s_end)):
            continue
        sentence_cues = [(a - s_start, min(b, s_end) - s_start, m) for a, b, m in cue_matches[c_lo:c_hi]]
        lo = bisect.bisect_left(starts, s_start)
        hi = bisect.bisect_left(starts, s_end)
        low_sent = low[s_start:s_end] if safe else None
        numeric, bare = _sentence_outcomes(text, s_start, s_end, numbers[lo:hi], ctx, sentence_cues, low_sent)
        found.extend(numeric)
        bare_success.extend(bare)
    if bare_success and not any(o["measure"] == "clinical_success" for o, _, _ in found):
        found.append(bare_success[0])
    found.sort(key=lambda item: item[1])
    unique, seen = [], set()
    for outcome, start, end in found:
        key = tuple(sorted(outcome.items()))
        if key not in seen:
            seen.add(key)
            unique.append((outcome, start, end))
    return _without_contradicted_zeros(unique)


def _without_contradicted_zeros(found: list[tuple[dict, int, int]]) -> list[tuple[dict, int, int]]:
    """"Grade IIIa in 1 patient. No grade IV or V complications": a stated zero of a measure
    and grade the article also counts above zero says only that none was worse; the count
    stands alone rather than beside a zero that contradicts it."""
    counted = {(o["measure"], o.get("grade")) for o, _, _ in found if o.get("count") or o.get("percent")}
    return [(o, a, b) for o, a, b in found
            if not (o.get("count") == 0 and "percent" not in o and (o["measure"], o.get("grade")) in counted)]


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _doc_context(low: str) -> _Context:
    """The article-wide context, read from the lower-cased text."""
    r = rules()
    scale = next(scan(r.scales_low, r.scales_finder, low), None)
    contextual = {key: (then if pattern.search(low) else other) for key, (pattern, then, other) in r.contextual.items()}
    comparative = r.comparators.search(low) is not None
    return _Context(scale=scale.lastgroup if scale else "other", contextual=contextual, comparative=comparative)


def _sentence_outcomes(text, s_start, s_end, numbers, ctx, sentence_cues, low_sent=None):
    """Outcomes of one sentence, and a bare clinical_success it states without numbers.

    ``low_sent``, the sentence lower-cased (None when pre-filters cannot be trusted on
    this text), lets the sentence rules skip searches that cannot match."""
    r = rules()
    sent = text[s_start:s_end]
    if _maybe("skip_sentence", low_sent) and r.skip_sentence.search(sent):
        return [], []
    definitions = [m.span() for m in r.definition.finditer(sent)] if _maybe("definition", low_sent) else []
    cues = [
        c for c in _find_cues(sent, ctx, sentence_cues, low_sent) if not any(a <= c.start < b for a, b in definitions)
    ]
    if not cues:
        return [], []
    local = [_shift(n, s_start) for n in numbers]
    times = _time_numbers(sent, local)
    cue_spans = [(c.start, c.end) for c in cues]
    masked = _mask(sent, cue_spans)
    facts = _facts(masked, local, times, cue_spans + definitions, safe=low_sent is not None)
    clauses = [0]  # read only to place facts and directions: not searched for when there are none
    if (facts or any(c.facts or c.measure in r.directions for c in cues)) and _maybe("clause_breaks", low_sent):
        clauses += [m.end() for m in r.clause_breaks.finditer(sent)]
    _assign(sent, facts, cues, clauses)
    _drop_contradicted_zeros(sent, facts, cues, clauses)
    if _RESPECTIVELY.search(sent):
        _respectively(cues)
        if ctx.comparative:
            _drop_arm_series(cues, times)
    out: list[tuple[dict, int, int]] = []
    bare: list[tuple[dict, int, int]] = []
    has_comparator = _maybe("comparators", low_sent) and r.comparators.search(sent) is not None
    for cue in cues:
        for outcome, start, end in _cue_outcomes(sent, cue, local, times, clauses, ctx, has_comparator, bare, low_sent):
            out.append((outcome, start + s_start, end + s_start))
    bare = [(o, a + s_start, b + s_start) for o, a, b in bare]
    if bare and _maybe("hedges", low_sent) and r.hedges.search(sent):
        bare = []
    return out, bare


def _mask(sent: str, spans) -> str:
    """The sentence with its cue phrases blanked, so "2 grade 3 events (4%)" reads as one fact."""
    if not spans:
        return sent
    chars = list(sent)
    for start, end in spans:
        chars[start:end] = "x" * (end - start)
    return "".join(chars)


def _shift(n: Number, offset: int) -> Number:
    return Number(
        n.value, n.kind, n.start - offset, n.end - offset, n.text, n.total, n.low, n.high, n.sd, n.unit, n.spelled
    )


def _clause_of(pos: int, clauses: list[int]) -> int:
    return bisect.bisect_right(clauses, pos) - 1


# --- cues -------------------------------------------------------------------------------


def _find_cues(sent: str, ctx: _Context, sentence_cues=None, low_sent: str | None = None) -> list[_Cue]:
    r = rules()
    if sentence_cues is None:
        sentence_cues = [(m.start(), m.end(), m.lastgroup) for m in r.cues.finditer(sent)]
    cues = []
    for start, end, measure in sentence_cues:
        measure = ctx.contextual.get(measure, measure)
        cues.append(_Cue(measure, start, end))
    named = _named_events(sent, cues)
    cues += named
    if not cues:
        return cues
    if any(c.measure == "complications" for c in cues):
        cues = _attach_grades(sent, cues, low_sent)
    if len(named) == 1 and named[0].grade is None:
        cues = _grade_named_event(named[0], cues)
    for cue in cues:
        if cue.measure in r.zero_measures:
            _mark_zero(sent, cue, cues)
    cues.sort(key=lambda c: c.start)
    return cues


def _named_events(sent: str, cues: list[_Cue]) -> list[_Cue]:
    """Adverse events named after a verb: "One patient developed a sciatic neuropathy".

    The cue patterns find a named event only before "occurred in N"; written the other
    way round, the verb comes first and the count before it is the event's count. An
    event the patients had before treatment ("a fracture at presentation", "none of
    whom had a deficit") is none.
    """
    r = rules()
    if "ed " not in sent and "had " not in sent:
        return []
    if any(c.measure == "complications" for c in cues):
        return []  # "developed a hematoma (major complication)": the sentence's own cue reads it
    found = []
    for m in r.named_event_after_verb.finditer(sent):
        start, end = m.span("event")
        if any(c.start < end and start < c.end for c in cues):
            continue
        if r.named_event_blockers.search(sent):
            return []
        found.append(_Cue("complications", start, end))
    return found


def _grade_named_event(event: _Cue, cues: list[_Cue]) -> list[_Cue]:
    """The one grade of a sentence left over after a named event ("developed a sciatic
    neuropathy with persistent weakness (Clavien-Dindo grade III)") is that event's."""
    leftover = [c for c in cues if c is not event and c.measure == "complications" and c.grade is not None]
    if len(leftover) != 1 or leftover[0].start < event.end:
        return cues
    event.grade = leftover[0].grade
    return [c for c in cues if c is not leftover[0]]


def _attach_grades(sent: str, cues: list[_Cue], low_sent: str | None = None) -> list[_Cue]:
    """Give each complications cue its grade; a grade word left over is a cue of its own."""
    if not _maybe("grades", low_sent):
        return cues
    grades = [(m.lastgroup, m.start(), m.end()) for m in rules().grades.finditer(sent)]
    used = set()
    for cue in (c for c in cues if c.measure == "complications"):
        before = [
            g for g in grades
            if g[2] <= cue.start and re.fullmatch(r"[\s-]*(?:[A-Za-z-]+[\s-]+){0,2}", sent[g[2] : cue.start])
        ]
        after = [
            g for g in grades
            if g[1] >= cue.end and re.fullmatch(r"\s*(?:\(|,|:)?\s*(?:(?:were|was|all|being|mostly|of|CTCAE|SIR)\s+)*", sent[cue.end : g[1]])
        ]
        chosen = before[-1] if before else (after[0] if after else None)
        if chosen is not None:
            cue.grade = chosen[0]
            cue.start = min(cue.start, chosen[1])
            cue.end = max(cue.end, chosen[2])
            used.add(chosen)
    for g in grades:
        if g not in used and not any(c.start <= g[1] < c.end for c in cues):
            cues.append(_Cue("complications", g[1], g[2], grade=g[0]))
    return cues


def _mark_zero(sent: str, cue: _Cue, cues: list[_Cue]) -> None:
    """"no major complications", "recurrence was not observed": a stated zero."""
    r = rules()
    if r.one_before.search(sent, max(0, cue.start - 20), cue.start):
        cue.facts.append(_Fact(cue.start, cue.end, count=1))  # "the only complication"
        return
    window_start = max(0, cue.start - 60)
    prior = [c.end for c in cues if c.end <= cue.start and c is not cue and c.measure != cue.measure]
    if prior:
        window_start = max(window_start, max(prior))
    pre = sent[window_start : cue.start]
    m = r.zero_before.search(pre)
    if m and not r.zero_blockers.search(m.group(0)):
        zero_start = window_start + m.start()
        if (
            cue.measure == "recurrence"
            and "progress" in sent[cue.start : cue.end].lower()
            and r.non_progression_before.search(sent, max(0, zero_start - 60), zero_start)
        ):
            cue.measure = "local_control"  # "9 of 11 tumours (82%) showed no local progression"
            cue.turned = True
            return
        cue.zero = True
        cue.zero_start = zero_start
        return
    if r.zero_after.match(sent, cue.end):
        cue.zero = True
        cue.zero_start = cue.start


# --- numbers into facts -------------------------------------------------------------------


def _time_numbers(sent: str, numbers: list[Number]) -> dict[int, str]:
    """Numbers that are timepoints, by start offset, as text ("6 weeks", "1 year").

    A list such as "at 1, 3 and 6 months" or "1-, 2- and 3-year" takes the unit of its
    last member.
    """
    times: dict[int, str] = {}
    run: list[Number] = []
    for n in numbers:
        if run and not re.fullmatch(r"\s*-?\s*(?:,|,?\s*and|,?\s*or|to)\s*", sent[run[-1].end : n.start]):
            run = []
        if n.kind != "number":
            run = []
            continue
        run.append(n)
        unit = _TIME_WORDS.get(n.unit or "")
        if unit is not None:
            for member in run:
                times[member.start] = _timepoint_text(member, unit)
            run = []
    return times


def _timepoint_text(n: Number, unit: str) -> str:
    if unit != "h" and n.value != 1:
        unit += "s"
    return f"{n.text} {unit}"


def _facts(sent: str, numbers: list[Number], times: dict[int, str], cue_spans, safe: bool = False) -> list[_Fact]:
    """Counts, fractions and percents of the sentence, a count merged with its percent.

    ``safe``: the literal pre-filter may decide whether "in all patients" is searched."""
    r = rules()
    singles: list[tuple[str, Number]] = []
    cue_starts = [a for a, _ in cue_spans]
    for n in numbers:
        if n.start in times or any(a <= n.start < b for a, b in cue_spans):
            continue
        role = _role(sent, n, safe)
        if role == "count" and n.kind == "number" and any(0 < a - n.end <= 12 for a in cue_starts):
            role = "cue_count"  # "Two cysts persisted", "3 minor complications"
        if role is not None:
            singles.append((role, n))
    facts: list[_Fact] = []
    singles = [("count" if role == "cue_count" else role, n, role == "cue_count") for role, n in singles]
    i = 0
    while i < len(singles):
        role, n, near_cue = singles[i]
        fact = _fact_of(role, n)
        if i + 1 < len(singles):
            role2, n2, _ = singles[i + 1]
            if {role, role2} == {"percent", "count"} and _merge_gap(sent[n.end : n2.start]):
                other = _fact_of(role2, n2)
                fact = _Fact(
                    n.start, n2.end, fact.count if fact.count is not None else other.count,
                    fact.total if fact.total is not None else other.total,
                    fact.percent if fact.percent is not None else other.percent,
                )
                end = n2.end
                close = re.match(r"\s*[\)\]]", sent[end:])
                fact.end = end + (close.end() if close and "(" in sent[n.end : n2.start] else 0)
                i += 1
                if fact.total is None and i + 1 < len(singles):
                    role3, n3, _ = singles[i + 1]
                    if n3.kind == "number" and re.fullmatch(r"\s+of\s+(?:the\s+|all\s+)?", sent[fact.end : n3.start]):
                        fact.total, fact.end = int(n3.value), n3.end  # "28 (93%) of 30 tumours"
                        i += 1
            elif role == "count" and n.kind == "number" and not near_cue and not _strong_count(sent, n):
                i += 1
                continue
        elif role == "count" and n.kind == "number" and not near_cue and not _strong_count(sent, n):
            i += 1
            continue
        facts.append(fact)
        i += 1
    for m in r.all_fact.finditer(sent) if not safe or _maybe("all_fact", sent.lower()) else ():
        if any(f.start <= m.start() < f.end for f in facts):
            continue
        count = _word_or_digit(m.group("n"))
        if m.group("n") and count is None:
            continue
        if count is not None:
            facts = [f for f in facts if not (m.start() <= f.start < m.end())]
            facts.append(_Fact(m.start(), m.end(), count=count, total=count))
        else:
            facts.append(_Fact(m.start(), m.end(), percent=100))
    facts.sort(key=lambda f: f.start)
    return facts


def _word_or_digit(raw: str | None) -> int | None:
    if not raw:
        return None
    if pattern_plain_or_word().fullmatch(raw):
        value = parse_value(raw)
        return value if isinstance(value, int) else None
    return None


def _role(sent: str, n: Number, safe: bool = False) -> str | None:
    r = rules()
    before = sent[max(0, n.start - 30) : n.start]
    after = sent[n.end : n.end + 30]
    low = before.lower() if safe else None
    if n.kind == "percent":
        if n.value > 100:
            return None  # "110% of the target": a ratio, not the share of patients a rate is
        if (_maybe("not_a_rate_before", low) and r.not_a_rate_before.search(before)) or r.not_a_rate_after.match(after):
            return None
        return "percent"
    if n.kind in ("fraction", "n"):
        return "count"
    if n.kind == "number" and isinstance(n.value, int) and not n.is_time and not n.is_measurement:
        if (_maybe("count_blockers_before", low) and r.count_blockers_before.search(before)) or (
            _maybe("not_a_rate_before", low) and r.not_a_rate_before.search(before)
        ):
            return None
        if re.match(r"\s*(?:/|-|–|to\b|points?\b|mm\b|cm\b)", after):
            return None
        if _OF_WHOM.match(after):
            return None  # "20 patients, 15 of whom (75%) were women": who they were, not a result
        return "count"
    return None


def _fact_of(role: str, n: Number) -> _Fact:
    if role == "percent":
        return _Fact(n.start, n.end, percent=_as_written(n.value))
    if n.kind == "fraction":
        return _Fact(n.start, n.end, count=n.value, total=n.total)
    return _Fact(n.start, n.end, count=int(n.value))


def _as_written(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _merge_gap(gap: str) -> bool:
    """Whether a count and a percent separated by ``gap`` state one fact: "48 of 50
    patients (96%)", "3 (6%)", "96% (48/50)", "(3/50, 6%)"."""
    if len(gap) > 40 or re.search(r"\d|;|\band\b|\bor\b|\bvs\b|versus|\bwhile\b|\bwhereas\b", gap):
        return False
    return re.fullmatch(r"\s*(?:[A-Za-z-]+\s+){0,3}?[\(\[,]?\s*(?:n\s*=\s*)?", gap) is not None


def _strong_count(sent: str, n: Number) -> bool:
    """A bare integer is a count only where the sentence makes it one ("in 3 patients")."""
    if n.unit in rules().count_units:
        return True
    before = sent[max(0, n.start - 12) : n.start]
    if re.search(r"(?:\b(?:in|of|only|total|were|was|had)|[:;(])\s*$", before, re.IGNORECASE):
        return True
    return re.match(r"\s*[\(\[]|\s+(?:were|was|had|developed|experienced|suffered)\b", sent[n.end :]) is not None


# --- facts to cues ------------------------------------------------------------------------


_RESPECTIVELY = re.compile(r"\brespectively\b", re.IGNORECASE)


def _respectively(cues: list[_Cue]) -> None:
    """"Major and minor complication rates were 2% and 8%, respectively": the facts that
    went to the last of several coordinated cues are shared out in order, among the cues
    of its measure if they match in number, else among all the cues still without a fact
    ("Technical success, clinical success and local control were 100%, 87% and 80%")."""
    for i, cue in enumerate(cues):
        earlier = [c for c in cues[:i] if not c.facts and not c.zero]
        for waiting in ([c for c in earlier if c.measure == cue.measure], earlier):
            if waiting and len(cue.facts) == len(waiting) + 1:
                for c, fact in zip(waiting + [cue], list(cue.facts)):
                    c.facts = [fact]
                break


def _drop_contradicted_zeros(sent: str, facts: list[_Fact], cues: list[_Cue], clauses: list[int]) -> None:
    """"No residual tumour in 18 of 20 patients", "Fifteen of 16 remained free of recurrence",
    "No complications apart from two skin burns": a negated cue whose clause also gives a
    rate that no other cue took, or whose sentence makes an exception, states no zero;
    its complement is not written either, so it gives no outcome at all."""
    r = rules()
    taken = {id(f) for c in cues for f in c.facts}
    for cue in cues:
        if not cue.zero:
            continue
        clause = _clause_of(cue.start, clauses)
        rated = any(id(f) not in taken and _clause_of(f.start, clauses) == clause and _partial(f) for f in facts)
        if rated or _excepted(sent, cue, cues):
            cue.zero, cue.dropped = False, True


def _excepted(sent: str, cue: _Cue, cues: list[_Cue]) -> bool:
    """"No complications apart from two skin burns" makes an exception to the zero; "No
    major complications occurred, but 4 minor ones" counts another grade, and the zero
    of the major ones stands."""
    m = rules().zero_exceptions.search(sent, cue.end)
    if m is None:
        return rules().zero_exceptions.search(sent) is not None
    counted = next((c for c in cues if c.start >= m.end() and c.measure == cue.measure), None)
    other_grade = (cue.grade not in (None, "any") and counted is not None
                   and counted.grade not in (None, "any", cue.grade) and not sent[m.end() : counted.start].strip())
    return not other_grade


def _partial(fact: _Fact) -> bool:
    """A rate short of everyone ("18 of 20", "85%"); "all 20 patients" is consistent with a zero."""
    if fact.total is not None and fact.count is not None:
        return fact.count < fact.total
    return fact.percent is not None and 0 < fact.percent < 100


def _negated(sent: str, cue: _Cue) -> bool:
    """"Technical success was not achieved in 2 of 30", "had no pain response", "local
    control failed in 4": the numbers count the failures, not the measure."""
    r = rules()
    return bool(r.negated_before.search(sent, max(0, cue.start - 40), cue.start) or r.negated_after.match(sent, cue.end))


def _drop_arm_series(cues: list[_Cue], times: dict) -> None:
    """"Clinical success rates were 93% and 95%, respectively", in an article that names
    another treatment: one value per arm, and which arm is cryoablation's was said in
    another sentence. Unless the values are a series over the sentence's timepoints
    ("at 1 and 2 years ... 90% and 80%"), none is kept rather than the comparator's."""
    for cue in cues:
        if len(cue.facts) > 1 and len(times) < len(cue.facts):
            cue.dropped = True


def _is_breakdown(sent: str, cue: _Cue, cues: list[_Cue]) -> bool:
    """A cue inside the breakdown of an earlier one ("Complications occurred in 12 (16%):
    wound complications in four") is an item of that list, not a finding of its own.
    A grade word is not: "5 (10%): 2 major and 3 minor" gives its split."""
    if cue.grade is not None and not any(c.measure == cue.measure and c.grade == cue.grade for c in cues if c.start < cue.start):
        return False
    for earlier in cues:
        if earlier.start >= cue.start or earlier.measure != cue.measure:
            continue
        if rules().breakdown.search(sent, earlier.end, cue.start):
            return True
    return False


def _breaks_down(sent: str, lo: int, hi: int) -> bool:
    """Whether ``sent[lo:hi]`` opens a breakdown of the fact before it.

    A parenthesised interval ("84% (95% CI 70-92) at 1 year and 76% ...") qualifies the
    rate before it and opens no list, so it is left out before the breakdown check.
    """
    r = rules()
    return r.breakdown.search(r.interval_parenthesis.sub(" ", sent[lo:hi])) is not None


def _unmeasured(gap: str) -> str:
    """``gap`` without its sizes and ages: "One patient with a 35-mm tumor had residual
    tumor" links the count to its cue across a number that is no count."""
    return rules().measure_in_gap.sub(" ", gap)


_OF_WHOM = re.compile(r"\s+of\s+(?:whom|them)\b", re.IGNORECASE)
# "in 20 tumours and minor complications in 3": a coordinator between a count and the cue after it
_COORDINATED = re.compile(r"\b(?:and|or|but|while|whereas)\b", re.IGNORECASE)
_AND_OR = re.compile(r"\s*,?\s*(?:and|or|while|whereas)\s*", re.IGNORECASE)


def _linked_cue_after(sent: str, fact: _Fact, cues: list[_Cue]) -> bool:
    """Whether a cue follows the fact, tied to it by a verb ("one had a major nerve injury")."""
    r = rules()
    for cue in cues:
        if cue.start >= fact.end:
            gap = sent[fact.end : cue.start]
            if len(gap) <= 30 and r.link_after.search(gap) and not r.link_after_blockers.search(gap) \
                    and not re.search(r"\d|[;:,]", gap):
                return True
    return False


def _assign(sent: str, facts: list[_Fact], cues: list[_Cue], clauses: list[int]) -> None:
    """Give each fact to the nearest cue of its clause that can take it."""
    r = rules()
    takers = [c for c in cues if not c.zero and c.measure != "pain_score" and not _is_breakdown(sent, c, cues)]
    owner: dict[int, _Cue] = {}
    for idx, fact in enumerate(facts):
        clause = _clause_of(fact.start, clauses)
        best, best_score = None, None
        for cue in takers:
            if _clause_of(cue.start, clauses) != clause:
                continue
            if fact.start <= cue.start and cue.end <= fact.end:
                score = 0  # "three minor complications (6%)": the cue sits inside the fact
            elif cue.end <= fact.start:
                gap = sent[cue.end : fact.start]
                if len(gap) > 140:
                    continue
                if cue.measure == "complications" and r.listing.search(gap):
                    continue
                if r.before_gap_blockers.search(gap):
                    continue
                between = [j for j in range(idx) if facts[j].start >= cue.end]
                if any(owner.get(j) is not cue for j in between):
                    continue
                if cue.facts and _breaks_down(sent, cue.facts[-1].end, fact.start):
                    continue  # "in 12 patients (16%): fracture in six, ...": a breakdown
                if _AND_OR.fullmatch(gap) and _linked_cue_after(sent, fact, takers):
                    continue  # "a minor burn and one had a major nerve injury": the next finding's count
                score = len(gap) + (15 * len(between))
            elif cue.start >= fact.end:
                gap = sent[fact.end : cue.start]
                if any(fact.end <= f.start < cue.start for f in facts) or re.search(r"\d|[;:]", _unmeasured(gap)):
                    continue
                if _COORDINATED.search(gap) and any(c.end <= fact.start and _clause_of(c.start, clauses) == clause
                                                    for c in takers):
                    continue  # "recurrence in 3 (10%) and minor complications in 2": the next finding's cue
                if gap.rstrip().endswith("("):  # "in one patient (major complication)"
                    if len(gap) > 100:
                        continue
                else:
                    if len(gap) > 50 or "," in gap:
                        continue
                    words = re.findall(r"[A-Za-z]+", gap)
                    linked = r.link_after.search(gap) and not r.link_after_blockers.search(gap)
                    if len(words) > 2 and not linked:
                        continue
                score = len(gap) + 3
            else:
                continue
            if best_score is None or score < best_score:
                best, best_score = cue, score
        if best is not None:
            owner[idx] = best
            best.facts.append(fact)


# --- outcomes of a cue ---------------------------------------------------------------------


def _cue_outcomes(sent, cue, numbers, times, clauses, ctx, has_comparator, bare, low_sent=None):
    r = rules()
    base = {"measure": cue.measure}
    if cue.measure == "complications":
        base["grade"] = cue.grade or "any"
    if has_comparator and r.prior_treatment_after_cue.match(sent[cue.end : cue.end + 90]):
        return  # "recurrent pain after previous radiofrequency ablation": history, not a result
    if cue.dropped or (cue.measure not in r.zero_measures and cue.measure not in r.directions
                       and cue.measure != "pain_score" and not cue.turned and _negated(sent, cue)):
        return
    if cue.zero:
        start = cue.zero_start if cue.zero_start is not None else cue.start
        yield {**base, "count": 0}, start, cue.end
        return
    if cue.measure == "pain_score":
        yield from _pain_pairs(sent, cue, numbers, times, ctx, has_comparator, low_sent)
        return
    if cue.measure in r.directions:
        direction = _direction(sent, cue, clauses)
        if direction is None:
            return
        base["direction"] = direction
    facts = [
        f for f in cue.facts
        if not (has_comparator and _is_comparator(sent, f, cue)) and not (ctx.comparative and _is_pooled(sent, f))
    ]
    if not facts:
        if cue.facts:
            return
        if cue.measure in r.directions:
            yield base, cue.start, cue.end
        elif cue.measure == "clinical_success" and not re.search(
            r"\b(?:not|no|failed|failure|without)\b[^.;,]{0,25}$", sent[max(0, cue.start - 40) : cue.start], re.I
        ):
            if not (has_comparator and _comparator_before(sent, cue.start)):
                bare.append((dict(base), cue.start, cue.end))
        return
    tps = _timepoints(sent, cue, facts, times, clauses) if cue.measure == "local_control" else [None] * len(facts)
    for fact, tp in zip(facts, tps):
        outcome = dict(base)
        for key in ("percent", "count", "total"):
            value = getattr(fact, key)
            if value is not None:
                outcome[key] = value
        if tp:
            outcome["timepoint"] = tp
        yield outcome, min(cue.start, fact.start), max(cue.end, fact.end)


def _direction(sent: str, cue: _Cue, clauses: list[int]) -> str | None:
    pattern = rules().directions[cue.measure]
    clause = _clause_of(cue.start, clauses)
    lo = max(clauses[clause], cue.start - 60)
    hi = clauses[clause + 1] if clause + 1 < len(clauses) else len(sent)
    hi = min(hi, cue.end + 80)
    best, best_dist = None, None
    for m in pattern.finditer(sent, lo, hi):
        if cue.start <= m.start() < cue.end:
            continue
        dist = cue.start - m.end() if m.end() <= cue.start else m.start() - cue.end
        direction = m.lastgroup
        if direction != "unchanged" and re.search(r"\b(?:not|no)\s+(?:\w+\s+)?$", sent[max(0, m.start() - 20) : m.start()]):
            direction = "unchanged"
        if best_dist is None or dist < best_dist:
            best, best_dist = direction, dist
    return best


def _timepoints(sent, cue, facts, times, clauses):
    """Timepoints of local-control facts: "85% at 1 year", "1- and 2-year ... 90% and 80%"."""
    clause = _clause_of(cue.start, clauses)
    lo = clauses[clause]
    hi = clauses[clause + 1] if clause + 1 < len(clauses) else len(sent)
    in_clause = [
        (pos, text) for pos, text in sorted(times.items())
        if lo <= pos < hi and not re.search(r"follow-?up\s+(?:period\s+)?(?:of\s+)?$|\b(?:median|mean)\s+(?:of\s+)?$", sent[max(0, pos - 25) : pos], re.I)
    ]
    if len(in_clause) == len(facts) and len(facts) > 1:
        return [text for _, text in in_clause]
    result = []
    for i, fact in enumerate(facts):
        nxt = facts[i + 1].start if i + 1 < len(facts) else min(hi, fact.end + 40)
        after = [text for pos, text in in_clause if fact.end <= pos < nxt]
        if after:
            result.append(after[0])
        elif len(in_clause) == 1:
            result.append(in_clause[0][1])
        else:
            result.append(None)
    return result


def _is_comparator(sent: str, fact: _Fact, cue: _Cue) -> bool:
    """A fact of a comparator arm: "95% for RFA", "RFA achieved 90%", "in the surgery group"."""
    r = rules()
    inside = sent[fact.start : fact.end]
    if r.comparators.search(inside):
        return r.cryo.search(inside) is None
    tail = sent[fact.end : fact.end + 45]
    if r.cryo_after.match(tail):
        return False
    if r.comparator_after.match(tail):
        return True
    return _comparator_before(sent, fact.start)


def _is_pooled(sent: str, fact: _Fact) -> bool:
    """A fact pooled over the arms of a comparative study, which the Conventions leave out.

    "complications followed 11 procedures (8%), with no difference between techniques":
    the sentence says the figure spans both techniques, and the fact names neither.
    """
    r = rules()
    if r.pooled_over_arms.search(sent) is None:
        return False
    near = sent[fact.start : fact.end + 45]
    return r.cryo.search(near) is None and r.comparators.search(near) is None


def _comparator_before(sent: str, pos: int) -> bool:
    """A comparator named, and cryoablation not, since the last number before ``pos``."""
    r = rules()
    head = sent[:pos]
    cut = max((m.end() for m in re.finditer(r"\d\s*%?\s*\)?", head)), default=0)
    window = head[cut:]
    return r.comparators.search(window) is not None and r.cryo.search(window) is None


def _pain_pairs(sent, cue, numbers, times, ctx, has_comparator, low_sent=None):
    """One pain_score per (before, after) pair: "VAS fell from 7.1 to 1.4 at 4 weeks".

    A baseline stated alone in an earlier sentence ("a score of 6/10 on a numeric
    rating scale") pairs with the later values of a sentence that states no baseline
    of its own ("her pain score was 1/10 at 1 week"), as case reports write it.
    """
    r = rules()
    scale_match = r.scales.search(sent)
    scale = scale_match.lastgroup if scale_match else ctx.scale
    values = _pain_values(sent, cue, numbers, times, low_sent)
    has_baseline = r.pain_before_anywhere.search(sent) is not None
    if not values:
        earlier = [n for n in numbers if n.end <= cue.start and n.start not in times and _pain_value(n) is not None]
        if len(earlier) == 1:
            ctx.pending_baseline = _pain_value(earlier[0])
        return
    if not has_baseline and ctx.pending_baseline is not None:
        pairs = [(ctx.pending_baseline, v) for v in values]
    else:
        pairs = _pairs(sent, cue, values, has_baseline)
    if not pairs and len(values) == 1:
        ctx.pending_baseline = _pain_value(values[0])
    for i, (before, a) in enumerate(pairs):
        if has_comparator and _is_comparator(sent, _Fact(a.start, a.end), cue):
            continue
        outcome = {"measure": "pain_score", "scale": scale, "before": before, "after": _pain_value(a)}
        tp = _pain_timepoint(
            sent, a, times, pairs[i + 1][1].start if i + 1 < len(pairs) else len(sent), len(pairs), i, cue.start
        )
        if tp:
            outcome["timepoint"] = tp
        yield outcome, cue.start, a.end


def _pain_values(sent, cue, numbers, times, low_sent=None) -> list[Number]:
    """The score values after a pain cue, up to the next other measure or scale."""
    r = rules()
    stop = r.pain_stops.search(sent, cue.end)
    limit = stop.start() if stop else len(sent)
    if low_sent is not None and r.cues_low_exact:  # the prefix scan of the lower-cased sentence
        others = scan(r.cues_low, r.cue_finder, low_sent[:limit], cue.end)
    else:
        others = r.cues.finditer(sent, cue.end, limit)
    other = next((m.start() for m in others if m.lastgroup != "pain_score"), None)
    if other is not None:
        limit = min(limit, other)
    values = []
    prev_end = cue.end
    for n in numbers:
        if not (cue.end <= n.start < limit) or n.start in times or _pain_value(n) is None:
            continue
        if n.start - prev_end > r.pain_value_gap:
            break  # too far from the cue or the last score to be one of its values
        if r.not_a_rate_before.search(sent, max(0, n.start - 25), n.start):
            continue  # "a score of at least 4": an entry threshold
        if n.kind == "number" and not r.pain_value_followers.match(sent, n.end):
            continue  # "29 sessions", "1:1"
        values.append(n)
        prev_end = n.end
    return values


def _pairs(sent, cue, values, has_baseline):
    """(before value, after Number) pairs of one sentence, in the order written.

    A baseline stated once ("7.4 before treatment, 2.1 at one month and 1.6 at twelve
    months") is the before of every later value. Two values labelled after them ("7.1
    vs. 2.3 before and after treatment, respectively") take the labels' order.
    """
    r = rules()
    labels = r.pain_labels_respectively.match(sent, values[-1].end) if len(values) == 2 else None
    if labels:
        first, second = values if labels.group("in_order") else reversed(values)
        return [(_pain_value(first), second)]
    pairs = []
    before: Number | None = None
    prev_end = cue.end
    for v in values:
        gap = sent[prev_end : v.start]
        # "7.4 before treatment, 2.1 at one month": the marker labels the value before it
        owned_by_previous = before is not None and r.pain_before_after_value.match(sent, prev_end) is not None
        marked = (r.pain_before_marker.search(gap) is not None and not owned_by_previous) or (
            r.pain_before_after_value.match(sent, v.end) is not None
        )
        if before is None or (marked and not re.search(r"\bto\b", gap)):
            if before is not None and not pairs and not r.pain_before_marker.search(sent[cue.end : before.start]):
                pairs.append((v, before))  # "VAS was 2 at 4 weeks versus 7 at baseline"
            before = v
        elif r.vs_pair.match(gap) and not has_baseline:
            pass  # "median NRS 2 vs 4": two groups compared, not a change over time
        else:
            pairs.append((before, v))
        prev_end = v.end
    return [(_pain_value(b), a) for b, a in pairs]


def _pain_value(n: Number):
    if n.kind in ("number", "mean_sd", "median_iqr", "median_range", "mean_range") and not n.is_time and not n.is_measurement:
        value = n.value
    elif n.kind == "fraction" and n.total in (10, 100):
        value = n.value
    else:
        return None
    if n.kind in ("number",) and n.unit in rules().count_units:
        return None
    if not 0 <= value <= 100:
        return None
    return value


def _pain_timepoint(sent, after: Number, times, next_start, n_pairs, index, cue_start=0):
    r = rules()
    if n_pairs > 1 and len(times) == n_pairs:
        return [t for _, t in sorted(times.items())][index]  # "before and 1, 3 and 6 months after ... were"
    window_end = min(next_start, after.end + 45)
    later = [t for pos, t in sorted(times.items()) if after.end <= pos < window_end]
    if later:
        return later[0]
    m = r.followup_timepoint.search(sent, after.end, window_end)
    if m:
        return m.group(1)
    head = sent[max(0, after.start - 40) : after.start]
    earlier = [t for pos, t in sorted(times.items()) if after.start - 40 <= pos < after.start]
    if earlier and re.search(r"\b(?:at|after)\b", head, re.IGNORECASE):
        return earlier[-1]
    all_times = [t for _, t in sorted(times.items()) if _ > after.end]
    if len(all_times) == n_pairs and n_pairs > 1:
        return all_times[index]
    leading = [
        t for pos, t in sorted(times.items())
        if pos < cue_start and re.search(r"\b(?:at|after)\s+$", sent[max(0, pos - 8) : pos], re.IGNORECASE)
    ]
    if n_pairs == 1 and len(leading) == 1:
        return leading[0]  # "At 1 month, the mean VAS was 2.1 ..."
    return None


# --- the component ------------------------------------------------------------------------


@Language.factory(
    "cryokb_outcomes",
    default_config={"numbers_key": NUMBERS_KEY, "number_attr": "number", "attr": "cryokb_outcomes"},
    assigns=["doc._.cryokb_outcomes"],
    requires=["doc.spans", "token.is_sent_start"],
)
def make_outcomes(nlp: Language, name: str, numbers_key: str, number_attr: str, attr: str) -> "OutcomeExtractor":
    return OutcomeExtractor(nlp, name, numbers_key=numbers_key, number_attr=number_attr, attr=attr)


class OutcomeExtractor:
    """Writes ``doc._.cryokb_outcomes``: (outcome dict, evidence span) in text order."""

    def __init__(self, nlp: Language, name: str, *, numbers_key: str = NUMBERS_KEY, number_attr: str = "number",
                 attr: str = "cryokb_outcomes"):
        self.name = name
        self.numbers_key = numbers_key
        self.number_attr = number_attr
        self.attr = attr
        ensure_number_extensions(number_attr)
        if not Doc.has_extension(attr):
            Doc.set_extension(attr, default=None)
        rules()

    def __call__(self, doc: Doc) -> Doc:
        numbers = numbers_of(doc, self.numbers_key, self.number_attr)
        result: list[tuple[dict, Span]] = []
        for outcome, start, end in find_outcomes(doc_text(doc), doc_sentences(doc), numbers, doc_lower_text(doc)):
            span = char_span_expand(doc, start, end)
            if span is not None:
                result.append((outcome, span))
        doc._.set(self.attr, result)
        return doc
