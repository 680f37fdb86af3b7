"""How PubMed XML writes dates, ORCIDs and PMID versions, read into the article model's values.

Here, not in ingest.pubmed_xml, because two walks of a record's elements share them:
the Python walk (ingest.pubmed_xml) and the compiled one (ingest._fastwalk). They find
the elements; these functions say what the elements' text means, once for both.
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name.lower(): number for number, name in enumerate(MONTH_NAMES, start=1)}
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)", re.ASCII)
_ORCID = re.compile(r"(\d{4}[- ]?\d{4}[- ]?\d{4}[- ]?\d{3}[\dXx])", re.ASCII)
_PMC_OTHER_ID = re.compile(r"\s*(PMC\d+)(?!\w)")


class RecordError(ValueError):
    """One record cannot be read; becomes a ParseProblem and parsing goes on."""


_VERSION = re.compile(r"[0-9]{1,9}")


def pmid_version(text: str) -> int:
    """A PMID's Version attribute as a number. PubMed's are small; one too long for
    SQLite's integers would stop the batch's write, so it makes the record unreadable
    (its problem names the PMID)."""
    if not _VERSION.fullmatch(text.strip()):  # space around it, as around any element's text, is no matter
        raise RecordError(f"the PMID's Version {text!r} is not a number of at most 9 digits")
    return int(text)


def pub_date(parts: dict) -> tuple[str | None, int | None]:
    """The publication date as PubMed writes it ("2019 Jan-Feb", "2018 Winter", "2020 Mar 5")
    and its year, from a PubDate's children (tag: stripped text or None).

    MedlineDate is kept verbatim; a structured date is written the way MEDLINE's DP
    writes it (month as its abbreviation, day without a leading zero), so the XML and
    MEDLINE paths give the same string.
    """
    medline_date = parts.get("MedlineDate")
    if medline_date:
        medline_date = " ".join(medline_date.split())  # as MEDLINE's DP writes it: on one line
        found = _YEAR.search(medline_date)
        return medline_date, int(found.group(1)) or None if found else None  # "0000": no year
    year = parts.get("Year")
    if year is not None and (not _digits(year, 4) or int(year) == 0):  # "0000": no year at all
        raise RecordError(f"PubDate has a broken Year {year!r}")
    month = parts.get("Month")
    if month and _digits(month) and 1 <= int(month) <= 12:
        month = MONTH_NAMES[int(month) - 1]
    day = parts.get("Day")
    if day and _digits(day):
        day = str(int(day))
    written = [p for p in (year, parts.get("Season") or month, day) if p]
    return " ".join(written) or None, int(year) if year else None


@lru_cache(maxsize=4096)
def iso_date(year: str | None, month: str | None, day: str | None) -> str:
    """ISO date from a date element's Year, Month and Day ("YYYY-MM-DD"; "YYYY-MM" or
    "YYYY" if partial); ValueError or KeyError for a date that does not exist, however
    large its numbers.

    Cached: the Python walk's records (a harvest's, a reparse's) share many dates, and
    checking one costs more than finding it. The compiled walk (ingest._fastwalk._iso_date)
    checks a date written in digits itself, by the same calendar, and calls this for the rest.
    """
    if not (year and _digits(year, 4)):  # int() takes "+202", "2_02" and other scripts' digits
        raise ValueError(f"year {year!r}")
    y = int(year)
    if not month:
        return year
    m = int(month) if _digits(month) else MONTHS[month[:3].lower()]
    if day and not _digits(day):
        raise ValueError(f"day {day!r}")
    try:
        if not day:
            datetime.date(y, m, 1)
            return f"{y:04d}-{m:02d}"
        return datetime.date(y, m, int(day)).isoformat()
    except OverflowError as err:  # "Day 3000000000" is past C's integers: as invalid as day 32
        raise ValueError(f"{year}-{month}-{day} is out of range") from err


def _digits(text: str, length: int | None = None) -> bool:
    """Whether ``text`` is ASCII digits only (``length`` of them, if given)."""
    return text.isascii() and text.isdigit() and (length is None or len(text) == length)


def normalise_orcid(value: str | None) -> str | None:
    """'http://orcid.org/0000-0002-1825-0097' or '0000000218250097' -> '0000-0002-1825-0097'."""
    if not value:
        return None
    if len(value) == 19 and value[4] == "-" and value[9] == "-" and value[14] == "-" and value[:4].isdigit():
        return value.upper()  # already in the canonical form (the usual case)
    found = _ORCID.search(value)
    if not found:
        return value.strip() or None
    digits = found.group(1).replace("-", "").replace(" ", "").upper()
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def link_source(ref_source: str | None, note: str | None) -> str | None:
    """A CommentsCorrections' reference with its Note after it, as MEDLINE text writes the
    two ("J Foo. 2009 Jun;49(3):253. Kornman, T [corrected to Korman, T]"): an erratum's
    note says what it corrects, and both formats then store the same text."""
    if ref_source and note:
        return f"{ref_source}. {note}"
    return ref_source or note


def pmcid_of_other_id(source: str | None, text: str | None) -> str | None:
    """The PMC id in an NLM OtherID ("PMC4380289", "PMC4688250 [Available on 12/22/16]"),
    else None. Files before 2017 name a record's PMC copy only there, not in PubmedData's
    ArticleIdList, and MEDLINE text gives it as PMC: without this the XML and MEDLINE
    readings of one record disagree."""
    if source != "NLM" or not text:
        return None
    found = _PMC_OTHER_ID.match(text)
    return found.group(1) if found else None
