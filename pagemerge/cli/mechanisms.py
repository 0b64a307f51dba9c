"""``pagemerge simulate all`` (every mechanism on one workload) and ``pagemerge events``
(the catalogue of event types that claim charts cite)."""
from __future__ import annotations

import argparse
import json
import sys

from engine.errors import InputError
from engine.pages import PageSet

from .common import MECHANISMS_HELP, PAGES_HELP, fraction, load_manifest, manifest_args, mechanism_names, \
    mechanism_params, nonneg_int, progress_bar, variant_args


def workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--swap-fraction", type=fraction("--swap-fraction"), default=1.0, metavar="F",
                   help="share of resident pages swapped out, 0 to 1 (default 1.0)")
    p.add_argument("--policy", default="lru", choices=("lru", "fifo", "random"), help="swap candidate selection")
    p.add_argument("--seed", type=nonneg_int("--seed", (1 << 63) - 1), default=0, help="seed of the random policy")
    p.add_argument("--compact", action="store_true", help="compact the zsmalloc pool at the end")


def workload(a, pages: PageSet):
    from engine.mechanisms import Workload
    if not 0.0 <= a.swap_fraction <= 1.0:
        raise InputError(f"--swap-fraction: {a.swap_fraction} is not between 0 and 1")
    return Workload(pages, load_manifest(a, pages), a.swap_fraction, a.policy, a.seed, a.compact, a.pages)


def cmd_simulate_all(a) -> int:
    from engine.mechanisms import simulate_all
    names = mechanism_names(a.mechanisms)
    params = mechanism_params(a)
    pages = PageSet.open(a.pages)
    with progress_bar(len(names), "simulate all") as bar:
        out = simulate_all(workload(a, pages), names, params,
                           progress=lambda name: (bar.set_postfix_str(name, refresh=False), bar.update(1)))
    lost = [n for n, r in out["mechanisms"].items() if not r["verified_readback"]]
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        algos = sorted({r["comp_algorithm"] for r in out["mechanisms"].values()})
        print(f"{len(pages)} pages from {a.pages}; swap-out {a.swap_fraction:.0%} by {a.policy}; "
              f"compressor {', '.join(algos)}")
        print(f"  {'mechanism':<15} {'saved':>12} {'metadata':>10} {'net':>12} {'merged':>8} {'mem_used':>12}  "
              f"read-back  variant")
        for name, r in out["mechanisms"].items():
            mu = r.get("mm_stat", {}).get("mem_used_total", "")
            print(f"  {name:<15} {r['saved_bytes']:>12} {r['metadata_bytes']:>10} {r['net_saved_bytes']:>12} "
                  f"{r['pages_merged']:>8} {mu:>12}  {'ok' if r['verified_readback'] else 'LOST DATA':<9}  "
                  f"{r['variant']}")
    if lost:
        print(f"pagemerge: {a.pages}: read-back differs from what was written under {', '.join(lost)} (LOST DATA)",
              file=sys.stderr)
        return 1
    return 0


def cmd_events(a) -> int:
    from engine.events import event_catalogue, events_markdown
    cat = event_catalogue()
    if a.json:
        print(json.dumps(cat, indent=2))
    elif a.markdown:
        print(events_markdown(cat), end="")
    else:
        for e in cat:
            print(f"{e['kind']:<26} {e['doc']}")
            print(f"{'':<26} fields: {', '.join(e['fields'])}")
    return 0


def cmd_mechanisms(a) -> int:
    from engine.mechanisms import catalogue
    rows = catalogue()
    if a.json:
        print(json.dumps([{k: r[k] for k in ("name", "kind", "date", "reference", "summary")} for r in rows],
                         indent=2))
        return 0
    print(f"{'name':<24} {'kind':<10} {'date':<11} {'reference':<24} summary")
    for r in rows:
        print(f"{r['name']:<24} {r['kind']:<10} {r['date']:<11} {r['reference']:<24} {r['summary']}")
    return 0


def cmd_combine(a) -> int:
    from engine.mechanisms.combine import check_pair, compare_with_claim, summary_line
    check_pair(a.sharer, a.store)
    construction = None
    if a.construction:
        from claims.constructions import chosen_params
        construction = chosen_params("US9977598", a.construction)
    pages = PageSet.open(a.pages)
    r = compare_with_claim(a.sharer, a.store, pages, a.against, load_manifest(a, pages), a.algo, a.examples,
                           construction=construction)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(summary_line(r))
        def side(d):
            with_ = f" with page {d['shared_with_page']}" if d.get("shared_with_page") is not None else ""
            return f"{d['action']}{with_} ({d.get('branch', '-')}), hashed {d.get('hashed', '-')}"
        for e in r["examples"]:
            print(f"  page {e['page']} (pid {e['pid']} va {e['vaddr']:#x}): combination {side(e['combination'])}; "
                  f"claimed {side(e['claimed'])}")
        print(r["note"])
    lost = [s["name"] for s in (r["combination"], r["claimed"]) if not s["verified_readback"]]
    if lost:
        print(f"pagemerge: {a.pages}: read-back differs from what was written under {', '.join(lost)} (LOST DATA)",
              file=sys.stderr)
        return 1
    return 0


def add_parsers(sub, families: dict) -> None:
    k = families["simulate"].add_parser("all", help="every mechanism on the same workload: savings, metadata, "
                                                    "work, read-back (exit 1 if any read-back fails)")
    k.add_argument("pages", metavar="PAGES", help=PAGES_HELP)
    manifest_args(k)
    k.add_argument("--mechanisms", metavar="LIST", help=MECHANISMS_HELP)
    workload_args(k)
    variant_args(k)
    k.add_argument("--json", action="store_true", help="print JSON instead of a table")
    k.set_defaults(func=cmd_simulate_all)

    e = sub.add_parser("events", help="the catalogue of engine event types (evidence names)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--markdown", action="store_true", help="the table in docs/events.md")
    e.set_defaults(func=cmd_events)

    m = sub.add_parser("mechanisms", help="every mechanism: name, kind (prior-art, design, claimed, baseline), "
                                          "date, reference, summary")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=cmd_mechanisms)

    c = sub.add_parser("combine", help="a mechanism composed of two prior-art ones (A's identity test and "
                                       "remapping on B's store) against the claimed method, page by page")
    c.add_argument("sharer", metavar="A", help="the sharer: ksm_2_6_32, esx_2002 or difference_engine_2008")
    c.add_argument("store", metavar="B", help="the store with its size rule: zram_3_14 or zswap_3_11")
    c.add_argument("pages", metavar="PAGES", help=PAGES_HELP)
    manifest_args(c)
    c.add_argument("--against", default="patent_claim1", help="the claimed method (default patent_claim1)")
    c.add_argument("--algo", metavar="NAME", help="compressor for both sides (default: the store's era, kernel-lzo)")
    c.add_argument("--examples", type=nonneg_int("--examples", 10000), default=10,
                   help="how many differing pages to show (default 10)")
    c.add_argument("--construction", metavar="C=A[,...]",
                   help="run the claimed method under readings of the claim's words, e.g. equal=smaller or "
                        "large-branch=literal (ids from 'pagemerge construe'; the others at their defaults, the "
                        "predetermined size B's threshold unless chosen)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=cmd_combine)
