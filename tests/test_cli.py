"""The command line: exit codes, messages, and that import/stats/demo work end to end."""

import gzip
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.store import Store

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def sample_xml():
    return SAMPLES / "demo_pubmed.xml"


def test_version_and_help(runner):
    assert runner.invoke(cli, ["--version"]).output.startswith("cryokb, version ")
    assert "harvest" in runner.invoke(cli, ["-h"]).output


def test_a_wrong_flag_is_a_usage_error_with_exit_code_2(runner):
    result = runner.invoke(cli, ["import", "--no-such-flag", "x.xml"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_import_then_stats(runner, tmp_path, sample_xml):
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert result.exit_code == 0, result.output
    stats = json.loads(runner.invoke(cli, ["stats", "--db", str(db), "--json"]).output)
    assert stats["articles"] >= 30
    assert stats["last_run"]["kind"] == "import" and stats["last_run"]["outcome"] == "ok"


def test_importing_twice_changes_nothing(runner, tmp_path, sample_xml):
    db = tmp_path / "kb.db"
    runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    dump = [l for l in Store(db).db.iterdump() if "harvest_runs" not in l]
    result = runner.invoke(cli, ["import", str(sample_xml), "--db", str(db)])
    assert "0 new, 0 revised" in result.output
    assert [l for l in Store(db).db.iterdump() if "harvest_runs" not in l] == dump


def test_gzip_and_medline_import_like_plain_xml(runner, tmp_path, sample_xml):
    gz = tmp_path / "demo.xml.gz"
    gz.write_bytes(gzip.compress(sample_xml.read_bytes()))
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(gz), str(SAMPLES / "demo_medline.nbib"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    formats = {r["source_format"] for r in Store(db).db["articles"].rows}
    assert formats == {"xml", "medline"}


def test_a_truncated_file_keeps_what_was_read_and_says_where(runner, tmp_path, sample_xml):
    data = sample_xml.read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    db = tmp_path / "kb.db"
    result = runner.invoke(cli, ["import", str(cut), "--db", str(db), "--batch-size", "5"])
    assert result.exit_code == 1
    assert "cut.xml" in result.output and "Traceback" not in result.output
    assert Store(db).db["articles"].count >= 5


def test_a_file_that_is_not_pubmed_is_refused_clearly(runner, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Shopping list: milk, eggs\n")
    result = runner.invoke(cli, ["import", str(notes), "--db", str(tmp_path / "kb.db")])
    assert result.exit_code == 1
    assert "notes.txt" in result.output and "Traceback" not in result.output


def test_stats_without_a_database_says_what_to_do(runner, tmp_path):
    result = runner.invoke(cli, ["stats", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "cryokb harvest" in result.output


def test_db_comes_from_the_environment(runner, tmp_path, sample_xml):
    db = tmp_path / "env.db"
    result = runner.invoke(cli, ["import", str(sample_xml)], env={"CRYOKB_DB": str(db)})
    assert result.exit_code == 0, result.output
    assert Store(db).stats()["articles"] >= 30


def test_demo_marks_its_database_synthetic(runner, tmp_path):
    db = tmp_path / "demo.db"
    result = runner.invoke(cli, ["demo", "--no-serve", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    assert Store(db).get_meta("synthetic") == "true"
