"""The extraction pipeline: spacy.blank("en") plus the cryokb_* components.

``build_nlp()`` makes it once per process; ``extract(article)`` returns one evidence
record; ``extract_many(articles)`` streams records through ``nlp.pipe``. Articles go
in as Docs made with ``nlp.make_doc`` carrying the PMID and publication types in
``doc._``, so that the context travels with them into worker processes.

No model is downloaded: every component is rules over data/ files.
"""

from __future__ import annotations

import importlib
import logging
from functools import lru_cache
from typing import Iterable, Iterator

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from extractors.record import DETACH, PMID, PUBLICATION_TYPES, RECORD, register_extensions
from extractors.tokenizer import customize_tokenizer

logger = logging.getLogger("cryokb")

# Bump when a rule, vocabulary or component changes what extract() returns.
EXTRACTOR_VERSION = "0.1.0"

# (factory name, module that registers it), in pipeline order.
COMPONENTS = (
    ("cryokb_sentences", "extractors.sentences"),
    ("cryokb_concepts", "extractors.concepts"),
    ("cryokb_abbreviations", "extractors.abbreviations"),
    ("cryokb_negation", "extractors.negation"),
    ("cryokb_numbers", "extractors.numbers"),
    ("cryokb_sample_size", "extractors.sample_size"),
    ("cryokb_outcomes", "extractors.outcomes"),
    ("cryokb_study_design", "extractors.design"),
    ("cryokb_relevance", "extractors.relevance"),
    ("cryokb_indications", "extractors.indications"),
    ("cryokb_record", "extractors.record"),
)


class PipelineError(RuntimeError):
    """The pipeline could not be built."""


def _add_component(nlp: Language, factory: str, module: str) -> bool:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        logger.warning("extractors: %s not available (%s missing); pipeline runs without it", factory, module)
        return False
    if not Language.has_factory(factory):
        logger.warning("extractors: %s does not register the factory %s; skipped", module, factory)
        return False
    nlp.add_pipe(factory)
    return True


def new_nlp() -> Language:
    """A fresh pipeline (not cached): blank English, clinical tokenizer, cryokb components."""
    register_extensions()
    nlp = customize_tokenizer(spacy.blank("en"))
    for factory, module in COMPONENTS:
        _add_component(nlp, factory, module)
    if "cryokb_record" not in nlp.pipe_names:
        raise PipelineError("extractors.pipeline: the cryokb_record component is missing")
    return nlp


@lru_cache(maxsize=1)
def build_nlp() -> Language:
    """The pipeline, built once per process (the vocabulary matchers take a moment)."""
    return new_nlp()


def make_doc(nlp: Language, article) -> Doc:
    """A tokenized Doc of ``article.text`` with its PMID and publication types in ``doc._``."""
    doc = nlp.make_doc(article.text)
    doc._.set(PMID, article.pmid)
    doc._.set(PUBLICATION_TYPES, [pt.name for pt in getattr(article, "publication_types", [])])
    return doc


def extract(article, nlp: Language | None = None) -> dict:
    """The evidence record of one Article (a dict exactly as the schema)."""
    nlp = nlp or build_nlp()
    return nlp(make_doc(nlp, article))._.get(RECORD)


def extract_many(
    articles: Iterable, *, batch_size: int = 64, n_process: int = 1, nlp: Language | None = None
) -> Iterator[dict]:
    """Records of ``articles`` in order, through ``nlp.pipe``.

    With ``n_process`` > 1 each Doc is marked to be detached: the record component
    clears everything but the record, so that the Doc can travel back from the worker.
    """
    nlp = nlp or build_nlp()
    detach = n_process > 1

    def docs():
        for article in articles:
            doc = make_doc(nlp, article)
            if detach:
                doc._.set(DETACH, True)
            yield doc

    for doc in nlp.pipe(docs(), batch_size=batch_size, n_process=n_process):
        yield doc._.get(RECORD)
