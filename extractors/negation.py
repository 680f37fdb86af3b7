"""cryokb_negation: ConText-style negation, uncertainty and exclusion criteria.

negspacy's Negex (installed) was the first choice, but it cannot do three things this
schema needs: an uncertainty category, a scope for exclusion criteria ("Patients with
prior radiotherapy were excluded" must not make radiotherapy a treatment), and a window
limit (Negex negates to the end of the sentence, and abstract sentences are long:
"no major complications occurred and pain decreased in all patients with bone
metastases" must not negate the metastases). So this is a small ConText component in
negspacy's style: one PhraseMatcher (attr LOWER, patterns from the tokenizer) for
triggers, pseudo-triggers and terminations read from data/context_rules.json, applied
to the concept and helper span groups.

Sets ``span._.negated`` (also True for exclusion criteria), ``span._.uncertain`` and
``span._.excluded``; attribute names are configurable.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from extractors import clauses
from extractors.clauses import CONJUNCTIONS, DETERMINERS, PREPOSITIONS, REPEATS
from extractors.concepts import CONCEPTS_KEY, TERMS_KEY
from extractors.numbers import span_list
from extractors.vocabulary import VocabularyError, load_data

CATEGORIES = ("negated", "uncertain", "excluded")
DIRECTIONS = ("forward", "backward", "bidirectional", "subject")
SOME = frozenset({"some", "several", "few", "most", "many", "selected"})
SUBJECT_REACH = 4  # tokens from the end of a clause's opening concept to its trigger
LISTED = frozenset({"treatments"})  # denied as a list: "no prior surgery or radiotherapy"
FIXED_PHRASES = frozenset({("need", "for"), ("history", "of"), ("use", "of")})  # "no need for surgery, ..."


def register_extensions(names) -> None:
    for name in names:
        if not Span.has_extension(name):
            Span.set_extension(name, default=False)


def validate_rules(raw: dict, where: str) -> dict:
    """Check data/context_rules.json; raise VocabularyError naming the bad rule."""
    for attribute in ("rules", "pseudo", "terminations"):
        if not isinstance(raw.get(attribute), list):
            raise VocabularyError(f"{where}: needs a list {attribute!r}")
    for number, rule in enumerate(raw["rules"]):
        name = f"{where}: rule {number} ({rule.get('literal')!r})"
        if set(rule) != {"literal", "category", "direction", "max_scope"}:
            raise VocabularyError(f"{name}: needs exactly literal, category, direction, max_scope")
        if rule["category"] not in CATEGORIES or rule["direction"] not in DIRECTIONS:
            raise VocabularyError(f"{name}: category or direction not known")
        if rule["max_scope"] is not None and not (isinstance(rule["max_scope"], int) and rule["max_scope"] > 0):
            raise VocabularyError(f"{name}: max_scope must be a positive integer or null")
    return raw


@Language.factory(
    "cryokb_negation",
    default_config={
        "rules": "context_rules.json",
        "span_keys": [CONCEPTS_KEY, TERMS_KEY],
        "negated_attr": "negated",
        "uncertain_attr": "uncertain",
        "excluded_attr": "excluded",
    },
    assigns=["span._.negated", "span._.uncertain", "span._.excluded"],
    requires=["doc.spans", "token.is_sent_start"],
)
class ContextNegation:
    """Marks concept spans inside the scope of a negation, uncertainty or exclusion trigger."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        rules: str,
        span_keys: list[str],
        negated_attr: str,
        uncertain_attr: str,
        excluded_attr: str,
    ):
        self.name = name
        self.span_keys = list(span_keys)
        self.attrs = {"negated": negated_attr, "uncertain": uncertain_attr, "excluded": excluded_attr}
        register_extensions(self.attrs.values())
        raw = validate_rules(load_data(rules), rules)
        strings = nlp.vocab.strings
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.rule_of: dict[int, dict] = {}
        by_literal: dict[str, dict] = {}
        for rule in raw["rules"]:
            by_literal[rule["literal"].lower()] = rule
        for literal, rule in by_literal.items():
            label = f"context|{literal}"
            self.rule_of[strings.add(label)] = rule
            self.matcher.add(label, [nlp.make_doc(literal)])
        # "not amenable to surgery", "non-resectable": concepts that begin with a negation
        # word of their own, which the trigger that word belongs to does not negate
        self.negation_words = frozenset(
            literal for literal, rule in by_literal.items() if rule["category"] == "negated" and " " not in literal
        )
        self.pseudo_id = strings.add("context|pseudo")
        self.matcher.add("context|pseudo", list(nlp.tokenizer.pipe(raw["pseudo"])))
        self.stop_id = strings.add("context|termination")
        self.matcher.add("context|termination", list(nlp.tokenizer.pipe(raw["terminations"])))

    def __call__(self, doc: Doc) -> Doc:
        matches = self.matcher(doc)
        if not matches:
            return doc
        pseudo = [(s, e) for m, s, e in matches if m == self.pseudo_id]
        stops = sorted(s for m, s, e in matches if m == self.stop_id)
        triggers = []
        for match_id, start, end in matches:
            rule = self.rule_of.get(match_id)
            if rule is None or any(ps <= start < pe for ps, pe in pseudo):
                continue
            triggers.append((start, end, rule))
        if not triggers:
            return doc
        triggers = self._longest(triggers)
        scopes = [self._scope(doc, start, end, rule, stops) for start, end, rule in triggers]
        for key in self.span_keys:
            spans = span_list(doc, key)
            for trigger, scope in zip(triggers, scopes):
                governed = [span for span in spans if self._governs(doc, span, trigger, scope, spans)]
                for span in governed + _listed_with(doc, spans, governed, trigger):
                    category = trigger[2]["category"]
                    span._.set(self.attrs[category], True)
                    if category == "excluded":
                        span._.set(self.attrs["negated"], True)
        return doc

    def _governs(self, doc: Doc, span: Span, trigger: tuple, scope: tuple[int, int], spans: list[Span]) -> bool:
        t_start, t_end, rule = trigger
        s_start, s_end = scope
        # in scope; after a forward trigger, beginning in it is enough ("no prior external
        # beam radiotherapy": "no prior" reaches two tokens)
        if not (s_start <= span.start < s_end and (span.end <= s_end or rule["direction"] == "forward")):
            return False
        # A concept that begins inside its trigger is negated by it ("no prior
        # radiotherapy": trigger "no prior"), unless it begins with the trigger's
        # first word or a negation word of its own ("were not candidates",
        # "was not amenable to surgery", "non-resectable").
        inside = t_start <= span.start < t_end
        if inside and (span.start == t_start or span[0].lower_ in self.negation_words):
            return False
        if rule["direction"] == "subject" and not self._subject(doc, span, s_start, t_start, t_end):
            return False  # "Opioids after radiotherapy were not needed": not the subject
        # "No complications occurred, and radiotherapy was given"
        return not (span.start > t_start and clauses.opens_clause(doc, spans, span, t_start, t_end))

    @staticmethod
    def _subject(doc: Doc, span: Span, clause_start: int, trigger_start: int, trigger_end: int) -> bool:
        """Whether ``span`` is what a "was not performed" trigger denies: a treatment that
        opens its clause, after at most two determiners or modifiers ("The planned
        cementoplasty", not "After radiotherapy" or "Further radiotherapy", which says one
        was given), near the trigger; or the treatment just before the trigger after a
        conjunction ("... continued and embolization was not performed"). Never for some
        patients only ("was not needed in 18 of 20 patients")."""
        if span.label_ != "treatments" or span.end > trigger_start:
            return False
        if trigger_end + 1 < len(doc) and doc[trigger_end].lower_ == "in" and (
                doc[trigger_end + 1].like_num or doc[trigger_end + 1].lower_ in SOME):
            return False
        if trigger_start - span.end <= 1 and span.start > clause_start and doc[span.start - 1].lower_ in CONJUNCTIONS:
            return True
        before = doc[clause_start : span.start]
        if len(before) > 2 or any((t.is_stop and t.lower_ not in DETERMINERS) or t.lower_ in PREPOSITIONS | REPEATS
                                  for t in before):
            return False
        between = doc[span.end : trigger_start]
        return len(between) <= SUBJECT_REACH and not any(t.lower_ in CONJUNCTIONS for t in between)

    @staticmethod
    def _longest(triggers):
        """Drop triggers inside a longer one ("not" inside "was not observed")."""
        triggers.sort(key=lambda t: (t[0], -(t[1] - t[0])))
        kept = []
        for t in triggers:
            if any(k[0] <= t[0] and t[1] <= k[1] and k is not t for k in kept):
                continue
            kept.append(t)
        return kept

    @staticmethod
    def _scope(doc: Doc, start: int, end: int, rule: dict, stops: list[int]) -> tuple[int, int]:
        """Token range the trigger governs: its sentence, cut at terminations and max_scope.

        ``subject``: the start of the trigger's clause up to the trigger ("Cementoplasty of
        the femur was not performed"); the caller negates only a concept that opens it."""
        sentence = doc[start].sent
        if rule["direction"] == "subject":
            return clauses.clause_start(doc, start), start
        limit = rule["max_scope"] or len(doc)
        lo, hi = end, end
        if rule["direction"] in ("forward", "bidirectional"):
            hi = min(sentence.end, end + limit)
            for stop in stops:
                if end <= stop < hi:
                    hi = stop
                    break
        if rule["direction"] in ("backward", "bidirectional"):
            lo = max(sentence.start, start - limit)
            for stop in reversed(stops):
                if lo <= stop < start:
                    lo = stop + 1
                    break
        else:
            lo = start
        return lo, hi


def _listed_with(doc: Doc, spans: list[Span], governed: list[Span], trigger: tuple) -> list[Span]:
    """Treatments listed with one a trigger governs, past its scope: "no prior surgery or
    radiotherapy" (scope 2) denies both, "Radiotherapy, surgery and chemotherapy were not
    needed" all three (extractors.clauses reads the lists).

    A denial that reaches its treatment across other words ("No complications occurred
    after surgery or radiotherapy") says nothing of the list; one after the list ("was not
    needed") denies it only where the list opens its clause ("Patients received
    chemotherapy and radiotherapy was not needed" denies only the radiotherapy)."""
    t_start, t_end, rule = trigger
    listed = []
    for span in governed:
        if span.label_ not in LISTED:
            continue
        items, joins = clauses.list_of(doc, spans, span)
        at = items.index(span)
        if rule["direction"] == "forward" and span.start >= t_end and _reaches(doc[t_end : span.start]):
            listed += clauses.items_after(doc, spans, items[at:], joins[at:])
        elif rule["direction"] == "subject":
            listed += _subject_items(doc, items, joins, at, t_start)
    return listed


def _reaches(gap: Span) -> bool:
    """Whether a trigger denies the treatment after ``gap`` itself, not something a phrase
    between them is about: "no prior", "none of the patients had", "no need for", "No
    patient treated with cryoablation required"; not "No complications occurred in"."""
    words = [t.lower_ for t in gap]
    last = max((n for n, w in enumerate(words) if w in clauses.PHRASE_WORDS - {"prior"}
                and not (n and (words[n - 1], w) in FIXED_PHRASES)), default=None)
    return last is None or any(clauses.verb_like(t) for t in gap[last + 1 :])


def _subject_items(doc: Doc, items: list[Span], joins: list, at: int, trigger_start: int) -> list[Span]:
    """The items of a list that opens the clause of a "was not needed" and ends at it."""
    last = max((n for n, item in enumerate(items) if item.end <= trigger_start), default=at)
    between = doc[items[last].end : trigger_start]
    if len(between) > SUBJECT_REACH or any(t.lower_ in CONJUNCTIONS for t in between):
        return []
    first = next((n for n in range(at + 1) if clauses.opens(doc, items[n])), None)
    if first is None or first == last or not any(clauses.closes(words) for words in joins[first:last]):
        return []
    return [item for item in items[first : last + 1] if item is not items[at]]
