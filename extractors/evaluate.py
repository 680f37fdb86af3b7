"""Score evidence records against a gold file, per field, as the issue defines it.

- relevant: precision/recall/F1 with "relevant" as the positive class;
- list fields: micro precision/recall/F1 over (pmid, key) pairs;
- study_design: accuracy, n_patients and n_lesions: exact match, over the articles
  the gold set calls relevant (the others have nulls by convention);
- outcome measures: micro F1 over (pmid, measure, grade) as multisets;
- numeric facts: the share of the gold's percent, count/total and before/after facts
  that the prediction reproduces exactly (same measure and grade).

Gold files are JSON Lines of schema records; the articles they describe are read
from the file of the same stem beside them (``part.jsonl`` -> ``part.xml``) or from
the files given explicitly.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

LIST_FIELDS = ("approach", "lesion_types", "anatomic_sites", "indications", "guidance", "treatments")
ARTICLE_SUFFIXES = (".xml", ".xml.gz", ".nbib", ".txt")


class GoldFileError(ValueError):
    """A gold file that cannot be read, or whose articles cannot be found."""


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, gold: Counter, predicted: Counter) -> None:
        overlap = sum((gold & predicted).values())
        self.tp += overlap
        self.fp += sum(predicted.values()) - overlap
        self.fn += sum(gold.values()) - overlap

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Share:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += bool(hit)
        self.total += 1

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else 1.0


@dataclass
class Report:
    articles: int = 0
    prf: dict = field(default_factory=dict)  # field -> PRF
    shares: dict = field(default_factory=dict)  # metric -> Share
    errors: list = field(default_factory=list)  # (pmid, field, gold, predicted)

    def rows(self) -> list[dict]:
        out = []
        for name, m in self.prf.items():
            out.append({"field": name, "metric": "F1", "precision": round(m.precision, 3),
                        "recall": round(m.recall, 3), "value": round(m.f1, 3),
                        "support": m.tp + m.fn})
        for name, s in self.shares.items():
            out.append({"field": name, "metric": _SHARE_METRIC[name], "precision": None, "recall": None,
                        "value": round(s.value, 3), "support": s.total})
        return out


_SHARE_METRIC = {
    "study_design": "accuracy",
    "n_patients": "exact",
    "n_lesions": "exact",
    "numeric_facts": "reproduced",
}


def numeric_facts(outcomes: Iterable[dict]) -> Counter:
    """The exact numbers an outcome list states, each tagged with measure and grade."""
    facts = Counter()
    for o in outcomes:
        tag = (o.get("measure"), o.get("grade"))
        if o.get("percent") is not None:
            facts[tag + ("percent", float(o["percent"]))] += 1
        if o.get("count") is not None:
            total = o.get("total")
            facts[tag + ("count/total", int(o["count"]), None if total is None else int(total))] += 1
        if o.get("before") is not None and o.get("after") is not None:
            facts[tag + ("before/after", float(o["before"]), float(o["after"]))] += 1
    return facts


def score(gold_records: list[dict], predicted: dict[str, dict]) -> Report:
    report = Report()
    report.prf = {"relevant": PRF(), **{name: PRF() for name in LIST_FIELDS}, "outcome_measures": PRF()}
    report.shares = {name: Share() for name in _SHARE_METRIC}
    for gold in gold_records:
        pmid = str(gold["pmid"])
        pred = predicted.get(pmid)
        if pred is None:
            raise GoldFileError(f"gold PMID {pmid} has no article to compare with")
        report.articles += 1
        report.prf["relevant"].add(Counter({"y": 1} if gold["relevant"] else {}),
                                   Counter({"y": 1} if pred.get("relevant") else {}))
        if bool(gold["relevant"]) != bool(pred.get("relevant")):
            report.errors.append((pmid, "relevant", gold["relevant"], pred.get("relevant")))
        for name in LIST_FIELDS:
            g, p = Counter(set(gold.get(name) or [])), Counter(set(pred.get(name) or []))
            report.prf[name].add(g, p)
            if g != p:
                report.errors.append((pmid, name, sorted(g), sorted(p)))
        g_measures = Counter((o["measure"], o.get("grade")) for o in gold.get("outcomes") or [])
        p_measures = Counter((o["measure"], o.get("grade")) for o in pred.get("outcomes") or [])
        report.prf["outcome_measures"].add(g_measures, p_measures)
        if g_measures != p_measures:
            report.errors.append((pmid, "outcome_measures", sorted(g_measures.elements(), key=str),
                                  sorted(p_measures.elements(), key=str)))
        if gold["relevant"]:
            for name in ("study_design", "n_patients", "n_lesions"):
                hit = gold.get(name) == pred.get(name)
                report.shares[name].add(hit)
                if not hit:
                    report.errors.append((pmid, name, gold.get(name), pred.get(name)))
        g_facts = numeric_facts(gold.get("outcomes") or [])
        p_facts = numeric_facts(pred.get("outcomes") or [])
        for fact, n in g_facts.items():
            for i in range(n):
                report.shares["numeric_facts"].add(p_facts.get(fact, 0) > i)
        missing = g_facts - p_facts
        if missing:
            report.errors.append((pmid, "numeric_facts", sorted(missing, key=str),
                                  sorted(p_facts - g_facts, key=str)))
    return report


def load_gold(path: str | Path) -> list[dict]:
    path = Path(path)
    records = []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise GoldFileError(f"cannot read gold file {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise GoldFileError(f"{path}, line {number}: not UTF-8 (byte {exc.start + 1} of the line)") from exc
        except json.JSONDecodeError as exc:
            raise GoldFileError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or "pmid" not in record or "relevant" not in record:
            raise GoldFileError(f"{path}, line {number}: a gold record needs at least 'pmid' and 'relevant'")
        wrong = _mistyped(record)
        if wrong:
            raise GoldFileError(f"{path}, line {number}: {wrong}")
        records.append(record)
    return records


_NUMBERS = ("percent", "count", "total", "before", "after")


def _mistyped(record: dict) -> str | None:
    """What in a gold record is not of the type EVIDENCE_SCHEMA.md gives it, or None."""
    for name in LIST_FIELDS:
        value = record.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"'{name}' must be a list of strings, not {json.dumps(value)}"
    outcomes = record.get("outcomes")
    if outcomes is None:
        return None
    if not isinstance(outcomes, list) or not all(isinstance(o, dict) and "measure" in o for o in outcomes):
        return f"'outcomes' must be a list of objects, each with a 'measure', not {json.dumps(outcomes)}"
    for outcome in outcomes:
        if not isinstance(outcome["measure"], str) or not isinstance(outcome.get("grade", ""), (str, type(None))):
            return f"an outcome's 'measure' and 'grade' must be strings, not {json.dumps(outcome)}"
        for name in _NUMBERS:
            value = outcome.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                return f"an outcome's '{name}' must be a number, not {json.dumps(value)}"
    return None


def sibling_articles(gold_path: str | Path) -> Path:
    gold_path = Path(gold_path)
    for suffix in ARTICLE_SUFFIXES:
        candidate = gold_path.with_name(gold_path.name.rsplit(".", 1)[0] + suffix)
        if candidate.exists():
            return candidate
    raise GoldFileError(
        f"no article file beside {gold_path} (looked for {', '.join(ARTICLE_SUFFIXES)} with the same stem); "
        "name one with --articles"
    )


def format_table(report: Report) -> str:
    lines = [f"{report.articles} articles",
             f"{'field':<18} {'metric':<11} {'P':>6} {'R':>6} {'value':>6} {'support':>8}"]
    for row in report.rows():
        p = "" if row["precision"] is None else f"{row['precision']:.3f}"
        r = "" if row["recall"] is None else f"{row['recall']:.3f}"
        lines.append(f"{row['field']:<18} {row['metric']:<11} {p:>6} {r:>6} {row['value']:>6.3f} {row['support']:>8}")
    return "\n".join(lines)
