"""A non-editable install finds everything it reads from data/, and its compiled walk;
the source distribution builds; a machine with no C compiler still gets a wheel.

Builds a wheel-based install into a fresh virtual environment, then runs the installed
`cryokb` from a folder far from the checkout, so that nothing can be found through
the source tree.
"""

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("fresh-venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    build_dir = tmp_path_factory.mktemp("build")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-warn-script-location", str(ROOT)],
                   check=True, cwd=build_dir, timeout=900)
    return env_dir


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The source distribution of the files git tracks, built as `python -m build --sdist` builds it."""
    env_dir = tmp_path_factory.mktemp("builder-venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "build"], check=True, timeout=600)
    tree = tmp_path_factory.mktemp("tracked") / "cryokb"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([python, "-m", "build", "--sdist", "-o", str(out)], cwd=tree, check=True, capture_output=True,
                   timeout=600)
    return python, next(out.glob("cryokb-*.tar.gz"))


def wheel_from(sdist, out_dir, **env) -> list[str]:
    """The names in the wheel pip builds from the source distribution, in an environment with ``env`` set."""
    python, archive = sdist
    built = subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out_dir), str(archive)],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(next(out_dir.glob("cryokb-*.whl"))) as wheel:
        return wheel.namelist()


def run(env_dir, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CRYOKB_DB")}
    return subprocess.run([str(env_dir / "bin" / "cryokb"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_installed_package_reads_its_data_from_site_packages(installed, tmp_path):
    code = ("import cryokb_data, kb, json; "
            "print(json.dumps([str(cryokb_data.path('pubmed_query.toml')), kb.__file__]))")
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    query_file, kb_file = json.loads(out.stdout)
    assert str(installed) in query_file and str(installed) in kb_file
    assert not query_file.startswith(str(ROOT)) and Path(query_file).is_file()


def test_installed_package_reads_xml_and_builds_rows_with_its_compiled_code(installed, tmp_path):
    code = ("import ingest._fastwalk as walk, ingest.pubmed_xml as xml, kb._fastrows as rows, kb.store as store; "
            "print(walk.__file__, xml._flat_citation is walk.citation, rows.__file__, "
            "store.prepare_flat is rows.prepare_flat)")
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    walk, walk_used, rows, rows_used = out.stdout.split()
    for where in (walk, rows):
        assert where.startswith(str(installed)) and where.endswith(".so")
    assert walk_used == rows_used == "True"


def test_installed_demo_builds_a_database_away_from_the_checkout(installed, tmp_path):
    result = run(installed, "demo", "--no-serve", "--db", str(tmp_path / "demo.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stdout
    stats = run(installed, "stats", "--db", str(tmp_path / "demo.db"), "--json", cwd=tmp_path)
    assert json.loads(stats.stdout)["articles"] >= 30


def test_source_distribution_builds_a_wheel_with_the_compiled_modules_and_not_their_sources(sdist, tmp_path):
    names = wheel_from(sdist, tmp_path)
    for module in ("ingest/_fastwalk.", "kb/_fastrows."):
        assert any(name.startswith(module) and name.endswith(".so") for name in names), module
    assert not [name for name in names if name.endswith((".pyx", ".c"))]
    assert "cryokb_data/pubmed_query.toml" in names and "ingest/pubmed_xml.py" in names


def test_without_a_c_compiler_the_wheel_still_builds_and_reads_with_the_python_code(sdist, tmp_path):
    names = wheel_from(sdist, tmp_path, CC="/bin/false", CXX="/bin/false", LDSHARED="/bin/false")
    assert not [name for name in names if "_fastwalk" in name or "_fastrows" in name]
    assert "ingest/pubmed_xml.py" in names and "kb/cli.py" in names


def test_source_distribution_carries_what_its_tests_need(sdist):
    import tarfile

    with tarfile.open(sdist[1]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"ingest/_fastwalk.pyx", "kb/_fastrows.pyx", "tests/conftest.py", "tests/emulator.py", "ARCHITECTURE.md"} <= names
    assert any(name.startswith("tests/data/xml/") for name in names)
