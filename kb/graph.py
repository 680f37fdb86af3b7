"""The concept graph: which lesions, sites, indications, treatments and outcome
measures the literature reports together.

Built with networkx from the evidence tables, over relevant articles that are neither
retracted nor deleted. Two concepts are linked when they are reported in the same
article; the edge weight is the number of such articles, and the edge carries their
PMIDs so that every link can be traced back to its sources.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import networkx as nx

from kb.store import Store, transaction

GRAPH_FIELDS = ("lesion_types", "anatomic_sites", "indications", "treatments")
FORMATS = ("graphml", "gexf", "json")
SEED = 42


def article_concepts(store: Store) -> dict[str, list[tuple[str, str]]]:
    """PMID -> [(concept, field)] for every reported (not negated) concept and outcome measure."""
    marks = ",".join("?" * len(GRAPH_FIELDS))
    per_article: dict[str, set] = defaultdict(set)
    sql = (
        "select ac.pmid, ac.concept, ac.field from article_concepts ac join articles a on a.pmid = ac.pmid "
        f"where a.relevant = 1 and a.retracted = 0 and a.deleted = 0 and ac.negated = 0 and ac.field in ({marks}) "
        "union select o.pmid, o.measure, 'outcomes' from outcomes o join articles a on a.pmid = o.pmid "
        "where a.relevant = 1 and a.retracted = 0 and a.deleted = 0"
    )
    for pmid, concept, field in store.db.execute(sql, list(GRAPH_FIELDS)):
        per_article[pmid].add((concept, field))
    return {pmid: sorted(items) for pmid, items in per_article.items()}


def _labels(store: Store) -> dict[str, str]:
    if "concepts" not in store.db.table_names():
        return {}
    return {key: label for key, label in store.db.execute("select key, label from concepts")}


def concept_graph(store: Store) -> nx.Graph:
    """Co-occurrence graph of concepts, weighted by article count, PMIDs on each edge."""
    labels = _labels(store)
    graph = nx.Graph(name="cryokb concept co-occurrence")
    for pmid, items in article_concepts(store).items():
        for concept, field in items:
            if concept not in graph:
                graph.add_node(concept, field=field, label=labels.get(concept, concept), articles=0)
            graph.nodes[concept]["articles"] += 1
        for (a, _), (b, _) in combinations(items, 2):
            if graph.has_edge(a, b):
                graph[a][b]["weight"] += 1
                graph[a][b]["pmids"].append(pmid)
            else:
                graph.add_edge(a, b, weight=1, pmids=[pmid])
    return graph


def bipartite_graph(store: Store) -> nx.Graph:
    """Articles on one side, concepts on the other: the graph behind the co-occurrences."""
    labels = _labels(store)
    graph = nx.Graph(name="cryokb article-concept")
    titles = dict(store.db.execute("select pmid, title from articles where relevant = 1"))
    for pmid, items in article_concepts(store).items():
        graph.add_node(f"pmid:{pmid}", bipartite=0, kind="article", label=titles.get(pmid, pmid))
        for concept, field in items:
            graph.add_node(concept, bipartite=1, kind="concept", field=field, label=labels.get(concept, concept))
            graph.add_edge(f"pmid:{pmid}", concept, weight=1)
    return graph


def add_metrics(graph: nx.Graph) -> nx.Graph:
    """Degree, weighted degree, eigenvector centrality and Louvain communities, on the nodes."""
    if graph.number_of_nodes() == 0:
        return graph
    weighted = dict(graph.degree(weight="weight"))
    centrality = {}
    if graph.number_of_edges():
        try:
            centrality = nx.eigenvector_centrality(graph, weight="weight", max_iter=1000)
        except nx.PowerIterationFailedConvergence:  # a graph of disconnected pairs can oscillate
            centrality = nx.degree_centrality(graph)
    communities = nx.community.louvain_communities(graph, weight="weight", seed=SEED)
    community_of = {node: index for index, members in enumerate(
        sorted(communities, key=lambda c: (-len(c), sorted(c)))) for node in members}
    for node, data in graph.nodes(data=True):
        data["degree"] = graph.degree(node)
        data["weighted_degree"] = weighted[node]
        data["centrality"] = round(float(abs(centrality.get(node, 0.0))), 6)
        data["community"] = community_of[node]
    return graph


def save_graph(store: Store, graph: nx.Graph) -> None:
    """Replace graph_nodes and graph_edges with this graph, in one transaction."""
    db = store.db
    nodes = [{"id": node, "kind": "concept", "field": d.get("field"), "label": d.get("label"),
              "articles": d.get("articles", 0), "degree": d.get("degree", 0),
              "weighted_degree": d.get("weighted_degree", 0), "centrality": d.get("centrality", 0.0),
              "community": d.get("community")} for node, d in graph.nodes(data=True)]
    edges = [{"source": a, "target": b, "kind": "co-occurrence", "weight": d["weight"],
              "pmids": json.dumps(sorted(d["pmids"]))} for a, b, d in graph.edges(data=True)]
    with transaction(db):
        db["graph_nodes"].create({"id": str, "kind": str, "field": str, "label": str, "articles": int,
                                  "degree": int, "weighted_degree": int, "centrality": float, "community": int},
                                 pk="id", if_not_exists=True)
        db["graph_edges"].create({"source": str, "target": str, "kind": str, "weight": int, "pmids": str},
                                 pk=("source", "target"),
                                 foreign_keys=[("source", "graph_nodes", "id"), ("target", "graph_nodes", "id")],
                                 if_not_exists=True)
        db.execute("delete from graph_edges")
        db.execute("delete from graph_nodes")
        db["graph_nodes"].insert_all(nodes, pk="id")
        db["graph_edges"].insert_all(edges, pk=("source", "target"))
    for table, columns in (("graph_nodes", ["field"]), ("graph_nodes", ["community"]),
                           ("graph_edges", ["target"]), ("graph_edges", ["weight"])):
        db[table].create_index(columns, if_not_exists=True)


def rebuild(store: Store) -> nx.Graph:
    graph = add_metrics(concept_graph(store))
    save_graph(store, graph)
    return graph


def export(graph: nx.Graph, fmt: str, path: str | Path) -> None:
    """Write the graph for Gephi (GEXF, GraphML) or Cytoscape and the web (node-link JSON).

    GraphML and GEXF hold no lists, so each edge's PMIDs are written as a
    space-separated string there.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        Path(path).write_text(json.dumps(nx.node_link_data(graph, edges="links"), indent=1))
        return
    flat = graph.copy()
    for _, _, data in flat.edges(data=True):
        if "pmids" in data:
            data["pmids"] = " ".join(data["pmids"])
    flat.graph = {k: v for k, v in flat.graph.items() if isinstance(v, (str, int, float))}
    if fmt == "graphml":
        nx.write_graphml(flat, path)
    else:
        nx.write_gexf(flat, path)
