"""Lists and clauses of a sentence, as far as words tell without a parser.

The negation component (extractors/negation.py) needs two things a blank pipeline has
no tagger or parser for: which concepts are listed together ("no prior surgery,
radiotherapy or chemotherapy": a denial of the first is a denial of all), and where a
new clause begins ("No complications occurred, and radiotherapy was given": a denial
before the comma does not reach past it). Both are read from commas, conjunctions,
determiners and a few verbs; the helpers here take the concept spans of one kind and
the doc, and know nothing of triggers.
"""

from __future__ import annotations

from spacy.tokens import Doc, Span

CLAUSE_MARKS = frozenset({",", ";", ":"})
CONJUNCTIONS = frozenset({"and", "but", "while", "whereas"})
DETERMINERS = frozenset({"the", "a", "an", "any", "no"})
OPENERS = DETERMINERS | {"both", "either", "all"}  # may come before a clause's first item
REPEATS = frozenset({"further", "additional", "repeat", "repeated", "another", "second"})  # one was given before
PREPOSITIONS = frozenset({"following", "after", "before", "despite", "during", "post", "prior", "since",
                          "unlike", "besides", "like", "beyond", "versus", "vs"})
# words that put what follows them in a phrase of its own ("In none of the patients, ...")
PHRASE_WORDS = frozenset({"in", "of", "with", "by", "over", "at", "on", "for", "from", "to", "into", "within",
                          "among", "as"}) | PREPOSITIONS
LIST_WORDS = frozenset({",", "or", "and", "nor", "and/or", "/"})
OR_WORDS = frozenset({"or", "nor", "and/or"})
LIST_GAP = 3  # tokens between two listed concepts: ", or any"
CLAUSE_VERBS = frozenset({"was", "were", "is", "are", "has", "have", "had", "did", "then"})
SINGULAR_VERBS = frozenset({"was", "is", "has"})
ALONE = frozenset({"alone", "only"})
MODIFIERS_BEFORE = 2  # words between a clause's start and its first concept: ", and adjuvant radiotherapy"


def list_of(doc: Doc, spans: list[Span], span: Span) -> tuple[list[Span], list[list[str]]]:
    """The list ``span`` is in (itself alone, if in none) and the words between each item
    and the next: concepts of one kind with nothing but commas, "and", "or" and
    determiners between them, not one after a preposition ("After surgery and")."""
    items, joins = [span], []
    while (found := _adjacent(doc, spans, items[0], False)) is not None:
        items.insert(0, found[0])
        joins.insert(0, found[1])
    while (found := _adjacent(doc, spans, items[-1], True)) is not None:
        items.append(found[0])
        joins.append(found[1])
    return items, joins


def closes(words: list[str]) -> bool:
    """Whether these words between two items come before a list's last one ("or", ", and")."""
    return any(w in OR_WORDS or w == "and" for w in words)


def items_after(doc: Doc, spans: list[Span], items: list[Span], joins: list[list[str]]) -> list[Span]:
    """The items after the first, up to the list's end (its last "and" or "or"); an
    "and" that begins a clause ends it first: "did not receive chemotherapy and
    radiotherapy was given", "no surgery, and radiotherapy and chemotherapy were given";
    not "no prior surgery and radiotherapy were included", "surgery, radiotherapy, and
    chemotherapy were".
    """
    kept = 0
    for n, words in enumerate(joins):
        if not closes(words):
            continue
        if not any(w in OR_WORDS for w in words) and _and_begins_clause(doc, spans, items[n + 1], words,
                                                                           oxford=n > 0 and joins[n - 1] == [","]):
            break
        kept = n + 1
    return items[1 : kept + 1]


def _and_begins_clause(doc: Doc, spans: list[Span], item: Span, words: list[str], oxford: bool) -> bool:
    verb = _word_after(doc, item)
    if "," not in words or oxford:
        return verb in SINGULAR_VERBS  # "... chemotherapy and radiotherapy was given"
    return clause_follows(doc, spans, item)


def clause_start(doc: Doc, i: int) -> int:
    """Where the clause holding token ``i`` begins: after the last comma, semicolon or
    colon before it in its sentence, else at the sentence's start."""
    start = doc[i].sent.start
    for k in range(i - 1, start - 1, -1):
        if doc[k].text in CLAUSE_MARKS:
            return k + 1
    return start


def opens(doc: Doc, span: Span) -> bool:
    """Whether ``span`` opens its clause, after at most two determiners or modifiers (an
    "and" after a comma aside): "Radiotherapy, ...", ", and surgery ...", "The planned
    cementoplasty", "Planned embolization", "Both surgery", not "After surgery",
    "Unlike embolization" or "Patients received chemotherapy"."""
    before = list(doc[clause_start(doc, span.start) : span.start])
    while before and before[0].lower_ in CONJUNCTIONS:
        before.pop(0)
    if len(before) > 2:
        return False
    for n, token in enumerate(before):
        if token.lower_ in OPENERS:
            continue
        if token.is_stop or token.lower_ in PREPOSITIONS | REPEATS:
            return False
        if verb_like(token) and not (n and before[n - 1].lower_ in OPENERS) and token.i != token.sent.start:
            return False  # "Patients received ...", not "The planned ..." or "Planned ..."
    return True


def opens_clause(doc: Doc, spans: list[Span], span: Span, phrase_start: int, phrase_end: int) -> bool:
    """Whether ``span``, or the list it is in, is the subject of a clause of its own that
    begins after ``phrase_end`` (the end of a trigger whose phrase begins at
    ``phrase_start``): "No complications occurred, and radiotherapy was given", "...,
    and radiotherapy or surgery was offered", "No patient required surgery,
    radiotherapy was given", "No surgery was needed and radiotherapy was given".

    A comma or "and" ends a clause only after a verb (a comma inside a list, "surgery,
    radiotherapy and chemotherapy were", does not), ", and" always; a phrase that
    begins with a preposition ("In none of the treated patients, surgery was required")
    has no verb of its own.
    """
    items, joins = list_of(doc, spans, span)
    for n in range(items.index(span), -1, -1):
        item = items[n]
        if item.start < phrase_end:
            return False
        listed = n > 0 and joins[n - 1] == [","] and any(closes(words) for words in joins[n:])
        if not listed:
            lead = _lead(doc, item, phrase_end)
            if lead is not None:
                kind, boundary = lead
                if kind == ", and" or _has_verb(doc, phrase_start, phrase_end, boundary):
                    return clause_follows(doc, spans, item)
        if n == 0 or not (listed or closes(joins[n - 1])):
            return False
    return False


def _lead(doc: Doc, item: Span, lowest: int) -> tuple[str, int] | None:
    """What comes before ``item`` and at most two modifiers of it: (", and", i), (",", i)
    or ("and", i), i the index of its first token; None for anything else."""
    k = item.start
    for _ in range(MODIFIERS_BEFORE):
        token = doc[k - 1] if k > lowest else None
        if token is None or not (token.lower_ in OPENERS or (token.is_alpha and not token.is_stop)):
            break
        k -= 1
    if k - 2 >= lowest and doc[k - 2].text == "," and doc[k - 1].lower_ == "and":
        return ", and", k - 2
    if k - 1 >= lowest and doc[k - 1].text == ",":
        return ",", k - 1
    if k - 1 >= lowest and doc[k - 1].lower_ == "and":
        return "and", k - 1
    return None


def _has_verb(doc: Doc, phrase_start: int, phrase_end: int, boundary: int) -> bool:
    """Whether the words from a trigger to ``boundary`` hold a verb of their own clause:
    not the trigger's own ("had not received surgery, ..."), and not in a phrase that a
    preposition begins ("In none of the patients followed up, ...")."""
    if phrase_start > 0 and doc[phrase_start - 1].lower_ in PHRASE_WORDS:
        return False
    if phrase_start > 0 and doc[phrase_start - 1].lower_ in CLAUSE_VERBS:
        return True  # "There were no major complications, radiotherapy was given"
    for token in doc[phrase_end:boundary]:
        if token.lower_ in CLAUSE_VERBS:
            return True
        previous = doc[token.i - 1]
        if (verb_like(token) and token.i > phrase_end and previous.lower_ not in OPENERS | PHRASE_WORDS
                and not previous.like_num):
            return True
    return False


def clause_follows(doc: Doc, spans: list[Span], span: Span) -> bool:
    """Whether a verb follows ``span``, or the list it opens: "radiotherapy (alone) was
    given", "radiotherapy and cementoplasty were given"; a list ends at a ", and" after
    its own "and" or "or" ("..., radiotherapy and chemotherapy, and cementoplasty was")."""
    last, closed = span, False
    while (found := _adjacent(doc, spans, last, True)) is not None:
        if closed and "," in found[1] and "and" in found[1]:
            break
        last = found[0]
        closed = closed or closes(found[1])
    return _word_after(doc, last) in CLAUSE_VERBS


def _word_after(doc: Doc, span: Span) -> str:
    end = span.end + (span.end < len(doc) and doc[span.end].lower_ in ALONE)
    return doc[end].lower_ if end < len(doc) else ""


def verb_like(token) -> bool:
    """A verb, as far as the word tells: an auxiliary or a past tense or participle."""
    text = token.lower_
    return text in CLAUSE_VERBS or (token.is_alpha and len(text) > 4 and text.endswith("ed"))


def _adjacent(doc: Doc, spans: list[Span], current: Span, forward: bool) -> tuple[Span, list[str]] | None:
    """The concept of ``current``'s kind listed next to it (after it, or before it), and
    the words between them; None where the list ends."""
    if forward:
        item = min((s for s in spans if s.label_ == current.label_ and s.start >= current.end),
                   key=lambda s: s.start, default=None)
        gap = item is not None and doc[current.end : item.start]
    else:
        item = max((s for s in spans if s.label_ == current.label_ and s.end <= current.start),
                   key=lambda s: s.end, default=None)
        gap = item is not None and doc[item.end : current.start]
    if item is None or not 0 < len(gap) <= LIST_GAP:
        return None
    words = [t.lower_ for t in gap]
    if not all(w in LIST_WORDS or w in DETERMINERS for w in words) or not any(w in LIST_WORDS for w in words):
        return None
    if not forward and item.start > 0 and doc[item.start - 1].lower_ in PREPOSITIONS:
        return None  # "After surgery and radiotherapy, opioids were not needed"
    return item, words
