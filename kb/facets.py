"""Concept facets and filters for the articles table, answered from the article_concepts index.

Datasette's array facet (``_facet_array``) and filter (``__arraycontains``) open every
matching article's JSON with ``json_each``, and the facet then takes a DISTINCT over whole
rows, abstracts included: at 100,000 articles an unfiltered articles page spent seconds
on its two array facets (and Datasette dropped them as timed out), a filtered one about
half a second. The same facts are rows of article_concepts (article, concept, field,
negated), indexed, so:

- ``?_concept=desmoid_tumor`` keeps the articles that affirm the concept; repeated, the
  concepts must all hold (AND), as selections of an array facet do. A concept key belongs
  to one field (article_concepts is keyed by article and concept), so no field is named.
- the ``concept`` facet type (``?_facet_concept=lesion_types``, or ``concept: lesion_types``
  among a table's facets in metadata) counts the page's articles per concept of a field,
  with links that toggle ``_concept``. All the page's concept facets come from one query.

The JSON array columns stay on articles, so ``_facet_array`` and ``__arraycontains`` work
as ever (and kb.datasette_plugin still narrows the latter through the index).
"""

from __future__ import annotations

import re

from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.utils import path_with_added_args, path_with_removed_args

FILTER_ARG = "_concept"
ARTICLES = "articles"
# Datasette's table SQL is "select <columns> from articles <where>": nothing after the table
# name means every article is on the page, and the counts can skip the articles table.
_UNFILTERED = re.compile(r"\sfrom\s+\[?articles\]?\s*$", re.IGNORECASE)


def concept_filter(keys: list[str]) -> tuple[list[str], dict]:
    """A where-clause and parameters that keep the articles affirming every concept in ``keys``.

    Several concepts make one INTERSECT subquery rather than one ``pmid in`` each: SQLite
    then looks up only the articles that have them all (a quarter less SQL time for two
    concepts that each match thousands of articles).
    """
    keys = list(dict.fromkeys(keys))
    if not keys:
        return [], {}
    params = {f"cryokb_c{n}": key for n, key in enumerate(keys)}
    sets = " intersect ".join(f"select pmid from article_concepts where concept = :{name} and negated = 0"
                              for name in params)
    return [f"pmid in ({sets})"], params


class ConceptFacet(Facet):
    """Articles per concept of an evidence field, counted in article_concepts."""

    type = "concept"

    async def suggest(self):
        return []

    async def facet_results(self):
        configs = [(c["source"], c["config"].get("column") or c["config"]["simple"]) for c in self.get_configs()]
        if self.table != ARTICLES or not configs:
            return [], []
        fields = [column for _, column in configs]
        try:
            counts = await self._counts(fields)
        except QueryInterrupted:
            return [], fields
        size = self.get_facet_size()
        selected = {value for key, value in self.get_querystring_pairs() if key == FILTER_ARG}
        results = []
        for source, column in configs:
            found = counts.get(column, [])
            results.append({
                "name": column,
                "type": self.type,
                "hideable": source != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet_concept": column})),
                "results": [self._value(row, row["value"] in selected) for row in found[:size]],
                "truncated": len(found) > size,
            })
        return results, []

    async def _counts(self, fields: list[str]) -> dict[str, list]:
        """Per field, its concepts with article counts, most frequent first."""
        names = ", ".join(f":cryokb_field{n}" for n in range(len(fields)))
        params = {f"cryokb_field{n}": name for n, name in enumerate(fields)}
        if _UNFILTERED.search(self.sql):
            source = "article_concepts ac"
        else:  # the page's own rows, then their concepts: CROSS JOIN keeps SQLite to that order
            source = f"({self.sql}) as inner_rows cross join article_concepts ac on ac.pmid = inner_rows.pmid"
            params.update(self.params)
        sql = (f"select counted.*, c.label as label from ("
               f"select ac.field as field, ac.concept as value, count(*) as count from {source} "
               f"where ac.negated = 0 and ac.field in ({names}) group by ac.field, ac.concept"
               f") as counted left join concepts c on c.key = counted.value "
               f"order by counted.field, counted.count desc, counted.value")
        rows = await self.ds.execute(self.database, sql, params, truncate=False,
                                     custom_time_limit=self.ds.setting("facet_time_limit_ms"))
        counts: dict[str, list] = {}
        for row in rows:
            counts.setdefault(row["field"], []).append(row)
        return counts

    def _value(self, row, selected: bool) -> dict:
        pair = {FILTER_ARG: row["value"]}
        path = path_with_removed_args(self.request, pair) if selected else path_with_added_args(self.request, pair)
        return {"value": row["value"], "label": row["label"] or row["value"].replace("_", " "),
                "count": row["count"], "toggle_url": self.ds.absolute_url(self.request, path),
                "selected": selected}
