"""The claim dependency graph (networkx): a tree view and a dependency matrix."""
from __future__ import annotations

import html

import networkx as nx

from .model import Claim


def dependency_graph(claims: list[Claim]) -> nx.DiGraph:
    """Nodes are claim numbers (with ``independent`` and ``loaded``); edges parent -> child."""
    g = nx.DiGraph()
    for c in claims:
        g.add_node(c.number, independent=c.independent, loaded=c.loaded,
                   label=(c.preamble or c.text[:60] or "not loaded"))
    for c in claims:
        for p in c.parents:
            g.add_edge(p, c.number)
    return g


def roots(g: nx.DiGraph) -> list[int]:
    return sorted(n for n in g.nodes if g.in_degree(n) == 0)


def render_tree(g: nx.DiGraph) -> str:
    """Text tree: independent claims at the root, dependents indented under their parents."""
    lines = []

    def walk(n, depth, seen):
        d = g.nodes[n]
        kind = "not loaded" if not d.get("loaded", True) else ("independent" if d.get("independent") else "dependent")
        lines.append(f"{'    ' * depth}claim {n} ({kind})")
        for ch in sorted(g.successors(n)):
            if ch not in seen:
                walk(ch, depth + 1, seen | {ch})

    for r in roots(g):
        walk(r, 0, {r})
    return "\n".join(lines)


def render_tree_html(g: nx.DiGraph) -> str:
    def walk(n, seen):
        d = g.nodes[n]
        kind = "not loaded" if not d.get("loaded", True) else ("independent" if d.get("independent") else "dependent")
        kids = [walk(ch, seen | {ch}) for ch in sorted(g.successors(n)) if ch not in seen]
        inner = f"<ul>{''.join(kids)}</ul>" if kids else ""
        return f'<li class="claim-{kind.replace(" ", "-")}">claim {n} <small>({html.escape(kind)})</small>{inner}</li>'
    return '<ul class="claim-tree">' + "".join(walk(r, {r}) for r in roots(g)) + "</ul>"


def dependency_matrix(claims: list[Claim]):
    """pandas DataFrame: row claim depends on column claim ("direct" / "via N" / "")."""
    import pandas as pd
    g = dependency_graph(claims)
    nums = sorted(g.nodes)
    data = []
    for r in nums:
        row = []
        anc = nx.ancestors(g, r)
        for c in nums:
            if g.has_edge(c, r):
                row.append("direct")
            elif c in anc:
                path = nx.shortest_path(g, c, r)
                row.append("via " + ", ".join(str(x) for x in path[1:-1]))
            else:
                row.append("")
        data.append(row)
    return pd.DataFrame(data, index=pd.Index(nums, name="claim"), columns=nums)
