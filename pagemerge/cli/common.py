"""Options and printers that several verb families share."""
from __future__ import annotations

import argparse
import json

from engine.errors import InputError

MECHANISMS_HELP = ("comma-separated names (default: the baseline, the later designs and the claimed method: "
                   "upstream_zram, zram_dedup, zram_merge, zsmalloc_fold, ksm, patent_claim1; the prior-art "
                   "models run when named; 'pagemerge mechanisms' lists all)")
PAGES_HELP = "page-set file (raw pages, a multiple of 4096 bytes; PAGES.json beside it is its manifest)"


def nonneg_int(what: str, limit: int = 1 << 62):
    return int_range(what, 0, limit)


def int_range(what: str, lo: int, hi: int):
    """An argparse type: a whole number written in ASCII digits, from ``lo`` to ``hi``, checked
    before anything is built (no sign, no exponent, no other script's digits, at most 19 digits)."""
    def conv(s: str) -> int:
        t = s.strip()
        if not (t.isascii() and t.isdigit()) or len(t) > 19 or not lo <= int(t) <= hi:
            raise argparse.ArgumentTypeError(f"{s[:40]!r} is not a whole number from {lo} to {hi}")
        return int(t)
    return conv


def fraction(what: str):
    """An argparse type: a finite number from 0 to 1 (NaN and infinities are refused)."""
    def conv(s: str) -> float:
        try:
            v = float(s) if len(s) <= 40 else float("nan")
        except ValueError:
            v = float("nan")
        if not 0.0 <= v <= 1.0:                 # false for NaN too
            raise argparse.ArgumentTypeError(f"{s[:40]!r} is not a number from 0 to 1")
        return v
    return conv


def manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", metavar="FILE",
                   help="which pages belong to which process and address (default: PAGES.json if present)")
    p.add_argument("--no-manifest", action="store_true", help="ignore PAGES.json: one process, consecutive addresses")


def load_manifest(a, pages):
    from engine.workloads.manifest import resolve_manifest
    return resolve_manifest(a.pages, len(pages), a.manifest, a.no_manifest)


def variant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dedup-hash", default="jhash", choices=("jhash", "xxhash32"),
                   help="zram_dedup checksum: jhash as posted, xxhash32 as later ports")
    p.add_argument("--merge-variant", default="posted", choices=("posted", "corrected"),
                   help="zram_merge: the RFC as posted, or with its accounting corrected")
    p.add_argument("--fold-variant", default="posted", choices=("posted", "corrected"),
                   help="zsmalloc_fold: the RFC as posted (tail-byte compare), or corrected")
    p.add_argument("--patent-identity", default="full", choices=("full", "hash-only"),
                   help="patent_claim1: confirm a hash match by a full compare, or hash only (the literal reading)")
    p.add_argument("--predetermined-size", type=int_range("--predetermined-size", 1, 4096), metavar="BYTES",
                   help="the patent's predetermined size, 1 to 4096 (default: zram's huge threshold)")
    p.add_argument("--construction", metavar="C=A[,...]",
                   help="patent_claim1 under readings of the claim's words, e.g. large-branch=raw,equal=smaller "
                        "(ids from 'pagemerge construe'; the others stay at their defaults)")
    p.add_argument("--use-zero-pages", action="store_true", help="KSM use_zero_pages=1")


def mechanism_params(a) -> dict:
    from engine.mechanisms import variant_params
    params = variant_params(a.dedup_hash, a.merge_variant, a.fold_variant, a.patent_identity, a.predetermined_size,
                            a.use_zero_pages)
    if getattr(a, "construction", None):
        from claims.constructions import chosen_params
        params["patent_claim1"].update(chosen_params("US9977598", a.construction, a.predetermined_size,
                                                     a.patent_identity))
    return params


def mechanism_names(spec: str | None) -> tuple[str, ...]:
    from engine.mechanisms import DEFAULT_ORDER, REGISTRY
    if not spec:
        return tuple(DEFAULT_ORDER)
    names = tuple(n.strip() for n in spec.split(","))
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        raise InputError(f"--mechanisms: unknown {', '.join(map(repr, bad))}; use any of {', '.join(REGISTRY)}")
    return names


def print_stats(d: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(d, indent=2))
        return
    print(title)
    for group, fields in d.items():
        print(f"  {group}")
        for k, v in fields.items():
            print(f"    {k:<18} {v:>14}")


def print_side_by_side(title: str, model: dict, kernel: dict, groups, n_diffs: int, width: int,
                       note=lambda group, key: "   <-- differs") -> None:
    print(title)
    print(f"  {'field':<{width}} {'model':>14} {'kernel':>14}")
    for group in groups:
        for k, m in model[group].items():
            kv = kernel[group][k]
            print(f"  {group + '.' + k:<{width}} {m:>14} {kv:>14}{'' if m == kv else note(group, k)}")
    print("  all fields equal" if not n_diffs else f"  {n_diffs} field(s) differ")


def differences_json(model, kernel, diffs) -> str:
    return json.dumps({"model": model, "kernel": kernel,
                       "differences": [{"group": g, "field": f, "model": m, "kernel": k} for g, f, m, k in diffs]},
                      indent=2)


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr, shown only when stderr is a terminal (nothing in pipes, logs or CI)."""
    import sys

    from tqdm.std import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)
