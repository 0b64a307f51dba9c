"""Build the side-by-side comparison report: one self-contained HTML file plus the chart rows
as CSV, under the git-ignored output folder.

Inputs: a page set (the embedded real-memory default, a file, or a live capture), the
mechanisms, and a patent with its chart. The engine runs every mechanism on the same
workload with an event listener. Each chart row's evidence is then filled with what this run
showed: how many matching events there were, and excerpts of the real trace. Where the live
kernel is usable, the model's zram and KSM counters are set beside the kernel's on the same
pages. The same inputs give the same report, apart from its timestamp.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from claims.chart import check_chart, prior_art_flags
from claims.graph import dependency_graph, dependency_matrix, render_tree_html
from claims.store import load_bundle, output_dir
from engine.events import EventBus
from engine.mechanisms import DEFAULT_ORDER, Workload, make
from engine.pages import PAGE_SIZE, PageSet

from . import exports, figures, numbers, plots
from .analyses import design_section, prior_art_section, review_columns, review_of
from .constructions import construction_section, readings_text
from .evidence import EvidenceCollector
from . import sweep as sweep_mod
from .print import CSS as PRINT_CSS, command_line, finish, linkify, pinpoint_url

DISCLAIMER = ("This report is technical evidence for review by engineers and legal reviewers. It is not legal "
              "advice and states no conclusion on infringement, validity or any other legal question. Statuses "
              "(present, absent, partial, undetermined) describe what the engine's implementation of each "
              "mechanism does against the words of each claim element; open questions of claim construction "
              "are marked undetermined and left to the reviewer.")
STATUS_ORDER = ("present", "partial", "undetermined", "absent")


@dataclass
class ReportInputs:
    pages: PageSet
    manifest: object | None
    source: str
    patent: str = "US9977598"
    chart: str | None = None
    mechanisms: tuple = DEFAULT_ORDER
    kernel: bool = False
    params: dict = field(default_factory=dict)
    swap_fraction: float = 1.0
    policy: str = "lru"
    seed: int = 0
    compact: bool = False
    argv: tuple | None = None          # the command line that asked for the report, shown in its header
    claims: tuple | None = None        # only these claims' elements (every output); None: all
    elements: tuple | None = None      # only these elements (every output); None: all
    xlsx: bool = False                 # also write both analyses as chart-N.xlsx (reports/exports.py)
    docx: bool = False                 # ... and as chart-N.docx
    sweep: str | None = None           # PARAM=v1,v2,...: a section with every mechanism's net savings against it
    progress: object = None            # called with each step's name as it ends (mechanisms, then PROGRESS_STEPS)


#: the steps after the mechanisms that ``ReportInputs.progress`` hears of
PROGRESS_STEPS = ("prior art", "written")


def _filters_for(bundle, mech):
    out = []
    for row in bundle.chart.rows:
        if row.mechanism == mech:
            for e in row.evidence.events:
                out.append((e.kind, e.where))
    return out


def run_mechanisms(inputs: ReportInputs, bundle):
    wl = Workload(inputs.pages, inputs.manifest, inputs.swap_fraction, inputs.policy, inputs.seed, inputs.compact,
                  name=inputs.source)
    runs = {}
    for name in inputs.mechanisms:
        mech = make(name, **inputs.params.get(name, {}))
        coll = EvidenceCollector(_filters_for(bundle, name))
        bus = EventBus()
        bus.subscribe(coll)
        rec = plots.SeriesRecorder(mech)          # pool growth, KSM's counters per full scan
        bus.subscribe(rec)
        mech.run(wl, bus=bus)
        runs[name] = (mech, coll, rec)
        if inputs.progress:
            inputs.progress(name)
    return runs


def kernel_fidelity(inputs: ReportInputs) -> dict:
    """Model vs live kernel on the report's pages, or why that was not possible."""
    from engine.kernel.ksm import ksm_unavailable_reason
    from engine.kernel.zram0 import zram_unavailable_reason
    from engine.scenario import KsmScenario, ZramScenario, diff_ksm, diff_stats
    out = {"zram": None, "ksm": None, "zram_why": None, "ksm_why": None}
    if not inputs.kernel:
        out["zram_why"] = out["ksm_why"] = ("the live kernel was not asked for (it is touched only on request); run "
                                            "'pagemerge report --kernel' as root to compare with the live zram0 and ksmd")
        return out
    why = zram_unavailable_reason()
    if why:
        out["zram_why"] = f"the live zram0 was asked for but is unavailable ({why})"
    else:
        sc = ZramScenario(inputs.pages)
        model, kern = sc.run_model(), sc.run_kernel()
        rows = []
        for group in ("mm_stat", "io_stat"):
            for k, v in getattr(model, group).items():
                kv = getattr(kern, group)[k]
                rows.append({"field": f"{group}.{k}", "model": v, "kernel": kv, "equal": v == kv})
        out["zram"] = {"rows": rows, "equal": not diff_stats(model, kern), "comp_algorithm": model.comp_algorithm}
    why = ksm_unavailable_reason()
    if why:
        out["ksm_why"] = f"the live ksmd was asked for but is unavailable ({why})"
    else:
        sc = KsmScenario(inputs.pages, inputs.manifest)
        kern = sc.run_kernel()
        model = sc.run_model(follow=kern)
        rows = []
        for group in ("ksm", "ksm_stat"):
            for k, v in model[group].items():
                kv = kern[group][k]
                rows.append({"field": f"{group}.{k}", "model": v, "kernel": kv, "equal": v == kv})
        out["ksm"] = {"rows": rows, "equal": not diff_ksm(model, kern), "scans": kern["full_scans_at"]}
    return out


def build_report(inputs: ReportInputs, out_dir: str | Path | None = None, now: dt.datetime | None = None,
                 force: bool = False) -> Path:
    _check_output_folder(Path(out_dir) if out_dir is not None else output_dir() / "report")   # before any work
    _check_earlier_report(Path(out_dir) if out_dir is not None else output_dir() / "report", inputs.patent, force)
    bundle = load_bundle(inputs.patent, inputs.chart)
    if bundle.patent.priority_date is None:
        from engine.errors import InputError
        raise InputError(f"{bundle.patent.number}: the imported document gives no filing or priority date, which the "
                         f"report needs to place references; import the patent's USPTO XML")
    if bundle.chart is None:
        # an imported patent with no chart yet: the mechanisms, the claims and their tree, no rows
        from claims.model import Chart
        bundle = bundle.model_copy(update={"chart": Chart(
            patent=bundle.patent.number, title=bundle.patent.title.value, mechanisms=list(inputs.mechanisms), rows=[],
            claims=[c.number for c in bundle.claims if c.loaded and c.independent])})
        problems = [f"{bundle.patent.number} has no claim chart yet: its claims are shown, no element is charted "
                    f"(write claims/data/{bundle.patent.number}/chart.yaml or pass --chart)"]
    else:
        problems = check_chart(bundle)
    keep = exports.element_filter(bundle, inputs.claims, inputs.elements)      # refused before any work
    sweep_spec = sweep_mod.parse_spec(inputs.sweep) if inputs.sweep else None
    runs = run_mechanisms(inputs, bundle)
    mechs = [m for m in bundle.chart.mechanisms if m in runs]
    results = {n: runs[n][0].result() for n in mechs}
    import pandas as pd
    df_rows = []
    for n in mechs:
        r = results[n]
        row = {"mechanism": n, "saved_bytes": r["saved_bytes"], "metadata_bytes": r["metadata_bytes"],
               "net_saved_bytes": r["net_saved_bytes"], "pages_merged": r["pages_merged"],
               "mem_used_total": r.get("mm_stat", {}).get("mem_used_total", float("nan")),
               "compr_data_size": r.get("mm_stat", {}).get("compr_data_size", float("nan")),
               "verified_readback": r["verified_readback"], "comp_algorithm": r["comp_algorithm"]}
        row.update(r["work"])
        df_rows.append(row)
    df = pd.DataFrame(df_rows).set_index("mechanism")

    refs = {r.id: r for r in bundle.references}
    flags = {f["id"]: f for f in prior_art_flags(bundle)}
    elements = {e.id: e for c in bundle.claims for e in c.elements}
    row_by = {(r.element, r.mechanism): r for r in bundle.chart.rows}
    # a dependent claim's element shows the chain of claims it builds on ("claim 2 -> claim 1")
    g = dependency_graph(bundle.claims)
    parent_chain = {}
    for c in bundle.claims:
        if c.loaded and not c.independent:
            chain = [c.number]
            while True:
                ps = sorted(g.predecessors(chain[-1]))
                if not ps:
                    break
                chain.append(ps[0])
            for e in c.elements:
                parent_chain[e.id] = " -> ".join(f"claim {n}" for n in chain)
    element_ids = []
    for r in bundle.chart.rows:
        if r.element not in element_ids:
            element_ids.append(r.element)
    chart_rows = []
    csv_rows = []
    for el in element_ids:
        cells = []
        for m in mechs:
            r = row_by.get((el, m))
            if r is None:
                cells.append(None)
                continue
            coll = runs[m][1]
            evs = []
            for e in r.evidence.events:
                n, samples = coll.result(e.kind, e.where)
                evs.append({"kind": e.kind, "where": ", ".join(f"{k}={v}" for k, v in e.where.items()),
                            "shows": e.shows, "count": n, "samples": samples})
            cites = []
            for c in r.evidence.citations:
                ref = refs.get(c.reference)
                cites.append({"id": c.reference, "pinpoint": c.pinpoint, "quote": c.quote,
                              "url": pinpoint_url(ref, c.pinpoint) if ref else "",
                              "title": ref.title if ref else "", "date": ref.date if ref else "",
                              "flag": flags.get(c.reference, {}).get("flag", "")})
            cells.append({"status": r.status, "reasoning": r.reasoning, "events": evs,
                          "code": [c.ref for c in r.evidence.code], "cites": cites,
                          "reviewer": r.reviewer_status, "parts": r.parts, "difference": r.difference,
                          "review": review_of(r)})
            csv_rows.append({"element": el, "element_text": elements[el].text if el in elements else "",
                             "mechanism": m, "status": r.status, "reasoning": r.reasoning,
                             "events_in_this_run": "; ".join(f"{e['kind']}[{e['where']}]={e['count']}" for e in evs),
                             "code": "; ".join(c.ref for c in r.evidence.code),
                             "citations": "; ".join(f"{c.reference} {c.pinpoint}" for c in r.evidence.citations),
                             "parts": "; ".join(f"{k}={v}" for k, v in r.parts.items()), "difference": r.difference,
                             "status_under_constructions": readings_text(r),
                             **review_columns(r)})
        chart_rows.append({"id": el, "text": elements[el].text if el in elements else "", "cells": cells,
                           "parents": parent_chain.get(el, "")})

    status_counts = {m: {s: sum(1 for r in bundle.chart.rows if r.mechanism == m and r.status == s)
                         for s in STATUS_ORDER} for m in mechs}
    describe = {n: runs[n][0].describe() for n in mechs}
    chains = []
    for n in mechs:
        link = describe[n]["link"]
        shared = sum(runs[n][1].kind_counts.get(k, 0) for k in ("dedup.share",)) if n != "ksm" else \
            runs[n][1].kind_counts.get("ksm.merge", 0) + runs[n][1].kind_counts.get("ksm.zero_page_merge", 0)
        chains.append({"name": n, "title": describe[n]["title"], "link": link, "note": figures.LINK_NOTE.get(link, ""),
                       "svg": figures.chain_svg(n, describe[n]["title"], link, shared), "count": shared})

    fid = kernel_fidelity(inputs)
    p = bundle.patent
    timeline = []
    for r in sorted(bundle.references, key=lambda r: r.date):
        lo, hi = r.date_range()
        timeline.append({"id": r.id, "date": r.date, "range": (lo, hi), "predates_priority": r.predates(p.priority_date),
                         "title": r.title, "kind": r.date_kind, "flag": flags[r.id]["flag"], "link": r.link,
                         "message_id": r.message_id, "commit": r.commit})
    loaded = [c for c in bundle.claims if c.loaded]
    matrix = dependency_matrix(loaded) if len(loaded) > 1 else None
    ksm_counters = results.get("ksm", {}).get("mm_stat", {}).get("ksm") if "ksm" in results else None

    # the prior-art analysis, its references' executable models run on the same memory
    base = Path(inputs.chart).parent if inputs.chart and (Path(inputs.chart).parent / "patent.yaml").exists() else None
    prior_art = prior_art_section(bundle, Workload(inputs.pages, inputs.manifest, inputs.swap_fraction, inputs.policy,
                                                   inputs.seed, inputs.compact, name=inputs.source), base)
    designs = design_section(bundle, base)
    if inputs.progress:
        inputs.progress("prior art")
    chart_rows, csv_rows, prior_art, designs = exports.filter_report(keep, chart_rows, csv_rows, prior_art, designs)
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["kib"] = lambda b: f"{b / 1024:,.1f}" if b == b else "n/a"
    env.filters["linkify"] = linkify
    tmpl = env.get_template("report.html.j2")
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    n_proc = len(set(inputs.manifest.pid)) if inputs.manifest is not None else 1
    page = tmpl.render(
        generated=now.isoformat(), disclaimer=DISCLAIMER, patent=p, bundle=bundle, chart=bundle.chart,
        mechs=mechs, results=results, describe=describe, chains=chains, chart_rows=chart_rows,
        status_counts=status_counts, problems=problems, source=inputs.source, n_pages=len(inputs.pages),
        n_bytes=len(inputs.pages) * PAGE_SIZE, n_proc=n_proc, fid=fid, timeline=timeline,
        results_table=numbers.results_html(results), cards_html=numbers.cards_html(results, len(inputs.pages) * PAGE_SIZE),
        savings_svg=figures.savings_svg(df), memory_svg=figures.memory_svg(df),
        timeline_svg=figures.timeline_svg(timeline, p.priority_date),
        tree_html=render_tree_html(dependency_graph(bundle.claims)),
        matrix_html=numbers.matrix_html(matrix),
        ksm_counters=ksm_counters, construction=bundle.chart.construction_notes, STATUS_ORDER=STATUS_ORDER,
        constructions=construction_section(inputs), prior_art=prior_art, designs=designs, term=p.term(),
        extra_css=PRINT_CSS, version=_version(), command=command_line(inputs.argv),
        swap_fraction=inputs.swap_fraction, policy=inputs.policy, compact=inputs.compact,
        plots_html=plots.plots_html({n: runs[n][2] for n in mechs}),
        sweep_html=sweep_mod.sweep_html(sweep_mod.run_sweep(
            Workload(inputs.pages, inputs.manifest, inputs.swap_fraction, inputs.policy, inputs.seed, inputs.compact,
                     name=inputs.source), *sweep_spec, mechs, inputs.params)) if sweep_spec else "")
    page = finish(page)
    out = Path(out_dir) if out_dir is not None else output_dir() / "report"
    from engine.fileio import AtomicFile
    html_path = out / f"report-{p.number}.html"
    csv_path = out / f"chart-{p.number}.csv"
    csv = exports.csv_bytes(pd.DataFrame(csv_rows))
    pa_csv = exports.csv_bytes(pd.DataFrame(prior_art["csv_rows"])) if prior_art is not None else None
    # a report replaces the previous run's report (recognised by its generator mark and the
    # chart's header row); any other existing file needs force. Every target is checked
    # before the first is written, so a refusal leaves no partial set of outputs.
    outputs = [(html_path, page.encode(), lambda q: _starts_with(q, GENERATOR_MARK, 4096)),
               (csv_path, csv, lambda q: _starts_with(q, csv.split(b"\n", 1)[0] + b"\n", 0))]
    if pa_csv is not None:
        outputs.append((out / f"prior-art-{p.number}.csv", pa_csv,
                        lambda q: _starts_with(q, pa_csv.split(b"\n", 1)[0] + b"\n", 0)))
    from engine.fileio import check_target
    for path, _data, ours in outputs:
        check_target(path, force=force, replaceable=ours)
    for ext, wanted in (("xlsx", inputs.xlsx), ("docx", inputs.docx)):
        if wanted:
            check_target(out / f"chart-{p.number}.{ext}", force=force, replaceable=exports._ours)
    for path, data, ours in outputs:
        with AtomicFile(path, force=force, replaceable=ours) as f:
            f.write(data)
    exports.write_exports(bundle, out, xlsx=inputs.xlsx, docx=inputs.docx, keep=keep, base=base, disclaimer=DISCLAIMER,
                          force=force)
    if inputs.progress:
        inputs.progress("written")
    return html_path


def _version() -> str:
    from engine._util import package_version
    __version__ = package_version()
    return __version__


def _check_earlier_report(out: Path, patent: str, force: bool) -> None:
    """Before any work: an existing report file there must be an earlier report (or --force)."""
    from engine.fileio import check_target
    number = str(patent).replace(" ", "").replace(",", "").upper()
    if number.isalnum():
        check_target(out / f"report-{number}.html", force=force,
                     replaceable=lambda q: _starts_with(q, GENERATOR_MARK, 4096))


def _check_output_folder(out: Path) -> None:
    """The output folder must be a directory (or not exist yet), never a file or a link."""
    import os
    import stat
    from engine.errors import InputError
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"{out}: cannot use as the output folder ({e.strerror})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{out}: is not a directory; the report needs an output folder (-o DIR)")


GENERATOR_MARK = b'<meta name="generator" content="pagemerge">'


def _starts_with(path: Path, mark: bytes, within: int) -> bool:
    """Whether the regular file ``path`` holds ``mark`` in its first bytes (``within`` bytes, or
    exactly at the start when 0)."""
    from engine.errors import InputError
    from engine.fileio import open_input
    try:
        with open_input(path, "earlier output") as f:
            head = f.read(max(within, len(mark)))
    except InputError:
        return False
    return head.startswith(mark) if within == 0 else mark in head


def default_inputs(**kw) -> ReportInputs:
    from engine.pages import default_pages_path
    from engine.workloads.manifest import Manifest, manifest_path
    path = default_pages_path()
    ps = PageSet.open(path)
    man = Manifest.load(manifest_path(path), len(ps)) if manifest_path(path).exists() else None
    return ReportInputs(pages=ps, manifest=man, source=f"embedded default ({Path(path).name}: "
                        f"real memory of known programs)", **kw)
