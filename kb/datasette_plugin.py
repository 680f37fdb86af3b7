"""The cryokb Datasette plugin: links, the synthetic-data banner, an article's evidence,
and the pictures (evidence map, outcomes over the years, concept graph).

A module of ``@hookimpl`` functions, registered through the ``datasette`` entry-point
group (and by kb.publish when run from a checkout). The pictures are SVG computed here
in Python (the graph laid out by networkx), plus a little vanilla JavaScript of our
own in data/static for pan, zoom and clicks: nothing is fetched from a CDN, so the
pages work offline. The database is served immutable, so each picture is computed once
per server and cached.

Every piece of text from the database goes through ``markupsafe.escape`` (or the
browser's ``textContent`` in the JavaScript): titles and abstracts are data, never HTML.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import statistics
import urllib.parse
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup, escape

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import NotFound, Response

from kb.evidence import LIST_FIELDS
from kb.facets import FILTER_ARG, ConceptFacet, concept_filter

log = logging.getLogger("cryokb.publish")

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{}/"
DOI_URL = "https://doi.org/{}"
PMID_COLUMNS = frozenset({"pmid", "ref_pmid"})
KEY_ARRAY_COLUMNS = frozenset(LIST_FIELDS)  # the evidence key arrays on articles
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml", ".png": "image/png"}
FIELD_COLOURS = {"lesion_types": "#2c6fbb", "anatomic_sites": "#3a9a5b", "indications": "#d9822b",
                 "treatments": "#8e5bb5", "outcomes": "#c2414b"}
MEASURE_COLOURS = ["#2c6fbb", "#d9822b", "#3a9a5b", "#c2414b", "#8e5bb5", "#8c6d46", "#d66cb0",
                   "#6f7782", "#a5a82b"]
PAGES = (("evidence-map", "Evidence map"), ("outcomes-by-year", "Outcomes by year"),
         ("graph", "Concept graph"))
ARTICLES_PER_PANEL = 50
OUTCOMES_LABEL = "their outcomes, with the sentences"  # the graph panel's link for an outcome node
MAX_DOTS = 600


@dataclass
class _State:
    """What the plugin knows about one Datasette instance: read once at startup."""

    database: str | None = None
    synthetic: bool = False
    has_concepts: bool = False
    cache: dict = field(default_factory=dict)
    path: str | None = None  # the file served immutable, and what it was when the server opened it
    opened: tuple | None = None


_STATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _state(datasette) -> _State:
    return _STATES.setdefault(datasette, _State())


# --- start-up, templates, assets ------------------------------------------------------------


@hookimpl
def prepare_jinja2_environment(env, datasette):
    """Put data/templates first, so `datasette` itself (not only `cryokb serve`) finds our pages."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    templates = _data_dir("templates")
    if templates is not None and not getattr(env, "_cryokb_templates", False):
        env.loader = ChoiceLoader([FileSystemLoader(str(templates)), env.loader])
        env._cryokb_templates = True


@hookimpl
def startup(datasette):
    """Find the cryokb database and read its synthetic flag, once.

    The banner and the menu go into the Jinja globals of this Datasette, so that every
    page has them, Datasette's own error pages included (those get no extra_template_vars).
    """
    _error_pages_without_rich()  # here, not at import: that would import datasette.plugins half-made

    async def inner():
        state = _state(datasette)
        for name, db in datasette.databases.items():
            if name == "_internal":
                continue
            tables = set(await db.table_names())
            if {"articles", "cryokb_meta"} <= tables:
                state.database = name
                state.has_concepts = "article_concepts" in tables
                rows = await db.execute("select value from cryokb_meta where key = 'synthetic'")
                first = rows.first()
                state.synthetic = bool(first) and str(first[0]).lower() in ("true", "1", "yes")
                if db.path and not db.is_mutable:
                    state.path, state.opened = db.path, _file_state(db.path)
                log.info("serving %s (synthetic: %s)", name, state.synthetic)
                break
        if state.database is not None:
            datasette.jinja_env.globals.update(
                cryokb_synthetic=state.synthetic, cryokb_database=state.database, cryokb_built=state.has_concepts,
                cryokb_pages=[(f"/-/cryokb/{slug}", label) for slug, label in PAGES])

    return inner


def _file_state(path: str) -> tuple | None:
    """The file's identity and what changes when it is written (None: gone)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def _written_under_us(state: _State) -> bool:
    """Whether the served file itself was written since the server opened it.

    An immutable reader takes no locks and trusts the file never to change: pages written
    under it read as "database disk image is malformed", though the file is sound. A file
    put in its place (a refresh publishes so) leaves the opened one whole: that is served on.
    """
    if state.opened is None:
        return False
    now = _file_state(state.path)
    return now is not None and now[:2] == state.opened[:2] and now != state.opened


@hookimpl
def asgi_wrapper(datasette):
    """Every request, first: a served file written in place gets a page that says so, not
    Datasette's errors (see _written_under_us)."""
    def wrap(app):
        async def checked(scope, receive, send):
            state = _STATES.get(datasette)
            if scope.get("type") == "http" and state is not None and _written_under_us(state):
                await Response.text(WRITTEN_UNDER_US.format(path=state.path), status=503).asgi_send(send)
                return
            await app(_without_blank_searches(scope), receive, send)
        return checked
    return wrap


def _without_blank_searches(scope: dict) -> dict:
    """The request without a search that holds no word (the home page's box sent empty, a
    lone quote): Datasette made each an FTS5 MATCH of nothing, an "Invalid SQL" page.
    Without it, the table is listed whole, as for no search."""
    query = scope.get("query_string") or b""
    if scope.get("type") != "http" or b"_search" not in query:
        return scope
    pairs = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    kept = [(name, value) for name, value in pairs if not (name.startswith("_search") and not _WORD.search(value))]
    return scope if len(kept) == len(pairs) else dict(scope, query_string=urllib.parse.urlencode(kept).encode())


_WORD = re.compile(r"\w")


@hookimpl(tryfirst=True)
def handle_exception(datasette, request, exception):
    """A visitor's mistake in a URL is a 400 page, not a 500: a sort on a column that cannot
    be sorted, both _sort and _sort_desc, a paging token or time limit that is no number.
    Datasette 0.65 raises these with status 500. Anything else goes to Datasette's own pages."""
    from datasette.views.base import DatasetteError

    if isinstance(exception, DatasetteError) and exception.status == 500 and str(exception.message).startswith(
            SORT_MISTAKES):
        message = exception.message
    elif isinstance(exception, ValueError) and not isinstance(exception, DatasetteError) and (
            set(request.args) & PAGING_ARGS):
        message = f"cannot read {', '.join(sorted(set(request.args) & PAGING_ARGS))}: {exception}"
    else:
        return None

    async def inner():
        info = {"ok": False, "error": message, "status": 400, "title": "Invalid request"}
        if request.path.endswith(".json"):
            return Response.json(info, status=400)
        template = datasette.jinja_env.select_template(["400.html", "error.html"])
        page = await template.render_async(dict(info, urls=datasette.urls, app_css_hash=datasette.app_css_hash(),
                                                menu_links=lambda: []))
        return Response.html(page, status=400)

    return inner


SORT_MISTAKES = ("Cannot sort table by", "Cannot use _sort and _sort_desc")
PAGING_ARGS = frozenset({"_next", "_timelimit", "_through"})


def _error_pages_without_rich() -> None:
    """Datasette 0.65's error pages, without the rich traceback its handler prints first.

    Why: where rich is installed (spaCy brings it), Datasette prints every error with it,
    locals and all, outside the ``except`` block, where rich refuses: a URL matching no
    route got no reply at all, a missing row's 404 filled the server's log. Datasette
    does without rich where it is not installed; so it does here.
    """
    from datasette import handle_exception as errors

    if getattr(errors, "rich", None) is not None:
        errors.rich = None


WRITTEN_UNDER_US = (
    "{path} has been written since this server opened it. The server reads it as a fixed "
    "(immutable) file, so what it would show now is not to be trusted: restart cryokb serve "
    "to browse what is stored. The file itself is not damaged. To update a served knowledge "
    "base, let cryokb refresh publish a new file, or write to a database that is not being served.\n")


def _data_dir(name: str) -> Path | None:
    from cryokb_data import path as data_path

    location = Path(str(data_path(name)))
    return location if location.is_dir() else None


@hookimpl
def prepare_connection(conn, database, datasette):
    from kb.publish import DATABASE_NAME, READ_PRAGMAS

    if database == DATABASE_NAME:
        for pragma in READ_PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")


@hookimpl
def extra_template_vars(database, table, view_name, request, datasette):
    """An article's row page gets its text with the evidence marked, and its outcomes."""
    state = _state(datasette)
    if not (view_name == "row" and table == "articles" and database == state.database and request):
        return {}

    async def inner():
        pmid = tilde_decode(request.url_vars.get("pks", ""))
        return {"cryokb_article": await article_evidence(datasette.get_database(database), pmid)}

    return inner


@hookimpl
def extra_css_urls(datasette):
    if _state(datasette).database is None:
        return []
    return ["/-/cryokb/static/cryokb.css"]


@hookimpl
def extra_js_urls(datasette, table):
    if _state(datasette).database is None or table != "articles":
        return []
    return ["/-/cryokb/static/cryokb.js"]


@hookimpl
def menu_links(datasette):
    state = _state(datasette)
    if state.database is None:
        return []
    if not state.has_concepts:  # before cryokb build: the evidence pages are not there
        return [{"href": f"/{state.database}/articles", "label": "Articles"}]
    links = [{"href": f"/{state.database}/evidence_by_lesion", "label": "Evidence by lesion type"}]
    links += [{"href": f"/-/cryokb/{slug}", "label": label} for slug, label in PAGES]
    links.append({"href": f"/{state.database}/review_queue", "label": "Articles needing review"})
    return links


# --- cells ----------------------------------------------------------------------------------


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    """PMIDs open PubMed (and their row here); DOIs open the publisher through doi.org;
    on the articles table a title opens the article's page and each key of an evidence
    array filters the articles that have it."""
    if value in (None, ""):
        return None
    if table == "articles" and database == _state(datasette).database:
        shown = _article_cell(row, value, column, database)
        if shown is not None:
            return shown
    label = None
    if isinstance(value, dict):  # a foreign key Datasette expanded to its label (the title)
        value, label = value.get("value"), value.get("label")
    if column in PMID_COLUMNS and str(value).isdigit():
        state = _state(datasette)
        if state.database and table != "articles":
            own = Markup('<a href="/{}/articles/{}">{}</a>').format(state.database, value, label or value)
            if label and label != value:
                own += Markup("&nbsp;<em>{}</em>").format(value)
        else:
            own = escape(value)
        return own + Markup(' <a class="cryokb-pubmed" href="{}" title="Open in PubMed">PubMed&nbsp;&#8599;</a>'
                            ).format(PUBMED_URL.format(value))
    if column == "doi" and isinstance(value, str) and value.startswith("10."):
        return Markup(f'<a class="cryokb-doi" href="{escape(_doi_url(value))}" title="Open the publisher\'s page">'
                      f"{escape(value)}</a>")
    if table in SUMMARY_TABLES and database == _state(datasette).database:
        return _summary_cell(row, value, column, database, SUMMARY_TABLES[table])
    if table == "group_outcome_values" and column == "outcome_id" and database == _state(datasette).database:
        return Markup('<a href="/{}/outcome_sentences?outcome_id={}" title="The sentence it came from">{}</a>'
                      ).format(database, value, value)
    return None


def _doi_url(doi: str) -> str:
    """doi.org's address of a DOI, the DOI quoted (one holding "#" or "<" was cut short or broken)."""
    return DOI_URL.format(urllib.parse.quote(doi, safe="/:;()._-"))


# The summary tables, by the column of their key: each figure links to the rows it was made
# from, so that every number shown can be followed to its sentences.
SUMMARY_TABLES = {"evidence_by_lesion": "lesion_type", "evidence_by_indication": "indication"}
# The grouping of group_outcome_values and the table of a summary's articles, by its key column.
SUMMARY_SOURCES = {"lesion_type": ("lesion_type", "article_lesions"),
                   "indication": ("indication", "article_indications")}
COUNTED_COLUMNS = frozenset({"label", "studies", "patients", "lesions"})


def _summary_cell(row, value, column, database: str, key_column: str) -> Markup | None:
    """A summary's key, label and counts link to its articles (article_lesions or
    article_indications, filtered by the key); a median or range to the values it was
    made from (group_outcome_values), each of which links to its sentence."""
    if key_column not in row.keys():
        return None
    key = row[key_column]
    grouping, articles = SUMMARY_SOURCES[key_column]
    if column == key_column or column in COUNTED_COLUMNS:
        query = urllib.parse.urlencode({key_column: key})
        return Markup('<a href="/{}/{}?{}">{}</a>').format(database, articles, query, value)
    for suffix in ("_median", "_range"):
        if column.endswith(suffix):
            metric = _metric(column[: -len(suffix)])
            query = urllib.parse.urlencode({"grouping": grouping, "grp": key, "metric": metric})
            return Markup('<a href="/{}/group_outcome_values?{}" title="The values, each with its sentence">{}</a>'
                          ).format(database, query, value)
    return None


def _metric(name: str) -> str:
    """The metric of group_outcome_values a summary column is named for: "major_complications"
    is "complications:major" there, as the outcomes' measure and grade."""
    grade, found, measure = name.partition("_complications")
    return f"complications:{grade}" if found and not measure else name


def _article_cell(row, value, column, database) -> Markup | None:
    if column == "title" and isinstance(value, str) and "pmid" in row.keys():
        return Markup(f'<a class="cryokb-article-link" href="/{escape(database)}/articles/{escape(row["pmid"])}">'
                      f"{escape(value)}</a>")
    if column in KEY_ARRAY_COLUMNS and isinstance(value, str) and value.startswith("["):
        try:
            keys = json.loads(value)
        except ValueError:
            return None
        links = [_key_link(database, str(key)) for key in keys]
        return Markup(", ").join(links) if links else Markup("&nbsp;")
    return None


@functools.lru_cache(maxsize=4096)
def _key_link(database: str, key: str) -> Markup:
    """The link that filters the articles by one evidence key (a page shows hundreds of them,
    from a vocabulary of about a hundred keys: built once each)."""
    return Markup(f'<a href="/{escape(database)}/articles?{FILTER_ARG}={escape(urllib.parse.quote(key))}">'
                  f'{escape(key.replace("_", " "))}</a>')


@hookimpl
def register_facet_classes():
    return [ConceptFacet]


@hookimpl
def filters_from_request(request, database, table, datasette):
    """Filter the articles table by concept through the article_concepts index.

    ``_concept=KEY`` (kb.facets) is the filter the concept facets and the key links of the
    articles table use. Datasette's own ``lesion_types__arraycontains=desmoid_tumor`` makes
    SQLite open every article's JSON (a full scan); for it we add a ``pmid in (...)`` clause
    over the same index, so that SQLite looks the articles up first and checks the JSON on
    those rows only. Datasette's clause stays: the result is the same, only faster.
    """
    state = _state(datasette)
    if table != "articles" or database != state.database:
        return None
    if not state.has_concepts:
        if request.args.getlist(FILTER_ARG):  # dropped without a word, it listed every article as if filtered
            from datasette.utils.asgi import BadRequest

            raise BadRequest(f"{FILTER_ARG} filters by the evidence, which this database does not have yet: "
                             "run cryokb build")
        return None
    given = [key for key in request.args.getlist(FILTER_ARG) if key]  # an empty one filters nothing
    keys = given + [key for name in KEY_ARRAY_COLUMNS for key in request.args.getlist(f"{name}__arraycontains")]
    if not keys:
        return None
    from datasette.filters import FilterArguments

    clauses, params = concept_filter(keys)
    described = [f"{key.replace('_', ' ')} is reported" for key in given]
    return FilterArguments(clauses, params, human_descriptions=described)


# --- the article's evidence, for its row page ----------------------------------------------


async def article_evidence(db, pmid: str) -> dict | None:
    rows = await db.execute("select a.*, j.title as journal from articles a "
                            "left join journals j on j.id = a.journal_id where a.pmid = ?", [pmid])
    row = rows.first()
    if row is None:
        return None
    wanted = ("pmid", "title", "abstract", "pub_year", "doi", "study_design", "n_patients", "n_lesions",
              "relevant", "retracted", "deleted", "deleted_at", "journal")
    article = {name: row[name] if name in row.keys() else None for name in wanted}  # evidence columns come with build
    tables = set(await db.table_names())
    mentions, outcomes = [], []
    if "mentions" in tables:
        mentions = [dict(r) for r in await db.execute(
            "select field, concept, text, start, end, negated, inferred from mentions where pmid = ? order by start",
            [pmid])]
        outcomes = [dict(r) for r in await db.execute(
            "select o.*, s.text as sentence from outcomes o left join sentences s on s.id = o.sentence_id "
            "where o.pmid = ? order by o.position", [pmid])]
    title = article["title"] or ""
    text = f"{title}\n\n{article['abstract']}" if article["abstract"] else title
    article["title_html"] = highlight(text, mentions, 0, len(title))
    article["abstract_html"] = highlight(text, mentions, len(title) + 2, len(text)) if article["abstract"] else ""
    article["mentions"] = mentions
    article["outcomes"] = [dict(o, summary=describe_outcome(o)) for o in outcomes]
    article["pubmed_url"] = PUBMED_URL.format(pmid)
    article["doi_url"] = _doi_url(article["doi"]) if article["doi"] else None
    return article


def highlight(text: str, mentions: list[dict], begin: int, end: int) -> Markup:
    """``text[begin:end]``, escaped, with every mention inside it wrapped in a <mark>.

    Mentions may overlap (an outcome phrase holding an indication); the text is cut at
    every mention boundary and each piece is marked with the narrowest mention covering it.
    """
    inside = [m for m in mentions if m.get("start") is not None and begin <= m["start"] < end]
    cuts = sorted({begin, end, *(max(begin, min(end, p)) for m in inside for p in (m["start"], m["end"]))})
    pieces = []
    for left, right in zip(cuts, cuts[1:]):
        covering = [m for m in inside if m["start"] <= left and right <= m["end"]]
        chunk = escape(text[left:right])
        if not covering:
            pieces.append(chunk)
            continue
        narrow = min(covering, key=lambda m: m["end"] - m["start"])
        label = "; ".join(f"{m['field']}: {m['concept']}" + (" (negated)" if m.get("negated") else "")
                          + (" (inferred)" if m.get("inferred") else "") for m in covering)
        classes = f"cryokb-m cryokb-f-{escape(narrow['field'])}" + (" cryokb-neg" if narrow.get("negated") else "")
        pieces.append(Markup('<mark class="{}" title="{}">{}</mark>').format(classes, label, chunk))
    return Markup("").join(pieces)


def describe_outcome(o: dict) -> str:
    """One readable line: 'local control 86% (12/14) at 2 years'."""
    parts = [o["measure"].replace("_", " ")]
    if o.get("grade"):
        parts.append(f"({o['grade']})")
    if o.get("percent") is not None:
        parts.append(f"{_num(o['percent'])}%")
    if o.get("count") is not None:
        parts.append(f"({o['count']}/{o['total']})" if o.get("total") is not None else f"n={o['count']}")
    if o.get("before") is not None or o.get("after") is not None:
        parts.append(f"{(o.get('scale') or '').upper()} {_num(o.get('before'))} \u2192 {_num(o.get('after'))}".strip())
    if o.get("direction"):
        parts.append(o["direction"])
    if o.get("timepoint"):
        parts.append(f"at {o['timepoint']}")
    return " ".join(parts)


def _num(value) -> str:
    if value is None:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- pages ----------------------------------------------------------------------------------


@hookimpl
def register_routes():
    return [
        (r"^/$", home_page),
        (r"^/-/cryokb/?$", pictures_page),
        (r"^/-/cryokb/evidence-map$", evidence_map_page),
        (r"^/-/cryokb/evidence-map\.json$", evidence_map_json),
        (r"^/-/cryokb/outcomes-by-year$", outcomes_page),
        (r"^/-/cryokb/outcomes-by-year\.json$", outcomes_json),
        (r"^/-/cryokb/graph$", graph_page),
        (r"^/-/cryokb/graph\.json$", graph_json),
        (r"^/-/cryokb/graph/node\.json$", graph_node_json),
        (r"^/-/cryokb/graph/edge\.json$", graph_edge_json),
        (r"^/-/cryokb/static/(?P<name>[A-Za-z0-9_-]+\.(css|js|svg|png))$", static_file),
    ]


def _db(datasette):
    state = _state(datasette)
    if state.database is None:
        raise NotFound("no cryokb database is being served")
    return state, datasette.get_database(state.database)


async def _render(datasette, request, template, title, **context):
    context = {"page_title": title, "metadata": datasette.metadata(), **context}
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html)


async def home_page(datasette, request, send):
    """A landing page for researchers: what is here, key figures, where to start, search.

    Datasette's own index (every table with its counts and permissions, which costs about
    a tenth of a second on every visit) stays at /cryokb; without a cryokb database this
    is simply Datasette's index.
    """
    state = _state(datasette)
    if state.database is None:
        from datasette.views.index import IndexView

        return await IndexView.as_view(datasette)(request, send)
    figures = await home_figures(datasette)
    return await _render(datasette, request, "cryokb_home.html", datasette.metadata("title") or "cryokb",
                         figures=figures, description_html=Markup(datasette.metadata("description_html") or ""))


async def home_figures(datasette) -> dict:
    """Counts for the landing page, read once (the database is immutable)."""
    state, db = _db(datasette)
    if "home" not in state.cache:
        tables = set(await db.table_names())
        one = lambda result: result.first()[0]  # noqa: E731
        figures = {"articles": one(await db.execute("select count(*) from articles where deleted = 0"))}
        figures["lesions"] = []
        if "article_concepts" in tables:
            figures["relevant"] = one(await db.execute(
                "select count(*) from articles where relevant = 1 and deleted = 0 and retracted = 0"))
            live = "pmid in (select pmid from articles where deleted = 0)"
            figures["outcomes"] = one(await db.execute(f"select count(*) from outcomes where {live}"))
            figures["sentences"] = one(await db.execute(f"select count(*) from sentences where {live}"))
            labels = await _labels(db)
            rows = await db.execute(
                "select ac.concept, count(*) as n from article_concepts ac join articles a on a.pmid = ac.pmid "
                "where ac.field = 'lesion_types' and ac.negated = 0 and a.relevant = 1 and a.deleted = 0 "
                "and a.retracted = 0 group by ac.concept order by n desc, ac.concept")
            figures["lesions"] = [(r["concept"], labels.get(r["concept"], r["concept"]), r["n"]) for r in rows]
        from kb.publish import SOURCE_RUNS

        run = (await db.execute(f"select kind, finished, query_version from harvest_runs where {SOURCE_RUNS} "
                                "order by id desc limit 1")).first() if "harvest_runs" in tables else None
        figures["last_run"] = dict(run) if run else None
        state.cache["home"] = figures
    return state.cache["home"]


async def pictures_page(datasette, request):
    state, _ = _db(datasette)
    return await _render(datasette, request, "cryokb_pictures.html", "Pictures")


async def static_file(datasette, request):
    name = request.url_vars["name"]
    folder = _data_dir("static")
    if folder is None or not (folder / name).is_file():
        raise NotFound(f"no static file {name}")
    body = (folder / name).read_bytes()
    return Response(body, content_type=STATIC_TYPES[Path(name).suffix],
                    headers={"Cache-Control": "max-age=3600"})


# --- the evidence map -----------------------------------------------------------------------


async def _labels(db) -> dict[str, str]:
    return {r[0]: r[1] for r in await db.execute("select key, coalesce(label, key) from concepts")}


async def evidence_map_data(datasette) -> dict:
    state, db = _db(datasette)
    if "evidence_map" not in state.cache:
        labels = await _labels(db) if "concepts" in await db.table_names() else {}
        cells = []
        if "evidence_map" in set(await db.table_names()) | set(await db.view_names()):
            cells = [dict(r) for r in await db.execute(
                "select lesion_type, indication, studies, patients from evidence_map")]
        lesions = sorted({c["lesion_type"] for c in cells},
                         key=lambda k: (-sum(c["studies"] for c in cells if c["lesion_type"] == k), k))
        indications = sorted({c["indication"] for c in cells})
        state.cache["evidence_map"] = {"lesion_types": lesions, "indications": indications, "cells": cells,
                                       "labels": {k: labels.get(k, k) for k in (*lesions, *indications)}}
    return state.cache["evidence_map"]


async def evidence_map_json(datasette, request):
    return Response.json(await evidence_map_data(datasette))


async def evidence_map_page(datasette, request):
    data = await evidence_map_data(datasette)
    svg = heatmap_svg(data, _state(datasette).database)
    return await _render(datasette, request, "cryokb_evidence_map.html", "Evidence map", svg=svg,
                         empty=not data["cells"])


def colour_scale(fraction: float) -> str:
    """Sequential blues, from very light (few studies) to dark (many)."""
    low, high = (239, 246, 252), (8, 48, 107)
    f = max(0.0, min(1.0, fraction))
    return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(low, high))


def heatmap_svg(data: dict, database: str) -> Markup:
    """Lesion types down, indications across; colour by studies, text 'studies / patients'."""
    lesions, indications, labels = data["lesion_types"], data["indications"], data["labels"]
    by_cell = {(c["lesion_type"], c["indication"]): c for c in data["cells"]}
    top = max((c["studies"] for c in data["cells"]), default=1)
    left, head, cw, ch = 230, 40, 130, 34
    width = left + cw * len(indications) + 20
    height = head + ch * len(lesions) + 70
    out = [f'<svg class="cryokb-heatmap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="Evidence map">']
    for j, ind in enumerate(indications):
        x = left + j * cw + cw / 2
        out.append(f'<text class="col-label" x="{x}" y="{head - 12}" text-anchor="middle">{escape(labels[ind])}</text>')
    for i, lesion in enumerate(lesions):
        y = head + i * ch
        out.append(f'<text class="row-label" x="{left - 10}" y="{y + ch / 2 + 5}" text-anchor="end">'
                   f'{escape(labels[lesion])}</text>')
        for j, ind in enumerate(indications):
            x = left + j * cw
            cell = by_cell.get((lesion, ind))
            if cell is None:
                out.append(f'<rect x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" fill="#f6f6f6"/>')
                continue
            fraction = math.sqrt(cell["studies"] / top)
            href = (f"/{database}/articles?relevant=1&retracted=0&deleted=0"
                    f"&{FILTER_ARG}={urllib.parse.quote(lesion)}&{FILTER_ARG}={urllib.parse.quote(ind)}")
            tip = f"{labels[lesion]} \u00d7 {labels[ind]}: {cell['studies']} studies, {cell['patients'] or 0} patients"
            ink = "light" if fraction > 0.55 else "dark"
            out.append(f'<a href="{escape(href)}"><title>{escape(tip)}</title>'
                       f'<rect class="cell" x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" '
                       f'fill="{colour_scale(fraction)}"/>'
                       f'<text class="count {ink}" x="{x + cw / 2}" y="{y + ch / 2 + 5}" text-anchor="middle">'
                       f'{cell["studies"]} / {cell["patients"] or 0}</text></a>')
    ly = head + ch * len(lesions) + 25
    out.append(f'<text class="legend" x="{left}" y="{ly + 14}">studies / patients; colour: studies (1 to {top})</text>')
    for k in range(10):
        out.append(f'<rect x="{left + 330 + k * 18}" y="{ly}" width="18" height="18" fill="{colour_scale((k + 1) / 10)}"/>')
    out.append("</svg>")
    return Markup("".join(out))


# --- outcomes over publication years --------------------------------------------------------


async def outcomes_data(datasette, measure: str | None, grade: str | None = None) -> dict:
    """Counts per year and measure, and the chosen measure's percentages, each with its
    outcome. A measure with grades (complications: major, minor, any) plots one grade at a
    time: a 2% major and a 30% minor rate in one series would read as scatter. Cached per
    measure and grade the database has (not per ``?measure=`` asked, which anyone can vary
    without end)."""
    state, db = _db(datasette)
    where = "a.relevant = 1 and a.retracted = 0 and a.deleted = 0 and a.pub_year is not null"
    if "outcome_counts" not in state.cache:
        counts = []
        if "outcomes" in await db.table_names():
            counts = [dict(r) for r in await db.execute(
                f"select a.pub_year as year, o.measure, count(distinct o.pmid) as articles from outcomes o "
                f"join articles a on a.pmid = o.pmid where {where} group by a.pub_year, o.measure order by 1, 2")]
        state.cache["outcome_counts"] = counts
    counts = state.cache["outcome_counts"]
    measures = sorted({c["measure"] for c in counts})
    notices = []
    chosen = _known(measure, measures)
    if chosen is None:
        chosen = "local_control" if "local_control" in measures else (measures[0] if measures else None)
        if measure and chosen:
            notices.append(f"There is no outcome measure {measure!r}; showing {_words(chosen)}.")
    if ("outcome_grades", chosen) not in state.cache:
        state.cache[("outcome_grades", chosen)] = [r[0] for r in await db.execute(
            f"select distinct o.grade from outcomes o join articles a on a.pmid = o.pmid where {where} "
            "and o.measure = ? and o.percent is not null and o.grade is not null order by 1", [chosen])] \
            if chosen else []
    grades = state.cache[("outcome_grades", chosen)]
    chosen_grade = _known(grade, grades)
    if grades and chosen_grade is None:
        chosen_grade = grades[0]
        if grade:
            notices.append(f"{_words(chosen).capitalize()} have no grade {grade!r} (grades: {', '.join(grades)}); "
                           f"showing {chosen_grade}.")
    elif grade and not grades and chosen:
        notices.append(f"{_words(chosen).capitalize()} is not graded; showing every value.")
    key = ("outcome_values", chosen, chosen_grade)
    if key not in state.cache:
        state.cache[key] = [dict(r) for r in await db.execute(
            f"select a.pub_year as year, o.percent, o.pmid, o.id as outcome_id, a.title from outcomes o "
            f"join articles a on a.pmid = o.pmid where {where} and o.measure = ? and o.percent is not null "
            "and (? is null or o.grade = ?) order by a.pub_year, o.pmid",
            [chosen, chosen_grade, chosen_grade])] if chosen else []
    return {"counts": counts, "measures": measures, "measure": chosen, "grades": grades, "grade": chosen_grade,
            "values": state.cache[key], "notices": notices}


def _known(asked: str | None, known: list[str]) -> str | None:
    """The known value ``asked`` names, in any case and with spaces or hyphens for
    underscores ("MAJOR", "Local control", "local-control": links typed by hand), else None."""
    if not asked:
        return None
    wanted = "_".join(asked.lower().replace("-", " ").split())
    return next((value for value in known if value.lower() == wanted), None)


def _words(name: str) -> str:
    return name.replace("_", " ")


async def outcomes_json(datasette, request):
    data = await outcomes_data(datasette, request.args.get("measure"), request.args.get("grade"))
    summary = dict(data, values=[{k: v[k] for k in ("year", "percent", "pmid", "outcome_id")} for v in data["values"]])
    return Response.json(summary)


async def outcomes_page(datasette, request):
    data = await outcomes_data(datasette, request.args.get("measure"), request.args.get("grade"))
    return await _render(datasette, request, "cryokb_outcomes.html", "Outcomes by publication year",
                         bars=stacked_bars_svg(data), dots=percent_by_year_svg(data, _state(datasette).database),
                         measures=data["measures"], measure=data["measure"], grades=data["grades"],
                         grade=data["grade"], notices=data["notices"], empty=not data["counts"],
                         dotted=len(data["values"]) <= MAX_DOTS, max_dots=MAX_DOTS)


def _years(rows) -> list[int]:
    years = [r["year"] for r in rows]
    return list(range(min(years), max(years) + 1)) if years else []


def stacked_bars_svg(data: dict) -> Markup:
    """Articles reporting each outcome measure, per publication year, stacked."""
    counts, measures = data["counts"], data["measures"]
    years = _years(counts)
    if not years:
        return Markup("")
    per_year = {y: {} for y in years}
    for c in counts:
        per_year[c["year"]][c["measure"]] = c["articles"]
    top = _nice_top(max(sum(v.values()) for v in per_year.values()) or 1)
    left, top_pad, plot_h, bar_w = 50, 20, 260, max(8, min(40, 760 // len(years)))
    width = left + bar_w * len(years) + 200
    height = top_pad + plot_h + 50
    colours = {m: MEASURE_COLOURS[i % len(MEASURE_COLOURS)] for i, m in enumerate(measures)}
    out = [f'<svg class="cryokb-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="Outcomes reported per year">']
    out += _y_axis(left, top_pad, plot_h, top, bar_w * len(years))
    for i, year in enumerate(years):
        x, base = left + i * bar_w, top_pad + plot_h
        for m in measures:
            n = per_year[year].get(m, 0)
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            out.append(f'<rect x="{x + 1}" y="{base:.1f}" width="{bar_w - 2}" height="{h:.1f}" fill="{colours[m]}">'
                       f'<title>{year}: {escape(m)} in {n} articles</title></rect>')
        if len(years) <= 25 or year % 5 == 0:
            out.append(f'<text class="tick" x="{x + bar_w / 2}" y="{top_pad + plot_h + 16}" '
                       f'text-anchor="middle">{year}</text>')
    for k, m in enumerate(measures):
        y = top_pad + k * 20
        lx = left + bar_w * len(years) + 20
        out.append(f'<rect x="{lx}" y="{y}" width="12" height="12" fill="{colours[m]}"/>'
                   f'<text class="legend" x="{lx + 18}" y="{y + 11}">{escape(m.replace("_", " "))}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _y_axis(left, top_pad, plot_h, top, plot_w, unit="") -> list[str]:
    """Four gridlines at whole-number steps up to ``top`` (which callers round with _nice_top)."""
    out = []
    for k in range(5):
        value = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}{unit}</text>')
    return out


def _nice_top(value: int) -> int:
    """The top of an axis of four equal whole-number steps (1, 2, 3, 5, 10, 20, 25, 50, ...)."""
    steps = [1, 2, 3, 5]
    scale = 10
    while steps[-1] * 4 < value:
        steps += [int(m * scale) for m in (1, 2, 2.5, 5)]
        scale *= 10
    return 4 * next(step for step in steps if step * 4 >= value)


def percent_by_year_svg(data: dict, database: str) -> Markup:
    """The chosen measure's percentages per year: median line, min-max whisker, and the
    articles as dots (each links to its article) when there are few enough to read."""
    values = data["values"]
    years = _years(values)
    if not years:
        return Markup("")
    by_year: dict[int, list] = {y: [] for y in years}
    for v in values:
        by_year[v["year"]].append(v)
    left, top_pad, plot_h = 50, 20, 260
    step = max(12, min(60, 760 // len(years)))
    width, height = left + step * len(years) + 30, top_pad + plot_h + 50
    ypos = lambda p: top_pad + plot_h - plot_h * max(0.0, min(100.0, p)) / 100  # noqa: E731
    out = [f'<svg class="cryokb-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="Percentages per year">']
    out += _y_axis(left, top_pad, plot_h, 100, step * len(years), "%")
    medians = []
    for i, year in enumerate(years):
        x = left + i * step + step / 2
        points = [v["percent"] for v in by_year[year]]
        if len(years) <= 25 or year % 5 == 0:
            out.append(f'<text class="tick" x="{x}" y="{top_pad + plot_h + 16}" text-anchor="middle">{year}</text>')
        if not points:
            continue
        med = statistics.median(points)
        medians.append((x, ypos(med)))
        out.append(f'<line class="whisker" x1="{x}" x2="{x}" y1="{ypos(min(points)):.1f}" y2="{ypos(max(points)):.1f}">'
                   f'<title>{year}: median {med:g}% of {len(points)} values</title></line>')
    if medians:
        out.append('<polyline class="median" fill="none" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in medians) + '"/>')
    if len(values) <= MAX_DOTS:
        for idx, v in enumerate(values):
            i = years.index(v["year"])
            jitter = ((idx * 37) % 11 - 5) * step / 30
            x = left + i * step + step / 2 + jitter
            tip = f"{v['year']}: {v['percent']:g}% \u2014 {v['title'] or ''} (PMID {v['pmid']})"
            out.append(f'<a href="/{escape(database)}/articles/{escape(v["pmid"])}"><circle class="dot" cx="{x:.1f}" '
                       f'cy="{ypos(v["percent"]):.1f}" r="4"><title>{escape(tip)}</title></circle></a>')
    out.append("</svg>")
    return Markup("".join(out))


# --- the concept graph ----------------------------------------------------------------------


async def graph_data(datasette) -> dict:
    """Nodes with positions from a networkx spring layout, and weighted edges (no PMIDs)."""
    state, db = _db(datasette)
    if "graph" not in state.cache:
        import networkx as nx

        tables = set(await db.table_names())
        nodes, edges = [], []
        if "graph_nodes" in tables:
            nodes = [dict(r) for r in await db.execute(
                "select id, field, label, articles, degree, centrality, community from graph_nodes")]
            edges = [dict(r) for r in await db.execute("select source, target, weight from graph_edges")]
        g = nx.Graph()
        g.add_nodes_from(n["id"] for n in nodes)
        g.add_weighted_edges_from((e["source"], e["target"], e["weight"]) for e in edges)
        positions = nx.spring_layout(g, weight="weight", seed=42, k=3.0 / math.sqrt(max(1, len(nodes))),
                                     iterations=200) if nodes else {}
        top_articles = max((n["articles"] or 0 for n in nodes), default=1) or 1
        far = max((math.hypot(*positions[n["id"]]) for n in nodes), default=1) or 1
        for n in nodes:
            x, y = (float(v) / far for v in positions[n["id"]])
            rho = math.hypot(x, y)
            stretch = rho ** 0.5 / rho if rho > 0 else 1  # fisheye: open up the crowded centre
            n["x"], n["y"] = 470 + 400 * x * stretch, 350 + 310 * y * stretch
            n["r"] = round(5 + 16 * math.sqrt((n["articles"] or 0) / top_articles), 1)
        spread(nodes)
        state.cache["graph"] = {"nodes": nodes, "edges": edges}
    return state.cache["graph"]


async def graph_json(datasette, request):
    return Response.json(await graph_data(datasette))


async def graph_page(datasette, request):
    data = await graph_data(datasette)
    return await _render(datasette, request, "cryokb_graph.html", "Concept graph", svg=graph_svg(data),
                         empty=not data["nodes"], fields=list(FIELD_COLOURS.items()))


def spread(nodes: list[dict], width: float = 1000, height: float = 700, gap: float = 4, rounds: int = 60) -> None:
    """Push overlapping circles apart (a force layout piles the busiest concepts in the middle)."""
    for _ in range(rounds):
        moved = False
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:]:
                dx, dy = b["x"] - a["x"], b["y"] - a["y"]
                dist = math.hypot(dx, dy) or 0.01
                need = a["r"] + b["r"] + gap
                if dist < need:
                    push = (need - dist) / 2
                    ux, uy = (dx, dy) if dist > 0.01 else (1.0, 0.0)
                    norm = math.hypot(ux, uy)
                    a["x"] -= push * ux / norm
                    a["y"] -= push * uy / norm
                    b["x"] += push * ux / norm
                    b["y"] += push * uy / norm
                    moved = True
        for n in nodes:
            n["x"] = min(width - n["r"] - 2, max(n["r"] + 2, n["x"]))
            n["y"] = min(height - n["r"] - 2, max(n["r"] + 2, n["y"]))
        if not moved:
            break
    for n in nodes:
        n["x"], n["y"] = round(n["x"], 1), round(n["y"], 1)


def graph_svg(data: dict) -> Markup:
    nodes = {n["id"]: n for n in data["nodes"]}
    top_weight = max((e["weight"] for e in data["edges"]), default=1)
    out = ['<svg id="cryokb-graph" class="cryokb-graph" xmlns="http://www.w3.org/2000/svg" '
           'viewBox="0 0 1000 700" role="img" aria-label="Concept graph"><g class="viewport">']
    out.append('<g class="edges">')
    for e in data["edges"]:
        a, b = nodes.get(e["source"]), nodes.get(e["target"])
        if a is None or b is None:
            continue
        width = 0.6 + 5 * e["weight"] / top_weight
        out.append(f'<line class="edge" data-source="{escape(e["source"])}" data-target="{escape(e["target"])}" '
                   f'data-weight="{e["weight"]}" x1="{a["x"]}" y1="{a["y"]}" x2="{b["x"]}" y2="{b["y"]}" '
                   f'stroke-width="{width:.2f}"><title>{escape(a["label"])} \u2013 {escape(b["label"])}: '
                   f'{e["weight"]} articles</title></line>')
    out.append('</g><g class="nodes">')
    for n in nodes.values():
        r = n["r"]
        colour = FIELD_COLOURS.get(n["field"], "#777777")
        out.append(f'<g class="node" data-id="{escape(n["id"])}" data-field="{escape(n["field"] or "")}" '
                   f'data-articles="{n["articles"] or 0}" transform="translate({n["x"]},{n["y"]})">'
                   f'<circle r="{r:.1f}" fill="{colour}"/>'
                   f'<text x="{r + 3:.1f}" y="4">{escape(n["label"] or n["id"])}</text>'
                   f'<title>{escape(n["label"] or n["id"])} ({escape(n["field"] or "")}): {n["articles"]} articles, '
                   f'{n["degree"]} linked concepts</title></g>')
    out.append("</g></g></svg>")
    return Markup("".join(out))


def concept_link(database: str, concept: str, field_name: str | None) -> str:
    """Where 'all articles with this concept' lives in Datasette."""
    if field_name == "outcomes":
        return (f"/{database}/outcome_sentences?measure={urllib.parse.quote(concept)}"
                "&relevant=1&retracted=0")
    if field_name:
        return (f"/{database}/articles?relevant=1&retracted=0&deleted=0"
                f"&{FILTER_ARG}={urllib.parse.quote(concept)}")
    return f"/{database}/article_concepts?concept={urllib.parse.quote(concept)}"


async def graph_node_json(datasette, request):
    state, db = _db(datasette)
    concept = request.args.get("id", "")
    if "graph_nodes" not in await db.table_names():
        return Response.json({"error": "no concept graph yet: run cryokb build"}, status=404)
    node = (await db.execute("select id, field, label, articles, degree from graph_nodes where id = ?", [concept])).first()
    if node is None:
        return Response.json({"error": f"no concept {concept!r} in the graph"}, status=404)
    node = dict(node)
    if node["field"] == "outcomes":
        sql = ("select distinct a.pmid, a.title, a.pub_year from outcomes o join articles a on a.pmid = o.pmid "
               "where o.measure = ? and a.relevant = 1 and a.retracted = 0 and a.deleted = 0 "
               "order by a.pub_year desc, a.pmid limit ?")
    else:
        sql = ("select a.pmid, a.title, a.pub_year from article_concepts ac join articles a on a.pmid = ac.pmid "
               "where ac.concept = ? and ac.negated = 0 and a.relevant = 1 and a.retracted = 0 and a.deleted = 0 "
               "order by a.pub_year desc, a.pmid limit ?")
    articles = [dict(r) for r in await db.execute(sql, [concept, ARTICLES_PER_PANEL])]
    return Response.json({"node": node, "articles": articles,
                          "all_url": concept_link(state.database, concept, node["field"]),
                          # the table of an outcome lists its values, several an article
                          "all_label": OUTCOMES_LABEL if node["field"] == "outcomes" else None})


async def graph_edge_json(datasette, request):
    state, db = _db(datasette)
    source, target = request.args.get("source", ""), request.args.get("target", "")
    if "graph_edges" not in await db.table_names():
        return Response.json({"error": "no concept graph yet: run cryokb build"}, status=404)
    row = (await db.execute("select source, target, weight, pmids from graph_edges where "
                            "(source = ? and target = ?) or (source = ? and target = ?)",
                            [source, target, target, source])).first()
    if row is None:
        return Response.json({"error": f"no link between {source!r} and {target!r}"}, status=404)
    pmids = json.loads(row["pmids"] or "[]")
    shown = pmids[:ARTICLES_PER_PANEL]
    marks = ",".join("?" * len(shown))
    titles = {r["pmid"]: r for r in await db.execute(
        f"select pmid, title, pub_year from articles where pmid in ({marks})", shown)} if shown else {}
    articles = [dict(titles[p]) for p in shown if p in titles]
    url = f"/{state.database}/articles?pmid__in={urllib.parse.quote(','.join(shown))}"
    return Response.json({"source": row["source"], "target": row["target"], "weight": row["weight"],
                          "articles": articles, "all_url": url, "truncated": len(pmids) > len(shown)})

