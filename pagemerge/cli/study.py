"""``pagemerge study``: every mechanism on every page set of a fleet, on a Dask cluster
(local by default, or an existing one with ``--scheduler``); the tidy table and the fleet report."""
from __future__ import annotations

import sys

from .common import MECHANISMS_HELP, mechanism_names, mechanism_params, nonneg_int, variant_args
from .mechanisms import workload_args


def positive_int(what: str, limit: int = 4096):
    conv = nonneg_int(what, limit)

    def f(s: str) -> int:
        v = conv(s)
        if v < 1:
            import argparse
            raise argparse.ArgumentTypeError(f"{s!r} is not a whole number from 1 to {limit}")
        return v
    return f


def cmd_study(a) -> int:
    from reports.study import run_study
    st = run_study(a.inputs, a.output, mechanisms=mechanism_names(a.mechanisms), params=mechanism_params(a),
                   workload={"swap_fraction": a.swap_fraction, "policy": a.policy, "seed": a.seed,
                             "compact": a.compact},
                   workers=a.workers, scheduler=a.scheduler, force=a.force,
                   insecure_scheduler=a.insecure_scheduler)
    n_mech = st.table["mechanism"].nunique()
    print(f"{len(st.page_sets)} page set(s) x {n_mech} mechanism(s): {len(st.computed)} computed, "
          f"{len(st.reused)} reused from {st.out_dir / 'parts'}")
    print(f"  {st.where}")
    for k in ("parquet", "csv", "processes", "report"):
        if k in st.outputs:
            print(f"  wrote {st.outputs[k]}")
    lost = st.lost
    if lost:
        ps, m = lost[0]
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        print(f"pagemerge: {ps}: read-back differs from what was written under {m}{more} (LOST DATA)", file=sys.stderr)
        return 1
    return 0


def cluster_args(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=positive_int("--workers"), metavar="N",
                   help="worker processes of the local Dask cluster (default: one per core)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster (e.g. tls://HOST:8786); the files must be at the same "
                        "paths on every worker")
    p.add_argument("--insecure-scheduler", action="store_true",
                   help="as root, accept a plain tcp:// scheduler (anyone who reaches it can run code here as root)")


def add_parsers(sub) -> None:
    s = sub.add_parser("study", help="every mechanism on every page set of a fleet, on Dask: table and fleet report",
                       description="Run every mechanism on every page set (one Dask task per page set) and write "
                                   "DIR/study.parquet, DIR/study.csv, DIR/processes.csv and DIR/fleet.html. "
                                   "Finished page sets are kept in DIR/parts and not redone.")
    s.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a directory (its *.pages files), a glob, a page-set file (*.pages) or a list file "
                        "(one page-set path per line)")
    s.add_argument("--mechanisms", metavar="LIST", help=MECHANISMS_HELP)
    cluster_args(s)
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the table, the report and parts/")
    s.add_argument("--force", action="store_true", help="overwrite files in DIR that are not a study's outputs")
    workload_args(s)
    variant_args(s)
    s.set_defaults(func=cmd_study)
