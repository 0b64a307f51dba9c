"""The report's claim-construction section: the claimed method run under each reading of the
claim's words on the report's own memory, one table per construction.

Each row is one alternative (the others at their defaults): the pages it shared through each
size branch, the bytes saved, metadata, net and RAM net, whether every page read back
exactly, and how many pages it decided differently from the default reading (with the kinds
of difference). The combinations listed in the constructions data follow. The section
describes what each reading does; it never says which reading is right.
"""
from __future__ import annotations


def construction_section(inputs, examples: int = 3) -> dict | None:
    """Template data for the section, or None when the patent has no constructions. Problems in
    the constructions data are listed instead of runs (the rest of the report still builds)."""
    from claims.constructions import NOTE, check_constructions, constructions_path, construe, load_constructions
    cset = load_constructions(inputs.patent)
    if cset is None:
        return None
    problems = check_constructions(inputs.patent)
    where = _shown_path(constructions_path(inputs.patent))
    if problems:
        return {"problems": problems, "constructions": [], "grid": [], "source": where, "note": NOTE}
    out = construe(inputs.patent, inputs.pages, [";".join(cset.combinations)] if cset.combinations else None,
                   manifest=inputs.manifest, swap_fraction=inputs.swap_fraction, policy=inputs.policy,
                   seed=inputs.seed, examples=examples)
    for c in out["constructions"]:
        c["words"] = "; ".join(f'{w["element"]} "{w["words"]}"' for w in c["construes"])
    return {"problems": [], "source": where, **out}


def _shown_path(path) -> str:
    """The data file as a reader finds it in the source tree (``claims/data/US.../
    constructions.yaml``), not this machine's absolute path of the installed package."""
    from pathlib import Path
    from claims.store import DATA
    try:
        return "claims/data/" + Path(path).relative_to(DATA).as_posix()
    except ValueError:
        return str(path)


def constructions_for(bundle, base=None):
    """The constructions beside the analyses (``base/constructions.yaml``), else the patent's."""
    from pathlib import Path
    from claims.constructions import load_constructions
    if base is not None and (Path(base) / "constructions.yaml").is_file():
        return load_constructions(Path(base) / "constructions.yaml")
    return load_constructions(bundle.patent.number)


def cell_readings(cell, cset=None) -> list[dict]:
    """A chart or prior-art cell's statuses under each alternative of the constructions its
    status turns on, for the template: ``[{"id", "question", "reasoning", "alternatives":
    [{"id", "status", "default"}]}]`` (empty when it names none)."""
    out = []
    for cid, per in getattr(cell, "by_construction", {}).items():
        c = cset.get(cid) if cset is not None else None
        out.append({"id": cid, "question": c.question if c is not None else "",
                    "reasoning": cell.construction_reasoning.get(cid, ""),
                    "alternatives": [{"id": a, "status": st, "default": c is not None and a == c.default}
                                     for a, st in per.items()]})
    return out


def readings_text(cell) -> str:
    """The same for a CSV cell: ``mapping: partial under pte-swap-entry, present under slot-remap``.
    ``cell``: a chart or prior-art cell, or its JSON form (``claims show --json``)."""
    per_c = cell.get("by_construction") or {} if isinstance(cell, dict) else getattr(cell, "by_construction", {})
    return "; ".join(f"{cid}: " + ", ".join(f"{st} under {a}" for a, st in per.items()) for cid, per in per_c.items())


def reading_params(readings: dict, patent: str = "US9977598") -> dict | None:
    """Engine parameters of the claimed method for a combination's readings
    (``{"second-space": "carved-pool"}``), or None when it names none."""
    if not readings:
        return None
    from claims.constructions import load_constructions, resolve_choice
    cset = load_constructions(patent)
    return resolve_choice(cset, list(readings.items()), "readings") if cset is not None else None


def design_readings(bundle, base=None) -> dict:
    """``"element|mechanism"`` -> :func:`cell_readings` for the designs chart's cells that name
    constructions."""
    if bundle.chart is None:
        return {}
    cset = constructions_for(bundle, base)
    return {f"{r.element}|{r.mechanism}": cell_readings(r, cset) for r in bundle.chart.rows if r.by_construction}


__all__ = ["construction_section", "cell_readings", "readings_text", "design_readings", "constructions_for",
           "reading_params"]
