"""cryokb_relevance: is the article about cryo treatment of a musculoskeletal tumour?

The schema's definition, as rules over the concept and helper spans (negated ones left
out): a cryo term (cryoablation, cryotherapy, cryoprobe, ice ball, liquid nitrogen...)
and a musculoskeletal target (a lesion type of the schema, or a generic bone or
soft-tissue tumour phrase). The title says what the article is about, so it weighs
more: a title naming an off-topic target (kidney, lung, breast, atrial fibrillation,
keloid, knee arthroplasty, Morton neuroma...) and no musculoskeletal one makes the
article off-topic, as does a title naming another ablation technique and no cryo
term (the cryo words of such an abstract are comparators or background), and so does
a cryo term named once, in a list of ablation techniques, in an abstract whose title
does not name it. Otherwise the
off-topic and musculoskeletal evidence of the whole text are weighed.

Writes ``doc._.cryokb_relevant`` (bool) and ``doc._.cryokb_relevance_reason`` (str).
"""

from __future__ import annotations

from spacy.attrs import IS_SPACE
from spacy.language import Language
from spacy.tokens import Doc

from extractors.concepts import CONCEPTS_KEY, TERMS_KEY
from extractors.numbers import is_negated, span_list
from extractors.vocabulary import load_data, require

RELEVANT = "cryokb_relevant"
REASON = "cryokb_relevance_reason"
PRIMARY_MARKERS = frozenset({"from", "metastatic", "primary", "primaries"})
CANCER_WORDS = frozenset({"cancer", "cancers", "carcinoma", "carcinomas"})


def register_extensions() -> None:
    for name, default in ((RELEVANT, None), (REASON, None)):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)


def title_end(doc: Doc) -> int:
    """Character offset where the title ends (the first line break), or past the end.

    Reads the white-space tokens only: ``doc.text`` would join every token's text."""
    for i, space in enumerate(doc.to_array([IS_SPACE]).tolist()):
        if space and "\n" in doc[i].text:
            return doc[i].idx
    return 1 << 62


@Language.factory(
    "cryokb_relevance",
    default_config={"rules": "relevance_rules.json", "spans_key": CONCEPTS_KEY, "terms_key": TERMS_KEY},
    assigns=["doc._.cryokb_relevant", "doc._.cryokb_relevance_reason"],
    requires=["doc.spans"],
)
class Relevance:
    """Decides relevance from cryo terms, musculoskeletal targets and off-topic targets."""

    def __init__(self, nlp: Language, name: str, *, rules: str, spans_key: str, terms_key: str):
        self.name = name
        self.spans_key = spans_key
        self.terms_key = terms_key
        decision = require(
            load_data(rules), rules, "decision.title_weight", "decision.offtopic_labels",
            "decision.comparator_label", "decision.min_cryo_mentions_without_title",
        )["decision"]
        self.title_weight = decision["title_weight"]
        self.offtopic = frozenset(decision["offtopic_labels"])
        self.comparator = decision["comparator_label"]
        self.min_cryo = decision["min_cryo_mentions_without_title"]
        register_extensions()

    def __call__(self, doc: Doc) -> Doc:
        relevant, reason = self.decide(doc)
        doc._.set(RELEVANT, relevant)
        doc._.set(REASON, reason)
        return doc

    @staticmethod
    def _primary_of_metastasis(doc: Doc, span) -> bool:
        """"metastasis from renal cell carcinoma", "metastases of lung cancer", "metastatic
        breast cancer", "breast cancer bone metastases": the organ is where the cancer
        started, not the treated target."""
        sentence = span.sent
        for j in range(max(sentence.start, span.start - 6), span.start):
            word = doc[j].lower_
            if word in PRIMARY_MARKERS:
                return True
            if word == "of" and j > 0 and doc[j - 1].lower_.startswith("metasta"):
                return True
        if span[-1].lower_ in CANCER_WORDS:
            for j in range(span.end, min(sentence.end, span.end + 3)):
                if doc[j].lower_.startswith("metasta"):
                    return True
        return False

    def _listed_with_other_ablations(self, doc: Doc) -> bool:
        """Every cryo word sits in a sentence that also names another ablation technique
        ("... radiofrequency ablation, or cryoablation"): a list of options, not the topic."""
        terms = [t for t in span_list(doc, self.terms_key) if not is_negated(t)]
        others = {t.sent.start for t in terms if t.id_ == self.comparator}
        return all(t.sent.start in others for t in terms if t.id_ == "cryo")

    def decide(self, doc: Doc) -> tuple[bool, str]:
        end = title_end(doc)
        counts = {"cryo": [0, 0], "msk": [0, 0], "off": [0, 0], "other": [0, 0]}

        def add(kind, span):
            counts[kind][0 if span.start_char < end else 1] += 1

        for span in span_list(doc, self.terms_key):
            if is_negated(span):
                continue
            kind = span.id_
            if kind == "cryo":
                add("cryo", span)
            elif kind == "msk_generic":
                add("msk", span)
            elif kind in self.offtopic:
                if kind == "organ" and self._primary_of_metastasis(doc, span):
                    continue
                add("off", span)
            elif kind == self.comparator:
                add("other", span)
        for span in span_list(doc, self.spans_key):
            if span.label_ == "lesion_types" and not is_negated(span):
                add("msk", span)
        cryo, msk, off, other = (counts[k] for k in ("cryo", "msk", "off", "other"))
        if not sum(cryo):
            return False, "no cryo term"
        if not sum(msk):
            return False, "no musculoskeletal target"
        if off[0] and not msk[0]:
            return False, "the title names an off-topic target"
        if other[0] and not cryo[0]:
            return False, "the title names another ablation technique"
        if not cryo[0] and cryo[1] < self.min_cryo and self._listed_with_other_ablations(doc):
            return False, "cryo is named only in passing"
        weight = self.title_weight
        off_weight, msk_weight = off[0] * weight + off[1], msk[0] * weight + msk[1]
        if off_weight > msk_weight or (off[0] and off_weight == msk_weight):
            return False, "off-topic targets outweigh musculoskeletal ones"
        return True, "cryo term and musculoskeletal target"
