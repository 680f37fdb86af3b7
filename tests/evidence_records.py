"""Hand-written evidence records for the knowledge-base tests (test_evidence, test_publish).

Offsets and sentences are computed from the article text, as the extractor's would be,
so the records can be written by kb.evidence.write_evidence without running the pipeline.
"""


def sentence_spans(text):
    """The title, then each ". "-separated sentence of the abstract (enough for these texts)."""
    title_end = text.index("\n\n")
    spans, start = [(0, title_end)], title_end + 2
    while start < len(text):
        end = text.find(". ", start)
        end = len(text) if end == -1 else end + 1
        spans.append((start, end))
        start = end + 1
    return spans


def mention(text, spans, field, key, phrase, negated=False, inferred=False):
    """The mention of ``phrase`` (its first occurrence) with its sentence."""
    start = text.index(phrase)
    sentence = next(text[s:e] for s, e in spans if s <= start < e)
    item = {"field": field, "key": key, "text": phrase, "start": start, "end": start + len(phrase),
            "sentence": sentence, "negated": negated}
    if inferred:
        item["inferred"] = True
    return item
