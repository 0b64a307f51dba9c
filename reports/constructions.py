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
    where = str(constructions_path(inputs.patent))
    if problems:
        return {"problems": problems, "constructions": [], "grid": [], "source": where, "note": NOTE}
    out = construe(inputs.patent, inputs.pages, [";".join(cset.combinations)] if cset.combinations else None,
                   manifest=inputs.manifest, swap_fraction=inputs.swap_fraction, policy=inputs.policy,
                   seed=inputs.seed, examples=examples)
    for c in out["constructions"]:
        c["words"] = "; ".join(f'{w["element"]} "{w["words"]}"' for w in c["construes"])
    return {"problems": [], "source": where, **out}


__all__ = ["construction_section"]
