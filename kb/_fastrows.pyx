# cython: language_level=3
"""kb.store._prepare_flat compiled: the rows of a flattened article, the same values.

Why: an import's reader process sets its pace, and once the compiled field walk
(ingest._fastwalk) read the fields, building the rows was its largest Python part:
small functions called a hundred thousand times per 10,000 records (JSON of short
lists, author and heading rows). Here the same rules run as C loops over the same
tuples. kb.store keeps the Python version as the reference, used where this module is
not built; tests check that both give the same rows for every record they read.

What the two share (the author cache and its bound, the JSON encoder for what needs
escaping, the author id, PreparedArticle) is taken from kb.store at the first call, not
copied; so a later change to them there (a test's monkeypatch) is not seen here. Indexes
stay bounds-checked: a malformed tuple raises IndexError as in the Python version.
"""

from hashlib import sha1

cdef object _Prepared = None  # kb.store.PreparedArticle
cdef dict _known  # kb.store._AUTHOR_ROWS
cdef Py_ssize_t _known_max
cdef object _encode, _author_id
cdef tuple _FALSE_TRUE = ("false", "true")


cdef int _bind() except -1:
    global _Prepared, _known, _known_max, _encode, _author_id
    from kb import store
    _known = store._AUTHOR_ROWS
    _known_max = store._AUTHOR_ROWS_MAX
    _encode = store._encode
    _author_id = store._author_id
    _Prepared = store.PreparedArticle
    return 0


def prepare_flat(tuple flat):
    """Every row a flattened article contributes (kb.store._prepare_flat)."""
    if _Prepared is None:
        _bind()
    (pmid, version, title, sections, authors, journal, volume, issue, pages, pub_date, pub_year, entrez_date,
     revised_date, completed_date, languages, publication_types, mesh, keywords, doi, pmcid, links, status,
     is_book, source_format, raw, digest) = flat
    if digest is None:
        digest = sha1(raw).hexdigest()
    journal_title, iso_abbreviation, issn, issn_linking, nlm_unique_id, medline_ta = journal
    journal_id = nlm_unique_id or issn_linking or issn or journal_title
    journal_row = (journal_id, journal_title, iso_abbreviation, issn, issn_linking,
                   nlm_unique_id, medline_ta) if journal_id else None
    cdef list author_table = [], author_rows = [], names = []
    _author_rows(pmid, authors, author_table, author_rows, names)
    cdef list mesh_terms = [], mesh_rows = [], mesh_names = []
    _mesh_rows(pmid, mesh, mesh_terms, mesh_rows, mesh_names)
    cdef list pt_names = [], pt_rows = []
    for name, ui in publication_types:
        pt_names.append(name)
        pt_rows.append((pmid, name, ui))
    retracted = "Retracted Publication" in pt_names or _retraction_linked(links)
    row = (
        pmid, version, title or "",
        _abstract(sections),
        _sections_json(sections) if sections else "[]",
        journal_id, volume, issue, pages, pub_date, pub_year, entrez_date, revised_date, completed_date,
        _json(languages), _json(pt_names), _json(mesh_names), _json(keywords), _json(names),
        doi, pmcid, status, int(is_book), int(retracted), 0, None, source_format, digest,
    )
    cdef list link_rows = []
    cdef Py_ssize_t position = 0
    for ref_type, ref_pmid, source in links:
        position += 1
        link_rows.append((pmid, position, ref_type, ref_pmid, source))
    children = (
        author_rows,
        mesh_rows,
        pt_rows,
        [(pmid, keyword) for keyword in dict.fromkeys(keywords)],
        link_rows,
    )
    return _Prepared(pmid, digest, revised_date, row, journal_row, author_table, mesh_terms, children,
                     (pmid, source_format, raw, digest))


cdef bint _retraction_linked(object links) except -1:
    for link in links:
        if link[0] == "RetractionIn":
            return True
    return False


cdef str _abstract(object sections):
    """The sections' text joined by newlines, empty ones left out."""
    cdef list texts = []
    for section in sections:
        text = section[0]
        if text:
            texts.append(text)
    return "\n".join(texts)


cdef int _author_rows(object pmid, object authors, list author_table, list links, list names) except -1:
    """kb.store._author_rows, into the lists given."""
    cdef Py_ssize_t position = 0
    cdef tuple row
    for last, fore, initials, collective, affiliations, orcid in authors:
        position += 1
        key = (last, fore, initials, collective)
        row = _known.get(key)
        if row is None:
            name = collective or " ".join([p for p in (last, initials or fore) if p])
            row = (_author_id(last, fore, initials, collective), last, fore, initials, collective, name)
            if len(_known) >= _known_max:
                _known.clear()
            _known[key] = row
        names.append(row[5])
        author_table.append(row)
        links.append((pmid, position, row[0], _json(affiliations) if affiliations else "[]", orcid))
    return 0


cdef int _mesh_rows(object pmid, object headings, list terms, list rows, list names) except -1:
    """kb.store._mesh_rows, and the headings' names, into the lists given."""
    for descriptor, ui, major, qualifiers in headings:
        names.append(descriptor)
        terms.append((descriptor, ui))
        rows.append((pmid, descriptor, int(major), _qualifiers_json(qualifiers)))
    return 0


# --------------------------------------------------------------------------- JSON


cdef bint _plain(object value) except -1:
    """kb.store._plain_json: a str that JSON writes as itself between quotes."""
    if type(value) is not str:
        return False
    cdef Py_UCS4 c
    for c in <str>value:
        if c < 0x20 or c == u'"' or c == u'\\':
            return False
    return True


cdef inline bint _plain_or_null(object value) except -1:
    return value is None or _plain(value)


cdef inline str _quoted(object value):
    return "null" if value is None else '"' + value + '"'


cdef str _json(object value):
    """kb.store._json: JSON of a list, as json.dumps(ensure_ascii=False) writes it."""
    if not value:
        return "[]"
    if type(value[0]) is not str:
        return _encode(value)
    for item in value:
        if not _plain(item):
            return _encode(value)
    return '["' + '", "'.join(value) + '"]'


cdef str _sections_json(object sections):
    """kb.store._sections_json."""
    cdef list parts = []
    for text, label, category in sections:
        if not (_plain(text) and _plain_or_null(label) and _plain_or_null(category)):
            return _encode([{"label": label, "nlm_category": category, "text": text}
                            for text, label, category in sections])
        parts.append('{"label": ' + _quoted(label) + ', "nlm_category": ' + _quoted(category)
                     + ', "text": "' + text + '"}')
    return "[" + ", ".join(parts) + "]"


cdef str _qualifiers_json(object qualifiers):
    """kb.store._qualifiers_json."""
    if not qualifiers:
        return "[]"
    cdef list parts = []
    for name, ui, major in qualifiers:
        if not (_plain(name) and _plain_or_null(ui)):
            return _encode([{"name": n, "ui": u, "major": m} for n, u, m in qualifiers])
        parts.append('{"name": "' + name + '", "ui": ' + _quoted(ui) + ', "major": '
                     + (_FALSE_TRUE[major] if type(major) is bool else _encode(major)) + '}')
    return "[" + ", ".join(parts) + "]"
