"""kb.progress: the bar long commands show on a terminal, and nowhere else."""

import io
import sys

from kb.progress import progressbar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def drawn(monkeypatch, stream, **options) -> str:
    """What a bar of 9,000 records draws on ``stream`` as stderr (set here, in the test's
    call: pytest puts its own stderr back after fixtures run)."""
    monkeypatch.setattr(sys, "stderr", stream)
    with progressbar(desc="import", **options) as bar:
        bar.update(9000)
    return stream.getvalue()


def test_the_count_and_the_rate_are_written_with_their_unit_after_a_space(monkeypatch):
    """tqdm puts the unit straight after the number: "9000records", "1197.07records/s"."""
    shown = drawn(monkeypatch, Terminal())
    assert "import: 9000 records [" in shown and " records/s]" in shown and "9000records" not in shown


def test_nothing_is_drawn_with_quiet_or_off_a_terminal(monkeypatch):
    assert drawn(monkeypatch, Terminal(), quiet=True) == ""
    assert drawn(monkeypatch, io.StringIO()) == ""


def test_a_count_says_its_noun_once_for_one_and_plural_otherwise():
    from kb.progress import counted

    assert [counted(n, "problem") for n in (0, 1, 2)] == ["0 problems", "1 problem", "2 problems"]
