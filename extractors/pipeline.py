"""The extraction pipeline: spacy.blank("en") plus the cryokb_* components.

``build_nlp()`` makes it once per process; ``extract(article)`` returns one evidence
record; ``extract_many(articles)`` streams records through ``nlp.pipe``. Articles go
in as Docs made with ``nlp.make_doc`` carrying the PMID and publication types in
``doc._``, which the components read as they run.

With ``n_process`` > 1 the work is shared by a pool of worker processes, each with
its own pipeline, that receive (pmid, text, publication types) and send back records:
spaCy's own ``nlp.pipe(n_process=...)`` ships every Doc both ways through
``Doc.to_bytes``, which costs several times more than our components themselves.

No model is downloaded: every component is rules over data/ files.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from itertools import islice
from typing import Iterable, Iterator

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from extractors.numbers import TEXT_KEY, doc_sentences
from extractors.record import PMID, PUBLICATION_TYPES, RECORD, register_extensions
from extractors.tokenizer import customize_tokenizer

logger = logging.getLogger("cryokb")

# Bump when a rule, vocabulary or component changes what extract() returns.
EXTRACTOR_VERSION = "0.3.24"

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


def _add_component(nlp: Language, factory: str, module: str) -> None:
    importlib.import_module(module)  # registers the factory
    if not Language.has_factory(factory):
        raise PipelineError(f"extractors.pipeline: {module} does not register the factory {factory}")
    nlp.add_pipe(factory)


def new_nlp() -> Language:
    """A fresh pipeline (not cached): blank English, clinical tokenizer, cryokb components."""
    register_extensions()
    nlp = customize_tokenizer(spacy.blank("en"))
    for factory, module in COMPONENTS:
        _add_component(nlp, factory, module)
    return nlp


@lru_cache(maxsize=1)
def build_nlp() -> Language:
    """The pipeline, built once per process (the vocabulary matchers take a moment)."""
    return new_nlp()


def make_doc(nlp: Language, article) -> Doc:
    """A tokenized Doc of ``article.text`` with its PMID and publication types in ``doc._``."""
    return _doc(nlp, _inputs(article))


def _inputs(article) -> tuple[str, str, list[str]]:
    """What the pipeline reads of an Article: small enough to send to a worker."""
    return article.pmid, article.text, [pt.name for pt in getattr(article, "publication_types", [])]


def _doc(nlp: Language, inputs: tuple[str, str, list[str]]) -> Doc:
    pmid, text, publication_types = inputs
    doc = nlp.make_doc(text)
    doc.user_data[TEXT_KEY] = text  # the components read it rather than have spaCy join the tokens again
    doc._.set(PMID, pmid)
    doc._.set(PUBLICATION_TYPES, publication_types)
    return doc


def extract(article, nlp: Language | None = None) -> dict:
    """The evidence record of one Article (a dict exactly as the schema)."""
    nlp = nlp or build_nlp()
    return nlp(make_doc(nlp, article))._.get(RECORD)


def extract_many(
    articles: Iterable, *, batch_size: int = 64, n_process: int = 1, nlp: Language | None = None
) -> Iterator[dict]:
    """Records of ``articles`` in order, through ``nlp.pipe`` (in ``n_process`` processes)."""
    for record, _ in extract_with_sentences(articles, batch_size=batch_size, n_process=n_process, nlp=nlp):
        yield record


def extract_with_sentences(
    articles: Iterable, *, batch_size: int = 64, n_process: int = 1, nlp: Language | None = None
) -> Iterator[tuple[dict, list[tuple[int, int]]]]:
    """(record, sentence offsets) of ``articles`` in order: the knowledge base stores both."""
    inputs = (_inputs(article) for article in articles)
    if n_process <= 1:
        yield from _run(nlp or build_nlp(), inputs, batch_size)
        return
    yield from _run_in_pool(inputs, batch_size, n_process)


def _run(nlp: Language, inputs: Iterable, batch_size: int) -> Iterator[tuple[dict, list[tuple[int, int]]]]:
    docs = (_doc(nlp, item) for item in inputs)
    for doc in nlp.pipe(docs, batch_size=batch_size):
        yield doc._.get(RECORD), [tuple(offsets) for offsets in doc_sentences(doc)]


def _run_batch(batch: list) -> list:
    """In a worker: one batch through the worker's own pipeline."""
    return list(_run(build_nlp(), batch, len(batch)))


def _run_in_pool(inputs: Iterable, batch_size: int, n_process: int) -> Iterator:
    """Batches to worker processes, at most two each in flight, results in input order."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(n_process, mp_context=context, initializer=build_nlp)
    pending: deque = deque()
    try:
        iterator = iter(inputs)
        while batch := list(islice(iterator, batch_size)):
            pending.append(pool.submit(_run_batch, batch))
            if len(pending) >= 2 * n_process:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
