"""Claim construction as data: the readings of a claim's words that the engine can run.

``claims/data/<NUMBER>/constructions.yaml`` lists, for one mechanism (the claimed method),
each construction: its id, the claim words it construes (element id and the words quoted from
that element), its alternatives (id, a one-line statement, the engine parameters that
implement it), the default alternative and notes. :func:`load_constructions` reads it
(malformed YAML or a schema error is one line naming the file); :func:`check_constructions`
returns one line per problem:

* an element id that the patent does not have, or quoted words that are not in its text;
* an alternative naming a parameter the mechanism does not take, or a value it does not
  accept; two alternatives of one construction with the same parameters; a parameter set
  by two constructions;
* a duplicate id, or a default that is not one of the alternatives;
* text that states a legal conclusion or says which reading is right (the data describes
  readings; it never chooses one).

:func:`construe` runs the mechanism under every alternative on the same pages
(:func:`engine.mechanisms.construe.construe_runs`) and returns the comparison that
``pagemerge construe`` prints.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from engine.errors import InputError

from .model import ClaimChartBundle, Strict, quoted_string

#: wording that would pick a reading instead of describing it
CHOOSES_A_READING = re.compile(r"\b(?:(?:correct|right|proper|wrong|incorrect|better|best|preferred|true)\s+"
                               r"(?:reading|construction|interpretation|meaning)|should\s+be\s+(?:read|construed))\b",
                               re.I)
NOTE = ("Each alternative is a reading of the claim's words that the engine can run; the figures show what each "
        "reading does on these pages. They do not say which reading is right. Technical evidence, not legal advice.")


class Construes(Strict):
    element: str
    words: str = Field(min_length=1)

    @field_validator("element", mode="before")
    @classmethod
    def _element(cls, v):
        return quoted_string(v, "element id")


class Alternative(Strict):
    id: str
    statement: str = Field(min_length=1)
    params: dict[str, str | int] = Field(min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v):
        return quoted_string(v, "alternative id")

    @field_validator("params", mode="before")
    @classmethod
    def _values(cls, v):
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, bool) or x is None:
                    raise ValueError(f"parameter {k}: value {x!r} must be a quoted string or a number")
        return v


class Construction(Strict):
    id: str
    question: str = ""
    construes: list[Construes] = Field(min_length=1)
    alternatives: list[Alternative] = Field(min_length=2)
    default: str
    notes: str = ""

    @field_validator("id", "default", mode="before")
    @classmethod
    def _ids(cls, v):
        return quoted_string(v, "construction id")


class ConstructionSet(Strict):
    patent: str
    mechanism: str
    constructions: list[Construction] = Field(min_length=1)
    #: combinations the report runs beside the single alternatives ("a=x,b=y" each)
    combinations: list[str] = Field(default_factory=list)

    def get(self, cid: str) -> Construction | None:
        return next((c for c in self.constructions if c.id == cid), None)

    def default_params(self) -> dict:
        out: dict = {}
        for c in self.constructions:
            for a in c.alternatives:
                if a.id == c.default:
                    out.update(a.params)
        return out


# ---- loading ---------------------------------------------------------------------------------
def constructions_path(number: str) -> Path:
    from .store import DATA, normal_number
    return DATA / normal_number(number) / "constructions.yaml"


def load_constructions(where: str | Path) -> ConstructionSet | None:
    """The constructions of a patent (``"US9977598"``) or from a file; None when the patent has
    no constructions file. Bad YAML or a schema error: InputError, one line naming the file."""
    from .store import load_yaml, validation_error
    p = Path(where)
    if p.suffix not in (".yaml", ".yml"):
        p = constructions_path(str(where))
        if not p.exists():
            return None
    data = load_yaml(p)
    if not isinstance(data, dict):
        raise InputError(f"{p}: must be a mapping with patent, mechanism and constructions")
    try:
        return ConstructionSet.model_validate(data)
    except ValidationError as e:
        raise validation_error(p, e) from None


# ---- checking --------------------------------------------------------------------------------
def _mechanism_parameters(name: str):
    """(accepted __init__ parameters, value checker) of a registered mechanism, or None."""
    from engine.mechanisms import REGISTRY
    cls = REGISTRY.get(name)
    if cls is None:
        return None
    accepted = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    checker = getattr(sys.modules[cls.__module__], "construction_value_problem", None)
    return accepted, checker


def check_constructions(bundle_or_patent: ClaimChartBundle | str, path: str | Path | None = None) -> list[str]:
    """One line per problem in a patent's constructions (an empty list: consistent, or no
    constructions file). ``bundle_or_patent``: a loaded bundle or a patent number; ``path``: a
    constructions file other than the bundled one. Malformed files raise InputError."""
    from .chart import LEGAL_CONCLUSIONS
    if isinstance(bundle_or_patent, str):
        bundle = _claims_only(bundle_or_patent)
    else:
        bundle = bundle_or_patent
    where = str(path) if path is not None else str(constructions_path(bundle.patent.number))
    cset = load_constructions(path if path is not None else bundle.patent.number)
    if cset is None:
        return []
    problems: list[str] = []
    if cset.patent != bundle.patent.number:
        problems.append(f"{where}: names patent {cset.patent!r}, not {bundle.patent.number!r}")
    elements = {e.id: e for c in bundle.claims if c.loaded for e in c.elements}
    mp = _mechanism_parameters(cset.mechanism)
    if mp is None:
        from engine.mechanisms import REGISTRY
        problems.append(f"{where}: mechanism {cset.mechanism!r} is not one of the engine's ({', '.join(REGISTRY)})")
    accepted, checker = mp if mp is not None else ([], None)
    if mp is not None and checker is None:
        problems.append(f"{where}: mechanism {cset.mechanism!r} declares no construction parameters")
    seen_ids: set[str] = set()
    owner: dict[str, str] = {}                     # engine parameter -> the construction that sets it
    for ci, c in enumerate(cset.constructions):
        tag = f"{where}: constructions[{ci}] ({c.id})"
        if c.id in seen_ids:
            problems.append(f"{tag}: duplicate construction id")
        seen_ids.add(c.id)
        for cw in c.construes:
            e = elements.get(cw.element)
            if e is None:
                problems.append(f"{tag}: construes element {cw.element!r}, which the patent does not have "
                                f"(loaded elements: {', '.join(elements)})")
            elif cw.words not in e.text:
                problems.append(f"{tag}: the words {cw.words!r} do not occur in element {cw.element}")
        alt_ids = [a.id for a in c.alternatives]
        for a_id in sorted({x for x in alt_ids if alt_ids.count(x) > 1}):
            problems.append(f"{tag}: duplicate alternative id {a_id!r}")
        if c.default not in alt_ids:
            problems.append(f"{tag}: default {c.default!r} is not one of its alternatives ({', '.join(alt_ids)})")
        seen_params: dict[tuple, str] = {}
        for a in c.alternatives:
            atag = f"{tag}: alternative {a.id!r}"
            for k, v in a.params.items():
                if mp is None:
                    continue
                if k not in accepted:
                    problems.append(f"{atag}: {cset.mechanism} has no parameter {k!r} (it takes {', '.join(accepted)})")
                    continue
                why = checker(k, v) if checker is not None else None
                if why:
                    problems.append(f"{atag}: {why}")
                prev = owner.setdefault(k, c.id)
                if prev != c.id:
                    problems.append(f"{atag}: parameter {k!r} is already set by construction {prev!r}")
            key = tuple(sorted((k, str(v)) for k, v in a.params.items()))
            if key in seen_params:
                problems.append(f"{atag}: the same parameters as alternative {seen_params[key]!r}")
            seen_params.setdefault(key, a.id)
            problems += _wording(atag, a.statement, LEGAL_CONCLUSIONS)
        problems += _wording(tag, c.question + " " + c.notes, LEGAL_CONCLUSIONS)
    for i, combo in enumerate(cset.combinations):
        try:
            resolve_choice(cset, parse_choice(combo, "combination"), "combination")
        except InputError as e:
            problems.append(f"{where}: combinations[{i}]: {e}")
    return problems


def _wording(tag: str, text: str, legal) -> list[str]:
    out = []
    m = legal.search(text)
    if m:
        out.append(f"{tag}: states a legal conclusion ({m.group(0)!r}); describe what the reading does")
    m = CHOOSES_A_READING.search(text)
    if m:
        out.append(f"{tag}: says which reading to prefer ({m.group(0)!r}); describe what each reading does")
    return out


def _claims_only(patent: str) -> ClaimChartBundle:
    """The patent and its claims (with imported claims laid over), without its chart, so a
    chart being edited does not stop the constructions from loading."""
    from .store import DATA, load_bundle, load_yaml, normal_number, overlay_claims, patent_from_dict
    base = DATA / normal_number(patent)
    if not (base / "patent.yaml").exists():
        return load_bundle(patent)                 # known only from an import (or unknown: one line)
    pat, claims = patent_from_dict(load_yaml(base / "patent.yaml"), base / "patent.yaml")
    return ClaimChartBundle(patent=pat, claims=overlay_claims(pat.number, claims), references=[], chart=None)


def _checked(patent: str) -> tuple[ConstructionSet, ClaimChartBundle]:
    bundle = _claims_only(patent)
    cset = load_constructions(bundle.patent.number)
    if cset is None:
        raise InputError(f"{bundle.patent.number}: no claim constructions ({constructions_path(bundle.patent.number)} "
                         f"does not exist)")
    problems = check_constructions(bundle)
    if problems:
        more = f" (and {len(problems) - 1} more; see 'pagemerge claims check')" if len(problems) > 1 else ""
        raise InputError(problems[0] + more)
    return cset, bundle


# ---- choosing readings -----------------------------------------------------------------------
def parse_choice(spec: str, what: str = "--construction") -> list[tuple[str, str]]:
    """``"large-branch=raw,equal=smaller"`` -> ``[("large-branch", "raw"), ("equal", "smaller")]``."""
    out = []
    if len(spec) > 4096:
        raise InputError(f"{what}: longer than 4096 characters")
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        cid, eq, alt = part.partition("=")
        if not eq or not cid.strip() or not alt.strip():
            raise InputError(f"{what}: {part!r} is not CONSTRUCTION=ALTERNATIVE")
        out.append((cid.strip(), alt.strip()))
    if not out:
        raise InputError(f"{what}: empty; give CONSTRUCTION=ALTERNATIVE[,...]")
    return out


def resolve_choice(cset: ConstructionSet, choice: list[tuple[str, str]], what: str = "--construction") -> dict:
    """Engine parameters for chosen alternatives. A construction whose alternatives all set the
    same single parameter also takes a number for it (``predetermined-size=3000``)."""
    params: dict = {}
    seen = set()
    for cid, alt in choice:
        c = cset.get(cid)
        if c is None:
            raise InputError(f"{what}: no construction {cid!r}; "
                             f"use one of {', '.join(x.id for x in cset.constructions)}")
        if cid in seen:
            raise InputError(f"{what}: construction {cid!r} given twice")
        seen.add(cid)
        a = next((x for x in c.alternatives if x.id == alt), None)
        if a is not None:
            params.update(a.params)
            continue
        names = {tuple(x.params) for x in c.alternatives}
        if alt.isdigit() and len(alt) <= 9 and len(names) == 1 and len(next(iter(names))) == 1:
            param = next(iter(names))[0]
            mp = _mechanism_parameters(cset.mechanism)
            why = mp[1](param, int(alt)) if mp and mp[1] else None
            if why is None:
                params[param] = int(alt)
                continue
            raise InputError(f"{what}: {cid}={alt}: {why}")
        raise InputError(f"{what}: {cid}={alt}: no such alternative; "
                         f"use one of {', '.join(x.id for x in c.alternatives)}")
    return params


def construction_params(patent: str, spec: str, what: str = "--construction") -> dict:
    """Engine parameters of the claimed method for ``spec`` (``"large-branch=raw,equal=smaller"``),
    the other constructions at their defaults. For ``simulate all --construction``."""
    cset, _bundle = _checked(patent)
    return {**cset.default_params(), **resolve_choice(cset, parse_choice(spec, what), what)}


def chosen_params(patent: str, spec: str, predetermined_size: int | None = None, identity: str = "full") -> dict:
    """Only the parameters that ``spec`` chooses (``simulate all --construction``), refusing a
    choice that contradicts ``--predetermined-size`` or ``--patent-identity``."""
    cset, _bundle = _checked(patent)
    chosen = resolve_choice(cset, parse_choice(spec))
    if "predetermined_size" in chosen and predetermined_size is not None:
        raise InputError("--construction: sets the predetermined size, and so does --predetermined-size; give one")
    if "identity" in chosen and identity != "full" and chosen["identity"] != identity:
        raise InputError(f"--construction: identity={chosen['identity']} contradicts --patent-identity {identity}")
    return chosen


def parse_grid(spec: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """``"a=x,b=y;c=z"`` -> combinations, each with its label."""
    combos = []
    for part in spec.split(";"):
        if part.strip():
            choice = parse_choice(part, "--grid")
            combos.append((",".join(f"{c}={a}" for c, a in choice), choice))
    if not combos:
        raise InputError("--grid: empty; give CONSTRUCTION=ALTERNATIVE[,...][;...]")
    return combos


def cells_turning_on(patent: str) -> dict[str, list[dict]]:
    """construction id -> the analyses' cells that give a status under each of its alternatives:
    ``[{"analysis": "designs"|"prior_art", "element", "subject", "status", "statuses"}]``. Empty
    when the patent has no analyses (or they do not load: ``claims check`` reports why)."""
    from .analysis import load_prior_art
    from .store import load_bundle
    out: dict[str, list[dict]] = {}
    try:
        bundle = load_bundle(patent)
        pa = load_prior_art(bundle)
    except InputError:
        return out
    cells = [("designs", r.element, r.mechanism, r) for r in (bundle.chart.rows if bundle.chart else [])]
    cells += [("prior_art", c.element, c.reference, c) for c in (pa.cells if pa else [])]
    for analysis, el, subject, c in cells:
        for cid, per in c.by_construction.items():
            out.setdefault(cid, []).append({"analysis": analysis, "element": el, "subject": subject,
                                            "status": c.status, "statuses": dict(per)})
    return out


# ---- running ---------------------------------------------------------------------------------
def construe(patent: str = "US9977598", pages=None, grid=None, *, manifest=None, no_manifest: bool = False,
             swap_fraction: float = 1.0, policy: str = "lru", seed: int = 0, examples: int = 5,
             base_params: dict | None = None) -> dict:
    """Run the patent's claimed method under each alternative of each construction (others at
    their default) and each ``grid`` combination, on the same pages; compare every run's
    page-by-page decisions with the default reading's.

    ``pages``: a page-set path (its manifest beside it is used unless ``no_manifest``), a
    :class:`~engine.pages.PageSet`, or None for the embedded default. ``grid``: a string
    ``"a=x,b=y;c=z"`` or a list of such strings. Returns the JSON-ready comparison."""
    from engine.mechanisms import Workload
    from engine.mechanisms.construe import construe_runs
    from engine.pages import PageSet, default_pages_path
    from engine.workloads.manifest import resolve_manifest
    cset, bundle = _checked(patent)
    if pages is None:
        pages = default_pages_path()
    if isinstance(pages, PageSet):
        ps, name = pages, getattr(pages, "name", "") or "pages"
        man = manifest
    else:
        ps, name = PageSet.open(pages), str(pages)
        man = resolve_manifest(pages, len(ps), manifest, no_manifest)
    if not 0.0 <= swap_fraction <= 1.0:
        raise InputError(f"--swap-fraction: {swap_fraction} is not between 0 and 1")
    wl = Workload(ps, man, swap_fraction, policy, seed, False, name)
    combos = []
    for g in ([grid] if isinstance(grid, str) else list(grid or [])):
        for label, choice in parse_grid(g):
            combos.append({"id": label, "params": resolve_choice(cset, choice, "--grid")})
    spec = [{"id": c.id, "default": c.default,
             "alternatives": [{"id": a.id, "params": dict(a.params)} for a in c.alternatives]}
            for c in cset.constructions]
    runs = construe_runs(wl, spec, combos, mechanism=cset.mechanism, base_params=base_params, examples=examples)
    by_id = {c.id: c for c in cset.constructions}
    turning = cells_turning_on(bundle.patent.number)
    out = {"patent": bundle.patent.number, "mechanism": cset.mechanism, "pages": name, "n_pages": len(ps),
           "processes": len(set(man.pid)) if man is not None else 1, "swap_fraction": swap_fraction,
           "policy": policy, "note": NOTE, "default": runs["default"], "constructions": [], "grid": runs["grid"],
           "runs": runs["runs"]}
    for rc in runs["constructions"]:
        c = by_id[rc["id"]]
        stmts = {a.id: a.statement for a in c.alternatives}
        out["constructions"].append({
            "id": c.id, "question": c.question, "default": c.default, "notes": c.notes,
            "construes": [{"element": w.element, "words": w.words} for w in c.construes],
            "cells": turning.get(c.id, []),
            "alternatives": [{"id": a["id"], "statement": stmts[a["id"]], **{k: v for k, v in a.items() if k != "id"}}
                             for a in rc["alternatives"]]})
    return out


__all__ = ["ConstructionSet", "Construction", "Alternative", "load_constructions", "check_constructions",
           "construction_params", "chosen_params", "construe", "parse_choice", "parse_grid", "resolve_choice",
           "constructions_path", "cells_turning_on"]
