"""``pagemerge report``: the main job, the side-by-side comparison report (HTML and chart CSV)."""
from __future__ import annotations

import contextlib
import os
import tempfile

from engine.pages import PageSet

from .common import (MECHANISMS_HELP, load_manifest, manifest_args, mechanism_names, mechanism_params, nonneg_int,
                     progress_bar, variant_args)
from .mechanisms import workload_args


def cmd_report(a) -> int:
    from reports.build import ReportInputs, build_report, default_inputs
    from reports.exports import parse_claims, parse_elements
    common = dict(patent=a.patent, chart=a.chart, mechanisms=mechanism_names(a.mechanisms), kernel=a.kernel,
                  params=mechanism_params(a), swap_fraction=a.swap_fraction, policy=a.policy, seed=a.seed,
                  compact=a.compact, argv=tuple(getattr(a, "argv", ()) or ()), xlsx=a.xlsx, docx=a.docx,
                  claims=parse_claims(a.claims), elements=parse_elements(a.elements), sweep=a.sweep)
    if a.sweep:
        from reports.sweep import parse_spec
        parse_spec(a.sweep, "--sweep")          # refused before anything is captured or run
    with contextlib.ExitStack() as stack:
        from reports.build import PROGRESS_STEPS
        bar = stack.enter_context(progress_bar(len(common["mechanisms"]) + len(PROGRESS_STEPS), "report"))
        common["progress"] = lambda step: (bar.set_postfix_str(step, refresh=False), bar.update(1))
        if a.pid:
            # the capture is private (0600) and removed when the report is written, whatever happens
            from engine.workloads.capture import capture_pids
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="pagemerge-capture-"))
            a.pages = os.path.join(tmp, "capture.pages")
            capture_pids(a.pid, a.pages)
        if a.pages:
            pages = stack.enter_context(PageSet.open(a.pages))
            source = ("live capture of pid " + ", ".join(map(str, a.pid))) if a.pid else a.pages
            inputs = ReportInputs(pages=pages, manifest=load_manifest(a, pages), source=source, **common)
        else:
            inputs = default_inputs(**common)
        path = build_report(inputs, out_dir=a.output, force=a.force)
    print(f"report: {path}")
    print(f"chart rows (CSV): {path.with_name(path.name.replace('report-', 'chart-').replace('.html', '.csv'))}")
    prior = path.with_name(path.name.replace("report-", "prior-art-").replace(".html", ".csv"))
    if prior.exists():
        print(f"prior-art rows (CSV): {prior}")
    for ext, want in (("xlsx", a.xlsx), ("docx", a.docx)):
        if want:
            print(f"charts ({ext}): {path.with_name(path.name.replace('report-', 'chart-').replace('.html', '.' + ext))}")
    if a.pdf:
        from reports.print import write_pdf
        print(f"PDF: {write_pdf(path, path.with_suffix('.pdf'), force=a.force)}")
    return 0


def add_parsers(sub) -> None:
    r = sub.add_parser("report", help="the main job: the comparison report (HTML and CSV) on the embedded default")
    r.add_argument("pages", nargs="?", metavar="PAGES", help="a page-set file (default: the embedded real-memory set)")
    r.add_argument("--pid", type=nonneg_int("--pid", 1 << 22), action="append", metavar="PID",
                   help="capture these live user processes first (root; the capture is removed afterwards)")
    manifest_args(r)
    r.add_argument("--mechanisms", metavar="LIST", help=MECHANISMS_HELP)
    r.add_argument("--patent", default="US9977598", help="the patent to chart (default US9977598)")
    r.add_argument("--chart", metavar="CHART", help="a chart YAML (default: the bundled chart of --patent)")
    r.add_argument("-o", "--output", metavar="DIR", help="output folder (default: output/report)")
    r.add_argument("--force", action="store_true",
                   help="overwrite existing files in DIR (an earlier report is always replaced)")
    k = r.add_mutually_exclusive_group()
    k.add_argument("--kernel", action="store_true",
                   help="also run the live zram0 and ksmd on the same pages for the fidelity section (root; "
                        "reconfigures zram0 and the KSM knobs, then restores them)")
    k.add_argument("--no-kernel", dest="kernel", action="store_false", help="the default: do not touch the live kernel")
    r.add_argument("--pdf", action="store_true",
                   help="also print the report to PDF (report-N.pdf) with headless Chromium, where installed")
    r.add_argument("--xlsx", action="store_true",
                   help="also write both analyses (designs, prior art) as chart-N.xlsx: one row per element, "
                        "status, reasoning and pinpoints per subject, a comment column")
    r.add_argument("--docx", action="store_true", help="the same charts as a Word document, chart-N.docx")
    r.add_argument("--claims", metavar="LIST", help="only these claims' elements, e.g. 1,2 (every output)")
    r.add_argument("--elements", metavar="LIST", help="only these elements, e.g. 1[a],1[b] (every output)")
    r.add_argument("--sweep", metavar="PARAM=v1,v2,...",
                   help="add a section: every mechanism's net savings as one parameter varies (see 'pagemerge sweep')")
    workload_args(r)
    variant_args(r)
    r.set_defaults(func=cmd_report)
