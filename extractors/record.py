"""cryokb_record: assemble the evidence record (../shared/EVIDENCE_SCHEMA.md) from the Doc.

Every key comes from a span the other components left in the Doc, so every key has a
mention whose text is exactly ``doc.text[start:end]`` and whose sentence is the one the
span sits in. List fields hold the sorted, unique keys of non-negated concepts; a
concept found only negated (or only in exclusion criteria) is not reported but keeps a
mention with ``negated: true``. For an article that is not relevant only
``lesion_types`` and ``anatomic_sites`` are filled, as the schema's convention says.

The record is a plain dict in ``doc._.cryokb_record``: it is what worker processes
send back (extractors.pipeline), so it holds no spaCy objects.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.tokens import Doc, Span

from extractors.concepts import CONCEPTS_KEY, TERMS_KEY
from extractors.numbers import doc_text, is_negated, sentence_at, span_list, token_table
from extractors.vocabulary import load_data

RECORD = "cryokb_record"
PMID = "cryokb_pmid"
PUBLICATION_TYPES = "cryokb_publication_types"

LIST_FIELDS = ("approach", "lesion_types", "anatomic_sites", "indications", "guidance", "treatments")
KEPT_WHEN_NOT_RELEVANT = ("lesion_types", "anatomic_sites")
TARGET_TERMS = frozenset({"msk_generic", "neurolysis", "lesion_word"})


def register_extensions() -> None:
    """The Doc attributes set before the pipeline runs and the one it returns."""
    for name, default in ((RECORD, None), (PMID, None), (PUBLICATION_TYPES, None)):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)


def _get(doc: Doc, name: str):
    return doc._.get(name) if Doc.has_extension(name) else None


def mention(field: str, key, span: Span | None, negated: bool = False, inferred: bool = False) -> dict:
    """One mention; offsets into doc.text, the sentence stripped of surrounding white space."""
    if span is None:
        item = {"field": field, "key": key, "text": None, "start": None, "end": None,
                "sentence": None, "negated": negated}
    else:
        text = doc_text(span.doc)  # slices of the article text: span.text joins its tokens
        start, end = span.start_char, span.end_char
        s_start, s_end = sentence_at(span.doc, start)
        item = {
            "field": field,
            "key": key,
            "text": text[start:end],
            "start": start,
            "end": end,
            "sentence": text[s_start:s_end].strip(),
            "negated": negated,
        }
    if inferred:
        item["inferred"] = True
    return item


@Language.factory(
    "cryokb_record",
    default_config={"spans_key": CONCEPTS_KEY},
    assigns=["doc._.cryokb_record"],
    requires=["doc.spans", "doc._.cryokb_relevant", "doc._.cryokb_indications"],
)
class RecordBuilder:
    """Turns the Doc's spans and attributes into the schema's dict."""

    def __init__(self, nlp: Language, name: str, *, spans_key: str):
        self.name = name
        self.spans_key = spans_key
        rules = load_data("concept_rules.json")["approach"]
        self.approach_rules = (
            frozenset(rules["intraoperative_cryo_terms"]),
            frozenset(rules["intraoperative_with"]),
        )
        register_extensions()

    def __call__(self, doc: Doc) -> Doc:
        doc._.set(RECORD, build_record(doc, self.spans_key, self.approach_rules))
        return doc


def build_record(doc: Doc, spans_key: str = CONCEPTS_KEY, approach_rules=(frozenset(), frozenset())) -> dict:
    relevant = bool(_get(doc, "cryokb_relevant"))
    fields = LIST_FIELDS if relevant else KEPT_WHEN_NOT_RELEVANT
    affirmed: dict[tuple[str, str], Span] = {}
    negated: dict[tuple[str, str], Span] = {}
    supported = None if relevant else _sentences_with_targets(doc, spans_key)
    sent = token_table(doc).sent  # token -> first token of its sentence (span.sent.start)
    for span in span_list(doc, spans_key):
        if span.label_ not in fields or span.label_ == "indications":
            continue
        if supported is not None and span.label_ == "anatomic_sites" and sent[span.start] not in supported:
            continue
        target = negated if is_negated(span) else affirmed
        target.setdefault((span.label_, span.id_), span)
    inferred = _approach(doc, affirmed, approach_rules) if relevant else None
    lists = {field: sorted({key for f, key in affirmed if f == field}) for field in LIST_FIELDS}
    mentions = [
        mention(f, k, s, inferred=(f, k) == inferred)
        for (f, k), s in sorted(affirmed.items(), key=lambda i: i[1].start)
    ]
    mentions += [
        mention(f, k, s, negated=True)
        for (f, k), s in sorted(negated.items(), key=lambda i: i[1].start)
        if (f, k) not in affirmed
    ]
    indications = _get(doc, "cryokb_indications") or [] if relevant else []
    lists["indications"] = sorted({key for key, _span, _inferred in indications})
    mentions += [mention("indications", key, span, inferred=inferred) for key, span, inferred in indications]
    record = {
        "pmid": _get(doc, PMID),
        "relevant": relevant,
        **lists,
        "study_design": None,
        "n_patients": None,
        "n_lesions": None,
        "outcomes": [],
        "mentions": mentions,
    }
    if relevant:
        _numbers(doc, record)
    return record


def _sentences_with_targets(doc: Doc, spans_key: str) -> set[int]:
    """Sentences (by start) naming a lesion, a tumour or an off-topic target: in an article
    that is not relevant, only sites named with a lesion say where a lesion was ("rib
    fractures occurred in four patients" does not make the rib a site)."""
    sent = token_table(doc).sent
    starts = {sent[s.start] for s in span_list(doc, spans_key) if s.label_ == "lesion_types" and not is_negated(s)}
    starts |= {sent[t.start] for t in span_list(doc, TERMS_KEY) if t.id_ in TARGET_TERMS}
    return starts


def _approach(doc: Doc, affirmed: dict, rules) -> tuple[str, str] | None:
    """The approach when the text does not name it; returns the inferred (field, key).

    Cryosurgery or liquid nitrogen in the sentence of a curettage is intraoperative;
    otherwise a relevant article is about image-guided, so percutaneous, cryoablation.
    """
    if any(f == "approach" for f, _k in affirmed):
        return None
    cryo_terms, surgery_words = rules
    cryo = [t for t in span_list(doc, TERMS_KEY) if t.id_ == "cryo" and not is_negated(t)]
    for term in cryo:
        if term.text.lower() in cryo_terms:
            sentence = term.sent.start
            for span in span_list(doc, CONCEPTS_KEY):
                if span.id_ == "surgery" and span.sent.start == sentence and span.text.lower() in surgery_words:
                    affirmed[("approach", "intraoperative")] = term
                    return ("approach", "intraoperative")
    guidance = [s for (f, _k), s in affirmed.items() if f == "guidance"]
    anchor = guidance[0] if guidance else (cryo[0] if cryo else None)
    if anchor is None:
        return None
    affirmed[("approach", "percutaneous")] = anchor
    return ("approach", "percutaneous")


def _numbers(doc: Doc, record: dict) -> None:
    """Study design, sample sizes and outcomes from the number components, if present."""
    mentions = record["mentions"]
    design = _get(doc, "cryokb_study_design")
    if design:
        key, span = design
        record["study_design"] = key
        if span is not None:
            mentions.append(mention("study_design", key, span))
    for field in ("n_patients", "n_lesions"):
        value = _get(doc, f"cryokb_{field}")
        if value:
            number, span = value
            record[field] = number
            if span is not None:
                mentions.append(mention(field, number, span))
    for outcome, span in _get(doc, "cryokb_outcomes") or []:
        record["outcomes"].append(outcome)
        # a stated zero ("no major complications") is the text negating the measure
        mentions.append(mention("outcomes", outcome.get("measure"), span, negated=outcome.get("count") == 0))
