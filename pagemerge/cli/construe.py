"""``pagemerge construe PATENT [PAGES]``: the claimed method under each reading of the claim's
words (defined in :mod:`claims.constructions`), on the same pages, side by side."""
from __future__ import annotations

import json
import sys

from .common import fraction, manifest_args, nonneg_int


def _fmt_decision(d) -> str:
    if d is None:
        return "not swapped"
    s = f"{d['action']} ({d['branch']})"
    if d.get("with_page") is not None:
        s += f" with page {d['with_page']}"
    return s


def _row(label: str, r: dict, mark: str = "", width: int = 28) -> str:
    ok = "ok" if r["verified_readback"] else "LOST DATA"
    return (f"  {label + mark:<{width}} {r['pages_shared_small']:>7} {r['pages_shared_large']:>7} "
            f"{r['saved_bytes']:>10} {r['net_saved_bytes']:>10} {r['ram_net_saved_bytes']:>10} "
            f"{r['work']['bytes_hashed']:>10}  {ok:<9} {r['differs_from_default']:>7}")


def header(width: int = 28) -> str:
    return (f"  {'alternative':<{width}} {'small':>7} {'large':>7} {'saved':>10} {'net':>10} {'RAM net':>10} "
            f"{'hashed':>10}  {'read-back':<9} {'differs':>7}")


def _differences(r: dict) -> None:
    for kind, n in r["differences"].items():
        print(f"      {n:>6} x {kind}")
    for ex in r["examples"]:
        print(f"      e.g. page {ex['page']}: default {_fmt_decision(ex['default'])}; here {_fmt_decision(ex['this'])}")


def cmd_construe(a) -> int:
    from claims.constructions import construe
    out = construe(a.patent, a.pages, a.grid, manifest=a.manifest, no_manifest=a.no_manifest,
                   swap_fraction=a.swap_fraction, examples=a.examples)
    lost = sorted({f"{c['id']}={x['id']}" for c in out["constructions"] for x in c["alternatives"]
                   if not x["verified_readback"]} | {g["id"] for g in out["grid"] if not g["verified_readback"]})
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['patent']} claim construction: {out['mechanism']} on {out['n_pages']} pages from {out['pages']} "
              f"({out['processes']} process{'es' if out['processes'] != 1 else ''}), {out['runs']} runs")
        print(f"  default reading: {out['default']['variant']}")
        print("  small/large: pages shared through each size branch; saved, net, RAM net and hashed in bytes; "
              "differs: pages whose decision differs from the default reading's")
        for c in out["constructions"]:
            words = "; ".join(f"{w['element']} \"{w['words']}\"" for w in c["construes"])
            print(f"\n{c['id']}: {words}")
            print(header())
            for x in c["alternatives"]:
                print(_row(x["id"], x, " *" if x["default"] else ""))
            for x in c["alternatives"]:
                print(f"    {x['id']}: {x['statement']}")
                _differences(x)
            if c.get("cells"):
                print("    analysis cells whose status turns on it:")
                for cell in c["cells"]:
                    per = ", ".join(f"{s} under {a}" for a, s in cell["statuses"].items())
                    print(f"      {cell['analysis']} {cell['element']} x {cell['subject']}: {cell['status']} ({per})")
        if out["grid"]:
            print("\ncombinations (--grid), the other constructions at their defaults")
            width = max(28, *(len(g["id"]) for g in out["grid"]))
            print(header(width))
            for g in out["grid"]:
                print(_row(g["id"], g, width=width))
            for g in out["grid"]:
                if g["differs_from_default"]:
                    print(f"    {g['id']}:")
                    _differences(g)
        print(f"\n* default alternative. {out['note']}")
    if lost:
        print(f"pagemerge: {out['pages']}: read-back differs from what was written under {', '.join(lost)} (LOST DATA)",
              file=sys.stderr)
        return 1
    return 0


def add_parsers(sub) -> None:
    k = sub.add_parser("construe", help="the claimed method under each reading of the claim's words, on the same "
                                        "pages: what each reading shares, saves and decides differently",
                       description="Runs the patent's claimed method under each alternative of each claim "
                                   "construction (the others at their defaults), and any combination asked for "
                                   "with --grid, on the same pages. It shows what each reading does; it does not "
                                   "say which reading is right. Exit 1 if a read-back fails.")
    k.add_argument("patent", metavar="PATENT", help="patent number with constructions, e.g. US9977598")
    k.add_argument("pages", metavar="PAGES", nargs="?", default=None,
                   help="page-set file (default: the embedded real-memory default)")
    manifest_args(k)
    k.add_argument("--grid", metavar="SPEC", action="append",
                   help="also run combinations: CONSTRUCTION=ALTERNATIVE[,...] separated by ';' "
                        "(e.g. 'large-branch=literal,hash-input=page-in-pass;predetermined-size=3000')")
    k.add_argument("--swap-fraction", type=fraction("--swap-fraction"), default=1.0, metavar="F",
                   help="share of resident pages swapped out, 0 to 1 (default 1.0)")
    k.add_argument("--examples", type=nonneg_int("--examples", 1000), default=5, metavar="N",
                   help="example pages per alternative whose decision differs (default 5)")
    k.add_argument("--json", action="store_true", help="print JSON")
    k.set_defaults(func=cmd_construe)


__all__ = ["add_parsers", "cmd_construe"]
