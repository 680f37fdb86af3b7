"""Rule-based extraction of evidence records from PubMed articles.

A ``spacy.blank("en")`` pipeline of ``cryokb_*`` components (no downloaded model):
see :mod:`extractors.pipeline` for ``build_nlp``, ``extract`` and ``extract_many``,
and ARCHITECTURE.md for what each component leaves in the Doc. Importing this package
does not import spaCy; the modules do.
"""
