"""``pagemerge sweep PARAM=v1,v2,... [PAGES]``: one parameter varied on the same pages, every
mechanism's net savings against it (CSV, SVG and PNG under the output folder)."""
from __future__ import annotations

import contextlib
import sys

from engine.pages import PageSet

from .common import (MECHANISMS_HELP, PAGES_HELP, manifest_args, mechanism_names, mechanism_params, progress_bar,
                     variant_args)
from .mechanisms import workload, workload_args


def cmd_sweep(a) -> int:
    from engine.pages import default_pages_path
    from reports.sweep import PARAMS, parse_spec, run_sweep, write_sweep
    from claims.store import output_dir
    param, values = parse_spec(a.spec)
    names = mechanism_names(a.mechanisms)
    params = mechanism_params(a)
    if a.pages is None:
        a.pages = default_pages_path()
    with contextlib.ExitStack() as stack:
        pages = stack.enter_context(PageSet.open(a.pages))
        wl = workload(a, pages)
        bar = stack.enter_context(progress_bar(len(values) * len(names), f"sweep {param}"))
        df = run_sweep(wl, param, values, names, params, progress=lambda v, n: bar.update(1))
    paths = write_sweep(df, a.output or output_dir() / "sweep", force=a.force)
    print(f"{param} ({PARAMS[param]}): net saved bytes per mechanism")
    print(f"  {'value':>10} " + " ".join(f"{n:>14}" for n in names))
    for v in values:
        sub = df[df["value"] == v].set_index("mechanism")["net_saved_bytes"]
        print(f"  {str(v):>10} " + " ".join(f"{int(sub[n]):>14,}" for n in names))
    for p in paths:
        print(f"wrote {p}")
    lost = sorted(set(df.loc[~df["verified_readback"], "mechanism"]))
    if lost:
        print(f"pagemerge: {a.pages}: read-back differs under {', '.join(lost)} (LOST DATA)", file=sys.stderr)
        return 1
    return 0


def add_parsers(sub) -> None:
    from reports.sweep import PARAMS
    s = sub.add_parser("sweep", help="vary one parameter on the same pages; every mechanism's net savings against it",
                       description="Run every mechanism at each value of one parameter on the same pages and "
                                   "write the data (CSV) and the plot (SVG, PNG). Parameters: "
                                   + "; ".join(f"{k}: {v}" for k, v in PARAMS.items()))
    s.add_argument("spec", metavar="PARAM=v1,v2,...", help="e.g. swap-fraction=0.25,0.5,1 or hash=jhash,xxhash32")
    s.add_argument("pages", nargs="?", metavar="PAGES", help=PAGES_HELP + " (default: the embedded real-memory set)")
    manifest_args(s)
    s.add_argument("--mechanisms", metavar="LIST", help=MECHANISMS_HELP)
    s.add_argument("-o", "--output", metavar="DIR", help="output folder (default: output/sweep)")
    s.add_argument("--force", action="store_true", help="overwrite existing files in DIR")
    workload_args(s)
    variant_args(s)
    s.set_defaults(func=cmd_sweep)
