"""``pagemerge simulate|kernel|compare ksm``: pages in processes under the KSM model, the live
ksmd, or both; ``compare`` replays the kernel's run on the model and exits 1 on any difference."""
from __future__ import annotations

import argparse
import json

from engine.kernel.safety import require_root
from engine.pages import PageSet, parse_list

from .common import PAGES_HELP, differences_json, int_range, load_manifest, manifest_args, print_side_by_side


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pages", metavar="PAGES", help=PAGES_HELP)
    manifest_args(p)
    p.add_argument("--use-zero-pages", action="store_true", help="use_zero_pages=1")
    p.add_argument("--max-page-sharing", type=int_range("--max-page-sharing", 2, 1 << 20), default=256, metavar="N",
                   help="max_page_sharing, 2 or more (default 256)")
    p.add_argument("--smart-scan", type=int, choices=(0, 1), default=0, help="smart_scan (default 0)")
    p.add_argument("--cow", metavar="LIST", help="after convergence, write to these pages (copy-on-write), rescan")
    p.add_argument("--trace", metavar="FILE",
                   help="writes over time: lines 'after_scan,page,offset,hexbytes' (# comments allowed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def scenario(a):
    from engine.scenario import KsmScenario, read_trace
    pages = PageSet.open(a.pages)
    return KsmScenario(pages=pages, manifest=load_manifest(a, pages), trace=read_trace(a.trace) if a.trace else [],
                       use_zero_pages=a.use_zero_pages, max_page_sharing=a.max_page_sharing, smart_scan=a.smart_scan,
                       cow=parse_list(a.cow, "--cow", len(pages)) if a.cow else [])


def print_ksm(d: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(d, indent=2))
        return
    print(title)
    for group in ("ksm", "ksm_stat"):
        print(f"  {group}")
        for k, v in d[group].items():
            print(f"    {k:<22} {v:>14}")
    if len(d["processes"]) > 1:
        print("  per process (pid: rmap_items / merging / zero / profit)")
        for p in d["processes"]:
            print(f"    {p['pid']:>8}: {p['ksm_rmap_items']} / {p['ksm_merging_pages']} / "
                  f"{p['ksm_zero_pages']} / {p['ksm_process_profit']}")
    print(f"  converged after full scans: {', '.join(map(str, d['full_scans_at']))}")


def cmd_simulate(a) -> int:
    sc = scenario(a)
    print_ksm(sc.run_model(), a.json, f"ksm model on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_kernel(a) -> int:
    require_root(f"{a.cmd} {a.what}")     # before any work: the live kernel is root's
    sc = scenario(a)
    print_ksm(sc.run_kernel(), a.json, f"live ksmd on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_compare(a) -> int:
    require_root(f"{a.cmd} {a.what}")     # before any work: the live kernel is root's
    from engine.scenario import diff_ksm
    sc = scenario(a)
    kernel = sc.run_kernel()
    model = sc.run_model(follow=kernel)
    diffs = diff_ksm(model, kernel, a.smart_scan)
    if a.json:
        print(differences_json(model, kernel, diffs))
    else:
        def note(group, k):
            if a.smart_scan and k in ("pages_unshared", "pages_volatile"):
                return "   (smart_scan: only the sum counts)"
            return "   <-- differs"
        print_side_by_side(f"ksm on {a.pages}: {len(sc.pages)} pages in {len(model['processes'])} process(es)",
                           model, kernel, ("ksm", "ksm_stat"), len(diffs), 36, note)
    return 1 if diffs else 0


def add_parsers(families: dict) -> None:
    for verb, func, helptext in (("simulate", cmd_simulate, "the KSM model: sysfs counters and ksm_stat"),
                                 ("kernel", cmd_kernel, "the live ksmd: sysfs counters and ksm_stat (root)"),
                                 ("compare", cmd_compare, "KSM model vs live ksmd; exit 1 on any difference")):
        k = families[verb].add_parser("ksm", help=helptext, description=helptext)
        _args(k)
        k.set_defaults(func=func)
