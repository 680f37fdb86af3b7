"""README cannot drift: its test command is the one CI runs, its --help blocks are generated.

To refresh the help blocks after changing a command: CRYOKB_UPDATE_README=1 pytest tests/test_readme.py
"""

import os
import re
from pathlib import Path

from click.testing import CliRunner

from kb.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HELP_BLOCK = re.compile(r"(<!-- help: (?P<cmd>[a-z -]*) -->\n```\n)(?P<body>.*?)(```\n<!-- /help -->)", re.S)


def help_text(command: str) -> str:
    args = (command.split() if command else []) + ["--help"]
    result = CliRunner().invoke(cli, args, prog_name="cryokb", terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def test_ci_runs_exactly_the_test_command_that_readme_gives():
    text = README.read_text()
    commands = re.findall(r"^\$ (.+)$", text.split("## ", 1)[0], re.M)
    assert len(commands) == 2, "README starts with two commands: the main job, then the tests"
    test_command = commands[1]
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_every_command_has_help_with_an_example_and_readme_shows_it():
    text = README.read_text()
    blocks = {m["cmd"]: m["body"] for m in HELP_BLOCK.finditer(text)}
    commands = sorted(cli.commands)
    if os.environ.get("CRYOKB_UPDATE_README"):
        text = HELP_BLOCK.sub(lambda m: m[1] + help_text(m["cmd"]) + m[4], text)
        README.write_text(text)
        blocks = {m["cmd"]: m["body"] for m in HELP_BLOCK.finditer(text)}
    for name in commands:
        output = help_text(name)
        assert "Examples:" in output, f"cryokb {name} --help has no examples"
        assert name in blocks, f"README has no help block for cryokb {name}"
        assert blocks[name] == output, f"README's help of cryokb {name} is stale: set CRYOKB_UPDATE_README=1"
