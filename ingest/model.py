"""The article model every part of cryokb shares.

The parsers (PubMed XML, MEDLINE text) produce these objects, the store writes them,
and the extractors read ``Article.text`` from them. Keeping one model means the XML and
MEDLINE paths can be compared field by field, and the knowledge base and
``cryokb extract`` read exactly the same text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class AbstractSection:
    text: str
    label: str | None = None
    nlm_category: str | None = None


@dataclass
class Author:
    last_name: str | None = None
    fore_name: str | None = None
    initials: str | None = None
    collective_name: str | None = None
    affiliations: list[str] = field(default_factory=list)
    orcid: str | None = None

    @property
    def display_name(self) -> str:
        if self.collective_name:
            return self.collective_name
        return " ".join(p for p in (self.last_name, self.initials or self.fore_name) if p)


@dataclass
class Journal:
    title: str | None = None
    iso_abbreviation: str | None = None
    issn: str | None = None
    issn_linking: str | None = None
    nlm_unique_id: str | None = None
    medline_ta: str | None = None  # MedlineJournalInfo's MedlineTA, MEDLINE's TA: NLM's own abbreviation

    @property
    def key(self) -> str | None:
        """A stable identifier: NLM's unique id, else an ISSN, else the title."""
        return self.nlm_unique_id or self.issn_linking or self.issn or self.title


@dataclass
class MeshQualifier:
    name: str
    ui: str | None = None
    major: bool = False


@dataclass
class MeshHeading:
    descriptor: str
    ui: str | None = None
    major: bool = False
    qualifiers: list[MeshQualifier] = field(default_factory=list)


@dataclass
class PublicationType:
    name: str
    ui: str | None = None


@dataclass
class Link:
    """A CommentsCorrections entry: ``ref_type`` such as RetractionIn, ErratumIn, CommentOn."""

    ref_type: str
    pmid: str | None = None
    source: str | None = None


RETRACTION_TYPES = frozenset({"RetractionIn", "RetractionOf"})


@dataclass
class Article:
    pmid: str
    version: int = 1
    title: str = ""
    abstract_sections: list[AbstractSection] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    journal: Journal = field(default_factory=Journal)
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    pub_date: str | None = None  # as MEDLINE writes it: "2019 Jan-Feb", "Winter 2018", "2020 Mar 15"
    pub_year: int | None = None
    entrez_date: str | None = None  # ISO YYYY-MM-DD
    revised_date: str | None = None  # ISO YYYY-MM-DD
    completed_date: str | None = None  # ISO YYYY-MM-DD
    languages: list[str] = field(default_factory=list)
    publication_types: list[PublicationType] = field(default_factory=list)
    mesh_headings: list[MeshHeading] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    doi: str | None = None
    pmcid: str | None = None
    links: list[Link] = field(default_factory=list)
    status: str | None = None  # MedlineCitation/@Status, e.g. MEDLINE, PubMed-not-MEDLINE
    is_book: bool = False
    source_format: str = "xml"  # "xml" or "medline"
    raw: bytes | None = None  # the record exactly as read, for provenance and re-parsing

    @property
    def abstract(self) -> str:
        """Every abstract section's text, in order, one per line (labels left out)."""
        return "\n".join(s.text for s in self.abstract_sections if s.text)

    @property
    def text(self) -> str:
        """What the extractors read: the title, a blank line, then the abstract.

        Mention offsets in evidence records are offsets into this string.
        """
        if self.abstract:
            return f"{self.title}\n\n{self.abstract}"
        return self.title

    @property
    def retracted(self) -> bool:
        """Retracted: a RetractionIn link, or the publication type 'Retracted Publication'."""
        return any(link.ref_type == "RetractionIn" for link in self.links) or any(
            pt.name == "Retracted Publication" for pt in self.publication_types
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("raw")
        return data


@dataclass
class Deletion:
    """A DeleteCitation block: these PMIDs are withdrawn from PubMed."""

    pmids: list[str]


@dataclass
class ParseProblem:
    """A record that could not be read; the rest of the file still is.

    ``where`` names it for a person: "PMID 12345678" or "record 17". ``raw``: the
    record's bytes, where it was read from a PubMed XML record that parsed: a harvest
    tells one record whose PMID cannot be read from another by them (ingest.harvest); and
    a MEDLINE record's text, whose SO line tells whether the record before it was cut
    short (ingest.medline.unless_cut_short).
    """

    source: str
    where: str
    message: str
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.message}"


@dataclass
class SaveCounts:
    """What a store did with the records it was given; summed over the batches of a run.

    Here rather than in kb.store so that the harvester (ingest) can add them up without
    importing the store.
    """

    new: int = 0
    revised: int = 0
    unchanged: int = 0
    deleted: int = 0
    problems: int = 0

    def add(self, other: "SaveCounts") -> "SaveCounts":
        for name in ("new", "revised", "unchanged", "deleted", "problems"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    @property
    def stored(self) -> int:
        return self.new + self.revised

    def as_dict(self) -> dict:
        return asdict(self)


def ended_by(exc: BaseException) -> str:
    """Why a run ended, as its harvest_runs row and the CLI say it: the error's message,
    "interrupted (Ctrl-C)" for a bare KeyboardInterrupt, else the error's type."""
    if str(exc):
        return str(exc)
    return "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__


def is_pmid(text: str) -> bool:
    """A PMID is ASCII digits only: str.isdigit also takes "12²" and Arabic-Indic digits."""
    return text.isascii() and text.isdigit()


def linked_pmid(text: str | None) -> str | None:
    """A PMID a record links to (a comment, an erratum), as canonical_pmid gives it where it
    is one, else as written."""
    return text and (canonical_pmid(text) or text)


def canonical_pmid(text: str) -> str | None:
    """The PMID ``text`` (stripped) names, without leading zeros, or None if it names none.

    NCBI writes none, but a file that went through a spreadsheet may: "080000001" is
    PMID 80000001, and read as written it made a second article of one citation.
    """
    text = text.strip()
    if not is_pmid(text):
        return None
    return text.lstrip("0") or None
