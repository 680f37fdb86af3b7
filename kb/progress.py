"""One progress helper for every long command, and the counts their summaries say.

A bar on a terminal, nothing when stderr is not a terminal (cron, CI, pipes) or with
``--quiet``: the same rule sqlite-utils applies to its progress bars.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import lru_cache


@contextmanager
def progressbar(*, total: int | None = None, unit: str = "records", desc: str | None = None,
                quiet: bool = False):
    """Yield a tqdm bar, or a silent stand-in with the same ``update``/``total`` surface.

    The unit is written after a space ("9000 records", "1197.07 records/s"): tqdm puts it
    straight after the number."""
    silent = quiet or not sys.stderr.isatty()
    bar = _bar_class()(total=total, unit=f" {unit}", desc=desc, disable=silent, file=sys.stderr,
                       dynamic_ncols=True, smoothing=0.1)
    try:
        yield bar
    finally:
        bar.close()


# tqdm's own layouts, with the rate always per second (rate_noinv_fmt).
WITH_TOTAL = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
WITHOUT_TOTAL = "{n_fmt}{unit} [{elapsed}, {rate_noinv_fmt}{postfix}]"


@lru_cache(maxsize=None)
def _bar_class():
    """tqdm, writing a rate below one a second as "0.83 records/s" where tqdm turns it
    round ("1.20s/ records", the unit's space then reading oddly): a harvest waiting on
    a slow server is where an operator reads it. Made here: the CLI reads this module's
    counts before any bar, and tqdm takes a moment to import."""
    from tqdm import tqdm

    class PerSecond(tqdm):
        @staticmethod
        def format_meter(n, total, elapsed, **options):
            if not options.get("bar_format"):
                known = total and n < total + 0.5  # as tqdm decides: a count past its total has none
                layout = WITH_TOTAL if known else WITHOUT_TOTAL
                options["bar_format"] = layout if known or not options.get("prefix") else "{desc}: " + layout
            return tqdm.format_meter(n, total, elapsed, **options)

    return PerSecond


def counted(n: int, noun: str) -> str:
    """"1 record", "0 records", "2 problems": a count with its noun, plural unless one."""
    return f"{n} {noun}{'s' * (n != 1)}"
