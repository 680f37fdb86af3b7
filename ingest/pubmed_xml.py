"""PubMed XML, record by record, into ``Article`` objects.

One reader for everything NCBI serves as XML: efetch replies and the annual baseline and
daily update files (``PubmedArticleSet`` with ``PubmedArticle``, ``PubmedBookArticle`` and
``DeleteCitation``) and the old ``MedlineCitationSet`` files (``MedlineCitation`` at the
top level). Files run to hundreds of megabytes, so they are streamed: each record's
bytes are cut out of the document (ingest.slicing) and parsed on their own, which also
gives the raw XML the store keeps (a document in another encoding is re-encoded as UTF-8
first: ingest.transcoding); documents that cannot be cut so (an encoding Python does not
know, namespaces declared on the root) go through ``iterparse`` on the record tags, each
record freed once read. Either way memory stays flat whatever the file size.

Speed matters because ``cryokb import`` is benchmarked against a bare iterparse walk:
field extraction walks each element's children once and dispatches on the tag, rather
than asking ElementPath or XPath one question per field. An import goes further: with
``flat`` it reads records with the compiled walk (ingest._fastwalk), which mirrors the
one below over libxml2's nodes and leaves every unusual record to it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import BinaryIO

from lxml import etree

from ingest import safexml, slicing, transcoding
from ingest.fields import (
    RecordError,
    iso_date,
    link_source,
    normalise_orcid,
    pmcid_of_other_id,
    pmid_version,
    pub_date,
)
from ingest.model import (
    AbstractSection,
    Article,
    Author,
    Deletion,
    Journal,
    Link,
    MeshHeading,
    MeshQualifier,
    ParseProblem,
    PublicationType,
    canonical_pmid,
    linked_pmid,
)

log = logging.getLogger("cryokb")

try:  # the compiled field walk (setup.py); where it is not built, the Python walk reads every record
    from ingest._fastwalk import citation as _flat_citation
except (ImportError, ValueError) as err:  # ValueError: built against another lxml's C API
    log.debug("ingest._fastwalk not used: %s", err)
    _flat_citation = None

RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "MedlineCitation", "DeleteCitation")
RECORD_SETS = frozenset({"PubmedArticleSet", "MedlineCitationSet", "PubmedBookArticleSet"})

_POSITION_SUFFIX = re.compile(r", line \d+, column \d+$")
_TAG_LINE = re.compile(r"((?:in tag|tag mismatch:|Start Tag) \S+ line )(\d+)")

_PMID_PATHS = ("MedlineCitation/PMID", "BookDocument/PMID", "PMID")
# In the bytes of a record that does not parse: its PMID, where a reader looks first;
# libxml2's safety limits.
_ANOTHER_DOCUMENT = re.compile(rb"\s*(?:<\?xml\b|<!DOCTYPE\b|<PubmedArticleSet\b|<PubmedBookArticleSet\b|<MedlineCitationSet\b)")
# A record's own PMID is the first child of its citation; the PMIDs after it are the
# articles it links to (CommentsCorrections), which must not name it.
_RAW_PMID = re.compile(rb"<(?:MedlineCitation|BookDocument)(?:\s[^>]*)?>\s*<PMID(?:\s[^>]*)?>\s*(\d+)\s*</PMID")
_LIMIT = re.compile(r"Excessive depth|Resource limit exceeded|XML_PARSE_HUGE|[Hh]uge")

Record = Article | Deletion | ParseProblem


class XMLFileError(ValueError):
    """The file is not well-formed XML (or not PubMed XML); names the file and position."""

    def __init__(self, message: str, name: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.name = name
        self.line = line
        self.column = column


# --------------------------------------------------------------------------- reading


def iter_records(source: str | os.PathLike | BinaryIO, name: str | None = None, *,
                 flat: bool = False) -> Iterator[Record | tuple]:
    """Yield Article, Deletion and ParseProblem objects in file order.

    ``source`` is a path or a binary file object (already gunzipped); ``name`` labels
    errors and problems (defaults to the path or the file object's name). ``flat``: an
    article the compiled walk reads comes as the tuple kb.store.flatten_article makes
    of an Article (what an import's reader sends on); the others still as Articles.
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or os.fspath(source)
        with open(source, "rb") as stream:
            yield from _iter_stream(stream, name, flat)
    else:
        yield from _iter_stream(source, name or getattr(source, "name", None) or "<stream>", flat)


def _iter_stream(stream: BinaryIO, name: str, flat: bool) -> Iterator[Record | tuple]:
    head = safexml.checked_head(stream, name)
    codec = transcoding.codec_of(head)
    if codec is not None:  # a Latin-1 or UTF-16 file, say: cut as UTF-8 like any other
        head, stream = transcoding.as_utf8(head, stream, codec, name)
    while slicing.root_tag_unfinished(head) and len(head) < safexml.PROLOG_LIMIT:
        more = stream.read(slicing.BLOCK)
        if not more:
            break
        head += more
    start = slicing.record_start(head)
    if start is not None and start[0] in RECORD_SETS:
        yield from _iter_slices(head, stream, name, *start, flat=flat)
    else:  # an encoding Python does not know, namespaces on the root, or not a PubMed document at all
        yield from _iter_tree(safexml.PrefixedStream(head, stream), name, flat)


def _iter_slices(head: bytes, stream: BinaryIO, name: str, root: str, offset: int,
                 flat: bool) -> Iterator[Record | tuple]:
    """Records cut out of the document as bytes (ingest.slicing), each parsed on its own."""
    parser = etree.XMLParser(**safexml.PARSER_OPTIONS)
    root_line = 1 + head.count(b"\n", 0, head.rfind(b"<", 0, offset))  # where its start tag opens
    position = 0
    for cut in slicing.iter_pieces(head, stream, root, offset):
        if isinstance(cut, slicing.Unfinished):
            raise _unfinished(name, cut, parser)
        if not cut.tag:
            _check_gap(name, cut, parser, root, root_line)
            continue
        pending = [cut]
        while pending:
            piece = pending.pop(0)
            if slicing.is_stray(piece.tag, root):
                position += 1
                yield _stray_citation(name, piece.line, _named(_raw_pmid(piece.data), position))
                continue
            try:
                elem, error = etree.fromstring(piece.data, parser), None
            except etree.XMLSyntaxError as err:
                parts = _lost_end_parts(piece, root)
                if parts:  # its end tag lost: the cut took in the records after it too
                    pending[:0] = parts
                    continue
                elem, error = None, err
            if piece.tag != "DeleteCitation":
                position += 1
            if error is not None:
                yield _broken_record(name, error, piece, position)
            elif piece.tag == "DeleteCitation":
                yield _deletion(elem, name)
            else:
                yield _read_one(elem, piece.tag, name, position, raw=_unix_lines(piece.data), flat=flat)


def _unix_lines(data: bytes) -> bytes:
    """A record's bytes with its line ends as an XML parser reads them (CR LF and a lone
    CR as LF), so that the same file saved on Windows holds the same records."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


@lru_cache(maxsize=4)
def _record_starts(root: str) -> re.Pattern:
    """The start tags of records side by side in a set named ``root`` (group 2), and the
    comments, CDATA sections and PIs (group 1) in which one would be only text."""
    return re.compile(b"(" + slicing.HIDDEN + b")|" + slicing.sibling_starts(root).pattern, re.DOTALL)


def _lost_end_parts(piece: slicing.Piece, root: str) -> list[slicing.Piece] | None:
    """A piece that does not parse, cut before each record start tag in it when it holds
    more than one: a record whose end tag is lost, and the records (articles, books,
    deletions) the cut took in with it up to the next end tag of its element, each at its
    place in the document. None when it holds one record (broken on its own)."""
    starts = [found for found in _record_starts(root).finditer(piece.data) if found.group(1) is None]
    if len(starts) < 2:
        return None
    parts, line, column = [], piece.line, piece.column
    for found, end in zip(starts, [found.start() for found in starts[1:]] + [len(piece.data)]):
        data = piece.data[found.start():end]
        parts.append(slicing.Piece(found.group(2).decode(), data, line, column))
        line, column = slicing.moved(line, column, data)
    return parts


def _broken_record(name: str, err: etree.XMLSyntaxError, piece: slicing.Piece, position: int) -> ParseProblem:
    """A record whose own bytes do not parse (an unescaped "&", an unclosed tag, beyond the
    parser's safety limits): reported and skipped, as any unreadable record is; the records
    around it were cut apart from it and are read as usual."""
    error = _syntax_error(name, err, piece.line, piece.column)
    message = str(error).removeprefix(f"{name}: ")
    if _LIMIT.search(message):
        message = message.replace("not well-formed XML", "beyond the XML parser's safety limits", 1)
    if piece.tag == "DeleteCitation":
        return ParseProblem(name, f"DeleteCitation at line {piece.line}", f"{message}; nothing deleted")
    return ParseProblem(name, _named(_raw_pmid(piece.data), position), message)


def _stray_citation(name: str, line: int | None, where: str) -> ParseProblem:
    """A MedlineCitation at the top level of a set other than a MedlineCitationSet: the
    rest of a PubmedArticle whose start tag is lost. Read, it would be stored without its
    PubmedData (DOI, PMC id, entrez date) and replace a whole copy already stored, so it
    is reported and nothing of it is read."""
    return ParseProblem(name, where, f"<MedlineCitation> at line {line} is not inside a <PubmedArticle> "
                                     "(its start tag lost?); not read")


def _raw_pmid(data: bytes) -> str | None:
    """The PMID in the bytes of a record that does not parse, where one can be found."""
    found = _RAW_PMID.search(data)
    return found and canonical_pmid(found.group(1).decode())


def _iter_tree(stream: BinaryIO, name: str, flat: bool) -> Iterator[Record | tuple]:
    """Records read with iterparse, each freed once read (documents that cannot be cut)."""
    events = etree.iterparse(stream, events=("end",), tag=RECORD_TAGS, **safexml.PARSER_OPTIONS)
    position = 0
    checked = False
    try:
        for _, elem in events:
            if not checked:  # the prolog is parsed by the first event, and nothing is read yet
                safexml.refuse_declared_entities(elem, name)
                checked = True
            parent = elem.getparent()
            tag = elem.tag
            if parent is not None and _inside_record(parent):
                continue  # a PubmedArticle's MedlineCitation: read with it, at its end
            if tag == "DeleteCitation":
                record: Record | tuple = _deletion(elem, name)
            elif parent is not None and tag == "MedlineCitation" and _is_stray(elem):
                position += 1
                record = _stray_citation(name, elem.sourceline, _where(elem, position))
            else:
                position += 1
                record = _read_one(elem, tag, name, position, flat=flat)
            _release(elem, parent)
            yield record
    except etree.XMLSyntaxError as err:
        raise _syntax_error(name, err) from err
    root = events.root
    if position == 0 and root is not None and root.tag not in RECORD_SETS:
        raise XMLFileError(f"{name}: root element <{root.tag}> is not a PubMed record set", name)


def _inside_record(elem: etree._Element) -> bool:
    """Whether ``elem`` is a record or inside one; a record in an element of another kind
    around it (a wrapper of another program's) is read, not passed over without a word."""
    return elem.tag in RECORD_TAGS or any(above.tag in RECORD_TAGS for above in elem.iterancestors())


def _is_stray(citation: etree._Element) -> bool:
    """Whether a MedlineCitation in no record is in a PubMed set other than a
    MedlineCitationSet, where it is the rest of a PubmedArticle (slicing.is_stray)."""
    root = citation.getroottree().getroot()
    return root.tag in RECORD_SETS and slicing.is_stray("MedlineCitation", root.tag)


def _deletion(elem: etree._Element, name: str) -> Deletion | ParseProblem:
    """The PMIDs withdrawn; a PMID that is not a number withdraws nothing and is reported."""
    pmids = []
    for child in elem:
        if child.tag == "PMID":
            text = "".join(child.itertext()).strip()
            pmid = canonical_pmid(text)
            if pmid is None:
                return ParseProblem(name, "DeleteCitation", f"PMID {text!r} is not a number; nothing deleted")
            pmids.append(pmid)
    return Deletion(pmids)


def _syntax_error(name: str, err: etree.XMLSyntaxError, line: int = 1, column: int = 1) -> XMLFileError:
    """The error at its place in the document, given where the parsed bytes began there."""
    at_line, at_column = err.position if err.position else (None, None)
    message = " ".join(_POSITION_SUFFIX.sub("", err.msg).split())  # libxml2 quotes what it stopped at, newlines too
    if at_line is not None:
        at_column = at_column + column - 1 if at_line == 1 and at_column is not None else at_column
        at_line += line - 1
        # lxml names the line an unclosed tag opened on, counted from the parsed bytes
        message = _TAG_LINE.sub(lambda found: f"{found.group(1)}{int(found.group(2)) + line - 1}", message)
    return XMLFileError(f"{name}: not well-formed XML at line {at_line}, column {at_column}: {message}",
                        name, at_line, at_column)


def _unfinished(name: str, piece: slicing.Unfinished, parser: etree.XMLParser) -> XMLFileError:
    """The document stops inside a record (lxml says where) or before its root's end tag."""
    if piece.data:
        try:
            etree.fromstring(piece.data, parser)
        except etree.XMLSyntaxError as err:
            error = _syntax_error(name, err, piece.line, piece.column)
            pmid = _raw_pmid(piece.data)
            if pmid:  # the record cut short, named as a broken record is
                error = XMLFileError(f"{error}, inside the record of PMID {pmid}", name, error.line, error.column)
            return error
    why = piece.why or f"the document ends before </{piece.root}>"
    return XMLFileError(f"{name}: not well-formed XML at line {piece.line}, column {piece.column}: {why}",
                        name, piece.line, piece.column)


def _check_gap(name: str, piece: slicing.Piece, parser: etree.XMLParser, root: str, root_line: int) -> None:
    """Text between records must be well-formed XML (other elements are passed over);
    after the root's end tag nothing may follow."""
    if piece.tag == "":
        another = _ANOTHER_DOCUMENT.match(piece.data)
        hint = ("; another XML document follows (files joined into one?): import each file as it is, "
                "several at once if you like (cryokb import a.xml b.xml)") if another else ""
        raise XMLFileError(f"{name}: not well-formed XML at line {piece.line}, column {piece.column}: "
                           f"content after </{root}>{hint}", name, piece.line, piece.column)
    opening = f"<{root}>".encode()  # the set around it, so that lxml's messages name what the file has
    try:
        etree.fromstring(opening + piece.data + f"</{root}>".encode(), parser)
    except etree.XMLSyntaxError as err:
        error = _syntax_error(name, err, piece.line, piece.column - len(opening))
        # lxml names the line of the set put around the gap, which _syntax_error moved to the
        # gap's: the set's own line is the document's root's
        message = re.sub(rf"\b{root} line {piece.line}\b", f"{root} line {root_line}", str(error), count=1)
        raise XMLFileError(message, name, error.line, error.column) from err


def _release(elem: etree._Element, parent: etree._Element | None) -> None:
    """Free a record once read: its content, and every earlier sibling still attached."""
    elem.clear(keep_tail=True)
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _read_one(elem: etree._Element, tag: str, name: str, position: int,
              raw: bytes | None = None, flat: bool = False) -> Article | ParseProblem | tuple:
    """The record's Article; ``raw``, its bytes in the file when known, else written back from ``elem``.

    ``flat``: the flattened article where the compiled walk reads the record (iter_records).
    """
    if raw is None:
        raw = etree.tostring(elem, encoding="UTF-8", xml_declaration=False, with_tail=False)
    if flat and _flat_citation is not None:
        record = _flat_citation(elem, tag, raw)
        if record is not None:
            return record
    try:
        if tag == "PubmedArticle":
            article = _pubmed_article(elem)
        elif tag == "PubmedBookArticle":
            article = _book_article(elem)
        else:
            article = _medline_citation(elem)
        article.raw = raw
        return article
    except (RecordError, ValueError) as err:
        where = _where(elem, position)
        # debug only: the caller receives the ParseProblem and reports it itself
        log.debug("%s: %s: %s", name, where, err)
        return ParseProblem(name, where, str(err), raw=raw)


def _where(elem: etree._Element, position: int) -> str:
    """'PMID 123' when the record has a readable PMID (all of its text, as the walks read
    it: a comment inside splits .text), else 'record N'."""
    found = next((node for node in map(elem.find, _PMID_PATHS) if node is not None), None)
    return _named(canonical_pmid(text_of(found)), position)


def _named(pmid: str | None, position: int) -> str:
    """How a problem names its record: 'PMID 123' where its PMID could be read, else 'record N'."""
    return f"PMID {pmid}" if pmid else f"record {position}"


def article_from_xml(raw: bytes, name: str = "<raw>", *, flat: bool = False) -> Article | tuple:
    """Re-read one record from its ``raw`` bytes (as stored in the knowledge base).

    ``flat``: as an import reads it (iter_records with ``flat``), so that a record read
    again (kb.reparse) comes out as the import would store it today.
    """
    elem = safexml.parse_bytes(raw, name)
    if elem.tag not in RECORD_TAGS[:3]:
        raise RecordError(f"{name}: <{elem.tag}> is not a PubMed record")
    result = _read_one(elem, elem.tag, name, 1, raw=raw, flat=flat)
    if isinstance(result, ParseProblem):
        raise RecordError(str(result))
    return result


# --------------------------------------------------------------------------- text


def text_of(elem: etree._Element | None) -> str:
    """All text inside ``elem`` in document order, whitespace normalised.

    Inline markup (<i>, <sup>, MathML, ...) must never truncate a title or abstract, so
    we take every text node (itertext), not ``elem.text``.
    """
    if elem is None:
        return ""
    if len(elem):
        return squash("".join(elem.itertext()))
    text = elem.text
    return squash(text) if text else ""


def squash(text: str) -> str:
    """Normalise whitespace exactly as ``" ".join(text.split())`` would, but faster.

    Every whitespace character but the ASCII space is unprintable (str.isprintable),
    so printable text without a double space only needs stripping; anything else (line
    breaks, tabs, no-break spaces) goes through split/join. Most names, affiliations
    and abstracts take the fast path, which matters on a 30,000-record file.
    """
    if text.isprintable() and "  " not in text:
        return text.strip()
    return " ".join(text.split())


def _plain(elem: etree._Element) -> str | None:
    """A short field's text (a volume, a DOI, a date's year), stripped; None if empty.

    All of it, as for titles: a comment or markup inside ("4<!-- -->7") must not leave
    the part before it ("4") standing in for the value.
    """
    text = "".join(elem.itertext()) if len(elem) else elem.text
    if text is None:
        return None
    text = text.strip()
    return text or None


# --------------------------------------------------------------------------- records


def _pubmed_article(elem: etree._Element) -> Article:
    citation = data = None
    for child in elem:
        if child.tag == "MedlineCitation":
            if citation is not None:
                raise _two_records(elem)
            citation = child
        elif child.tag == "PubmedData":
            if data is not None:
                raise _two_records(elem)
            data = child
    if citation is None:
        raise RecordError("PubmedArticle has no MedlineCitation")
    article, state = _citation(citation)
    if data is not None:
        _pubmed_data(article, data)
    _finish(article, state)  # after PubmedData: its ArticleId DOI comes before ELocationID's, as MEDLINE's AID before LID
    return article


def _two_records(elem: etree._Element) -> RecordError:
    """Two citations (or two PubmedData) in one PubmedArticle: one record's end tag and the
    next one's start tag lost, which leaves a document that parses. Read, the second
    citation's PMID took the first's data and the first record was lost without a word."""
    pmids = ", ".join(filter(None, (canonical_pmid(text_of(c.find("PMID")))
                                    for c in elem.iterfind("MedlineCitation"))))
    return RecordError(f"PubmedArticle holds two records{f' (PMIDs {pmids})' if pmids else ''}: the end tag of one "
                       "and the start tag of the next lost?; neither read")


def _medline_citation(elem: etree._Element) -> Article:
    article, state = _citation(elem)
    _finish(article, state)
    return article


def _citation(elem: etree._Element) -> tuple[Article, "_State"]:
    """A MedlineCitation's article, and what settles only once the whole record is read."""
    article = Article(pmid="", status=elem.get("Status"))
    state = _State()
    has_article = False
    for child in elem:
        tag = child.tag
        if tag == "PMID":
            _set_pmid(article, child)
        elif tag == "Article":
            _article_element(article, child, state)
            has_article = True
        elif tag == "DateCompleted":
            article.completed_date = _iso_date(child)
        elif tag == "DateRevised":
            article.revised_date = _iso_date(child)
        elif tag == "MedlineJournalInfo":
            _journal_info(article.journal, child)
        elif tag == "MeshHeadingList":
            article.mesh_headings = [_mesh_heading(h) for h in child if h.tag == "MeshHeading"]
        elif tag == "KeywordList":
            article.keywords.extend(k for k in (text_of(kw) for kw in child if kw.tag == "Keyword") if k)
        elif tag == "CommentsCorrectionsList":
            article.links = [_link(c) for c in child if c.tag == "CommentsCorrections"]
        elif tag == "OtherID" and state.other_pmcid is None:
            state.other_pmcid = pmcid_of_other_id(child.get("Source"), _plain(child))
    if article.pmid and not has_article:  # a stub, stored, would replace the whole record of its PMID
        raise RecordError("no <Article> element, which PubMed's DTD requires in a MedlineCitation")
    return article, state


class _State:
    """What a record says that only settles once all of it is read (fallbacks)."""

    __slots__ = ("vernacular_title", "elocation_doi", "article_year", "article_level_affiliation", "other_pmcid")

    def __init__(self) -> None:
        self.vernacular_title = ""
        self.elocation_doi = None
        self.article_year = None
        self.article_level_affiliation = None
        self.other_pmcid = None  # an NLM OtherID's, where PubmedData names none


def _set_pmid(article: Article, elem: etree._Element) -> None:
    text = "".join(elem.itertext()).strip()  # all of it: a comment inside must not cut "20<!-- -->04" to "20"
    pmid = canonical_pmid(text)
    if pmid is None:
        raise RecordError(f"PMID {text!r} is not a number")
    if article.pmid and article.pmid != pmid:  # read under the last, it overwrote that article
        raise RecordError(f"two PMIDs, {article.pmid} and {pmid}")
    article.pmid = pmid
    version = elem.get("Version")
    if version:
        article.version = pmid_version(version)


def _article_element(article: Article, elem: etree._Element, state: _State) -> None:
    for child in elem:
        _article_child(article, child, state)


def _article_child(article: Article, child: etree._Element, state: _State) -> None:
    """One child of <Article> (or of <BookDocument>, which shares these elements)."""
    tag = child.tag
    if tag == "Journal":
        _journal(article, child)
    elif tag == "ArticleTitle":
        article.title = text_of(child)
    elif tag == "Abstract":
        article.abstract_sections = _abstract(child)
    elif tag == "AuthorList":
        article.authors = _authors(child)
    elif tag == "Pagination":
        article.pages = _pages(child)
    elif tag == "ELocationID":
        if child.get("EIdType") == "doi" and child.get("ValidYN") != "N" and state.elocation_doi is None:
            state.elocation_doi = _plain(child)
    elif tag == "Language":
        lang = _plain(child)
        if lang:
            article.languages.append(lang)
    elif tag == "PublicationTypeList":
        article.publication_types = [
            PublicationType(text_of(pt), pt.get("UI")) for pt in child if pt.tag == "PublicationType"
        ]
    elif tag == "ArticleDate":
        if state.article_year is None:
            state.article_year = int(_iso_date(child)[:4])
    elif tag == "VernacularTitle":
        state.vernacular_title = text_of(child)
    elif tag == "Affiliation":  # pre-2014 DTDs: one affiliation for the article
        state.article_level_affiliation = text_of(child) or None


def _journal(article: Article, elem: etree._Element) -> None:
    journal = article.journal
    for child in elem:
        tag = child.tag
        if tag == "ISSN":
            journal.issn = _plain(child)
        elif tag == "Title":
            journal.title = text_of(child) or None
        elif tag == "ISOAbbreviation":
            journal.iso_abbreviation = _plain(child)
        elif tag == "JournalIssue":
            for part in child:
                if part.tag == "Volume":
                    article.volume = _plain(part)
                elif part.tag == "Issue":
                    article.issue = _plain(part)
                elif part.tag == "PubDate":
                    _pub_date(article, part)


def _journal_info(journal: Journal, elem: etree._Element) -> None:
    for child in elem:
        tag = child.tag
        if tag == "NlmUniqueID":
            journal.nlm_unique_id = _plain(child)
        elif tag == "ISSNLinking":
            journal.issn_linking = _plain(child)
        elif tag == "MedlineTA" and journal.medline_ta is None:
            journal.medline_ta = _plain(child)


def _pub_date(article: Article, elem: etree._Element) -> None:
    article.pub_date, article.pub_year = pub_date({child.tag: _plain(child) for child in elem})


def _iso_date(elem: etree._Element) -> str:
    """ISO date from Year/Month/Day children ("YYYY-MM-DD"; "YYYY-MM" or "YYYY" if partial).

    A date that does not exist (month 13, "20l9") is a broken record: RecordError.
    """
    year = month = day = None
    for child in elem:
        tag = child.tag
        if tag == "Year":
            year = _plain(child) or ""
        elif tag == "Month":
            month = _plain(child) or ""
        elif tag == "Day":
            day = _plain(child) or ""
    try:
        return iso_date(year, month, day)
    except (ValueError, KeyError) as err:
        raise RecordError(
            f"{elem.tag} is not a valid date (Year {year!r}, Month {month!r}, Day {day!r})"
        ) from err


def _pages(elem: etree._Element) -> str | None:
    medline = start = end = None
    for child in elem:
        if child.tag == "MedlinePgn":
            medline = _plain(child)
        elif child.tag == "StartPage":
            start = _plain(child)
        elif child.tag == "EndPage":
            end = _plain(child)
    if medline:
        return medline
    if start and end:
        return f"{start}-{end}"
    return start or end


def _abstract(elem: etree._Element) -> list[AbstractSection]:
    sections = []
    for child in elem:
        if child.tag == "AbstractText":
            text = text_of(child)
            label = child.get("Label")
            if text or label:
                sections.append(AbstractSection(text, label or None, child.get("NlmCategory")))
    return sections


def _authors(elem: etree._Element) -> list[Author]:
    return [_author(a) for a in elem if a.tag == "Author" and a.get("ValidYN") != "N"]


def _author(elem: etree._Element) -> Author:
    # The hottest function of the parser (six or seven authors a record, each with an
    # affiliation): one pass over the children, text_of inlined for leaf elements.
    last = fore = initials = collective = orcid = None
    affiliations = []
    for child in elem:
        tag = child.tag
        if tag == "AffiliationInfo":
            for aff in child:
                if aff.tag == "Affiliation":
                    text = squash("".join(aff.itertext()) if len(aff) else aff.text or "")
                    if text:
                        affiliations.append(text)
            continue
        if tag == "Identifier":
            if child.get("Source") == "ORCID":
                orcid = normalise_orcid(_plain(child)) or orcid  # an empty second one keeps the first
            continue
        text = squash("".join(child.itertext()) if len(child) else child.text or "") or None
        if tag == "LastName":
            last = text
        elif tag == "ForeName" or tag == "FirstName":
            fore = text
        elif tag == "Initials":
            initials = text
        elif tag == "CollectiveName":
            collective = text
        elif tag == "Affiliation" and text:
            affiliations.append(text)
    return Author(last, fore, initials, collective, affiliations, orcid)


def _mesh_heading(elem: etree._Element) -> MeshHeading:
    heading = None
    qualifiers = []
    for child in elem:
        if child.tag == "DescriptorName":
            heading = MeshHeading(text_of(child), child.get("UI"), child.get("MajorTopicYN") == "Y")
        elif child.tag == "QualifierName":
            qualifiers.append(MeshQualifier(text_of(child), child.get("UI"), child.get("MajorTopicYN") == "Y"))
    if heading is None:
        raise RecordError("MeshHeading without DescriptorName")
    heading.qualifiers = qualifiers
    return heading


def _link(elem: etree._Element) -> Link:
    link = Link(elem.get("RefType") or "")
    note = None
    for child in elem:
        if child.tag == "PMID":
            link.pmid = linked_pmid(_plain(child))
        elif child.tag == "RefSource":
            link.source = text_of(child) or None
        elif child.tag == "Note":
            note = text_of(child) or None
    link.source = link_source(link.source, note)
    return link


def _pubmed_data(article: Article, elem: etree._Element) -> None:
    for child in elem:
        if child.tag == "History":
            article.entrez_date = _entrez_date(child)
        elif child.tag == "ArticleIdList":
            _article_ids(article, child)


def _entrez_date(history: etree._Element) -> str | None:
    """PubStatus "entrez" (MEDLINE's CRDT), else "pubmed" (EDAT)."""
    pubmed = None
    for date in history:
        status = date.get("PubStatus")
        if status == "entrez":
            return _iso_date(date)
        if status == "pubmed" and pubmed is None:
            pubmed = date
    return _iso_date(pubmed) if pubmed is not None else None


def _article_ids(article: Article, elem: etree._Element) -> None:
    for child in elem:
        kind = child.get("IdType")
        if kind == "doi" and article.doi is None:
            article.doi = _plain(child)
        elif kind == "pmc" and article.pmcid is None:
            article.pmcid = _plain(child)


def _finish(article: Article, state: _State) -> None:
    if not article.pmid:
        raise RecordError("record has no PMID")
    if not article.title:
        article.title = state.vernacular_title
    if article.pub_year is None and state.article_year is not None:
        article.pub_year = state.article_year
    if state.elocation_doi and article.doi is None:
        article.doi = state.elocation_doi
    if article.pmcid is None:
        article.pmcid = state.other_pmcid
    if state.article_level_affiliation and article.authors:
        if not any(a.affiliations for a in article.authors):
            article.authors[0].affiliations.append(state.article_level_affiliation)


# --------------------------------------------------------------------------- books


def _book_article(elem: etree._Element) -> Article:
    document = data = None
    for child in elem:
        if child.tag == "BookDocument":
            document = child
        elif child.tag == "PubmedBookData":
            data = child
    if document is None:
        raise RecordError("PubmedBookArticle has no BookDocument")
    article = Article(pmid="", is_book=True)
    state = _State()
    book_title = ""
    author_lists: list[etree._Element] = []
    for child in document:
        tag = child.tag
        if tag == "PMID":
            _set_pmid(article, child)
        elif tag == "Book":
            book_title = _book(article, child, state, author_lists)
        elif tag in ("ArticleTitle", "VernacularTitle", "Abstract", "Pagination", "Language", "ELocationID"):
            _article_child(article, child, state)
        elif tag == "AuthorList":
            author_lists.insert(0, child)
        elif tag == "PublicationType":
            article.publication_types.append(PublicationType(text_of(child), child.get("UI")))
        elif tag == "KeywordList":
            article.keywords.extend(k for k in (text_of(kw) for kw in child if kw.tag == "Keyword") if k)
        elif tag == "DateRevised":
            article.revised_date = _iso_date(child)
        elif tag == "ArticleIdList":
            _article_ids(article, child)
    if not article.title:
        article.title = book_title
    article.authors = _book_authors(author_lists)
    if data is not None:
        _pubmed_data(article, data)
    _finish(article, state)
    return article


def _book(article: Article, elem: etree._Element, state: _State, author_lists: list) -> str:
    title = ""
    for child in elem:
        tag = child.tag
        if tag == "BookTitle":
            title = text_of(child)
        elif tag == "PubDate":
            _pub_date(article, child)
        elif tag == "Volume":
            article.volume = _plain(child)
        elif tag == "AuthorList":
            author_lists.append(child)
        elif (tag == "ELocationID" and child.get("EIdType") == "doi" and child.get("ValidYN") != "N"
              and state.elocation_doi is None):
            state.elocation_doi = _plain(child)
    return title


def _book_authors(author_lists: list[etree._Element]) -> list[Author]:
    """The chapter's authors, else the book's authors, else its editors."""
    ranked = sorted(author_lists, key=lambda al: al.get("Type") == "editors")
    for author_list in ranked:
        authors = _authors(author_list)
        if authors:
            return authors
    return []
