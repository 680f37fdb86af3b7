# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The field walk of ingest.pubmed_xml over libxml2's nodes, giving a record as the
flattened article an import builds its rows from (kb.store.FLAT_FIELDS).

Why: an import reads its file on one core and writes on the other, and the reader was
the slower half. Most of its time went to lxml's Python API: an element proxy for every
child, a new string for every tag compared. Here the walk reads names, attributes and
text straight from the tree lxml parsed (through lxml's public C API), and builds the
tuples the rows are made of, with no Article objects in between.

It reads ordinary records only. Anything else returns None and the caller reads the
record with the Python walk, which holds the one copy of every rule for odd records and
of every error message: a record it would refuse (no PMID, a date that does not exist),
an entity reference or other unusual node in text, a book. What the elements' text
means (dates, ORCIDs) comes from ingest.fields, shared with the Python walk, but for one
rule kept twice: a date written in digits is checked here (_iso_date, _days_in: the
Gregorian calendar, as ingest.fields.iso_date checks it with datetime). Tests check that
both walks give the same article for every record they read, dates valid and not among them.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport strcmp, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes.tree cimport (
    XML_CDATA_SECTION_NODE,
    XML_COMMENT_NODE,
    XML_ELEMENT_NODE,
    XML_PI_NODE,
    XML_TEXT_NODE,
    xmlAttr,
    xmlDoc,
    xmlDtd,
    xmlNode,
)

from ingest.fields import iso_date, link_source, normalise_orcid, pmcid_of_other_id, pmid_version, pub_date
from ingest.model import canonical_pmid, linked_pmid

cetree.import_lxml__etree()


class Unusual(Exception):
    """The record holds something this walk leaves to the Python one."""


def citation(elem, str tag, bytes raw):
    """The flattened article of a PubmedArticle or MedlineCitation element, or None for
    a record the Python walk must read."""
    cdef xmlNode* node = (<cetree._Element?>elem)._c_node
    cdef _Record record = _Record()
    if _declares_attributes(node.doc):
        return None  # lxml's get() gives the defaults a DTD declares; this walk reads only what is written
    try:
        if tag == "PubmedArticle":
            _pubmed_article(record, node)
        elif tag == "MedlineCitation":
            _medline_citation(record, node)
        else:
            return None
        return record.flat(raw)
    except (Unusual, ValueError, KeyError):
        return None


cdef class _Record:
    """A record's values as the walk finds them; flat() puts them in FLAT_FIELDS order."""

    cdef object pmid, title, sections, authors, volume, issue, pages, pub_date, pub_year
    cdef object entrez_date, revised_date, completed_date, languages, publication_types
    cdef object mesh, keywords, doi, pmcid, links, status
    cdef object journal_title, iso_abbreviation, issn, issn_linking, nlm_unique_id, medline_ta
    cdef object version
    # what only settles once all of the record is read (ingest.pubmed_xml._State)
    cdef object vernacular_title, elocation_doi, article_year, article_affiliation, other_pmcid

    def __cinit__(self):
        self.pmid = ""
        self.version = 1
        self.title = ""
        self.sections = []
        self.authors = []
        self.languages = []
        self.publication_types = []
        self.mesh = []
        self.keywords = []
        self.links = []
        self.vernacular_title = ""

    cdef tuple flat(self, bytes raw):
        if not self.pmid:
            raise Unusual()
        if not self.title:
            self.title = self.vernacular_title
        if self.pub_year is None and self.article_year is not None:
            self.pub_year = self.article_year
        if self.elocation_doi and self.doi is None:
            self.doi = self.elocation_doi
        if self.pmcid is None:
            self.pmcid = self.other_pmcid
        if self.article_affiliation and self.authors:
            if not any(author[4] for author in self.authors):
                self.authors[0][4].append(self.article_affiliation)
        return (
            self.pmid, self.version, self.title, self.sections, self.authors,
            (self.journal_title, self.iso_abbreviation, self.issn, self.issn_linking, self.nlm_unique_id,
             self.medline_ta),
            self.volume, self.issue, self.pages, self.pub_date, self.pub_year, self.entrez_date,
            self.revised_date, self.completed_date, self.languages, self.publication_types, self.mesh,
            self.keywords, self.doi, self.pmcid, self.links, self.status, False, "xml", raw, None,
        )


# --------------------------------------------------------------------------- nodes


cdef bint _declares_attributes(xmlDoc* doc) noexcept:
    """Whether the document's DTD declares attributes (a DOCTYPE's internal subset with
    <!ATTLIST>, read through iterparse): their defaults count for elem.get()."""
    if doc is NULL:
        return False
    return _has_attributes(doc.intSubset) or _has_attributes(doc.extSubset)


cdef inline bint _has_attributes(xmlDtd* dtd) noexcept:
    return dtd is not NULL and dtd.attributes is not NULL


cdef inline bint _is(xmlNode* node, const char* name) noexcept:
    """Whether an element (in no namespace: _element sees to that) has this name."""
    return strcmp(<const char*>node.name, name) == 0


cdef inline xmlNode* _element(xmlNode* node) except? NULL:
    """``node`` or the first element after it among its siblings; NULL if none.

    An element in a namespace is left to the Python walk: its tag there is "{uri}name",
    which some of its loops compare and others do not.
    """
    while node is not NULL and node.type != XML_ELEMENT_NODE:
        node = node.next
    if node is not NULL and node.ns is not NULL:
        raise Unusual()
    return node


cdef const char* _attribute_value(xmlNode* node, const char* name) except? NULL:
    """The UTF-8 value of an attribute in no namespace, NULL if absent; Unusual for a value
    libxml2 keeps as more than one text node."""
    cdef xmlAttr* attribute = node.properties
    cdef xmlNode* text
    while attribute is not NULL:
        if attribute.ns is NULL and strcmp(<const char*>attribute.name, name) == 0:
            text = attribute.children
            if text is NULL:
                return ""
            if text.next is NULL and text.type == XML_TEXT_NODE:
                return _content(text)
            raise Unusual()
        attribute = attribute.next
    return NULL


cdef object _attribute(xmlNode* node, const char* name):
    """``elem.get(name)``: an attribute in no namespace, None if absent."""
    cdef const char* value = _attribute_value(node, name)
    return None if value is NULL else _decoded(value)


cdef bint _attribute_is(xmlNode* node, const char* name, const char* value) except -1:
    """``elem.get(name) == value``, compared without making a str of the attribute."""
    cdef const char* found = _attribute_value(node, name)
    return found is not NULL and strcmp(found, value) == 0


cdef inline str _decoded(const char* text):
    return PyUnicode_DecodeUTF8(text, strlen(text), NULL)


cdef inline const char* _content(xmlNode* node) noexcept:
    """A text node's UTF-8 text ("" for an empty CDATA section, which may hold none)."""
    if node.content is NULL:
        return b""
    return <const char*>node.content


# --------------------------------------------------------------------------- text


cdef object _only_text(xmlNode* node):
    """The text of an element that holds nothing but text, None if it holds none. Anything
    else inside (markup, a comment) is Unusual: the Python walk reads all of its text."""
    cdef xmlNode* child = node.children
    if child is NULL:
        return None
    if child.type != XML_TEXT_NODE and child.type != XML_CDATA_SECTION_NODE:
        raise Unusual()
    if child.next is NULL:
        return _decoded(_content(child))
    cdef list parts = []
    while child is not NULL and (child.type == XML_TEXT_NODE or child.type == XML_CDATA_SECTION_NODE):
        parts.append(<bytes>_content(child))
        child = child.next
    if child is not NULL:
        raise Unusual()
    return b"".join(parts).decode("utf-8")


cdef object _plain(xmlNode* node):
    """``ingest.pubmed_xml._plain``: the text stripped, None if empty."""
    cdef object text = _only_text(node)
    if text is None:
        return None
    return text.strip() or None


cdef int _gather(xmlNode* node, list parts) except -1:
    """Append every text node under ``node``, in document order, as itertext() reads them
    (comments and processing instructions left out)."""
    cdef xmlNode* child = node.children
    while child is not NULL:
        if child.type == XML_TEXT_NODE or child.type == XML_CDATA_SECTION_NODE:
            parts.append(<bytes>_content(child))
        elif child.type == XML_ELEMENT_NODE:
            _gather(child, parts)
        elif child.type != XML_COMMENT_NODE and child.type != XML_PI_NODE:
            raise Unusual()  # an entity reference: lxml's itertext decides
        child = child.next
    return 0


cdef bytes _all_text(xmlNode* node):
    """All text inside ``node``, unnormalised, as UTF-8."""
    cdef xmlNode* child = node.children
    if child is NULL:
        return b""
    if child.next is NULL and (child.type == XML_TEXT_NODE or child.type == XML_CDATA_SECTION_NODE):
        return <bytes>_content(child)
    cdef list parts = []
    _gather(node, parts)
    return b"".join(parts)


cdef str _text_of(xmlNode* node):
    """``ingest.pubmed_xml.text_of``: all text inside, whitespace normalised."""
    cdef xmlNode* child = node.children
    cdef const char* text
    if child is not NULL and child.next is NULL and (
            child.type == XML_TEXT_NODE or child.type == XML_CDATA_SECTION_NODE):
        text = _content(child)  # the usual leaf: its one text node, read in place
        return _squashed(<const unsigned char*>text, strlen(text))
    cdef bytes data = _all_text(node)
    return _squashed(data, len(data))


def squash(bytes data):
    """The text of UTF-8 ``data`` as ingest.pubmed_xml.squash normalises it (for tests)."""
    return _squashed(data, len(data))


cdef str _squashed(const unsigned char* text, Py_ssize_t size):
    """``" ".join(text.split())`` of the UTF-8 text.

    Text whose only whitespace is single ASCII spaces (most names, titles and abstracts)
    is only trimmed and decoded; the rest goes through split and join. The whitespace
    str.split knows: ASCII 0x09-0x0D, 0x1C-0x20, and U+0085, U+00A0, U+1680,
    U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 (tests check the list).
    """
    cdef Py_ssize_t i = 0, start = 0, end = size
    cdef unsigned char c
    cdef bint space = False
    while i < size:
        c = text[i]
        if c == 0x20:
            if space:
                return _split_and_joined(text, size)
            space = True
        else:
            space = False
            if c < 0x20 or (c >= 0x80 and _wide_space(text, i, size)):
                return _split_and_joined(text, size)
        i += 1
    while start < end and text[start] == 0x20:
        start += 1
    while end > start and text[end - 1] == 0x20:
        end -= 1
    return PyUnicode_DecodeUTF8(<const char*>text + start, end - start, NULL)


cdef inline bint _wide_space(const unsigned char* text, Py_ssize_t i, Py_ssize_t size) noexcept:
    """Whether a whitespace character other than ASCII's starts at byte ``i``."""
    cdef unsigned char c = text[i], b1 = text[i + 1] if i + 1 < size else 0
    cdef unsigned char b2 = text[i + 2] if i + 2 < size else 0
    if c == 0xC2:
        return b1 == 0x85 or b1 == 0xA0
    if c == 0xE1:
        return b1 == 0x9A and b2 == 0x80
    if c == 0xE2:
        return (b1 == 0x80 and (0x80 <= b2 <= 0x8A or b2 == 0xA8 or b2 == 0xA9 or b2 == 0xAF)) or (
            b1 == 0x81 and b2 == 0x9F)
    if c == 0xE3:
        return b1 == 0x80 and b2 == 0x80
    return False


cdef str _split_and_joined(const unsigned char* text, Py_ssize_t size):
    return " ".join(PyUnicode_DecodeUTF8(<const char*>text, size, NULL).split())


# --------------------------------------------------------------------------- records


cdef int _pubmed_article(_Record record, xmlNode* node) except -1:
    cdef xmlNode* citation = NULL
    cdef xmlNode* data = NULL
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "MedlineCitation"):
            if citation is not NULL:
                raise Unusual()  # two records run together: the Python walk says so
            citation = child
        elif _is(child, "PubmedData"):
            if data is not NULL:
                raise Unusual()
            data = child
        child = _element(child.next)
    if citation is NULL:
        raise Unusual()
    _medline_citation(record, citation)
    if data is not NULL:
        _pubmed_data(record, data)
    return 0


cdef int _medline_citation(_Record record, xmlNode* node) except -1:
    record.status = _attribute(node, "Status")
    cdef xmlNode* child = _element(node.children)
    cdef xmlNode* item
    cdef bint has_article = False
    while child is not NULL:
        if _is(child, "PMID"):
            _set_pmid(record, child)
        elif _is(child, "Article"):
            has_article = True
            item = _element(child.children)
            while item is not NULL:
                _article_child(record, item)
                item = _element(item.next)
        elif _is(child, "DateCompleted"):
            record.completed_date = _iso_date(child)
        elif _is(child, "DateRevised"):
            record.revised_date = _iso_date(child)
        elif _is(child, "MedlineJournalInfo"):
            _journal_info(record, child)
        elif _is(child, "MeshHeadingList"):
            record.mesh = _mesh_headings(child)
        elif _is(child, "KeywordList"):
            _keywords(record, child)
        elif _is(child, "CommentsCorrectionsList"):
            record.links = _links(child)
        elif _is(child, "OtherID"):
            if record.other_pmcid is None:
                record.other_pmcid = pmcid_of_other_id(_attribute(child, "Source"), _plain(child))
        child = _element(child.next)
    if not has_article:
        raise Unusual()  # the Python walk says why
    return 0


cdef int _set_pmid(_Record record, xmlNode* node) except -1:
    pmid = canonical_pmid(_all_text(node).decode("utf-8"))
    if pmid is None or (record.pmid and record.pmid != pmid):
        raise Unusual()  # the Python walk says why
    record.pmid = pmid
    version = _attribute(node, "Version")
    if version:
        record.version = pmid_version(version)  # a RecordError: the Python walk says why
    return 0


cdef int _article_child(_Record record, xmlNode* child) except -1:
    """One child of <Article> (ingest.pubmed_xml._article_child)."""
    if _is(child, "Journal"):
        _journal(record, child)
    elif _is(child, "ArticleTitle"):
        record.title = _text_of(child)
    elif _is(child, "Abstract"):
        record.sections = _abstract(child)
    elif _is(child, "AuthorList"):
        record.authors = _authors(child)
    elif _is(child, "Pagination"):
        record.pages = _pages(child)
    elif _is(child, "ELocationID"):
        if (record.elocation_doi is None and _attribute_is(child, "EIdType", "doi")
                and not _attribute_is(child, "ValidYN", "N")):
            record.elocation_doi = _plain(child)
    elif _is(child, "Language"):
        language = _plain(child)
        if language:
            record.languages.append(language)
    elif _is(child, "PublicationTypeList"):
        record.publication_types = _publication_types(child)
    elif _is(child, "ArticleDate"):
        if record.article_year is None:
            record.article_year = int(_iso_date(child)[:4])
    elif _is(child, "VernacularTitle"):
        record.vernacular_title = _text_of(child)
    elif _is(child, "Affiliation"):
        record.article_affiliation = _text_of(child) or None
    return 0


cdef int _journal(_Record record, xmlNode* node) except -1:
    cdef xmlNode* child = _element(node.children)
    cdef xmlNode* part
    while child is not NULL:
        if _is(child, "ISSN"):
            record.issn = _plain(child)
        elif _is(child, "Title"):
            record.journal_title = _text_of(child) or None
        elif _is(child, "ISOAbbreviation"):
            record.iso_abbreviation = _plain(child)
        elif _is(child, "JournalIssue"):
            part = _element(child.children)
            while part is not NULL:
                if _is(part, "Volume"):
                    record.volume = _plain(part)
                elif _is(part, "Issue"):
                    record.issue = _plain(part)
                elif _is(part, "PubDate"):
                    record.pub_date, record.pub_year = pub_date(_parts(part))
                part = _element(part.next)
        child = _element(child.next)
    return 0


cdef dict _parts(xmlNode* node):
    """A PubDate's children as ingest.fields.pub_date takes them."""
    cdef dict parts = {}
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        parts[_decoded(<const char*>child.name)] = _plain(child)
        child = _element(child.next)
    return parts


cdef int _journal_info(_Record record, xmlNode* node) except -1:
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "NlmUniqueID"):
            record.nlm_unique_id = _plain(child)
        elif _is(child, "ISSNLinking"):
            record.issn_linking = _plain(child)
        elif _is(child, "MedlineTA") and record.medline_ta is None:
            record.medline_ta = _plain(child)
        child = _element(child.next)
    return 0


cdef str _iso_date(xmlNode* node):
    """ingest.pubmed_xml._iso_date; a date that does not exist raises ValueError or KeyError.

    A date written as NCBI writes nearly all of them (Year, Month and Day in digits, no
    space) is checked and written here; any other goes to ingest.fields.iso_date, which
    holds the rules for the rest. Why: the dates of a file are too many to cache, and
    the Python call was a twelfth of this walk's time."""
    cdef xmlNode* year_node = NULL
    cdef xmlNode* month_node = NULL
    cdef xmlNode* day_node = NULL
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "Year"):
            year_node = child
        elif _is(child, "Month"):
            month_node = child
        elif _is(child, "Day"):
            day_node = child
        child = _element(child.next)
    cdef int year = _number(year_node, 4, 4)
    cdef int month = _number(month_node, 1, 2)
    cdef int day = _number(day_node, 1, 2)
    if year >= 1 and 1 <= month <= 12 and 1 <= day <= _days_in(year, month):
        return f"{year:04d}-{month:02d}-{day:02d}"
    return iso_date(None if year_node is NULL else _plain(year_node) or "",
                    None if month_node is NULL else _plain(month_node) or "",
                    None if day_node is NULL else _plain(day_node) or "")


cdef int _number(xmlNode* node, int fewest, int most) noexcept:
    """The number an element writes as its one text node, in ``fewest`` to ``most`` ASCII
    digits and nothing else; -1 for anything else (no element, a space, a month's name)."""
    if node is NULL or node.children is NULL or node.children.next is not NULL:
        return -1
    if node.children.type != XML_TEXT_NODE or node.children.content is NULL:
        return -1
    cdef const unsigned char* text = <const unsigned char*>node.children.content
    cdef int value = 0
    cdef int n = 0
    while text[n] != 0:
        if n == most or text[n] < 48 or text[n] > 57:
            return -1
        value = value * 10 + (text[n] - 48)
        n += 1
    return value if n >= fewest else -1


cdef int _days_in(int year, int month) noexcept:
    """Days in a month of the proleptic Gregorian calendar, as Python's datetime counts them."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


cdef object _pages(xmlNode* node):
    medline = start = end = None
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "MedlinePgn"):
            medline = _plain(child)
        elif _is(child, "StartPage"):
            start = _plain(child)
        elif _is(child, "EndPage"):
            end = _plain(child)
        child = _element(child.next)
    if medline:
        return medline
    if start and end:
        return f"{start}-{end}"
    return start or end


cdef list _abstract(xmlNode* node):
    cdef list sections = []
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "AbstractText"):
            text = _text_of(child)
            label = _attribute(child, "Label")
            if text or label:
                sections.append((text, label or None, _attribute(child, "NlmCategory")))
        child = _element(child.next)
    return sections


cdef list _authors(xmlNode* node):
    cdef list authors = []
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "Author") and not _attribute_is(child, "ValidYN", "N"):
            authors.append(_author(child))
        child = _element(child.next)
    return authors


cdef tuple _author(xmlNode* node):
    last = fore = initials = collective = orcid = None
    cdef list affiliations = []
    cdef xmlNode* child = _element(node.children)
    cdef xmlNode* affiliation
    while child is not NULL:
        if _is(child, "AffiliationInfo"):
            affiliation = _element(child.children)
            while affiliation is not NULL:
                if _is(affiliation, "Affiliation"):
                    text = _text_of(affiliation)
                    if text:
                        affiliations.append(text)
                affiliation = _element(affiliation.next)
        elif _is(child, "Identifier"):
            if _attribute_is(child, "Source", "ORCID"):
                orcid = normalise_orcid(_plain(child)) or orcid  # an empty second one keeps the first
        else:
            text = _text_of(child) or None
            if _is(child, "LastName"):
                last = text
            elif _is(child, "ForeName") or _is(child, "FirstName"):
                fore = text
            elif _is(child, "Initials"):
                initials = text
            elif _is(child, "CollectiveName"):
                collective = text
            elif _is(child, "Affiliation") and text:
                affiliations.append(text)
        child = _element(child.next)
    return (last, fore, initials, collective, affiliations, orcid)


cdef list _publication_types(xmlNode* node):
    cdef list types = []
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "PublicationType"):
            types.append((_text_of(child), _attribute(child, "UI")))
        child = _element(child.next)
    return types


cdef list _mesh_headings(xmlNode* node):
    cdef list headings = []
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "MeshHeading"):
            headings.append(_mesh_heading(child))
        child = _element(child.next)
    return headings


cdef tuple _mesh_heading(xmlNode* node):
    cdef tuple heading = None
    cdef list qualifiers = []
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "DescriptorName"):
            heading = (_text_of(child), _attribute(child, "UI"), _attribute_is(child, "MajorTopicYN", "Y"))
        elif _is(child, "QualifierName"):
            qualifiers.append((_text_of(child), _attribute(child, "UI"),
                               _attribute_is(child, "MajorTopicYN", "Y")))
        child = _element(child.next)
    if heading is None:
        raise Unusual()
    return heading + (qualifiers,)


cdef int _keywords(_Record record, xmlNode* node) except -1:
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "Keyword"):
            keyword = _text_of(child)
            if keyword:
                record.keywords.append(keyword)
        child = _element(child.next)
    return 0


cdef list _links(xmlNode* node):
    cdef list links = []
    cdef xmlNode* child = _element(node.children)
    cdef xmlNode* part
    while child is not NULL:
        if _is(child, "CommentsCorrections"):
            pmid = source = note = None
            part = _element(child.children)
            while part is not NULL:
                if _is(part, "PMID"):
                    pmid = linked_pmid(_plain(part))
                elif _is(part, "RefSource"):
                    source = _text_of(part) or None
                elif _is(part, "Note"):
                    note = _text_of(part) or None
                part = _element(part.next)
            links.append((_attribute(child, "RefType") or "", pmid, link_source(source, note)))
        child = _element(child.next)
    return links


cdef int _pubmed_data(_Record record, xmlNode* node) except -1:
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _is(child, "History"):
            record.entrez_date = _entrez_date(child)
        elif _is(child, "ArticleIdList"):
            _article_ids(record, child)
        child = _element(child.next)
    return 0


cdef object _entrez_date(xmlNode* node):
    """PubStatus "entrez" (MEDLINE's CRDT), else "pubmed" (EDAT)."""
    cdef xmlNode* pubmed = NULL
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _attribute_is(child, "PubStatus", "entrez"):
            return _iso_date(child)
        if pubmed is NULL and _attribute_is(child, "PubStatus", "pubmed"):
            pubmed = child
        child = _element(child.next)
    return _iso_date(pubmed) if pubmed is not NULL else None


cdef int _article_ids(_Record record, xmlNode* node) except -1:
    cdef xmlNode* child = _element(node.children)
    while child is not NULL:
        if _attribute_is(child, "IdType", "doi"):
            if record.doi is None:
                record.doi = _plain(child)
        elif _attribute_is(child, "IdType", "pmc"):
            if record.pmcid is None:
                record.pmcid = _plain(child)
        child = _element(child.next)
    return 0
