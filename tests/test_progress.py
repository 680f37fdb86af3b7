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


def test_a_rate_below_one_a_second_is_still_written_per_second():
    """tqdm writes 0.5 records/s as "2.00s/ records"; an operator watching a slow harvest reads a rate."""
    from kb.progress import _bar_class

    bar = _bar_class()
    with_total = bar.format_meter(3, 40, 6.0, unit=" records", prefix="harvest")
    without_total = bar.format_meter(3, None, 6.0, unit=" records", prefix="harvest")
    assert with_total.startswith("harvest:   8%|") and with_total.endswith("| 3/40 [00:06<01:14,  0.50 records/s]")
    assert without_total == "harvest: 3 records [00:06,  0.50 records/s]"
    fast = bar.format_meter(9000, None, 6.0, unit=" records", prefix="import")
    assert fast == "import: 9000 records [00:06, 1500.00 records/s]"
    assert bar.format_meter(3, None, 6.0, unit=" records") == "3 records [00:06,  0.50 records/s]"
