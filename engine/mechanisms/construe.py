"""Run a mechanism under several readings of a claim and compare their decisions page by page.

A *reading* is a plain mapping of engine parameters (for the claimed method, the
construction parameters of :mod:`.patent_claim1`). :func:`construe_runs` runs the mechanism
on one workload under a default reading, under each alternative of each construction (that
alternative's parameters over the default, the other constructions at their defaults), and
under any combination asked for, and reports for each: the pages shared through each size
branch, saved, metadata and net bytes, whether every page read back exactly, and how its
page-by-page decisions differ from the default reading's (counts by kind, and examples).

The engine knows nothing of claim words here: the claim data (``claims/constructions.py``)
turns construction and alternative ids into these mappings. Nothing here says which reading
is right; it shows what each one does.
"""
from __future__ import annotations

from collections import Counter

from .base import Workload
from . import make

#: how many example pages to give per alternative
EXAMPLES = 5


def _key(params: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def _summary(mech) -> dict:
    r = mech.result()
    out = {"variant": r["variant"], "construction": r.get("construction", {}),
           "pages_shared_small": r.get("pages_shared_small", 0), "pages_shared_large": r.get("pages_shared_large", 0),
           "pages_merged": r["pages_merged"], "saved_bytes": r["saved_bytes"], "metadata_bytes": r["metadata_bytes"],
           "net_saved_bytes": r["net_saved_bytes"],
           "ram_net_saved_bytes": r.get("accounting", {}).get("ram_net_saved_bytes", r["net_saved_bytes"]),
           "verified_readback": r["verified_readback"], "work": r["work"]}
    if "mm_stat" in r:
        out["mem_used_total"] = r["mm_stat"]["mem_used_total"]
    if "accounting" in r:
        out["accounting"] = r["accounting"]
    return out


def _run(name: str, workload: Workload, params: dict, base: dict) -> tuple[dict, dict, dict]:
    mech = make(name, **{**base, **params})
    mech.run(workload)
    page_of = {(mm.pid, va): i for i, (mm, va) in enumerate(mech.where_)}
    decisions = {page_of[k]: d for k, d in getattr(mech, "decisions_", {}).items() if k in page_of}
    summary = _summary(mech)
    mech.release()
    return summary, decisions, page_of


def describe_decision(d, page_of: dict) -> dict | None:
    """A decision as plain data: branch, action, and the page index it was mapped to."""
    if d is None:
        return None
    out = {"branch": d.branch, "action": d.action}
    if d.target is not None:
        out["with_page"] = page_of.get(tuple(d.target))
    return out


def _kind(a, b) -> str:
    def word(d):
        return "not swapped" if d is None else f"{d.action} ({d.branch})"
    if a is not None and b is not None and (a.branch, a.action) == (b.branch, b.action):
        return f"{word(a)}, with another page"
    return f"{word(a)} -> {word(b)}"


def compare_decisions(default: dict, other: dict, page_of: dict, examples: int = EXAMPLES) -> dict:
    """How ``other``'s decisions (page index -> Decision) differ from ``default``'s."""
    differing = sorted(i for i in default.keys() | other.keys() if default.get(i) != other.get(i))
    kinds = Counter(_kind(default.get(i), other.get(i)) for i in differing)

    def action(d):
        return None if d is None else d.action
    # examples: pages whose outcome (shared, stored, refused) changed first, then the rest
    shown = sorted(differing, key=lambda i: (action(default.get(i)) == action(other.get(i)), i))[:examples]
    return {"differs_from_default": len(differing), "differences": dict(sorted(kinds.items())),
            "examples": [{"page": i, "default": describe_decision(default.get(i), page_of),
                          "this": describe_decision(other.get(i), page_of)} for i in shown]}


def construe_runs(workload: Workload, constructions: list[dict], grid: list[dict] = (), *,
                  mechanism: str = "patent_claim1", base_params: dict | None = None,
                  examples: int = EXAMPLES) -> dict:
    """Run ``mechanism`` on ``workload`` under every reading.

    ``constructions``: ``[{"id", "default": alternative id, "alternatives": [{"id", "params"}]}]``.
    The default reading is every construction's default alternative together. ``grid``:
    ``[{"id", "params"}]``, combinations run over the default reading. ``base_params`` are
    passed to every run (hash function, compressor, ...). Runs with equal parameters are made
    once. Returns ``{"default": summary, "constructions": [{"id", "alternatives": [summary +
    comparison]}], "grid": [...]}``.
    """
    base = dict(base_params or {})
    default_params: dict = {}
    for c in constructions:
        alt = next(a for a in c["alternatives"] if a["id"] == c["default"])
        default_params.update(alt["params"])
    cache: dict[tuple, tuple] = {}

    def run(params: dict):
        full = {**default_params, **params}
        k = _key(full)
        if k not in cache:
            cache[k] = _run(mechanism, workload, full, base)
        return cache[k], full

    (dsum, ddec, page_of), _ = run({})
    out = {"default": {"params": default_params, **dsum}, "constructions": [], "grid": []}
    for c in constructions:
        alts = []
        for a in c["alternatives"]:
            (s, dec, _p), full = run(a["params"])
            alts.append({"id": a["id"], "params": a["params"], "default": a["id"] == c["default"], **s,
                         **compare_decisions(ddec, dec, page_of, examples)})
        out["constructions"].append({"id": c["id"], "alternatives": alts})
    for g in grid:
        (s, dec, _p), full = run(g["params"])
        out["grid"].append({"id": g["id"], "params": g["params"], **s,
                            **compare_decisions(ddec, dec, page_of, examples)})
    out["runs"] = len(cache)
    return out


__all__ = ["construe_runs", "compare_decisions", "describe_decision"]
