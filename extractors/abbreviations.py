"""cryokb_abbreviations: short forms defined in the abstract, resolved to their concept.

Abstracts define their own abbreviations once, "osteoid osteoma (OO)", and then use the
short form alone. The same letters mean different things in different papers (CA is
cryoablation in one and chondrosarcoma in another; MM myeloma or melanoma), so the
vocabulary only carries unambiguous abbreviations, and this component, following
Schwartz and Hearst (2003) as scispaCy's detector does, reads each "long form (SF)"
definition and gives every later short form the long form's concept, for this document
only. A definition whose long form is not a concept removes global matches of the
same letters (the paper uses them for something else).

Definitions are kept msgpack-safe in ``doc._.cryokb_abbreviations`` as
``[short, long, field or None, key or None]`` lists, so Docs still serialise for
``nlp.pipe(n_process=2)``.
"""

from __future__ import annotations

import numpy
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.strings import hash_string
from spacy.tokens import Doc, Span

from extractors.concepts import CONCEPTS_KEY, TERMS_KEY
from extractors.numbers import doc_text, set_span_list, span_list

EXTENSION = "cryokb_abbreviations"
CLOSERS = frozenset({")", ",", ";"})
MAX_EXTRA_WORDS = 3


def register_extensions() -> None:
    if not Doc.has_extension(EXTENSION):
        Doc.set_extension(EXTENSION, default=None)


def is_short_form_candidate(text: str) -> bool:
    """Two to ten characters, starting with a letter, with at least one capital."""
    return (
        2 <= len(text) <= 10
        and text[0].isalpha()
        and any(c.isupper() for c in text)
        and sum(c.isalpha() for c in text) >= 2
    )


def matches_long_form(short: str, long: str) -> bool:
    """Schwartz-Hearst: the short form's characters appear in order in the long form,
    the first one at the start of a word."""
    s, l = short.lower(), long.lower()
    si, li = len(s) - 1, len(l) - 1
    while si >= 0:
        c = s[si]
        if not c.isalnum():
            si -= 1
            continue
        while li >= 0 and (l[li] != c or (si == 0 and li > 0 and l[li - 1].isalnum())):
            li -= 1
        if li < 0:
            return False
        li -= 1
        si -= 1
    return True


@Language.factory(
    "cryokb_abbreviations",
    default_config={"spans_key": CONCEPTS_KEY, "terms_key": TERMS_KEY},
    assigns=["doc._.cryokb_abbreviations", "doc.spans"],
    requires=["doc.spans"],
)
class AbbreviationResolver:
    """Finds "long form (SF)" definitions and labels the later short forms."""

    def __init__(self, nlp: Language, name: str, *, spans_key: str, terms_key: str):
        self.name = name
        self.spans_key = spans_key
        self.terms_key = terms_key
        self.open_id = nlp.vocab.strings.add("(")
        register_extensions()

    def __call__(self, doc: Doc) -> Doc:
        orth = doc.to_array([ORTH])
        opens = numpy.flatnonzero(orth == self.open_id)
        if not len(opens):
            doc._.set(EXTENSION, [])
            return doc
        concepts = list(span_list(doc, self.spans_key))
        terms = list(span_list(doc, self.terms_key))
        ends: dict[int, list[Span]] = {}
        for span in concepts:
            ends.setdefault(span.end, []).append(span)
        for span in terms:
            if span.id_ == "cryo":
                ends.setdefault(span.end, []).append(span)
        definitions = []
        for i in opens.tolist():
            found = self._definition(doc, i, ends)
            if found:
                definitions.append(found)
        doc._.set(EXTENSION, [[d[0], d[1], d[2], d[3]] for d in definitions])
        if definitions:
            self._resolve(doc, definitions, concepts, terms)
        return doc

    def _definition(self, doc: Doc, i: int, ends: dict[int, list[Span]]):
        """(short, long text, field, key, short token index) for a definition at "(" i."""
        n = len(doc)
        if i == 0 or i + 2 >= n or doc[i + 2].text not in CLOSERS:
            return None
        short = doc[i + 1].text
        if not is_short_form_candidate(short):
            return None
        sentence_start = doc[i].sent.start
        for span in sorted(ends.get(i, []), key=len, reverse=True):
            for extra in range(MAX_EXTRA_WORDS + 1):
                start = span.start - extra
                if start < sentence_start or (extra and doc[start].is_punct):
                    break
                long_text = doc[start:i].text
                if matches_long_form(short, long_text):
                    field = span.label_ if span.label_ != "term" else "term"
                    return (short, long_text, field, span.id_, i + 1)
        start = max(sentence_start, i - min(len(short) + 5, 2 * len(short)))
        for s in range(i - 1, start - 1, -1):
            if doc[s].is_punct:
                break
            long_text = doc[s:i].text
            if long_text[0].lower() == short[0].lower() and matches_long_form(short, long_text):
                return (short, long_text, None, None, i + 1)
        return None

    def _resolve(self, doc, definitions, concepts, terms) -> None:
        meaning = {}
        definition_tokens = set()
        for short, _long, field, key, index in definitions:
            meaning.setdefault(short, (field, key))
            definition_tokens.add(index)
        text = doc_text(doc)
        keep_concepts = [
            s for s in concepts
            if not ((short := text[s.start_char : s.end_char]) in meaning and (s.label_, s.id_) != meaning[short])
        ]
        existing = {(s.start, s.end, s.label_, s.id_) for s in keep_concepts}
        for i, word in _tokens_spelled(doc, meaning):
            base = word[:-1] if word.endswith("s") and word[:-1] in meaning else word
            if base not in meaning or i in definition_tokens:
                continue
            field, key = meaning[base]
            if field is None:
                continue
            span = Span(doc, i, i + 1, label=field, span_id=key)
            if field == "term":
                terms.append(span)
            elif (i, i + 1, field, key) not in existing:
                keep_concepts.append(span)
        keep_concepts.sort(key=lambda s: (s.start, s.end, s.label_))
        set_span_list(doc, self.spans_key, keep_concepts)
        set_span_list(doc, self.terms_key, sorted(terms, key=lambda s: (s.start, s.end)))


def _tokens_spelled(doc: Doc, meaning: dict) -> list[tuple[int, str]]:
    """(index, text) of the tokens spelled as a short form or its plural ("OO", "OOs"),
    found by their hashes: the other tokens are never made into Token objects."""
    wanted = {}
    for short in meaning:
        for word in (short, short + "s"):
            wanted[hash_string(word)] = word
    orth = doc.to_array([ORTH]).tolist()
    return [(i, wanted[o]) for i, o in enumerate(orth) if o in wanted]
