"""One progress helper for every long command, and the counts their summaries say.

A bar on a terminal, nothing when stderr is not a terminal (cron, CI, pipes) or with
``--quiet``: the same rule sqlite-utils applies to its progress bars.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def progressbar(*, total: int | None = None, unit: str = "records", desc: str | None = None,
                quiet: bool = False):
    """Yield a tqdm bar, or a silent stand-in with the same ``update``/``total`` surface.

    The unit is written after a space ("9000 records", "1197.07 records/s"): tqdm puts it
    straight after the number."""
    from tqdm import tqdm  # here: the CLI reads this module's counts before any bar

    silent = quiet or not sys.stderr.isatty()
    bar = tqdm(total=total, unit=f" {unit}", desc=desc, disable=silent, file=sys.stderr,
               dynamic_ncols=True, smoothing=0.1)
    try:
        yield bar
    finally:
        bar.close()


def counted(n: int, noun: str) -> str:
    """"1 record", "0 records", "2 problems": a count with its noun, plural unless one."""
    return f"{n} {noun}{'s' * (n != 1)}"
