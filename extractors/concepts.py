"""cryokb_concepts: find the schema's keys in the text.

A PhraseMatcher on lower case holds every synonym and variant of data/vocabulary.json
and the helper terms of data/concept_rules.json and data/relevance_rules.json (cryo
words, off-topic organs, "metastases", "bone"); a second one on exact case holds the
abbreviations ("CT", "RFA", "OO"). Patterns are built once with
``nlp.tokenizer.pipe``. The raw matches are then judged in context by a few cheap
rules kept in data/concept_rules.json:

- a site word followed by "artery", "nerve", "needle"... is not a site;
- a CT, MR or ultrasound mention is guidance only next to a cue ("-guided", "under",
  "monitoring"): imaging for diagnosis or follow-up is not guidance, and the MR of
  MR-guided focused ultrasound belongs to HIFU;
- cement packed after curettage is surgery, not cementoplasty;
- "metastases" near a bone site is a bone metastasis, near a soft-tissue site a
  soft-tissue metastasis; vertebral levels ("T12", "L4") are spine, "S1" sacrum.

Schema keys go to ``doc.spans["cryokb_concepts"]`` (label = field, ``id_`` = key); the
helper terms to ``doc.spans["cryokb_terms"]`` (label = helper kind, ``id_`` = term kind).
"""

from __future__ import annotations

import re

from spacy.attrs import ORTH
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from extractors.numbers import TokenTable, doc_text, set_span_list, token_table
from extractors.vocabulary import CONCEPT_FIELDS, load_data, load_vocabulary, require

PERCUTANEOUS_CEMENT = frozenset(
    {"percutaneous", "percutaneously", "vertebroplasty", "cementoplasty", "osteoplasty", "kyphoplasty", "sacroplasty"}
)
CONCEPTS_KEY = "cryokb_concepts"
TERMS_KEY = "cryokb_terms"


def _phrase_patterns(nlp: Language, phrases):
    """Tokenize ``phrases`` with the tokenizer only (fast, and identical to the docs)."""
    return list(nlp.tokenizer.pipe(sorted(set(phrases))))


@Language.factory(
    "cryokb_concepts",
    default_config={
        "vocabulary": "vocabulary.json",
        "rules": "concept_rules.json",
        "relevance_rules": "relevance_rules.json",
        "spans_key": CONCEPTS_KEY,
        "terms_key": TERMS_KEY,
    },
    assigns=["doc.spans"],
    requires=["token.is_sent_start"],
)
class ConceptRuler:
    """Vocabulary matching plus the context rules that decide what a match means."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        vocabulary: str,
        rules: str,
        relevance_rules: str,
        spans_key: str,
        terms_key: str,
    ):
        self.name = name
        self.spans_key = spans_key
        self.terms_key = terms_key
        self.vocab = nlp.vocab
        vocab = load_vocabulary() if vocabulary == "vocabulary.json" else None
        if vocab is None:
            from extractors.vocabulary import Vocabulary

            vocab = Vocabulary(load_data(vocabulary), vocabulary)
        self.rules = require(
            load_data(rules), rules, "helper_terms", "metastasis", "site_blockers", "term_blockers",
            "spine_levels", "guidance", "cement_in_surgery", "incidental_sites", "generic_extremity",
        )
        helper = dict(self.rules["helper_terms"])
        helper.update(require(load_data(relevance_rules), relevance_rules, "terms")["terms"])
        self._build_matchers(nlp, vocab, helper)
        self._build_rules()
        self.soft_site_words = frozenset(
            phrase.lower()
            for key in self.soft_sites
            for phrase in vocab.entry("anatomic_sites", key).phrases
        )

    # -- building -----------------------------------------------------------------
    def _build_matchers(self, nlp, vocab, helper):
        strings = nlp.vocab.strings
        self.lower_matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.orth_matcher = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.meaning: dict[int, tuple[str, str]] = {}
        for entry in vocab.entries(CONCEPT_FIELDS):
            label = f"{entry.field}|{entry.key}"
            self.meaning[strings.add(label)] = (entry.field, entry.key)
            self.lower_matcher.add(label, _phrase_patterns(nlp, entry.phrases))
            if entry.abbreviations:
                self.orth_matcher.add(label, _phrase_patterns(nlp, entry.abbreviations))
        for kind, phrases in helper.items():
            label = f"term|{kind}"
            self.meaning[strings.add(label)] = ("term", kind)
            self.lower_matcher.add(label, _phrase_patterns(nlp, phrases))

    def _build_rules(self):
        r = self.rules
        blockers = r["site_blockers"]
        self.site_next = frozenset(blockers["next"])
        self.soft_next = frozenset(blockers["next_for_soft_tissue"])
        self.soft_sites = frozenset(blockers["soft_tissue_sites"])
        self.pain_window = blockers["pain_window"]
        self.term_prev = {t: frozenset(b.get("prev", ())) for t, b in r["term_blockers"].items()}
        self.term_next = {t: frozenset(b.get("next", ())) for t, b in r["term_blockers"].items()}
        levels = r["spine_levels"]
        self.level_key = {}
        for key in ("spine", "sacrum"):
            pattern = re.compile(levels[key])
            for letters in ("C", "T", "Th", "L", "S"):
                for number in range(1, 13):
                    text = f"{letters}{number}"
                    if pattern.match(text):
                        self.level_key[self.vocab.strings.add(text)] = key
        self.level_ids = frozenset(self.level_key)
        self.level_next = frozenset(levels["next_blockers"])
        self.level_prev = frozenset(levels["prev_blockers"])
        g = r["guidance"]
        self.g_needs_cue = frozenset(g["needs_cue"])
        self.g_window = g["window"]
        self.g_after = frozenset(g["cues_after"])
        self.g_before = frozenset(g["cues_before"])
        self.g_bridge = frozenset(g["bridge"])
        self.g_not_before = frozenset(g["not_before"])
        self.g_follow_up = frozenset(g.get("follow_up_after_cue", ()))
        self.g_follow_up_objects = frozenset(g.get("follow_up_objects", ()))
        self.g_follow_up_units = frozenset(g.get("follow_up_units", ()))
        self.g_suppressed_by = frozenset(g["suppressed_by"])
        self.g_ice_window = g["ice_ball_window"]
        self.g_count_nouns = frozenset(g["count_nouns"])
        self.g_self_cued = frozenset(g["self_cued_words"])
        self.g_modalities = frozenset(g["modality_words"])
        self.g_not_for = frozenset(g["not_for_treatments"])
        inc = r["incidental_sites"]
        self.incidental_sites = frozenset(inc["sites"])
        self.incidental_words = frozenset(inc["words"])
        ext = r["generic_extremity"]
        self.generic_extremity = frozenset(ext["words"])
        self.soft_lesions = frozenset(ext["soft_tissue_lesions"])
        self.soft_regions = dict(ext.get("soft_regions", {}))
        c = r["cement_in_surgery"]
        self.cement_terms = frozenset(c["cement_terms"])
        self.surgery_terms = frozenset(c["surgery_terms"])
        m = r["metastasis"]
        self.met_window = m["window"]
        self.bone_sites = frozenset(m["bone_sites"])
        self.soft_sites_met = frozenset(m["soft_tissue_sites"])

    # -- running ------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        meaning = self.meaning
        table = token_table(doc)
        text = doc_text(doc)
        by_field: dict[str, list[tuple[int, int, str]]] = {}
        by_kind: dict[str, list[tuple[int, int, str]]] = {}
        for matcher in (self.lower_matcher, self.orth_matcher):
            for match_id, start, end in matcher(doc):
                field, key = meaning[match_id]
                if field == "term":
                    by_kind.setdefault(key, []).append((start, end, key))
                    continue
                if self._blocked(doc, table, field, start, end):
                    continue
                by_field.setdefault(field, []).append((start, end, key))
        by_field.setdefault("anatomic_sites", []).extend(self._spine_levels(doc, table))
        terms = []
        for found in by_kind.values():
            for start, end, key in filter_matches(found) if len(found) > 1 else found:
                terms.append(Span(doc, start, end, label="term", span_id=key))
        terms.sort(key=lambda t: (t.start, t.end))
        spans: list[Span] = []
        for field, found in by_field.items():
            spans.extend(Span(doc, start, end, label=field, span_id=key) for start, end, key in filter_matches(found))
        spans = self._guidance_in_context(doc, spans, terms)
        spans = self._cement_in_context(doc, spans)
        spans = self._sites_in_context(spans, table, text)
        spans = self._primary_lesions(spans, terms, table)
        spans.extend(self._metastases(doc, spans, terms, table))
        spans.sort(key=lambda s: (s.start, s.end, s.label_))
        set_span_list(doc, self.spans_key, spans)
        set_span_list(doc, self.terms_key, terms)
        return doc

    def _blocked(self, doc: Doc, table: TokenTable, field: str, start: int, end: int) -> bool:
        """A match made meaningless by its neighbour ("femoral artery", "radius of")."""
        n = len(table.start)
        nxt = table.lower(end) if end < n else ""
        prev = table.lower(start - 1) if start > 0 else ""
        if field == "anatomic_sites" and nxt:
            if nxt in self.site_next:
                return True
            if self._is_soft_site(table, start, end) and self._pain_follows(doc, table, end):
                return True
        words = table.span_lower(start, end)
        if words in self.term_next:
            if prev in ("'s", "’s") and start > 1:
                prev = table.lower(start - 2) + "'s"  # "Morton's neurinoma"
            if nxt in self.term_next[words] or prev in self.term_prev[words]:
                return True
        return False

    def _is_soft_site(self, table: TokenTable, start: int, end: int) -> bool:
        """Whether the site matched at start:end is a soft-tissue site (by its words)."""
        return table.span_lower(start, end) in self.soft_site_words

    def _pain_follows(self, doc: Doc, table: TokenTable, end: int) -> bool:
        """"thigh pain", "buttock and perineal pain": a symptom, not where a lesion was."""
        for j in range(end, min(len(table.start), end + self.pain_window)):
            if table.lower(j) == "pain":
                return True
            if doc[j].is_punct:
                return False
        return False

    def _spine_levels(self, doc: Doc, table: TokenTable) -> list[tuple[int, int, str]]:
        """Vertebral levels written as C2, T12, L4 (spine) or S1 (sacrum), as (start, end, key).

        The candidate tokens are found by their hashes, without making Token objects."""
        orth = doc.to_array([ORTH]).tolist()
        level_ids = self.level_ids
        lower = table.lower
        found = []
        n = len(doc)
        for i in [i for i, o in enumerate(orth) if o in level_ids]:
            nxt = lower(i + 1) if i + 1 < n else ""
            if nxt == "-" and i + 2 < n:
                nxt = lower(i + 2)
            prev = lower(i - 1) if i > 0 else ""
            if nxt not in self.level_next and prev not in self.level_prev:
                found.append((i, i + 1, self.level_key[orth[i]]))
        return found

    def _guidance_in_context(self, doc: Doc, spans: list[Span], terms: list[Span]) -> list[Span]:
        """Keep CT/MR/US/PET only when a cue says they guided or monitored the procedure:
        a cue word next to them, or the ice ball they showed earlier in the sentence."""
        suppressors = [s for s in spans if s.label_ == "treatments" and s.id_ in self.g_suppressed_by]
        ice_balls = [t for t in terms if t.id_ == "ice_ball"]
        other_starts = {s.start for s in spans if s.label_ == "treatments" and s.id_ in self.g_not_for}
        kept = []
        for span in spans:
            if span.label_ != "guidance":
                kept.append(span)
                continue
            if any(s.start <= span.start < s.end or 0 <= s.start - span.end <= self.g_window for s in suppressors):
                continue  # MR-guided focused ultrasound: the MR is part of HIFU
            if span.id_ in self.g_needs_cue and not self._has_cue(doc, span, other_starts):
                if not any(
                    0 < span.start - t.start <= self.g_ice_window and t.sent.start == span.sent.start
                    for t in ice_balls
                ):
                    continue
            kept.append(span)
        return kept

    def _has_cue(self, doc: Doc, span: Span, other_starts=frozenset()) -> bool:
        if len(span) > 1 and any(t.lower_ in self.g_self_cued for t in span):
            return True  # "CT fluoroscopy", "MR thermometry"
        n = len(doc)
        i = span.end
        limit = min(n, span.end + self.g_window)
        while i < limit:
            word = doc[i].lower_
            if word in self.g_after:
                following = doc[i + 1].lower_ if i + 1 < n else ""
                if i + 1 in other_starts or i + 2 in other_starts:
                    return False  # "CT-guided radiofrequency ablation": another procedure
                if self._follow_up_after(doc, i):
                    break  # not this cue; one before the modality may still say it guided
                return following not in self.g_not_before
            if word not in self.g_bridge and not self._is_modality(doc[i]) and not doc[i].like_num:
                break
            i += 1
        i = span.start - 1
        limit = max(-1, span.start - 1 - self.g_window)
        while i > limit:
            word = doc[i].lower_
            if word in self.g_before:
                return True
            skip = self._count_phrase_before(doc, i)
            if skip:
                i -= skip
                continue
            if word not in self.g_bridge and not self._is_modality(doc[i]):
                break
            i -= 1
        return False

    def _follow_up_after(self, doc: Doc, i: int) -> bool:
        """The cue word at ``i`` names a follow-up examination: "CT control at 1 month",
        "CT control after cryoablation", "MRI monitoring of response", "MRI was used to
        monitor treatment response" (but "under CT guidance at 2 centres" guided)."""
        n = len(doc)
        following, second = (doc[j].lower_ if j < n else "" for j in (i + 1, i + 2))
        if following in self.g_follow_up:
            if second in self.g_follow_up_objects:
                return True
            j = i + 2  # "at 1, 3 and 6 months", "at 3-month follow-up"
            while j < n and (doc[j].like_num or doc[j].lower_ in (",", "and", "or", "to", "-")):
                j += 1
            return j > i + 2 and j < n and doc[j].lower_ in self.g_follow_up_units
        return following in ("of", "the", "treatment") and second in self.g_not_before

    def _count_phrase_before(self, doc: Doc, i: int) -> int:
        """Tokens of a count ending at ``i`` that the backward cue walk may step over.

        "guided by CT in 19 patients and by ultrasound": the count "in 19 patients" of
        the first modality sits between the second one and the cue, as a number does in
        the forward walk ("CT (n = 12) or MRI (n = 3) guidance").
        """
        j = i
        if doc[j].lower_ in self.g_count_nouns and j > 0 and doc[j - 1].like_num:
            j -= 1
        if not doc[j].like_num:
            return 0
        if j > 0 and doc[j - 1].lower_ == "in":
            j -= 1
        return i - j + 1

    def _is_modality(self, token) -> bool:
        return token.lower_ in self.g_modalities

    def _sites_in_context(self, spans: list[Span], table: TokenTable, text: str) -> list[Span]:
        """Drop soft-tissue sites that only describe a complication or a protected structure,
        and generic limb words in a document without a soft-tissue lesion; read a limb
        region named for its bones as soft tissue where every lesion is a soft-tissue one."""
        lesions = {s.id_ for s in spans if s.label_ == "lesion_types"}
        soft_lesion = bool(lesions & self.soft_lesions)
        soft_only = soft_lesion and lesions <= self.soft_lesions
        kept = []
        for span in spans:
            if soft_only and span.label_ == "anatomic_sites":
                region = self.soft_regions.get(text[span.start_char : span.end_char].lower())
                if region is not None:
                    span = Span(span.doc, span.start, span.end, label="anatomic_sites", span_id=region)
            if span.label_ == "anatomic_sites" and span.id_ in self.incidental_sites:
                if not soft_lesion and text[span.start_char : span.end_char].lower() in self.generic_extremity:
                    continue
                lo, hi = table.sentence(span.start)
                if any(table.lower(j) in self.incidental_words for j in range(lo, hi)):
                    continue
            if span.label_ == "anatomic_sites" and self._primary_site(span, table):
                continue
            kept.append(span)
        return kept

    @staticmethod
    def _primary_lesions(spans: list[Span], terms: list[Span], table: TokenTable | None = None) -> list[Span]:
        """A sarcoma named as the origin of metastases ("osteosarcoma metastases",
        "metastases from soft-tissue sarcoma") is not itself a treated lesion."""
        metastasis_starts = {t.start for t in terms if t.id_ == "metastasis"}
        if not metastasis_starts:
            return spans
        kept = []
        for span in spans:
            if (
                span.label_ == "lesion_types"
                and not span.id_.endswith("metastasis")
                and (span.end in metastasis_starts or ConceptRuler._primary_site(span, table))
            ):
                continue
            kept.append(span)
        return kept

    @staticmethod
    def _primary_site(span: Span, table: TokenTable | None = None) -> bool:
        """"metastases from head and neck cancer": where the cancer began, not a treated site."""
        if table is None:
            table = token_table(span.doc)
        lo = max(table.sent[span.start], span.start - 6)
        for j in range(span.start - 1, lo, -1):
            if table.lower(j) == "from":
                return table.lower(j - 1).startswith("metasta")
        return False

    def _cement_in_context(self, doc: Doc, spans: list[Span]) -> list[Span]:
        """Cement packed into a curetted cavity is surgery, not cementoplasty: a surgery
        word right next to the cement, or in its sentence when nothing there is percutaneous."""
        cement = [s for s in spans if s.label_ == "treatments" and s.id_ == "cementoplasty"
                  and s.text.lower() in self.cement_terms]
        if not cement:
            return spans
        out = []
        for span in spans:
            if span in cement and self._surgical_cement(doc, span):
                out.append(Span(doc, span.start, span.end, label="treatments", span_id="surgery"))
                continue
            out.append(span)
        return out

    def _surgical_cement(self, doc: Doc, span: Span) -> bool:
        sentence = span.sent
        lo, hi = max(sentence.start, span.start - 6), min(sentence.end, span.end + 6)
        if any(doc[j].lower_ in self.surgery_terms for j in range(lo, hi)):
            return True
        words = {t.lower_ for t in sentence}
        return bool(words & self.surgery_terms) and not words & PERCUTANEOUS_CEMENT

    def _title_kind(self, doc: Doc, sites, words, lesions) -> str | None:
        """The metastasis kind the title implies ("bone tumours"), for metastases named
        with no site nearby; None when the title is silent or names an organ."""
        title_end = doc[0].sent.end
        if any(s.start < title_end for s in lesions):
            return None
        kinds = {s.id_ for s in sites + words if s.start < title_end}
        if "organ_word" in kinds or not kinds:
            return None
        if kinds & self.bone_sites or "bone_word" in kinds:
            return "bone_metastasis"
        if kinds & self.soft_sites_met or "soft_tissue_word" in kinds:
            return "soft_tissue_metastasis"
        return None

    def _metastases(self, doc: Doc, spans: list[Span], terms: list[Span], table: TokenTable) -> list[Span]:
        """Generic "metastases" near a bone or soft-tissue site, or near "bone"/"muscle"."""
        mets = [t for t in terms if t.id_ == "metastasis"]
        if not mets:
            return []
        lesions = [s for s in spans if s.label_ == "lesion_types" and s.id_ in ("bone_metastasis", "soft_tissue_metastasis")]
        sites = [s for s in spans if s.label_ == "anatomic_sites"]
        words = [t for t in terms if t.id_ in ("bone_word", "soft_tissue_word", "organ_word")]
        found = []
        w = self.met_window
        title = self._title_kind(doc, sites, words, [s for s in spans if s.label_ == "lesion_types"])
        for met in mets:
            if any(l.start <= met.start < l.end for l in lesions):
                continue
            sent = table.sent
            near = [s for s in sites + words if abs(s.start - met.start) <= w and sent[s.start] == sent[met.start]]
            if not near:
                if title is not None and met.text.lower().startswith("metastas"):
                    found.append(Span(doc, met.start, met.end, label="lesion_types", span_id=title))
                continue
            near.sort(key=lambda s: abs(s.start - met.start))
            closest = near[0]
            kind = closest.id_
            if kind == "organ_word":
                continue
            if kind in self.bone_sites or kind == "bone_word":
                found.append(Span(doc, met.start, met.end, label="lesion_types", span_id="bone_metastasis"))
            elif kind in self.soft_sites_met or kind == "soft_tissue_word":
                found.append(Span(doc, met.start, met.end, label="lesion_types", span_id="soft_tissue_metastasis"))
        return found


def filter_matches(matches: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``spacy.util.filter_spans`` over (start, end, key) tuples: the longest match wins,
    the first on a tie, then in text order. Spans are made only for the matches kept
    (making a Span reads two Token objects)."""
    ranked = sorted(matches, key=lambda m: (m[1] - m[0], -m[0]), reverse=True)
    kept = []
    seen: set[int] = set()
    for match in ranked:
        start, end = match[0], match[1]
        if start not in seen and end - 1 not in seen:
            kept.append(match)
            seen.update(range(start, end))
    return sorted(kept, key=lambda m: m[0])
