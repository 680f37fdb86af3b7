"""A non-editable install finds everything it reads from data/, and its compiled walk.

Builds a wheel-based install into a fresh virtual environment, then runs the installed
`cryokb` from a folder far from the checkout, so that nothing can be found through
the source tree.
"""

import json
import os
import subprocess
import sys
import venv
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


def test_installed_package_reads_xml_with_its_compiled_walk(installed, tmp_path):
    code = ("import ingest._fastwalk as walk, ingest.pubmed_xml as xml; "
            "print(walk.__file__, xml._flat_citation is walk.citation)")
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    where, used = out.stdout.split()
    assert where.startswith(str(installed)) and where.endswith(".so") and used == "True"


def test_installed_demo_builds_a_database_away_from_the_checkout(installed, tmp_path):
    result = run(installed, "demo", "--no-serve", "--db", str(tmp_path / "demo.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stdout
    stats = run(installed, "stats", "--db", str(tmp_path / "demo.db"), "--json", cwd=tmp_path)
    assert json.loads(stats.stdout)["articles"] >= 30
