"""Import speed and memory, measured side by side in one run (issue 2).

    python tests/benchmarks/bench_import.py            # N=10,000 and 100,000, plus the real update file
    python tests/benchmarks/bench_import.py --sizes 2000 --no-real
    python tests/benchmarks/bench_import.py --sizes 10000 --no-real --profile   # where the time goes
    python tests/benchmarks/bench_import.py --floors   # and what each half costs with no field work
    python tests/benchmarks/bench_import.py --cores --sizes 10000 --no-real   # and what two cores give here

For each synthetic file (written by synth.py) it times, each in a fresh subprocess so
that peak memory (ru_maxrss) is the job's own:
- walk:    a bare lxml iterparse over the PubmedArticle elements, clearing each one;
- import:  `cryokb import` into a new database (parsing, the article model, every
           table, raw XML compressed, full-text index), through the library call the CLI makes;
- entrez:  Bio.Entrez.read of the same file (only up to --entrez-max records: it holds
           the whole file in memory by design).
Peak memory is the job's own ru_maxrss plus that of its helper processes (the import's
forked reader), and CPU seconds count both, so that two cores are visible as such.
Targets: import >= 40% of the walk's records/s, >= 3x Entrez.read; import's peak memory
at 100,000 records within 1.5x of that at 10,000. Ratios, not seconds, are the result:
the machines are noisy. So noisy (the same job's time varies by a third from one run to
the next) that each job runs --repeat times, the jobs taking turns, and each job's
fastest run is the one compared.

--floors also times each half of the import with its field work taken away: parse
(open, gunzip, cut and parse every record, reading no field) and store (the SQL and
indexes of rows built beforehand, their raw records compressed beforehand as the
import's reader compresses them). The import runs its halves on two
cores, so no faster reading of fields or building of rows, compiled or not, brings it
past the slower floor.

--reparse also times `cryokb reparse` of the store the import made (every record read
again and compared with its rows; none changes), for its rate next to the import's and its
peak memory at each size: it reads a page of 500 records at a time, so its memory should
not grow with the store.

--cores also measures what the machine's two cores give any two processes: the same
pure-Python loop run alone, then twice at once in two processes. Two independent
cores finish both in the time of one (2.0x); the import's reader and writer cannot gain
more from them than this.

--profile runs the import under cProfile, in both of its processes (the writer, this
one, and the forked reader), and prints and saves (output/import-*.prof) each one's
most expensive functions: the import has two halves, and only the slower one sets
the pace. Profiled rates are slower and are not results.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILE_LINES = 25
REPARSE_DB_ENV = "CRYOKB_BENCH_REPARSE_DB"  # the store job_reparse reads again

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REAL = Path(os.environ.get("CRYOKB_SHARED", ROOT.parent / "shared")) / "pubmed-real" / "baseline" / "pubmed21n1298.xml.gz"


# Each job imports what it needs and sets up, then returns the function that is timed:
# module loading and schema creation are not throughput.

def _scratch() -> Path:
    """A directory for a job's database, removed when the job's process ends (a 100,000-record
    store is a gigabyte, and a run makes a dozen)."""
    tmp = tempfile.mkdtemp(prefix="cryokb-bench-")
    atexit.register(shutil.rmtree, tmp, True)
    return Path(tmp)


def job_walk(path: str):
    import gzip

    from lxml import etree

    def run() -> int:
        opener = gzip.open if path.endswith(".gz") else open
        n = 0
        with opener(path, "rb") as handle:
            for _, elem in etree.iterparse(handle, events=("end",), tag="PubmedArticle"):
                n += 1
                elem.clear()
                while elem.getprevious() is not None:
                    del elem.getparent()[0]
        return n

    return run


def job_import(path: str, profile: bool = False):
    from kb.importing import import_files
    from kb.store import Store

    store = Store(_scratch() / "bench.db").ensure_shape()
    if profile:
        _profile_reader_process()

    def run() -> int:
        with _profiled("writer", profile):
            results = import_files(store, [path])
        if results[0].error:
            raise SystemExit(results[0].error)
        return results[0].records

    return run


class _profiled:
    """cProfile around a block when asked; stats saved as output/import-<side>.prof and printed to stderr."""

    def __init__(self, side: str, enabled: bool):
        self.side = side
        self.profile = None
        if enabled:
            import cProfile

            self.profile = cProfile.Profile()

    def __enter__(self):
        if self.profile:
            self.profile.enable()

    def __exit__(self, *exc):
        if self.profile:
            import pstats

            self.profile.disable()
            out = HERE / "output"
            out.mkdir(exist_ok=True)
            self.profile.dump_stats(out / f"import-{self.side}.prof")
            print(f"--- import, {self.side} process (cProfile, by own time) ---", file=sys.stderr)
            pstats.Stats(self.profile, stream=sys.stderr).sort_stats("tottime").print_stats(PROFILE_LINES)


def _profile_reader_process() -> None:
    """Wrap the forked reader's entry point (kb.importing._reader) in a profile of its own."""
    from kb import importing

    reader = importing._reader

    def profiled_reader(*args):
        with _profiled("reader", True):
            reader(*args)

    importing._reader = profiled_reader


def job_entrez(path: str):
    import gzip

    from Bio import Entrez

    def run() -> int:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            data = Entrez.read(handle, validate=False)
        return len(data["PubmedArticle"])

    return run


# The floors: what each half of the import would still cost if reading fields and
# building rows were free. No faster field walk or row building (ingest._fastwalk and
# kb._fastrows are already compiled) can bring the import past the slower of the two (each half runs on a core of its own),
# so they tell which targets such work could reach.

def job_parse(path: str):
    """The reader's floor: open, gunzip, cut and parse every record as the import does,
    and read no field of it."""
    from ingest import pubmed_xml
    from ingest.readers import read_records

    pubmed_xml._read_one = lambda elem, tag, name, position, raw=None, flat=False: None

    def run() -> int:
        return sum(1 for record in read_records(path) if record is None)

    return run


def job_store(path: str):
    """The writer's floor: the store's SQL and indexes for every record, its rows built and
    its raw records compressed beforehand (untimed), in the import's batches and transactions."""
    from kb.importing import FileResult, _import_batches, expected_records, prepared_batches
    from kb.store import Store

    store = Store(_scratch() / "bench.db").ensure_shape()
    pieces = list(prepared_batches(path))

    def run() -> int:
        result = FileResult(path)
        with store.bulk_load(expected_records([path])):
            _import_batches(store, (piece for piece in pieces), result, None, None, None, set())
        return result.records

    return run


def job_reparse(path: str):
    """`cryokb reparse` of the store an import of the file made (measure() makes it in a process
    of its own, so that this one's peak memory is the reparse's alone)."""
    from kb.reparse import reparse
    from kb.store import Store

    store = Store(os.environ[REPARSE_DB_ENV]).ensure_shape()

    def run() -> int:
        result = reparse(store)
        if result.changed or result.problems:
            raise SystemExit(f"reparse right after the import changed {result.changed}, problems {result.problems}")
        return result.read

    return run


SPIN_STEPS = 25_000_000  # about 1.5 s: the processes' start-up is lost in it


def job_spin(path: str):
    """Pure-Python work touching no file: what one core does alone or beside another (--cores)."""

    def run() -> int:
        total = 0
        for step in range(SPIN_STEPS):
            total += step
        return 0

    return run


def measure_cores(repeat: int) -> float:
    """How many times one process's work two processes do at once on this machine (ideal 2.0),
    alone and side by side taking turns, the fastest of each kept."""
    alone = together = float("inf")
    for _ in range(repeat):
        alone = min(alone, _spin(1))
        together = min(together, _spin(2))
        print(f"  cores: one loop alone {alone:.2f} s at best, two at once {together:.2f} s at best", flush=True)
    return 2 * alone / together


def _spin(processes: int) -> float:
    """Seconds from starting ``processes`` spin jobs at once to the end of the last, start-up included."""
    start = time.perf_counter()
    started = [_start_job("spin", "-") for _ in range(processes)]
    for process in started:
        if process.wait():
            raise SystemExit(f"spin failed:\n{process.stderr.read()}")
    return time.perf_counter() - start


JOBS = {"spin": job_spin, "walk": job_walk, "import": job_import, "entrez": job_entrez, "parse": job_parse, "store": job_store,
        "reparse": job_reparse}


def _job_command(name: str, path: str, profile: bool = False) -> list[str]:
    return [sys.executable, __file__, "--job", name, path] + (["--profile"] if profile else [])


def _start_job(name: str, path: str) -> subprocess.Popen:
    return subprocess.Popen(_job_command(name, path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def run_job(name: str, path: str, profile: bool = False) -> dict:
    """Run one job in a child process; return records, seconds, peak RSS (MiB)."""
    profile = profile and name == "import"
    out = subprocess.run(_job_command(name, path, profile), capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode:
        raise SystemExit(f"{name} on {path} failed:\n{out.stderr}")
    if profile:
        print(out.stderr, end="")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(name: str, path: str, profile: bool = False) -> None:
    run = job_import(path, profile) if name == "import" else JOBS[name](path)
    start = time.perf_counter()
    records = run()
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    # The import reads in a forked helper process: its peak counts too. Both run at
    # once, so the sum is the footprint (an upper bound: forked pages are shared).
    print(json.dumps({"records": records, "seconds": seconds, "peak_mib": round(own + helpers, 1),
                      "own_peak_mib": round(own, 1), "helper_peak_mib": round(helpers, 1),
                      "cpu_seconds": round(cpu, 2)}))


def measure(path: str, label: str, with_entrez: bool, profile: bool = False, repeat: int = 1,
            floors: bool = False, reparse: bool = False) -> dict:
    """Each job ``repeat`` times, taking turns; a job's fastest run stands for it (its
    peak memory is the largest seen), since noise on a shared machine only slows a run."""
    row = {"file": label}
    if reparse:
        os.environ[REPARSE_DB_ENV] = _imported(path)
    jobs = (("walk", "import") + (("entrez",) if with_entrez else ()) + (("parse", "store") if floors else ())
            + (("reparse",) if reparse else ()))
    for _ in range(repeat):
        for name in jobs:
            result = run_job(name, path, profile)
            result["rate"] = result["records"] / result["seconds"]
            print(f"  {label:>22} {name:<7} {result['records']:>7} records {result['seconds']:8.2f} s "
                  f"{result['rate']:9.0f} rec/s  peak {result['peak_mib']:7.1f} MiB "
                  f"(helper {result['helper_peak_mib']:.1f})  cpu {result['cpu_seconds']:.1f} s", flush=True)
            best = row.get(name)
            peak = max(result["peak_mib"], best["peak_mib"] if best else 0)
            if best is None or result["seconds"] < best["seconds"]:
                row[name] = result
            row[name]["peak_mib"] = peak
    row["import_vs_walk"] = row["import"]["rate"] / row["walk"]["rate"]
    if with_entrez:
        row["import_vs_entrez"] = row["import"]["rate"] / row["entrez"]["rate"]
    if floors:
        for name in ("parse", "store"):
            row[f"{name}_vs_walk"] = row[name]["rate"] / row["walk"]["rate"]
            if with_entrez:
                row[f"{name}_vs_entrez"] = row[name]["rate"] / row["entrez"]["rate"]
    return row


def _imported(path: str) -> str:
    """A store holding the file, made by `cryokb import` (for the reparse job); removed at exit."""
    db = str(_scratch() / "reparse.db")
    subprocess.run([sys.executable, "-m", "kb.cli", "import", "--db", db, "-q", path], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--entrez-max", type=int, default=10_000)
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each job, taking turns; the fastest counts (default 3)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the import's writer and reader processes (rates then are not results)")
    parser.add_argument("--floors", action="store_true",
                        help="also time each half of the import with its field work taken away "
                             "(parse: cut and parse only; store: the writes of rows built beforehand)")
    parser.add_argument("--reparse", action="store_true",
                        help="also time cryokb reparse of the store each import made (rate and peak memory)")
    parser.add_argument("--cores", action="store_true",
                        help="also measure what two processes at once get from this machine's cores (ideal 2.0x)")
    parser.add_argument("--job", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        child(*args.job, profile=args.profile)
        return
    sys.path.insert(0, str(HERE))
    from synth import write_pubmed_xml

    cores = measure_cores(args.repeat) if args.cores else None

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"synthetic-{n}.xml"
            write_pubmed_xml(path, n, seed=1)
            rows.append(measure(str(path), f"synthetic N={n:,}", n <= args.entrez_max, args.profile, args.repeat,
                                args.floors, args.reparse))
            path.unlink()
    if not args.no_real and REAL.exists():
        rows.append(measure(str(REAL), REAL.name, False, args.profile, args.repeat, args.floors, args.reparse))
    print("\nfile                     import/walk  import/Entrez.read  import peak MiB")
    for row in rows:
        entrez = f"{row['import_vs_entrez']:.1f}x" if "import_vs_entrez" in row else "-"
        print(f"{row['file']:<24} {row['import_vs_walk']:>10.0%} {entrez:>19} {row['import']['peak_mib']:>16.1f}")
    if args.floors:
        print("\nfloors (the import's two halves, their field work taken away)")
        print("file                      parse/walk  store/walk  both on two cores: at best  vs Entrez.read")
        for row in rows:
            bound = min(row["parse_vs_walk"], row["store_vs_walk"])
            entrez = (f"{min(row['parse_vs_entrez'], row['store_vs_entrez']):.1f}x"
                      if "parse_vs_entrez" in row else "-")
            print(f"{row['file']:<24} {row['parse_vs_walk']:>11.0%} {row['store_vs_walk']:>11.0%} "
                  f"{bound:>27.0%} {entrez:>14}")
    if args.reparse:
        print("\nreparse (every stored record read again, none changed)")
        print("file                      reparse rec/s  reparse/import  reparse peak MiB")
        for row in rows:
            print(f"{row['file']:<24} {row['reparse']['rate']:>14.0f} {row['reparse']['rate'] / row['import']['rate']:>15.0%}"
                  f" {row['reparse']['peak_mib']:>17.1f}")
    synthetic = [r for r in rows if r["file"].startswith("synthetic")]
    if len(synthetic) >= 2:
        for job in ("import", "reparse") if args.reparse else ("import",):
            growth = synthetic[-1][job]["peak_mib"] / synthetic[0][job]["peak_mib"]
            print(f"{job} peak memory {synthetic[-1]['file']} / {synthetic[0]['file']}: {growth:.2f}x")
    if cores is not None:
        print(f"two processes at once on this machine: {cores:.2f}x one alone (two independent cores: 2.00x)")
    out = HERE / "output"
    out.mkdir(exist_ok=True)
    (out / "import.json").write_text(json.dumps({"files": rows, "cores": cores}, indent=2))


if __name__ == "__main__":
    main()
