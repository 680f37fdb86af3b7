"""Find the numbers of an abstract and say what kind each one is.

Results sentences carry their facts as numbers in a handful of shapes ("48 of 50",
"96%", "7.5 ± 1.2", "median 14 months (IQR 8-20)", "Fifty-four"). The outcome and
sample-size components need those shapes already resolved, and they need the noise
(p values, years, ages, confidence limits) labelled so they can skip it. Matching one
compiled regex over ``doc.text`` is several times faster than token patterns and does
not depend on how the tokenizer splits "48/50" or "7.5±1.2"; each match is mapped back
to a span with ``doc.char_span(alignment_mode="expand")``.

Number words, units and year limits are data (``data/numbers.json``).
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from extractors.vocabulary import load_section

log = logging.getLogger("cryokb")

SPANS_KEY = "cryokb_numbers"
DATA_FILE = "numbers.json"
_ALLOWED_KEYS = {"_about", "units", "teens", "tens", "single", "time_units", "measure_units", "year_min", "year_max",
                 "references"}


class NumberRulesError(ValueError):
    """The number data file is missing a key, has an unknown one, or a bad value."""


@dataclass(frozen=True)
class Number:
    """One number found in the text, resolved to its value.

    ``start``/``end`` are exact character offsets of the match in ``doc.text`` (the span
    in ``doc.spans`` may be wider when a token boundary falls inside the match).

    kinds: ``number`` (a plain count or measurement), ``percent``, ``fraction`` ("48 of
    50", "48/50": value 48, total 50), ``range`` (low/high), ``percent_range``,
    ``mean_sd`` (value = mean, sd), ``median_iqr`` / ``median_range`` / ``mean_range``
    (value = centre, low/high), ``p_value``, ``n`` ("n = 23"), ``year``, ``age``.
    """

    value: int | float
    kind: str
    start: int
    end: int
    text: str
    total: int | None = None
    low: int | float | None = None
    high: int | float | None = None
    sd: int | float | None = None
    unit: str | None = None
    spelled: bool = False

    @property
    def is_time(self) -> bool:
        """A duration or timepoint ("6 weeks", "1-year"), never a count."""
        return self.unit is not None and self.unit in _rules().time_units

    @property
    def is_measurement(self) -> bool:
        """A size, dose or device count ("15 mm", "2 cryoprobes"), never a count of patients."""
        return self.unit is not None and self.unit in _rules().measure_units


@dataclass(frozen=True)
class _Rules:
    words: dict[str, int]
    time_units: frozenset[str]
    measure_units: frozenset[str]
    year_min: int
    year_max: int
    word_pattern: str
    references: re.Pattern
    references_filter: "Prefilter"


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    """Load and validate ``data/numbers.json`` once per process."""
    data = load_section(DATA_FILE, "numbers", _ALLOWED_KEYS - {"_about"}, NumberRulesError)
    words = {**data["units"], **data["teens"], **data["tens"]}
    for phrase in data["single"]:
        words[phrase] = 1
    return _Rules(
        words=words,
        time_units=frozenset(u.lower() for u in data["time_units"]),
        measure_units=frozenset(u.lower() for u in data["measure_units"]),
        year_min=int(data["year_min"]),
        year_max=int(data["year_max"]),
        word_pattern=_word_number_pattern(data),
        references=(references := _references_pattern(data["references"])),
        references_filter=Prefilter(references.pattern, re.IGNORECASE),
    )


def _references_pattern(section) -> re.Pattern:
    try:
        return re.compile("|".join(f"(?:{p})" for p in section["patterns"]), re.IGNORECASE)
    except (TypeError, KeyError, re.error) as exc:
        raise NumberRulesError(f"{DATA_FILE}: numbers.references must hold 'patterns', a list of regular "
                               f"expressions: {exc}") from None


def _alt(words) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


def _word_number_pattern(data: dict) -> str:
    """A regex for spelled numbers below one thousand ("Fifty-four", "one hundred and two")."""
    units = _alt(w for w in data["units"] if w != "zero")
    below100 = rf"(?:(?:{_alt(data['tens'])})(?:[\s-](?:{units}))?|(?:{_alt(data['teens'])})|(?:{_alt(data['units'])}))"
    hundreds = rf"(?:{below100})\s+hundred(?:\s+(?:and\s+)?{below100})?"
    single = "|".join(r"\s+".join(map(re.escape, s.split())) for s in data["single"])
    # Atomic: "ninety-six" is one number, never "ninety" then a dash (which the range
    # shapes would read as 90-6, then reject, losing the percent).
    return rf"\b(?>(?:{hundreds}|{below100}|{single})\b)"


# What stands before a p-value: "p < 0.05", "P = .01", "p-value = 0.002", "P values <= 0.05".
P_VALUE_PREFIX = r"\bp(?:[\s-]*values?)?\s*(?:<|>|=|≤|≥|&lt;|&gt;)\s*=?\s*"


# Where a number may begin: not inside a word or another number ("T12", "7.5", "1,200"),
# nor after a slash that follows a number ("48/50", "L4/5", "12/2019": read whole or not
# at all); after a word's slash it may ("9 patients/12 lesions").
NOT_INSIDE = r"(?<![\w.,\-−])(?<![\d.,)]/)(?<!^/)"


@lru_cache(maxsize=1)
def number_pattern() -> re.Pattern:
    """The master regex: every number shape, tried in order at each position."""
    num = rf"(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?(?!\d)|\.\d+|{_rules().word_pattern})"
    dash = r"(?:-|–|—|‒)"
    pm = r"(?:±|\+/-|\+/−|\+-)"
    shapes = [
        rf"{P_VALUE_PREFIX}(?P<pv>{num})",
        rf"\bn\s*=\s*(?P<nv>{num})",
        rf"(?P<m1>{num})\s*{pm}\s*(?P<sd1>{num})",
        rf"(?P<m2>{num})\s*\(\s*(?:SD|s\.d\.|standard deviation|{pm})\s*[=:,]?\s*(?P<sd2>{num})\s*\)",
        rf"(?P<c>{num})(?:\s*[a-z]+)?\s*[\(\[]\s*(?P<sk>IQR|interquartile range|range)\s*[:=,]?\s*"
        rf"(?P<lo>{num})\s*(?:{dash}|to)\s*(?P<hi>{num})(?:\s*[a-z%]+)?\s*[\)\];,]",
        rf"(?P<pl>{num})\s*%?\s*(?:{dash}|to)\s*(?P<ph>{num})\s*(?:%|per\s?cent\b|percent\b)",
        rf"(?P<pc>{num})\s*(?:%|per\s?cent\b|percent\b)",
        rf"(?P<x>{num})\s+(?:out\s+)?of\s+(?:the\s+|all\s+|these\s+|those\s+)?(?P<y>{num})(?![\d.%])",
        rf"(?P<sx>\d+)\s*/\s*(?P<sy>\d+)(?![\d/.])",
        rf"(?P<rl>{num})\s*{dash}\s*(?P<rh>{num})(?![\d.])",
        rf"\bbetween\s+(?P<bl>{num})\s+and\s+(?P<bh>{num})",
        rf"(?P<tl>{num})\s+to\s+(?P<th>{num})(?![\d.])",
        rf"(?P<v>{num})",
    ]
    return re.compile(NOT_INSIDE + r"(?:" + "|".join(shapes) + ")", re.IGNORECASE)


_PLAIN = re.compile(NOT_INSIDE + r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)|\.\d+)")
_UNIT = re.compile(r"[ \t\u00a0\u2009\u202f]?-?[ \t\u00a0\u2009\u202f]?([A-Za-zµ°][A-Za-z³/]*)")
_AGE = re.compile(r"[\s-]*(?:years?|months?)[\s-]*old\b|\s*-?\s*(?:yo|y/o)\b", re.IGNORECASE)
_RANGE_FROM = re.compile(r"\bfrom\s*$", re.IGNORECASE)
_RANGE_WORD = re.compile(r"\b(?:rang\w*|between|aged?|varied|varying)\s+(?:\w+\s+)?from\s*$", re.IGNORECASE)
_MEDIAN_BEFORE = re.compile(r"\bmedian\b[^.;()]{0,30}$", re.IGNORECASE)


def parse_value(text: str) -> int | float:
    """The value of a written number: "1,234" -> 1234, "7.5" -> 7.5, "Fifty-four" -> 54."""
    cleaned = text.strip().replace(",", "")
    if cleaned[:1].isdigit() or cleaned[:1] == ".":
        return float(cleaned) if "." in cleaned else int(cleaned)
    return _parse_words(cleaned.lower())


def _parse_words(text: str) -> int:
    words = _rules().words
    if text in words:
        return words[text]
    total = 0
    current = 0
    for part in re.split(r"[\s-]+", text):
        if part == "and" or part == "a":
            continue
        if part == "hundred":
            current = max(current, 1) * 100
        elif part in words:
            current += words[part]
        elif part == "single":
            current += 1
        else:
            raise ValueError(f"not a number word: {part!r} in {text!r}")
    return total + current


@lru_cache(maxsize=1)
def anchor_pattern() -> re.Pattern:
    """Where a number can start: a digit, or the first letters of a number word.

    Scanning for these anchors and trying the full shapes only there is several times
    faster than searching with the master regex, whose number-word alternatives would
    otherwise be tried at every word of the text."""
    starts = sorted({w[:4] for w in _rules().words})
    words = "|".join(re.escape(w) for w in starts)
    return re.compile(NOT_INSIDE + rf"(?:\d|\.\d|(?:{words}))", re.IGNORECASE)


_PREFIX = re.compile(rf"(?:{P_VALUE_PREFIX}|\bn\s*=\s*|\bbetween\s+)$", re.IGNORECASE)


# The Lancet and its family write decimals with a raised dot ("65·3%", "0·72").
_MIDDLE_DOT_DECIMAL = re.compile(r"(?<=\d)·(?=\d)")


def find_numbers(text: str) -> list[Number]:
    """Every number in ``text`` in order, each resolved to its shape and value.

    A raised decimal dot is read as a point: the shapes run over a copy of the text
    with the dot replaced (same length, so the offsets hold), and each number keeps
    its text as written.
    """
    if "·" not in text:
        return _find_numbers(text)
    return [replace(number, text=text[number.start : number.end])
            for number in _find_numbers(_MIDDLE_DOT_DECIMAL.sub(".", text))]


def _find_numbers(text: str) -> list[Number]:
    found = []
    master = number_pattern()
    anchors = anchor_pattern()
    references = _reference_spans(text)
    pos = 0
    while True:
        anchor = anchors.search(text, pos)
        if anchor is None:
            break
        start = anchor.start()
        reference = next((end for s, end in references if s <= start < end), None)
        if reference is not None:  # "[22]", "(Fig. 2)": names a source, counts nothing
            pos = reference
            continue
        prefix = _PREFIX.search(text, max(pos, start - 14), start)
        if prefix is not None:
            start = prefix.start()
        match = master.match(text, start)
        number = _resolve(match, text) if match is not None else None
        if number is None:
            number = _plain_at(anchor.start(), text)
        if number is None:
            pos = anchor.start() + 1
            continue
        found.append(number)
        pos = number.end
    return found


def _reference_spans(text: str) -> list[tuple[int, int]]:
    """Where citations and figure numbers are: searched only in a text with their words."""
    rules = _rules()
    if fold_safe(text) and not rules.references_filter.maybe(text.lower()):
        return []
    return [(m.start(), m.end()) for m in rules.references.finditer(text)]


def _plain_at(start: int, text: str) -> Number | None:
    """Fallback when a compound shape was rejected: the first number at ``start`` alone."""
    match = pattern_plain_or_word().match(text, start)
    if match is None:
        return None
    return _simple(match.group(0), match.start(), match.end(), text)


@lru_cache(maxsize=1)
def pattern_plain_or_word() -> re.Pattern:
    return re.compile(
        rf"(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?(?!\d)|\.\d+|{_rules().word_pattern})", re.IGNORECASE
    )


def _unit_after(text: str, end: int) -> str | None:
    match = _UNIT.match(text, end)
    return match.group(1).lower() if match else None


def _simple(raw: str, start: int, end: int, text: str) -> Number | None:
    """A plain number: a count, a measurement, a year or an age."""
    if end < len(text) and text[end].isupper() and raw[-1:].isdigit():
        return None  # "3D", "5FU": part of a name, not a quantity
    value = parse_value(raw)
    spelled = not raw[:1].isdigit() and raw[:1] != "."
    unit = _unit_after(text, end)
    kind = "number"
    if _AGE.match(text, end):
        kind = "age"
    elif (
        not spelled
        and isinstance(value, int)
        and len(raw) == 4
        and _rules().year_min <= value <= _rules().year_max
    ):
        kind = "year"
    return Number(value, kind, start, end, text[start:end], unit=unit, spelled=spelled)


def _resolve(m: re.Match, text: str) -> Number | None:
    """Turn a master-regex match into a Number; None when a guard rejects the shape."""
    g = m.groupdict()
    start, end = m.start(), m.end()
    raw = text[start:end]
    if g["pv"] is not None:
        return Number(parse_value(g["pv"]), "p_value", start, end, raw)
    if g["nv"] is not None:
        return Number(parse_value(g["nv"]), "n", start, end, raw)
    for mean, sd in (("m1", "sd1"), ("m2", "sd2")):
        if g[mean] is not None:
            return Number(parse_value(g[mean]), "mean_sd", start, end, raw, sd=parse_value(g[sd]))
    if g["c"] is not None:
        return _spread(m, text)
    if g["pl"] is not None:
        low, high = parse_value(g["pl"]), parse_value(g["ph"])
        if low > high:
            return None
        return Number(low, "percent_range", start, end, raw, low=low, high=high, unit="%")
    if g["pc"] is not None:
        return Number(parse_value(g["pc"]), "percent", start, end, raw, unit="%", spelled=not g["pc"][0].isdigit())
    if g["x"] is not None:
        return _fraction(g["x"], g["y"], start, end, text)
    if g["sx"] is not None:
        return _fraction(g["sx"], g["sy"], start, end, text)
    for low_key, high_key in (("rl", "rh"), ("bl", "bh"), ("tl", "th")):
        if g[low_key] is not None:
            return _range(g[low_key], g[high_key], low_key, start, end, text)
    return _simple(g["v"], start, end, text)


def _spread(m: re.Match, text: str) -> Number:
    g = m.groupdict()
    if g["sk"].lower() != "range":
        kind = "median_iqr"
    elif _MEDIAN_BEFORE.search(text, max(0, m.start() - 40), m.start()):
        kind = "median_range"
    else:
        kind = "mean_range"
    end = m.end()
    if text[end - 1] in ";,":
        end -= 1
    centre = g["c"]
    return Number(
        parse_value(centre),
        kind,
        m.start(),
        end,
        text[m.start() : end],
        low=parse_value(g["lo"]),
        high=parse_value(g["hi"]),
        unit=_unit_after(text, m.start() + len(centre)),
    )


def _fraction(part: str, whole: str, start: int, end: int, text: str) -> Number | None:
    value, total = parse_value(part), parse_value(whole)
    if not isinstance(value, int) or not isinstance(total, int) or total == 0 or value > total:
        return None
    return Number(value, "fraction", start, end, text[start:end], total=total, unit=_unit_after(text, end))


def _range(low_raw: str, high_raw: str, how: str, start: int, end: int, text: str) -> Number | None:
    low, high = parse_value(low_raw), parse_value(high_raw)
    if low > high:
        return None
    if how == "tl":
        before = text[max(0, start - 40) : start]
        if _RANGE_FROM.search(before) and not _RANGE_WORD.search(before):
            return None  # "decreased from 2 to 5" is a change, not a range
    return Number(low, "range", start, end, text[start:end], low=low, high=high, unit=_unit_after(text, end))


def doc_text(doc: Doc) -> str:
    """``doc.text``, built once per doc: spaCy joins every token each time it is asked,
    which costs a quarter of a tokenizer pass per call."""
    text = doc.user_data.get(TEXT_KEY)
    if text is None:
        text = doc.text
        doc.user_data[TEXT_KEY] = text
    return text


def doc_sentences(doc: Doc) -> list[tuple[int, int]]:
    """The (start_char, end_char) of every sentence, computed once per doc (the
    sentence component leaves them; walking ``doc.sents`` makes a Span per sentence)."""
    sentences = doc.user_data.get(_SENTS_KEY)
    if sentences is None:
        sentences = [(s.start_char, s.end_char) for s in doc.sents]
        doc.user_data[_SENTS_KEY] = sentences
    return sentences


def set_sentences(doc: Doc, sentences: list[tuple[int, int]]) -> None:
    """Record the sentences' (start_char, end_char), as the sentence component found them."""
    doc.user_data[_SENTS_KEY] = sentences
    doc.user_data.pop(_SENT_STARTS_KEY, None)


def sentence_at(doc: Doc, char: int) -> tuple[int, int]:
    """The (start_char, end_char) of the sentence holding the token that starts at ``char``:
    ``span.sent`` without walking the tokens or making a Span."""
    sentences = doc_sentences(doc)
    starts = doc.user_data.get(_SENT_STARTS_KEY)
    if starts is None:
        starts = [start for start, _ in sentences]
        doc.user_data[_SENT_STARTS_KEY] = starts
    return sentences[max(0, bisect.bisect_right(starts, char) - 1)]


class TokenTable(NamedTuple):
    """Token offsets and sentences as plain lists, made once per doc (by the sentence
    component, from arrays it reads anyway): a Token object costs more to make than
    most rules spend looking at it.

    ``start``/``end`` are each token's character offsets in ``text``, ``sent`` the index
    of the token that starts its sentence (``token.sent.start``)."""

    text: str
    start: list[int]
    end: list[int]
    sent: list[int]

    def lower(self, i: int) -> str:
        """``doc[i].lower_`` (spaCy's LOWER is ``str.lower`` of the token's text)."""
        return self.text[self.start[i] : self.end[i]].lower()

    def span_lower(self, start: int, end: int) -> str:
        """``doc[start:end].text.lower()``."""
        return self.text[self.start[start] : self.end[end - 1]].lower()

    def sentence(self, i: int) -> tuple[int, int]:
        """The token range of the sentence holding token ``i`` (``token.sent``)."""
        sent = self.sent
        first = sent[i]
        last = i + 1
        n = len(sent)
        while last < n and sent[last] == first:
            last += 1
        return first, last


def token_table(doc: Doc) -> TokenTable:
    """The doc's :class:`TokenTable` (left by the sentence component, else built here)."""
    table = doc.user_data.get(_TABLE_KEY)
    if table is None or len(table.start) != len(doc):
        table = _build_table(doc)
        doc.user_data[_TABLE_KEY] = table
    return table


def set_token_table(doc: Doc, starts: list[int], ends: list[int], sentence_starts: list[int]) -> None:
    """Record the table from the token offsets and the sentences' first tokens."""
    sent: list[int] = []
    bounds = sentence_starts[1:] + [len(starts)]
    for first, last in zip(sentence_starts, bounds):
        sent.extend([first] * (last - first))
    doc.user_data[_TABLE_KEY] = TokenTable(doc_text(doc), starts, ends, sent)


def _build_table(doc: Doc) -> TokenTable:
    from spacy.attrs import IDX, LENGTH

    array = doc.to_array([IDX, LENGTH])
    starts = array[:, 0]
    table_starts = starts.tolist()
    sentence_starts = [s.start for s in doc.sents] if len(doc) else []
    sent: list[int] = []
    for first, last in zip(sentence_starts, sentence_starts[1:] + [len(doc)]):
        sent.extend([first] * (last - first))
    return TokenTable(doc_text(doc), table_starts, (starts + array[:, 1]).tolist(), sent)


def char_span_expand(doc: Doc, start_char: int, end_char: int) -> Span | None:
    """``doc.char_span(start_char, end_char, alignment_mode="expand")`` found by bisecting
    the token table's offsets (spaCy reads Token objects to do it). Every character of
    the text belongs to one token or to its trailing space, as spaCy's lookup assumes."""
    table = token_table(doc)
    length = len(table.text)
    if not (0 <= start_char < length and 0 <= end_char - 1 < length) or not table.start:
        return None
    first = bisect.bisect_right(table.start, start_char) - 1
    last = bisect.bisect_right(table.start, end_char - 1) - 1
    if start_char == table.end[first]:
        first += 1  # in the trailing space of a token: the span starts at the next one
    return Span(doc, first, last + 1)


def is_negated(span: Span) -> bool:
    """``span._.negated`` read straight from ``doc.user_data``, where spaCy keeps span
    extension values under ("._.", name, start_char, end_char): ``span._`` makes an
    Underscore object per read, and the deciding components read every span."""
    return span.doc.user_data.get(("._.", "negated", span.start_char, span.end_char), False)


def span_list(doc: Doc, key: str) -> list[Span]:
    """``list(doc.spans[key])`` (empty when absent), made once per span group: a
    SpanGroup makes new Span objects, two Token reads each, every time it is iterated.
    Treat the list as read-only."""
    group = doc.spans.get(key)
    if group is None:
        return []
    cached = doc.user_data.get((_SPAN_LIST_KEY, key))
    if cached is not None and cached[0] is group and len(cached[1]) == len(group):
        return cached[1]
    spans = list(group)
    doc.user_data[(_SPAN_LIST_KEY, key)] = (group, spans)
    return spans


def set_span_list(doc: Doc, key: str, spans: list[Span]) -> None:
    """``doc.spans[key] = spans``, keeping ``spans`` as what :func:`span_list` returns."""
    doc.spans[key] = spans
    doc.user_data[(_SPAN_LIST_KEY, key)] = (doc.spans[key], list(spans))


TEXT_KEY = "cryokb_text"
_LIST_KEY = "cryokb_number_list"
_SENTS_KEY = "cryokb_sentence_offsets"
_SENT_STARTS_KEY = "cryokb_sentence_starts"
_TABLE_KEY = "cryokb_token_table"
_SPAN_LIST_KEY = "cryokb_span_list"


def ensure_extensions(attr: str = "number") -> None:
    """Register ``span._.<attr>`` once per process."""
    if not Span.has_extension(attr):
        Span.set_extension(attr, default=None)


@Language.factory(
    "cryokb_numbers",
    default_config={"spans_key": SPANS_KEY, "attr": "number"},
    assigns=["doc.spans", "span._.number"],
    requires=[],
)
def make_numbers(nlp: Language, name: str, spans_key: str, attr: str) -> "NumberFinder":
    return NumberFinder(nlp, name, spans_key=spans_key, attr=attr)


class NumberFinder:
    """Writes every number of the text to ``doc.spans[spans_key]`` with ``span._.number``."""

    def __init__(self, nlp: Language, name: str, *, spans_key: str = SPANS_KEY, attr: str = "number"):
        self.name = name
        self.spans_key = spans_key
        self.attr = attr
        ensure_extensions(attr)
        number_pattern()  # compile once, at build time, not on the first document

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        kept = []
        for number in find_numbers(doc_text(doc)):
            span = char_span_expand(doc, number.start, number.end)
            if span is None or (spans and spans[-1].start == span.start and spans[-1].end == span.end):
                log.debug("number %r at %d has no token span of its own", number.text, number.start)
                continue
            span._.set(self.attr, number)
            spans.append(span)
            kept.append(number)
        doc.spans[self.spans_key] = spans
        doc.user_data[(_LIST_KEY, self.spans_key)] = kept
        return doc


def numbers_of(doc: Doc, spans_key: str = SPANS_KEY, attr: str = "number") -> list[Number]:
    """The Number objects of a processed doc, in text order.

    The component keeps them in a plain list as well: reading them back through
    ``span._`` costs more than finding them did."""
    listed = doc.user_data.get((_LIST_KEY, spans_key))
    if listed is not None:
        return listed
    if spans_key not in doc.spans:
        return []
    return [span._.get(attr) for span in doc.spans[spans_key]]


# --- fast scanning -----------------------------------------------------------------------
#
# Python's regex engine tries every alternative of a large alternation at every position,
# so scanning an abstract for a hundred cue phrases costs more than tokenizing it. The
# helpers below find, from a compiled pattern's parse tree, the few letters every match
# must begin with; a scan then visits only the words that begin that way and tries the
# full pattern there.

_PREFIX_LENGTH = 4


def leading_prefixes(pattern: str, flags: int = 0) -> tuple[str, ...] | None:
    """The lower-case prefixes that every match of ``pattern`` starts with, or None
    when the pattern can start with too many things to tell (then scan everything)."""
    try:
        from re import _parser  # the stdlib parser behind re.compile (Python >= 3.11)
    except ImportError:  # pragma: no cover
        return None
    try:
        tree = _parser.parse(pattern, flags)
        found = _firsts(list(tree), "")
    except (RecursionError, ValueError, TypeError, re.error):
        return None
    if found is None or "" in found:
        return None
    return tuple(sorted(found))


def _firsts(seq: list, prefix: str) -> set[str] | None:
    from re import _constants as c

    if len(prefix) >= _PREFIX_LENGTH or not seq:
        return {prefix}
    op, av = seq[0]
    rest = seq[1:]
    if op is c.LITERAL:
        return _firsts(rest, prefix + chr(av).lower())
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return _firsts(rest, prefix)
    if op is c.SUBPATTERN:
        return _firsts(list(av[-1]) + rest, prefix)
    if op is c.BRANCH:
        return _union(_firsts(list(alt) + rest, prefix) for alt in av[1])
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        low, _high, sub = av
        once = _firsts(list(sub) + rest, prefix)
        return _union([once, _firsts(rest, prefix)]) if low == 0 else once
    if op is c.IN and all(item_op is c.LITERAL for item_op, _ in av):
        return _union(_firsts(rest, prefix + chr(ch).lower()) for _, ch in av)
    if op is c.IN and prefix and list(av) == [(c.CATEGORY, c.CATEGORY_SPACE)]:
        return _firsts(rest, prefix + " ")  # \s: scanned text has every space made " "
    return {prefix} if prefix else None


def _union(parts) -> set[str] | None:
    out: set[str] = set()
    for part in parts:
        if part is None:
            return None
        out |= part
    return out


def prefix_finder(pattern: str, flags: int = 0) -> re.Pattern | None:
    """A regex that finds the word starts where ``pattern`` (for lower-cased text) can
    match; None when the pattern's first letters cannot be told apart."""
    prefixes = leading_prefixes(pattern, flags)
    if prefixes is None:
        return None
    return re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, prefixes)) + ")")


def scan(pattern: re.Pattern, finder: re.Pattern | None, low: str, pos: int = 0):
    """``pattern.finditer(low, pos)``, trying ``pattern`` only where ``finder`` finds a start.

    ``low`` is lower-cased text; matches are yielded in order and do not overlap.
    """
    if finder is None:
        yield from pattern.finditer(low, pos)
        return
    while True:
        hit = finder.search(low, pos)
        if hit is None:
            return
        match = pattern.match(low, hit.start())
        if match is not None and match.end() > hit.start():
            pos = match.end()
            yield match
        else:
            pos = hit.start() + 1


# --- literal pre-filters -----------------------------------------------------------------
#
# Most sentences of an abstract contain none of the words a rule looks for, yet a regex
# search still walks the whole sentence. From a pattern's parse tree we read a set of
# literal strings of which every match must contain one; a plain ``in`` test on the
# lower-cased sentence then skips the search where none occurs. The test is only a
# shortcut: where a literal occurs, the original pattern still decides.

# Characters that Python's case-insensitive matching folds onto an ASCII letter while
# str.lower() does not (computed by tests/extractors/test_prefilter.py): a text holding
# one is always searched in full.
FOLD_UNSAFE = frozenset("\u0130\u0131\u017f")


def required_literals(pattern: str, flags: int = 0):
    """What every match of ``pattern`` must contain, as a tree of lower-case literals:
    a string, ``("and", parts)`` or ``("or", parts)``; None when nothing can be told
    (then always search)."""
    try:
        from re import _parser

        return _required(list(_parser.parse(pattern, flags)))
    except (ImportError, RecursionError, ValueError, TypeError, re.error):
        return None


def _literal_char(op, av) -> str | None:
    """The lower-case character a LITERAL (or one-letter class) item stands for, when the
    lower-cased text must hold exactly it: ASCII, or a character with no case at all."""
    from re import _casefix, _constants as c

    if op is c.LITERAL:
        char = chr(av)
    elif op is c.IN and len(av) == 1 and av[0][0] is c.LITERAL:
        char = chr(av[0][1])
    else:
        return None
    if char.isspace() and char != " ":
        return None
    if char.isascii():
        return char.lower()
    if char.lower() == char == char.upper() and ord(char) not in _casefix._EXTRA_CASES:
        return char
    return None


def _required(seq: list):
    from re import _constants as c

    parts = []
    run = ""
    for op, av in seq:
        char = _literal_char(op, av)
        if char is not None:
            run += char
            continue
        if run:
            parts.append(run)
            run = ""
        if op in (c.AT, c.ASSERT_NOT):
            continue  # zero width: neither adds nor breaks what is required
        found = None
        if op is c.ASSERT:
            found = _required(list(av[1]))  # a lookaround's text is in the searched text too
        elif op is c.SUBPATTERN:
            found = _required(list(av[-1]))
        elif op is c.BRANCH:
            alternatives = [_required(list(alt)) for alt in av[1]]
            if all(a is not None for a in alternatives):
                found = ("or", alternatives)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            found = _required(list(av[2]))
        if found is not None:
            parts.append(found)
    if run:
        parts.append(run)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ("and", parts)


def _expression(need) -> str:
    """The requirement tree as one Python expression over ``s``."""
    if isinstance(need, str):
        return f"{need!r} in s"
    kind, parts = need
    joiner = " and " if kind == "and" else " or "
    return "(" + joiner.join(_expression(p) for p in parts) + ")"


class Prefilter:
    """``maybe(low)``: False only when ``pattern`` cannot match anywhere in the text
    ``low`` is the lower-cased form of (see :func:`lower_text` in extractors.outcomes).
    Search the same text the pre-filter saw: a lookaround's words count as required.

    The requirement tree is compiled once into a single expression of ``in`` tests
    (a walk over the tree per sentence cost as much as some searches it saved)."""

    def __init__(self, pattern: str, flags: int = 0):
        self.need = required_literals(pattern, flags)
        if self.need is None:
            self.maybe = _always
        else:
            self.maybe = eval(f"lambda s: {_expression(self.need)}")  # literals are repr()s: no user code


def _always(low: str) -> bool:
    return True


def fold_safe(text: str) -> bool:
    """Whether literal pre-filters may be trusted on ``text`` (no character that
    case-insensitive matching folds differently from str.lower()). Three substring
    searches: a set's isdisjoint walks every character of the text, 20 times slower."""
    return not any(ch in text for ch in FOLD_UNSAFE)
