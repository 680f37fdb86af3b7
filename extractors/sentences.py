"""cryokb_sentences: sentence boundaries by rule, for abstracts.

A statistical parser is neither available (no downloaded model) nor needed: in an
abstract a sentence ends at a standalone ".", "!" or "?" token, and every new line (the
title, each abstract section) starts one. Abbreviations that end in a period ("e.g.",
"Fig.", "et al.", "vs.", initials "J.") and decimal numbers are single tokens thanks to
the tokenizer rules (:mod:`extractors.tokenizer`), so they are never candidates. Only the
candidate tokens are visited, found with one vectorised pass over the token hashes, which
keeps the component far cheaper than the tokenizer itself.
"""

from __future__ import annotations

import numpy
from spacy.attrs import IS_SPACE, ORTH, SENT_START
from spacy.language import Language
from spacy.tokens import Doc

SENTENCE_END = (".", "!", "?", "…")
NOT_START = numpy.uint64(2**64 - 1)  # -1 as spaCy stores it: "not a sentence start"
CLOSERS = frozenset({")", "]", '"', "'", "”", "’"})


@Language.factory(
    "cryokb_sentences",
    default_config={"enders": list(SENTENCE_END)},
    assigns=["token.is_sent_start"],
)
def make_sentences(nlp: Language, name: str, enders: list[str]):
    return SentenceRules(nlp, name, enders=enders)


class SentenceRules:
    """Marks sentence starts after end punctuation and after every line break."""

    def __init__(self, nlp: Language, name: str, *, enders: list[str]):
        self.name = name
        self.ender_ids = frozenset(nlp.vocab.strings.add(e) for e in enders)

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if n == 0:
            return doc
        array = doc.to_array([ORTH, IS_SPACE]).tolist()
        enders = self.ender_ids
        candidates = [i for i, (orth, space) in enumerate(array) if space or orth in enders]
        starts = numpy.full((n, 1), NOT_START, dtype="uint64")
        starts[0, 0] = 1
        for i in candidates:
            start = self._start_after(doc, i, n)
            if start is not None:
                starts[start, 0] = 1
        doc.from_array([SENT_START], starts)
        return doc

    @staticmethod
    def _start_after(doc: Doc, i: int, n: int) -> int | None:
        """The token that starts a sentence after candidate ``i``, or None."""
        token = doc[i]
        if token.is_space:
            if "\n" not in token.text:
                return None
            j = i + 1
            while j < n and doc[j].is_space:
                j += 1
            return j if j < n else None
        j = i + 1
        while j < n and doc[j].text in CLOSERS:
            j += 1
        if j >= n:
            return None
        following = doc[j]
        if following.is_space:
            return None  # the line break itself starts the next sentence
        first = following.text[0]
        if first.islower() or first in ",;:":
            return None  # "approx. 3 cm" style, or an unlisted abbreviation
        return j
