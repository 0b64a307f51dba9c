"""The report's two analyses: prior art (with the events of each reference's executable model,
run on the report's memory) and the later designs' points of difference and review state.

The data, the derived claim statuses and the points of difference come from
:mod:`claims.analysis`; this module runs the executable models and shapes rows for the
template and the CSV exports.
"""
from __future__ import annotations

from claims.analysis import (claim_statuses, claim_statuses_under_readings, design_mechanisms, executable_models,
                             load_limitations, load_prior_art, points_of_difference)
from engine.events import EventBus
from engine.mechanisms import Workload, make

from .constructions import cell_readings, constructions_for, design_readings, reading_params, readings_text
from .evidence import EvidenceCollector
from .print import pinpoint_url

PRIOR_ART_ORDER = ("disclosed", "partly disclosed", "undetermined", "not disclosed")
REVIEW_ORDER = ("draft", "reviewed", "disputed")


def review_of(x) -> dict:
    return {"status": x.reviewer_status, "reviewer": x.reviewer,
            "date": x.reviewed_on.isoformat() if x.reviewed_on else "", "comment": x.review_comment}


def review_columns(x) -> dict:
    """The review state as CSV columns (the same four in every export)."""
    return {"reviewer_status": x.reviewer_status, "reviewer": x.reviewer,
            "reviewed_on": x.reviewed_on.isoformat() if x.reviewed_on else "", "review_comment": x.review_comment}


def review_counts(items) -> dict:
    return {s: sum(1 for x in items if x.reviewer_status == s) for s in REVIEW_ORDER}


def run_models(workload: Workload, pa) -> dict:
    """Run each prior-art reference's executable model on the workload with an event listener
    for the filters its cells name; ``{reference: (mechanism name, collector, result)}``."""
    out = {}
    for ref in pa.references:
        models = executable_models(ref)
        if not models:
            continue
        name = models[0]
        filters = [(e.kind, e.where) for c in pa.cells if c.reference == ref for e in c.events]
        coll = EvidenceCollector(filters)
        bus = EventBus()
        bus.subscribe(coll)
        mech = make(name)
        mech.run(workload, bus=bus)
        out[ref] = (name, coll, mech.result())
        mech.release()
    return out


def combination_evidence(comb, workload: Workload) -> dict | None:
    """Where the engine can compose a combination's references (one's identity test and
    remapping on the other's store, its size rule as the branch), run the composition and the
    claimed method on the report's pages and say how their decisions compare: evidence for the
    reviewer's question, never an answer to it."""
    from engine.mechanisms.combine import SHARERS, STORES, compare_with_claim, summary_line
    models = [m for r in comb.references for m in executable_models(r)]
    sharer = next((m for m in models if m in SHARERS), None)
    store = next((m for m in models if m in STORES), None)
    if sharer is None or store is None:
        return None
    r = compare_with_claim(sharer, store, workload.pages, manifest=workload.manifest, examples=0,
                           construction=reading_params(comb.readings))
    return {"sharer": sharer, "store": store, "summary": summary_line(r), "pages": r["pages"],
            "same": r["same_decisions"], "different": r["different_decisions"],
            "by_reason": r["differences_by_reason"],
            "readback": r["combination"]["verified_readback"] and r["claimed"]["verified_readback"]}


def prior_art_section(bundle, workload: Workload | None, base=None) -> dict | None:
    """Rows (one per element, one cell per reference), claim statuses, combinations and CSV
    rows of the prior-art analysis, with event counts from this run where a model exists."""
    pa = load_prior_art(bundle, base)
    if pa is None:
        return None
    refs = {r.id: r for r in bundle.references}
    lim = load_limitations(bundle, base)
    runs = run_models(workload, pa) if workload is not None else {}
    elements = {e.id: e for c in bundle.claims for e in c.elements}
    cell_by = {(c.element, c.reference): c for c in pa.cells}
    cset = constructions_for(bundle, base)
    # every element of every loaded claim (imported claims included), then any cell naming another
    order = list(dict.fromkeys([e.id for c in bundle.claims if c.loaded for e in c.charted_elements()]
                               + [c.element for c in pa.cells]))
    rows, csv_rows = [], []
    for el in order:
        cells = []
        for ref in pa.references:
            c = cell_by.get((el, ref))
            if c is None:
                cells.append(None)
                continue
            model = runs.get(ref)
            evs = []
            for e in c.events:
                n, samples = model[1].result(e.kind, e.where) if model else (None, [])
                evs.append({"kind": e.kind, "where": ", ".join(f"{k}={v}" for k, v in e.where.items()),
                            "count": n, "samples": samples})
            cites = [{"id": x.reference, "pinpoint": x.pinpoint, "quote": x.quote,
                      "date": refs[x.reference].date if x.reference in refs else "",
                      "url": pinpoint_url(refs.get(x.reference), x.pinpoint)} for x in c.citations]
            cells.append({"reference": ref, "status": c.status, "parts": c.parts, "reasoning": c.reasoning,
                          "events": evs, "model": model[0] if model else "", "cites": cites, "review": review_of(c),
                          "readings": cell_readings(c, cset)})
            csv_rows.append({"element": el, "element_text": elements[el].text if el in elements else "",
                             "reference": ref, "reference_date": refs[ref].date if ref in refs else "",
                             "status": c.status, "parts": "; ".join(f"{k}={v}" for k, v in c.parts.items()),
                             "status_under_constructions": readings_text(c),
                             "reasoning": c.reasoning,
                             "citations": " | ".join(f"{x.reference} {x.pinpoint}" + (f': "{x.quote}"' if x.quote else "")
                                                     for x in c.citations),
                             "executable_model": model[0] if model else "",
                             "events_in_this_run": "; ".join(f"{e['kind']}[{e['where']}]={e['count']}" for e in evs),
                             **review_columns(c)})
        rows.append({"id": el, "text": elements[el].text if el in elements else "", "cells": cells,
                     "subs": [s.model_dump() for s in lim.elements.get(el, [])]})
    status = {(c.element, c.reference): c.status for c in pa.cells}
    claims = claim_statuses(bundle, status, pa.references, "prior-art")
    return {"title": pa.title, "disclaimer": pa.disclaimer,
            "references": [{"id": r, "title": refs[r].title if r in refs else "", "date": refs[r].date if r in refs else "",
                            "version": refs[r].version if r in refs else "", "model": runs[r][0] if r in runs else "",
                            "readback": runs[r][2]["verified_readback"] if r in runs else None} for r in pa.references],
            "rows": rows, "claims": claims,
            "claims_under_readings": claim_statuses_under_readings(
                bundle, status, {(c.element, c.reference): c.by_construction for c in pa.cells if c.by_construction},
                pa.references, "prior-art"),
            "combinations": [{"id": c.id, "references": c.references, "covers": c.covers, "question": c.question,
                              "readings": c.readings,
                              "review": review_of(c),
                              "evidence": combination_evidence(c, workload) if workload is not None else None}
                             for c in pa.combinations],
            "review_counts": review_counts(pa.cells), "csv_rows": csv_rows}


def design_section(bundle, base=None) -> dict:
    """Points of difference per design, claim statuses and the review state of the chart."""
    if bundle.chart is None or not bundle.chart.rows:
        return {"designs": [], "differences": {}, "claims": [], "review_counts": {}, "readings": {}}
    lim = load_limitations(bundle, base)
    status = {(r.element, r.mechanism): r.status for r in bundle.chart.rows}
    return {"designs": design_mechanisms(bundle), "differences": points_of_difference(bundle, lim),
            "readings": design_readings(bundle, base),
            "claims": claim_statuses(bundle, status, bundle.chart.mechanisms, "designs"),
            "claims_under_readings": claim_statuses_under_readings(
                bundle, status, {(r.element, r.mechanism): r.by_construction for r in bundle.chart.rows
                                 if r.by_construction}, bundle.chart.mechanisms, "designs"),
            "review_counts": review_counts(bundle.chart.rows)}
