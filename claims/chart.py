"""Checking a claim chart: every element against every mechanism, with evidence that exists.

``check_chart`` returns one line per problem (an empty list means the chart is complete):

* a charted claim element with no row for some mechanism (the all-elements rule);
* a row naming an element or a mechanism that does not exist, or a duplicate row;
* evidence naming an event type the engine does not emit;
* a citation naming a reference that is not in the reference list;
* reasoning that states a legal conclusion (the chart is technical evidence only).

Malformed YAML, ids that YAML 1.1 turned into booleans or numbers, and a reference without a
date are rejected when the chart is loaded (:mod:`claims.store`).
"""
from __future__ import annotations

import re

from .model import ClaimChartBundle

LEGAL_CONCLUSIONS = re.compile(r"\b(infring\w*|invalid(?:ity|ated|ates)?|anticipat\w*|unpatentable|"
                               r"willful\w*|literally\s+reads)\b", re.I)


def engine_mechanisms() -> list[str]:
    from engine.mechanisms import DEFAULT_ORDER
    return list(DEFAULT_ORDER)


def engine_event_kinds() -> set[str]:
    from engine.events import all_event_types
    return set(all_event_types())


def charted_elements(bundle: ClaimChartBundle) -> dict[str, int]:
    """element id -> claim number, for the claims the chart covers."""
    want = set(bundle.chart.claims) if bundle.chart else {c.number for c in bundle.claims}
    out = {}
    for c in bundle.claims:
        if c.number in want:
            for e in c.charted_elements():
                out[e.id] = c.number
    return out


def check_chart(bundle: ClaimChartBundle, where: str = "chart") -> list[str]:
    chart = bundle.chart
    if chart is None:
        return [f"{where}: no chart"]
    problems = []
    known_mechs = engine_mechanisms()
    kinds = engine_event_kinds()
    all_elements = {e.id for c in bundle.claims for e in c.elements}
    elements = charted_elements(bundle)
    refs = {r.id for r in bundle.references}
    claims_by_no = {c.number: c for c in bundle.claims}
    for n in chart.claims:
        c = claims_by_no.get(n)
        if c is None:
            problems.append(f"{where}: claim {n} is charted but the patent has no claim {n}")
        elif not c.loaded:
            problems.append(f"{where}: claim {n} is charted but not loaded ({c.how_to_load})")
    for m in chart.mechanisms:
        if m not in known_mechs:
            problems.append(f"{where}: mechanism {m!r} is not one of the engine's ({', '.join(known_mechs)})")
    missing_mechs = [m for m in known_mechs if m not in chart.mechanisms]
    for m in missing_mechs:
        problems.append(f"{where}: the chart leaves out the engine's mechanism {m!r}")
    seen = set()
    for i, row in enumerate(chart.rows):
        tag = f"{where}: rows[{i}] ({row.element} x {row.mechanism})"
        if row.element not in all_elements:
            problems.append(f"{tag}: no claim element {row.element!r} exists")
        elif row.element not in elements:
            problems.append(f"{tag}: element {row.element!r} is not charted (a reference phrase, or a claim not in the chart)")
        if row.mechanism not in known_mechs:
            problems.append(f"{tag}: no mechanism {row.mechanism!r} exists")
        key = (row.element, row.mechanism)
        if key in seen:
            problems.append(f"{tag}: duplicate row")
        seen.add(key)
        for ev in row.evidence.events:
            if ev.kind not in kinds:
                problems.append(f"{tag}: evidence names event type {ev.kind!r}, which the engine does not emit")
        for cit in row.evidence.citations:
            if cit.reference not in refs:
                problems.append(f"{tag}: citation names reference {cit.reference!r}, which is not in the reference list")
        m = LEGAL_CONCLUSIONS.search(row.reasoning)
        if m:
            problems.append(f"{tag}: reasoning states a legal conclusion ({m.group(0)!r}); keep it to technical evidence")
    for el in elements:
        for mech in chart.mechanisms:
            if mech in known_mechs and (el, mech) not in seen:
                problems.append(f"{where}: claim element {el} has no row for mechanism {mech}")
    return problems


def prior_art_flags(bundle: ClaimChartBundle) -> list[dict]:
    """Each reference with whether its date precedes the priority date: a flagged
    suggestion for a reviewer, never a conclusion."""
    pd = bundle.patent.priority_date
    out = []
    for r in bundle.references:
        before = r.predates(pd)
        out.append({"id": r.id, "title": r.title, "date": r.date, "date_kind": r.date_kind,
                    "predates_priority": before,
                    "flag": {True: "dated before the priority date (candidate prior art; for review)",
                             False: "dated on or after the priority date",
                             None: "date too coarse to place against the priority date"}[before]})
    return out


def chart_frame(bundle: ClaimChartBundle, field: str = "status"):
    """The chart as a pandas table: one row per element, one column per mechanism."""
    import pandas as pd
    rows = {}
    for r in bundle.chart.rows:
        rows.setdefault(r.element, {})[r.mechanism] = getattr(r, field)
    order = [e for e in dict.fromkeys(r.element for r in bundle.chart.rows)]
    return pd.DataFrame([rows[e] for e in order], index=pd.Index(order, name="element"))[bundle.chart.mechanisms]
