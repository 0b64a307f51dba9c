"""The two analyses a reviewer asks for, as data with derived results.

* **Prior art** (``prior_art.yaml``): every charted element of every loaded claim against
  every reference dated before the priority date (role ``prior-art``). Status: disclosed,
  partly disclosed, not disclosed or undetermined, with reasoning and pinpointed citations of
  the reference's own text; where the engine has an executable model of the reference (a
  mechanism whose ``reference`` is that reference), the cell names the events that model
  emits, and a run counts them. Below it, candidate combinations for a reviewer.
* **Designs** (``chart.yaml``): every element against every later design (Kim 2017, Romanov
  2022 and 2023, KSM and zram today), each an engine mechanism, with the engine's evidence
  from a run; plus a points-of-difference summary per design, computed from the cells.

Elements may be split into sub-limitations (``limitations.yaml``); a cell that is neither
fully met nor not met names the state of each part. A claim's status against a subject is
computed, never typed: the weakest status over its elements, and for a dependent claim also
over its parent claims. Statuses describe what a mechanism or a document does; they state no
legal effect.
"""
from __future__ import annotations

from pathlib import Path

from engine.errors import InputError

from .model import ClaimChartBundle, Limitations, PriorArtAnalysis

#: weakest first: a claim takes the weakest status of its elements (and of its parent claims)
PRIOR_ART_ORDER = ("not disclosed", "partly disclosed", "undetermined", "disclosed")
DESIGN_ORDER = ("absent", "partial", "undetermined", "present")
FULL = {"prior-art": "disclosed", "designs": "present"}
NONE = {"prior-art": "not disclosed", "designs": "absent"}
PARTIAL = {"prior-art": "partly disclosed", "designs": "partial"}
ORDER = {"prior-art": PRIOR_ART_ORDER, "designs": DESIGN_ORDER}
#: the later designs, in the order the issue names them, and the claimed method's model
DESIGN_KINDS = ("design", "baseline")


def data_dir(bundle: ClaimChartBundle, base: Path | None = None) -> Path:
    from .store import DATA
    return Path(base) if base is not None else DATA / bundle.patent.number


def load_limitations(bundle: ClaimChartBundle, base: Path | None = None) -> Limitations:
    from .store import load_yaml
    p = data_dir(bundle, base) / "limitations.yaml"
    if not p.exists():
        return Limitations(patent=bundle.patent.number)
    from pydantic import ValidationError
    from .store import validation_error
    try:
        return Limitations.model_validate(load_yaml(p))
    except ValidationError as e:
        raise validation_error(p, e) from None


def load_prior_art(bundle: ClaimChartBundle, base: Path | None = None, path: Path | None = None) -> PriorArtAnalysis | None:
    from pydantic import ValidationError
    from .store import load_yaml, validation_error
    p = Path(path) if path is not None else data_dir(bundle, base) / "prior_art.yaml"
    if not p.exists():
        return None
    d = load_yaml(p)
    if not isinstance(d, dict):
        raise InputError(f"{p}: expected a mapping with patent, references and cells")
    try:
        return PriorArtAnalysis.model_validate(d)
    except ValidationError as e:
        raise validation_error(p, e) from None


def aggregate(statuses: list[str], kind: str) -> str:
    """The status of a whole from the statuses of its parts: all met -> met; none met -> not
    met; met and undetermined parts only -> undetermined; otherwise partly met."""
    full, none, partial = FULL[kind], NONE[kind], PARTIAL[kind]
    s = set(statuses)
    if s == {full}:
        return full
    if s == {none}:
        return none
    if partial in s or (full in s and none in s):
        return partial
    return "undetermined"


def statuses_under_readings(parts: dict[str, str], turning: dict[str, dict[str, str]], kind: str) -> dict[str, str]:
    """A cell's status under each alternative of one construction, derived from its parts.

    ``parts``: sub-limitation -> status as the cell gives them; ``turning``: sub-limitation ->
    {alternative -> that part's status under the alternative} for the parts the construction
    turns. Every part named in ``turning`` must give the same alternatives. Each alternative's
    status is :func:`aggregate` of the parts with those parts replaced; a cell without parts
    takes the single turning entry (keyed by the element itself) as its status."""
    if parts and any(k not in parts for k in turning):
        raise ValueError(f"{', '.join(k for k in turning if k not in parts)} is not one of the cell's parts")
    if not parts and (len(turning) != 1 or any("." in k for k in turning)):
        raise ValueError("a cell without parts turns as a whole: give its parts to turn a sub-limitation")
    alts = None
    for per in turning.values():
        if alts is None:
            alts = list(per)
        elif set(per) != set(alts):
            raise ValueError(f"parts give different alternatives ({', '.join(alts)} / {', '.join(per)})")
    out = {}
    for alt in alts or []:
        if parts:
            out[alt] = aggregate([turning[k][alt] if k in turning else v for k, v in parts.items()], kind)
        else:
            out[alt] = next(iter(turning.values()))[alt]
    return out


def headline_status(by_construction: dict[str, dict[str, str]], kind: str) -> str | None:
    """The headline status a cell's construction map implies: the status every alternative of
    every construction gives, or "undetermined" when any two alternatives disagree; None when
    the cell names no construction."""
    statuses = {s for per in by_construction.values() for s in per.values()}
    if not statuses:
        return None
    return next(iter(statuses)) if len(statuses) == 1 else "undetermined"


def claim_statuses_under_readings(bundle: ClaimChartBundle, cells: dict[tuple[str, str], str],
                                  readings: dict[tuple[str, str], dict[str, dict[str, str]]], subjects: list[str],
                                  kind: str) -> list[dict]:
    """Where a claim's computed status turns on a construction: for each construction some cell
    names, the claim's status (as :func:`claim_statuses` computes it) with every cell that names
    the construction taking its status under each alternative in turn. ``readings``: (element,
    subject) -> the cell's by_construction map. Returns ``[{"claim", "subject", "construction",
    "statuses": {alternative: status}}]`` for the claims and subjects whose status differs
    between alternatives."""
    out = []
    by_c: dict[str, list[str]] = {}
    for per_c in readings.values():
        for cid, per in per_c.items():
            alts = by_c.setdefault(cid, [])
            alts += [a for a in per if a not in alts]
    for cid, alts in by_c.items():
        runs = {}
        for alt in alts:
            swapped = dict(cells)
            for key, per_c in readings.items():
                if cid in per_c and alt in per_c[cid]:
                    swapped[key] = per_c[cid][alt]
            runs[alt] = {(r["claim"], r["subject"]): r["status"]
                         for r in claim_statuses(bundle, swapped, subjects, kind)}
        for key in runs[alts[0]]:
            per = {alt: runs[alt][key] for alt in alts}
            if len(set(per.values())) > 1:
                out.append({"claim": key[0], "subject": key[1], "construction": cid, "statuses": per})
    return out


def weakest(statuses: list[str], kind: str) -> str:
    order = ORDER[kind]
    return min(statuses, key=order.index) if statuses else "undetermined"


def claim_statuses(bundle: ClaimChartBundle, cells: dict[tuple[str, str], str], subjects: list[str],
                   kind: str) -> list[dict]:
    """Per claim and subject, the weakest status over the claim's charted elements and (for a
    dependent claim) over its parent claims' statuses. ``cells`` maps (element, subject) to
    status. Returns ``[{"claim", "subject", "status", "own", "parents", "limited_by"}]``."""
    loaded = {c.number: c for c in bundle.claims if c.loaded}
    memo: dict[tuple[int, str], dict] = {}

    def one(n: int, subj: str, seen=()) -> dict:
        if (n, subj) in memo:
            return memo[(n, subj)]
        c = loaded[n]
        own = {e.id: cells.get((e.id, subj), "undetermined") for e in c.charted_elements()}
        statuses = list(own.values())
        parents = []
        for p in c.parents:
            if p in loaded and p not in seen and p != n:
                ps = one(p, subj, seen + (n,))
                parents.append({"claim": p, "status": ps["status"]})
                statuses.append(ps["status"])
        st = weakest(statuses, kind)
        limited = [e for e, s in own.items() if s == st] + [f"claim {p['claim']}" for p in parents if p["status"] == st]
        memo[(n, subj)] = {"claim": n, "subject": subj, "status": st, "own": weakest(list(own.values()), kind)
                           if own else "undetermined", "parents": parents, "limited_by": limited}
        return memo[(n, subj)]

    return [one(n, s) for n in sorted(loaded) for s in subjects]


def executable_models(reference: str) -> list[str]:
    """Engine mechanisms whose modelled version is this reference."""
    from engine.mechanisms import REGISTRY
    return [n for n, cls in REGISTRY.items() if getattr(cls, "reference", "") == reference]


def prior_art_references(bundle: ClaimChartBundle) -> list:
    """References in the role ``prior-art`` (the cut-off itself is checked by ``claims check``)."""
    return [r for r in bundle.references if r.role == "prior-art"]


def design_mechanisms(bundle: ClaimChartBundle) -> list[str]:
    """The chart's mechanisms that are later designs or today's mainline (not the claimed method)."""
    from engine.mechanisms import REGISTRY
    if bundle.chart is None:
        return []
    return [m for m in bundle.chart.mechanisms if getattr(REGISTRY.get(m), "kind", "") in DESIGN_KINDS]


def points_of_difference(bundle: ClaimChartBundle, limitations: Limitations | None = None) -> dict[str, list[dict]]:
    """Per design: each element (or sub-limitation) it does not fully have, with the neutral
    technical difference the chart states and the parts that do hold."""
    limitations = limitations or load_limitations(bundle)
    out: dict[str, list[dict]] = {}
    for m in design_mechanisms(bundle):
        diffs = []
        for r in bundle.chart.rows:
            if r.mechanism != m or r.status == "present":
                continue
            lacking = [k for k, v in r.parts.items() if v in ("absent", "partial")]
            open_ = [k for k, v in r.parts.items() if v == "undetermined"]
            holding = [k for k, v in r.parts.items() if v == "present"]
            if not r.parts:
                (open_ if r.status == "undetermined" else lacking).append(r.element)
            diffs.append({"element": r.element, "status": r.status, "lacking": lacking, "open": open_,
                          "holding": holding, "difference": r.difference})
        out[m] = diffs
    return out


def analyses(bundle: ClaimChartBundle, base: Path | None = None, run: dict | None = None) -> dict:
    """``{"prior_art": {...}, "designs": {...}}`` as ``claims show --json`` prints them.

    ``run`` (optional) maps mechanism name -> an evidence collector's ``result(kind, where)``
    function, so that event filters carry this run's counts and excerpts."""
    lim = load_limitations(bundle, base)
    subs = {k: [s.model_dump() for s in v] for k, v in lim.elements.items()}
    pa = load_prior_art(bundle, base)
    out: dict = {"prior_art": None, "designs": None, "patent_term": bundle.patent.term()}
    if pa is not None:
        refs = {r.id: r for r in bundle.references}
        models = {ref: executable_models(ref) for ref in pa.references}
        cells = []
        for c in pa.cells:
            d = c.model_dump(mode="json")
            mech = (models.get(c.reference) or [None])[0]
            d["model"] = mech
            for e in d["events"]:
                e["count"], e["samples"] = (run[mech](e["kind"], e["where"]) if run and mech in run else (None, []))
            cells.append(d)
        status = {(c.element, c.reference): c.status for c in pa.cells}
        out["prior_art"] = {
            "title": pa.title, "disclaimer": pa.disclaimer,
            "priority_date": bundle.patent.priority_date.isoformat() if bundle.patent.priority_date else None,
            "references": [{"id": r, "title": refs[r].title if r in refs else "", "date": refs[r].date if r in refs else "",
                            "version": refs[r].version if r in refs else "", "executable_models": models[r]}
                           for r in pa.references],
            "sublimitations": subs, "cells": cells,
            "claims": claim_statuses(bundle, status, pa.references, "prior-art"),
            "claims_under_readings": claim_statuses_under_readings(
                bundle, status, {(c.element, c.reference): c.by_construction for c in pa.cells if c.by_construction},
                pa.references, "prior-art"),
            "combinations": [dict(c.model_dump(mode="json"), flag="candidate for review; not a conclusion")
                             for c in pa.combinations]}
    if bundle.chart is not None:
        designs = design_mechanisms(bundle)
        cells = []
        for r in bundle.chart.rows:
            d = r.model_dump(mode="json")
            for e in d["evidence"]["events"]:
                e["count"], e["samples"] = (run[r.mechanism](e["kind"], e["where"]) if run and r.mechanism in run
                                            else (None, []))
            cells.append(d)
        status = {(r.element, r.mechanism): r.status for r in bundle.chart.rows}
        out["designs"] = {
            "title": bundle.chart.title, "disclaimer": bundle.chart.disclaimer, "designs": designs,
            "mechanisms": bundle.chart.mechanisms, "sublimitations": subs, "cells": cells,
            "claims": claim_statuses(bundle, status, bundle.chart.mechanisms, "designs"),
            "claims_under_readings": claim_statuses_under_readings(
                bundle, status, {(r.element, r.mechanism): r.by_construction for r in bundle.chart.rows
                                 if r.by_construction}, bundle.chart.mechanisms, "designs"),
            "points_of_difference": points_of_difference(bundle, lim)}
    return out


def summary_lines(bundle: ClaimChartBundle, base: Path | None = None) -> list[str]:
    """The two analyses in a few lines for ``claims show``: each claim's computed status against
    each reference and design, and the review state."""
    out = []
    d = analyses(bundle, base)
    for key, title in (("prior_art", "Prior art (before the priority date)"), ("designs", "Later designs")):
        a = d.get(key)
        if not a:
            continue
        subjects = [r["id"] for r in a["references"]] if key == "prior_art" else a["mechanisms"]
        review = {}
        for c in a["cells"]:
            review[c["reviewer_status"]] = review.get(c["reviewer_status"], 0) + 1
        out.append(f"{title}: {len(a['cells'])} cells; review: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(review.items())))
        by = {(c["claim"], c["subject"]): c for c in a["claims"]}
        for n in sorted({c["claim"] for c in a["claims"]}):
            cells = [f"{s} {by[(n, s)]['status']}" for s in subjects if (n, s) in by]
            out.append(f"  claim {n} (weakest of its elements and parent claims): " + "; ".join(cells))
        turning = [c for c in a["cells"] if c.get("by_construction")]
        if turning:
            counts: dict[str, int] = {}
            for c in turning:
                for cid in c["by_construction"]:
                    counts[cid] = counts.get(cid, 0) + 1
            out.append(f"  {len(turning)} cells give their status under each reading of a claim construction ("
                       + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
        for r in a.get("claims_under_readings", []):
            out.append(f"  under the readings of {r['construction']}, claim {r['claim']} x {r['subject']} is: "
                       + ", ".join(f"{v} under {k}" for k, v in r["statuses"].items()))
    if d.get("prior_art") and d["prior_art"]["combinations"]:
        out.append("Candidate combinations (for review; not a conclusion): "
                   + ", ".join(c["id"] for c in d["prior_art"]["combinations"]))
    return out
