"""The speed helpers give exactly what the slower spaCy calls they replace would give.

Literal pre-filters may only ever skip a search that could not match; the per-doc
caches (sentence offsets, token table, span lists) must equal doc.sents, Token
attributes and iterating doc.spans; filter_matches must keep what filter_spans keeps.
"""

import re
import sys
import _sre

import pytest
from spacy.tokens import Span
from spacy.util import filter_spans

from extractors.concepts import CONCEPTS_KEY, TERMS_KEY, filter_matches
from extractors.numbers import FOLD_UNSAFE, Prefilter, doc_sentences, fold_safe, sentence_at, span_list, token_table
from extractors.outcomes import lower_text, rules
from extractors.pipeline import make_doc

from ingest.model import AbstractSection, Article

ABSTRACT = Article(
    pmid="90000077",
    title="Percutaneous cryoablation of painful sacral metastases: a retrospective study",
    abstract_sections=[AbstractSection(text=t) for t in (
    "Purpose: To evaluate CT-guided cryoablation (CA) of painful bone metastases.",
    "Methods: Between 2015 and 2021, 34 patients with 41 tumours were treated; CA was "
    "performed under general anaesthesia.\u00a0Patients with prior radiotherapy were excluded.",
    "Results: Technical success was 100%. Mean VAS fell from 7.2 \u00b1 1.1 to 2.4 at 4 weeks "
    "(p < 0.001), whereas two patients had minor complications. No major complications occurred.",
    )],
)

SENTENCES = [
    "Technical success was 100% in all 34 patients; no major complications occurred.",
    "Mean VAS decreased from 7.2 to 2.1 at 4 weeks compared with baseline.",
    "The aim of this study was to assess local control at 1 year.",
    "Pain relief was reported in 28 of 34 patients (82%) while four had no response.",
    "Recurrence was not observed, and three were minor complications.",
    "Ice-ball coverage was confirmed by CT fluoroscopy; grade 2 skin burn in one patient.",
]


def test_unsafe_fold_characters_are_exactly_those_that_fold_onto_ascii_unlike_lower():
    computed = set()
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        folded = _sre.unicode_tolower(cp)
        if folded < 128 and (len(char.lower()) != 1 or char.lower() != chr(folded)):
            computed.add(char)
    from re import _casefix

    for ascii_cp, others in _casefix._EXTRA_CASES.items():
        if ascii_cp < 128:
            computed.update(chr(o) for o in others if o >= 128)
    assert computed == set(FOLD_UNSAFE)
    assert not fold_safe("the \u017f of long s") and fold_safe("plain \u00b5m text \u00b1 2")


@pytest.mark.parametrize("name", ["skip_sentence", "definition", "clause_breaks", "hedges", "all_fact", "grades",
                                  "comparators", "not_a_rate_before", "count_blockers_before"])
def test_a_prefilter_never_skips_a_sentence_its_rule_matches(name):
    pattern = rules().grades if name == "grades" else rules().comparators if name == "comparators" else getattr(rules(), name)
    prefilter = rules().prefilters[name]
    for sentence in SENTENCES:
        for window in (sentence, sentence[:30], sentence[-30:]):
            if pattern.search(window):
                assert prefilter.maybe(lower_text(window)), (name, window)


def test_prefilters_skip_sentences_without_their_words():
    clause = Prefilter(r";|\bwhereas\b|\bcompared\s+(?:with|to)\b", re.IGNORECASE)
    assert clause.maybe("pain fell, whereas function did not")
    assert clause.maybe("compared to baseline")
    assert not clause.maybe("pain fell in all patients")
    assert not clause.maybe("they compared notes")  # 'compared' alone is not enough
    lookahead = Prefilter(r"\band\b(?=\s+\d+\s+(?:was|were)\b)", re.IGNORECASE)
    assert not lookahead.maybe("two and three patients")
    assert lookahead.maybe("one and 3 were minor")


def test_a_pattern_without_required_words_is_always_searched():
    assert Prefilter(r"\d+\s+\w+", re.IGNORECASE).maybe("no words needed")
    assert Prefilter(r"[a-z]{3,}|\d", re.IGNORECASE).maybe("")
    assert not Prefilter(r"\d+\s*%", re.IGNORECASE).maybe("a percent sign is required")


def test_sentence_offsets_and_token_table_equal_spacy(nlp):
    doc = nlp(make_doc(nlp, ABSTRACT))
    assert doc_sentences(doc) == [(s.start_char, s.end_char) for s in doc.sents]
    table = token_table(doc)
    for token in doc:
        assert table.lower(token.i) == token.lower_
        assert (table.start[token.i], table.end[token.i]) == (token.idx, token.idx + len(token.text))
        assert table.sent[token.i] == token.sent.start
        assert sentence_at(doc, token.idx) == (token.sent.start_char, token.sent.end_char)
    assert table.sentence(5) == (doc[5].sent.start, doc[5].sent.end)


def test_span_lists_equal_the_span_groups_and_follow_a_replaced_group(nlp):
    doc = nlp(make_doc(nlp, ABSTRACT))
    for key in (CONCEPTS_KEY, TERMS_KEY):
        listed = span_list(doc, key)
        assert [(s.start, s.end, s.label_, s.id_) for s in listed] == [
            (s.start, s.end, s.label_, s.id_) for s in doc.spans[key]
        ]
        assert span_list(doc, key) is listed
    doc.spans[TERMS_KEY] = [Span(doc, 0, 1, label="term", span_id="cryo")]
    assert [(s.start, s.id_) for s in span_list(doc, TERMS_KEY)] == [(0, "cryo")]
    assert span_list(doc, "no_such_group") == []


def test_filter_matches_keeps_what_filter_spans_keeps(nlp):
    doc = nlp.make_doc("painful bone metastases of the sacral spine and pelvic bone")
    matches = [(0, 3, "a"), (1, 3, "b"), (1, 2, "c"), (5, 7, "d"), (6, 7, "e"), (5, 7, "f"), (8, 10, "g"), (9, 10, "h")]
    expected = filter_spans([Span(doc, s, e, label=k) for s, e, k in matches])
    assert [(s, e, k) for s, e, k in filter_matches(matches)] == [(s.start, s.end, s.label_) for s in expected]


def test_char_span_expand_equals_spacy_for_every_character_range(nlp):
    from extractors.numbers import char_span_expand

    doc = nlp(make_doc(nlp, Article(pmid="90000078", title="Cryoablation  of 3 cm lesions",
                                    abstract_sections=[AbstractSection(text="In 48/50 (96%) it worked.")])))
    text = doc.text
    for a in range(-1, len(text) + 1):
        for b in range(a + 1, len(text) + 2):
            try:
                expected = doc.char_span(a, b, alignment_mode="expand")
            except Exception as exc:  # spaCy refuses a range that ends before it starts
                with pytest.raises(type(exc)):
                    char_span_expand(doc, a, b)
                continue
            found = char_span_expand(doc, a, b)
            assert (found is None) == (expected is None), (a, b)
            if found is not None:
                assert (found.start, found.end) == (expected.start, expected.end), (a, b)


def test_is_negated_reads_what_the_extension_holds(nlp):
    from extractors.numbers import is_negated

    doc = nlp(make_doc(nlp, ABSTRACT))
    spans = span_list(doc, CONCEPTS_KEY) + span_list(doc, TERMS_KEY)
    assert any(s._.negated for s in spans) and not all(s._.negated for s in spans)
    assert [is_negated(s) for s in spans] == [s._.negated for s in spans]
