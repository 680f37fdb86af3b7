"""cryokb_indications: why cryoablation was used.

Stated indications come from the cue phrases of the vocabulary ("pain palliation",
"curative intent", "local control", "unfit for surgery") and, for salvage, from a
cue next to a treatment: "failed sclerotherapy", "refractory to radiotherapy",
"recurrent ... after surgery", "declined surgery". When the text does not say why in
words, the indication is inferred, as the schema allows, from the lesion type
(osteoid osteoma and other benign tumours treated for cure: curative; desmoid,
sarcoma, chordoma: local tumour control) and from the outcomes reported (pain scores
for a palliative population: pain palliation; local control: local tumour control);
inferred indications are marked ``inferred`` in their mention.

Convention: pain as the entry criterion means pain palliation, unless the lesions are
all of the curative kind, where pain is their symptom: then curative alone. A malignant
lesion of that kind (a bone sarcoma) treated for pain is palliated, not cured.

Writes ``doc._.cryokb_indications``: a list of ``(key, span or None, inferred)``.
"""

from __future__ import annotations

from spacy.attrs import LOWER
from spacy.language import Language
from spacy.tokens import Doc

from extractors.concepts import CONCEPTS_KEY, TERMS_KEY
from extractors.numbers import is_negated, span_list
from extractors.vocabulary import load_data, require

EXTENSION = "cryokb_indications"


def register_extensions() -> None:
    if not Doc.has_extension(EXTENSION):
        Doc.set_extension(EXTENSION, default=None)


@Language.factory(
    "cryokb_indications",
    default_config={"rules": "indication_rules.json", "spans_key": CONCEPTS_KEY},
    assigns=["doc._.cryokb_indications"],
    requires=["doc.spans"],
)
class Indications:
    """Stated indications from cues, then inferred ones from lesions and outcomes."""

    def __init__(self, nlp: Language, name: str, *, rules: str, spans_key: str):
        self.name = name
        self.spans_key = spans_key
        r = require(
            load_data(rules), rules, "salvage_context", "curative_lesions", "local_control_lesions",
            "pain_outcomes", "local_control_outcomes", "pain_inference_skips_lesions", "malignant_curative_lesions",
        )
        s = r["salvage_context"]
        self.window = s["window"]
        self.cue_words = frozenset(s["cue_words"])
        self.recurrence_words = frozenset(s["recurrence_words"])
        self.treatment_words = frozenset(s["treatment_words"])
        self.after_words = frozenset(s["after_words"])
        self.after_window = s["after_window"]
        self.after_reach = s["after_reach"]
        self.adjectives = frozenset(s["recurrence_adjectives"])
        self.verbs = frozenset(s["recurrence_verbs"])
        self.verb_window = s["verb_window"]
        self.not_treatments = frozenset(s["not_treatments"])
        self.pain_skips = frozenset(r["pain_inference_skips_lesions"])
        self.curative_lesions = frozenset(r["curative_lesions"])
        self.malignant_curative = frozenset(r["malignant_curative_lesions"])
        self.local_control_lesions = frozenset(r["local_control_lesions"])
        self.pain_outcomes = frozenset(r["pain_outcomes"])
        self.local_control_outcomes = frozenset(r["local_control_outcomes"])
        self.cue_ids = frozenset(
            nlp.vocab.strings.add(w) for w in self.cue_words | self.recurrence_words | self.verbs
        )
        register_extensions()

    def __call__(self, doc: Doc) -> Doc:
        concepts = [s for s in span_list(doc, self.spans_key) if not is_negated(s)]
        found: dict[str, tuple] = {}
        for span in concepts:
            if span.label_ == "indications" and span.id_ not in found:
                found[span.id_] = (span.id_, span, False)
        if "salvage" not in found:
            cue = self._salvage_cue(doc, concepts)
            if cue is not None:
                found["salvage"] = ("salvage", cue, False)
        lesions = {s.id_ for s in concepts if s.label_ == "lesion_types"}
        measures = self._measures(doc)
        curative = [s for s in concepts if s.label_ == "lesion_types" and s.id_ in self.curative_lesions]
        palliated = "pain_palliation" in found and bool(lesions & self.malignant_curative)
        if palliated:  # "recurrent Ewing sarcoma ... cryoablation for pain relief"
            curative = [s for s in curative if s.id_ not in self.malignant_curative]
        if curative and "curative" not in found:
            found["curative"] = ("curative", curative[0], True)
        if lesions and lesions <= self.curative_lesions and not palliated:
            found.pop("pain_palliation", None)  # pain is the symptom of a lesion treated for cure
        elif "pain_palliation" not in found and measures.keys() & self.pain_outcomes and not lesions <= self.pain_skips:
            found["pain_palliation"] = ("pain_palliation", self._evidence(measures, self.pain_outcomes), True)
        if "local_tumor_control" not in found:
            if measures.keys() & self.local_control_outcomes:
                found["local_tumor_control"] = (
                    "local_tumor_control", self._evidence(measures, self.local_control_outcomes), True
                )
            elif lesions & self.local_control_lesions:
                anchor = next(s for s in concepts if s.label_ == "lesion_types" and s.id_ in self.local_control_lesions)
                found["local_tumor_control"] = ("local_tumor_control", anchor, True)
        doc._.set(EXTENSION, sorted(found.values(), key=lambda item: item[0]))
        return doc

    @staticmethod
    def _measures(doc: Doc) -> dict:
        """Outcome measures reported, each with the evidence span of its first outcome."""
        outcomes = doc._.get("cryokb_outcomes") if Doc.has_extension("cryokb_outcomes") else None
        measures = {}
        for outcome, span in outcomes or []:
            measures.setdefault(outcome.get("measure"), span)
        return measures

    @staticmethod
    def _evidence(measures: dict, wanted):
        return next((span for measure, span in measures.items() if measure in wanted), None)

    def _recurrence(self, doc, token, sentence, treatments, lesions):
        """"recurrent desmoid", or "recurrence after surgery" (a prior, non-cryo treatment)."""
        if token.lower_ in self.adjectives:
            for span in lesions:
                if span.sent.start == sentence.start and 0 < span.start - token.i <= 3:
                    return doc[token.i: span.end]
        for j in range(token.i + 1, min(sentence.end, token.i + 1 + self.after_window)):
            if doc[j].lower_ in self.after_words:
                cryo = {t.start for t in span_list(doc, TERMS_KEY) if t.id_ == "cryo"}
                for span in treatments:
                    if 0 < span.start - j <= self.after_reach and span.sent.start == sentence.start:
                        if any(j < c < span.start for c in cryo):
                            break  # "recurrence after cryoablation and RFA": an outcome of the study
                        return doc[token.i: span.end]
                break
        return None

    def _salvage_cue(self, doc: Doc, concepts):
        """A failure / refusal / recurrence word within a few tokens of a prior treatment."""
        treatments = [
            s for s in concepts if s.label_ == "treatments" and s.text.lower() not in self.not_treatments
        ]
        lesions = [s for s in concepts if s.label_ == "lesion_types"]
        w = self.window
        if not treatments and not lesions:
            return None
        cue_ids = self.cue_ids
        lowers = doc.to_array([LOWER]).tolist()
        for i in [i for i, lower in enumerate(lowers) if lower in cue_ids]:
            token = doc[i]
            word = token.lower_
            targets = treatments
            sentence = token.sent
            if word in self.verbs:
                for span in treatments:
                    if span.sent.start == sentence.start and 0 < token.i - span.end <= self.verb_window:
                        return doc[span.start: token.i + 1]
                if word not in self.recurrence_words:
                    continue
            if word in self.recurrence_words:
                found = self._recurrence(doc, token, sentence, treatments, lesions)
                if found is not None:
                    return found
                if word not in self.cue_words:
                    continue
            if word == "after":
                continue
            for span in targets:
                if span.sent.start == sentence.start and abs(span.start - token.i) <= w:
                    lo, hi = min(span.start, token.i), max(span.end, token.i + 1)
                    return doc[lo:hi]
            for j in range(max(sentence.start, token.i - w), min(sentence.end, token.i + 1 + w)):
                if doc[j].lower_ in self.treatment_words:
                    lo, hi = min(j, token.i), max(j, token.i) + 1
                    return doc[lo:hi]
        return None
