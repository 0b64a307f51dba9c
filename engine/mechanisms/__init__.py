"""The dedup mechanisms, one module each behind one interface (:mod:`.base`).

=================  ==================================  =====================  ==================
name               design                              link repointed         when
=================  ==================================  =====================  ==================
upstream_zram      mainline zram (baseline)            none                   inline on store
zram_dedup         Joonsoo Kim 2017                    slot -> handle         inline on store
zram_merge         Alexey Romanov 2022 (RFC)           slot -> handle         offline trigger
zsmalloc_fold      Alexey Romanov 2023 (RFC)           handle -> object       offline trigger
ksm                mm/ksm.c                            PTE -> page frame      background scan
patent_claim1      US 9,977,598 claim 1                virtual address ->     on swap-out
                                                       stored page
=================  ==================================  =====================  ==================

Prior art (before the priority date, 2014-10-27), each pinned to the version it models:
``esx_2002``, ``difference_engine_2008``, ``ksm_2_6_32``, ``zswap_3_11``, ``zram_3_14``.
:func:`catalogue` lists every mechanism with its kind, date, reference and summary; the
compositions of two of them are in :mod:`.combine`.
"""
from __future__ import annotations

from .base import REGISTRY, Mechanism, Workload, ZramLevelMechanism, register
from . import upstream_zram, zram_dedup, zram_merge, zsmalloc_fold, ksm_mechanism, patent_claim1  # noqa: F401
from . import esx_2002, difference_engine_2008, ksm_2_6_32, zswap_3_11, zram_3_14  # noqa: F401

DEFAULT_ORDER = ("upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "patent_claim1")
#: the executable prior art, oldest first
PRIOR_ART = ("esx_2002", "difference_engine_2008", "ksm_2_6_32", "zswap_3_11", "zram_3_14")


def catalogue() -> list[dict]:
    """Every registered mechanism: name, kind, date, reference, summary, title and citations,
    oldest first (the order of a timeline)."""
    rows = []
    for name, cls in REGISTRY.items():
        rows.append({"name": name, "kind": cls.kind, "date": cls.date, "reference": cls.reference,
                     "summary": cls.summary, "title": cls.title,
                     "citations": [c._asdict() for c in cls.citations]})
    return sorted(rows, key=lambda r: (r["date"], r["name"]))


def make(name: str, **params) -> Mechanism:
    """A mechanism by registry name; an unknown name or parameter is refused, listing the valid ones."""
    import inspect
    from ..errors import InputError
    cls = REGISTRY.get(name)
    if cls is None:
        raise InputError(f"mechanism {name!r}: unknown; use one of {', '.join(REGISTRY)}")
    accepted = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    bad = sorted(set(params) - set(accepted))
    if bad:
        raise InputError(f"mechanism {name!r}: unknown parameter(s) {', '.join(bad)}; it takes {', '.join(accepted)}")
    try:
        return cls(**params)
    except ValueError as e:
        raise InputError(f"mechanism {name!r}: {e}") from None


def variant_params(dedup_hash: str = "jhash", merge_variant: str = "posted", fold_variant: str = "posted",
                   patent_identity: str = "full", predetermined_size: int | None = None,
                   use_zero_pages: bool = False) -> dict:
    """Per-mechanism parameters from the variant options that ``simulate all`` and ``report`` share."""
    return {"zram_dedup": {"hash": dedup_hash}, "zram_merge": {"variant": merge_variant},
            "zsmalloc_fold": {"variant": fold_variant}, "ksm": {"use_zero_pages": use_zero_pages},
            "patent_claim1": {"identity": patent_identity, "predetermined_size": predetermined_size}}


def check_params(params: dict | None) -> dict:
    """``params`` (mechanism name -> its parameters) with every name checked: a misspelled
    mechanism is refused listing the valid ones, never silently ignored."""
    from ..errors import InputError
    params = params or {}
    bad = sorted(k for k in params if k not in REGISTRY)
    if bad:
        raise InputError(f"params: unknown mechanism(s) {', '.join(map(repr, bad))}; use any of {', '.join(REGISTRY)}")
    return params


def simulate_all(workload: Workload, mechanisms=DEFAULT_ORDER, params: dict | None = None, bus=None,
                 progress=None) -> dict:
    """Run ``workload`` through every mechanism (one at a time, each on a fresh machine whose
    state is released before the next) and return the JSON-ready summary that
    ``pagemerge simulate all --json`` prints: ``{"workload": {...}, "mechanisms": {name: result}}``.
    ``progress``: called with each mechanism's name once it has run."""
    params = check_params(params)
    mechs = [m if isinstance(m, Mechanism) else make(m, **params.get(m, {})) for m in mechanisms]
    wl = workload
    out = {"workload": {"pages": wl.name, "n_pages": len(wl.pages),
                        "processes": len({*wl.manifest.pid}) if wl.manifest else 1,
                        "swap_fraction": wl.swap_fraction, "policy": wl.policy, "seed": wl.seed,
                        "compact": wl.compact},
           "mechanisms": {}}
    for m in mechs:
        m.run(wl, bus=bus)
        out["mechanisms"][m.name] = m.result()
        m.release()                     # the model and its store, collected (reference cycles included)
        wl.pages.release()              # and any page of the input still resident
        if progress:
            progress(m.name)
    return out


def run_mechanisms(workload: Workload, mechanisms=DEFAULT_ORDER, params: dict | None = None, bus=None) -> dict:
    """Run ``workload`` through each mechanism (a fresh machine each); return name -> the mechanism
    object after its run (``.result()`` gives its counters)."""
    params = check_params(params)
    out = {}
    for m in mechanisms:
        mech = m if isinstance(m, Mechanism) else make(m, **params.get(m, {}))
        mech.run(workload, bus=bus)
        out[mech.name] = mech
    return out


def compare(workload: Workload, mechanisms=DEFAULT_ORDER, params: dict | None = None):
    """Run the mechanisms and return a pandas DataFrame, one row per mechanism (the index,
    ``mechanism``), with these columns:

    - ``title``, ``variant``, ``link`` (the chain link it repoints), ``when`` (inline on store,
      offline trigger, background scan, on swap-out): text;
    - ``saved_bytes``: bytes not stored thanks to sharing (compressed bytes for zram-level
      mechanisms, whole 4,096-byte pages for KSM); ``metadata_bytes``: bytes of the design's own
      structures, priced from the kernel's struct sizes; ``net_saved_bytes``: saved less metadata
      (negative when the metadata costs more); all in bytes;
    - ``pages_merged``: pages that share another's storage (pages);
    - ``verified_readback``: every page read back equal to what was written (bool);
      ``comp_algorithm``: the zram backend its store compressed with;
    - the work counters: ``pages_hashed`` (pages), ``bytes_hashed`` (bytes), ``compares`` (count),
      ``bytes_compared`` (bytes), ``compressions`` and ``decompressions`` (counts);
    - for mechanisms with a zram store: ``mem_used_total`` (bytes, the zsmalloc pool) and
      ``compr_data_size`` (bytes of compressed data), as in zram's ``mm_stat``; NaN otherwise.

    ``params`` maps a mechanism name to its parameters (see :func:`make`); an unknown mechanism
    or parameter is refused, listing the valid ones."""
    import pandas as pd
    rows = []
    for name, mech in run_mechanisms(workload, mechanisms, params).items():
        r = mech.result()
        row = {"mechanism": name, "title": r["title"], "variant": r["variant"], "link": r["link"],
               "when": r["when"], "saved_bytes": r["saved_bytes"], "metadata_bytes": r["metadata_bytes"],
               "net_saved_bytes": r["net_saved_bytes"], "pages_merged": r["pages_merged"],
               "verified_readback": r["verified_readback"], "comp_algorithm": r["comp_algorithm"]}
        row.update(r["work"])
        if "mm_stat" in r:
            row["mem_used_total"] = r["mm_stat"]["mem_used_total"]
            row["compr_data_size"] = r["mm_stat"]["compr_data_size"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("mechanism")


__all__ = ["REGISTRY", "Mechanism", "Workload", "ZramLevelMechanism", "register", "make", "run_mechanisms",
           "compare", "simulate_all", "variant_params", "check_params", "catalogue", "DEFAULT_ORDER", "PRIOR_ART"]
