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
from spacy.attrs import IDX, IS_SPACE, LENGTH, ORTH, SENT_START
from spacy.language import Language
from spacy.tokens import Doc

from extractors.numbers import doc_text, set_sentences, set_token_table

SENTENCE_END = (".", "!", "?", "…")
NOT_START = numpy.uint64(2**64 - 1)  # -1 as spaCy stores it: "not a sentence start"
CLOSERS = frozenset({")", "]", '"', "'", "”", "’"})
LINE_BREAKS = ("\n", "\r", "\u2028", "\u2029")  # U+2028/9: the line and paragraph separators


@Language.factory(
    "cryokb_sentences",
    default_config={"enders": list(SENTENCE_END)},
    assigns=["token.is_sent_start"],
)
def make_sentences(nlp: Language, name: str, enders: list[str]):
    return SentenceRules(nlp, name, enders=enders)


class SentenceRules:
    """Marks sentence starts after end punctuation and after every line break.

    Reads token offsets and the article text rather than Token objects, and leaves the
    sentences' character offsets in the doc (:func:`extractors.numbers.doc_sentences`)
    so that no later component has to walk ``doc.sents`` again."""

    def __init__(self, nlp: Language, name: str, *, enders: list[str]):
        self.name = name
        self.ender_ids = frozenset(nlp.vocab.strings.add(e) for e in enders)
        self.ender_array = numpy.array(sorted(self.ender_ids), dtype="uint64")

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if n == 0:
            return doc
        attrs = doc.to_array([ORTH, IS_SPACE, IDX, LENGTH])
        orth = attrs[:, 0]
        is_candidate = attrs[:, 1] == 1
        for ender in self.ender_array:  # a few vector compares: cheaper than numpy.isin
            is_candidate |= orth == ender
        candidates = numpy.flatnonzero(is_candidate).tolist()
        columns = (attrs[:, 1].tolist(), attrs[:, 2].tolist(), attrs[:, 3].tolist())
        text = doc_text(doc)
        token_starts = [0]
        for i in candidates:
            start = _start_after(columns, text, i, n)
            if start is not None:
                token_starts.append(start)
        token_starts = sorted(set(token_starts))
        starts = numpy.full((n, 1), NOT_START, dtype="uint64")
        starts[token_starts, 0] = 1
        doc.from_array([SENT_START], starts)
        idx = columns[1]
        token_ends = (attrs[:, 2] + attrs[:, 3]).tolist()
        ends = token_starts[1:] + [n]
        set_sentences(doc, [(idx[a], token_ends[b - 1]) for a, b in zip(token_starts, ends)])
        set_token_table(doc, idx, token_ends, token_starts)
        return doc


def _breaks_line(space: str) -> bool:
    return any(mark in space for mark in LINE_BREAKS)


def _start_after(columns: tuple, text: str, i: int, n: int) -> int | None:
    """The token that starts a sentence after candidate ``i``, or None.

    ``columns`` are the tokens' IS_SPACE, IDX and LENGTH values as lists."""
    space, idx, length = columns
    if space[i]:
        if not _breaks_line(text[idx[i] : idx[i] + length[i]]):
            return None
        j = i + 1
        while j < n and space[j]:
            j += 1
        return j if j < n else None
    j = i + 1
    while j < n and length[j] == 1 and text[idx[j]] in CLOSERS:
        j += 1
    if j >= n:
        return None
    if space[j]:
        if _breaks_line(text[idx[j] : idx[j] + length[j]]):
            return None  # the line break itself starts the next sentence
        while j < n and space[j]:  # "100%.\u00a0Pain", "100%.  Pain": spaces the tokenizer keeps as tokens
            j += 1
        if j >= n:
            return None
    first = text[idx[j]]
    if first.islower() or first in ",;:":
        return None  # "approx. 3 cm" style, or an unlisted abbreviation
    return j
