"""Extraction throughput, measured side by side in one run (issue 3).

    python tests/benchmarks/bench_extract.py                 # 5,000 abstracts
    python tests/benchmarks/bench_extract.py -n 20000 --source synthetic

Texts: the first N abstracts of the real NLM baseline file in ../shared/pubmed-real
when it is there (real prose, almost all off-topic: the pipeline still runs every
component on them), else, or with --source synthetic, N synthetic on-topic-heavy
abstracts from synth.py. Both sources can be measured in one run with --source both.
``--source gold`` measures the gold and held-out abstracts (tests/data/gold, holdout,
holdout2: realistic on-topic text full of numbers) repeated to N; ``all`` runs the three.

For each it times, over the same Articles:
- tokenizer: a bare ``spacy.blank("en")`` tokenizer pass (``nlp.tokenizer.pipe``);
- pipeline:  ``extract_many`` with n_process=1 (the full cryokb pipeline and record);
- pipeline2: ``extract_many`` with n_process=2.
Targets: pipeline at least 25% of the tokenizer's abstracts/s; pipeline2 near 2x pipeline.
Each pass is run after a warm-up on 200 texts, so loading the pipeline is not counted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BASELINE = Path(os.environ.get("CRYOKB_SHARED", ROOT.parent / "shared")) / "pubmed-real" / "baseline" / "pubmed20n0014.xml.gz"


def real_articles(n: int):
    from ingest.model import Article
    from ingest.pubmed_xml import iter_records

    out = []
    with gzip.open(BASELINE, "rb") as handle:
        for record in iter_records(handle, name=BASELINE.name):
            if isinstance(record, Article) and record.abstract:
                out.append(record)
                if len(out) == n:
                    break
    return out


def synthetic_articles(n: int):
    sys.path.insert(0, str(HERE))
    from synth import iter_synthetic_articles

    from ingest.model import AbstractSection, Article, PublicationType

    return [Article(pmid=d["pmid"], title=d["title"],
                    abstract_sections=[AbstractSection(t) for t in d["abstract"].split("\n")],
                    publication_types=[PublicationType(p) for p in d["publication_types"]])
            for d in iter_synthetic_articles(n, seed=7)]


def gold_articles(n: int):
    """The gold and held-out articles, repeated to ``n`` (on-topic text, the slow case)."""
    from ingest.model import Article
    from ingest.readers import read_records

    data = ROOT / "tests" / "data"
    paths = sorted((data / "gold").glob("*.xml")) + sorted(data.glob("holdout*/*.xml"))
    found = [r for p in paths for r in read_records(p) if isinstance(r, Article)]
    return (found * (n // len(found) + 1))[:n]


def rate(fn, count: int) -> float:
    start = time.perf_counter()
    done = fn()
    seconds = time.perf_counter() - start
    assert done == count, (done, count)
    return count / seconds


def measure(label: str, articles) -> dict:
    import spacy

    from extractors.pipeline import build_nlp, extract_many

    texts = [a.text for a in articles]
    bare = spacy.blank("en")
    nlp = build_nlp()
    list(extract_many(articles[:200], nlp=nlp))  # warm-up: caches, lazy imports
    list(bare.tokenizer.pipe(texts[:200]))
    words = sum(len(t.split()) for t in texts)
    row = {"source": label, "abstracts": len(texts), "mean_words": round(words / len(texts))}
    row["tokenizer"] = rate(lambda: sum(1 for _ in bare.tokenizer.pipe(texts, batch_size=256)), len(texts))
    row["pipeline"] = rate(lambda: sum(1 for _ in extract_many(articles, nlp=nlp, batch_size=64)), len(texts))
    row["pipeline2"] = rate(lambda: sum(1 for _ in extract_many(articles, batch_size=64, n_process=2)), len(texts))
    row["pipeline_vs_tokenizer"] = row["pipeline"] / row["tokenizer"]
    row["speedup_2_processes"] = row["pipeline2"] / row["pipeline"]
    print(f"{label:<10} {len(texts):>6} abstracts ({row['mean_words']} words)  tokenizer {row['tokenizer']:8.0f}/s  "
          f"pipeline {row['pipeline']:7.0f}/s ({row['pipeline_vs_tokenizer']:.0%})  "
          f"2 processes {row['pipeline2']:7.0f}/s ({row['speedup_2_processes']:.2f}x)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--source", choices=["real", "synthetic", "both", "gold", "all"], default="both")
    args = parser.parse_args()
    rows = []
    if args.source in ("real", "both", "all") and BASELINE.exists():
        rows.append(measure("real", real_articles(args.n)))
    if args.source in ("synthetic", "both", "all") or (args.source != "gold" and not BASELINE.exists()):
        rows.append(measure("synthetic", synthetic_articles(args.n)))
    if args.source in ("gold", "all"):
        rows.append(measure("gold", gold_articles(args.n)))
    out = HERE / "output"
    out.mkdir(exist_ok=True)
    (out / "extract.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
