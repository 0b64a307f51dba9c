"""Loading patents, references and charts from YAML, with one-line errors.

The bundled data lives in ``claims/data/<NUMBER>/`` (``patent.yaml``, ``references.yaml``,
``chart.yaml``). Claims imported with ``pagemerge claims import`` are saved in
``output/claims/<NUMBER>.yaml`` (the git-ignored output folder, relative to the working
directory, or ``$PAGEMERGE_OUTPUT``). ``claims show`` lays them over the bundled ones, so
claims 3 to 16 of US 9,977,598 appear once a user imports their copy of the PDF.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import ValidationError

from engine.errors import InputError

from .model import Chart, Claim, ClaimChartBundle, Patent, Reference
from .parse import parse_claim, strip_number

DATA = Path(str(files("claims") / "data"))


def output_dir() -> Path:
    return Path(os.environ.get("PAGEMERGE_OUTPUT", "output"))


def load_yaml(path: Path):
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnicodeDecodeError, IsADirectoryError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{path}: malformed YAML{where}: {problem}") from None


def validation_error(path, e: ValidationError) -> InputError:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return InputError(f"{path}: {loc}: {first['msg']}{more}")


def claims_from_dicts(items: list[dict], path) -> list[Claim]:
    out = []
    for i, c in enumerate(items or []):
        if not isinstance(c, dict) or "number" not in c:
            raise InputError(f"{path}: claims[{i}]: needs a number")
        n = c["number"]
        if not isinstance(n, int):
            raise InputError(f"{path}: claims[{i}].number: {n!r} is not a whole number")
        if c.get("loaded", True) is False or not c.get("text"):
            out.append(Claim(number=n, text="", loaded=False, independent=None,
                             how_to_load=c.get("how_to_load", ""), source=c.get("source", "")))
            continue
        out.append(parse_claim(n, strip_number(str(c["text"])), source=c.get("source", "")))
    return out


def patent_from_dict(d: dict, path) -> tuple[Patent, list[Claim]]:
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a mapping of patent fields")
    d = dict(d)
    claims = claims_from_dicts(d.pop("claims", []), path)
    try:
        return Patent.model_validate(d), claims
    except ValidationError as e:
        raise validation_error(path, e) from None


def references_from_list(items, path) -> list[Reference]:
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a list of references")
    out = []
    for i, r in enumerate(items):
        if isinstance(r, dict) and not r.get("date"):
            raise InputError(f"{path}: reference {r.get('id', i)!r} has no date")
        try:
            out.append(Reference.model_validate(r))
        except ValidationError as e:
            raise validation_error(f"{path}: references[{i}]", e) from None
    return out


def chart_from_dict(d, path) -> Chart:
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a mapping with patent, claims, mechanisms and rows")
    try:
        return Chart.model_validate(d)
    except ValidationError as e:
        raise validation_error(path, e) from None


def overlay_claims(number: str, claims: list[Claim]) -> list[Claim]:
    """Replace not-yet-loaded claims by imported ones from ``output/claims/NUMBER.yaml``."""
    p = output_dir() / "claims" / f"{number}.yaml"
    if not p.exists():
        return claims
    d = load_yaml(p)
    imported = {c.number: c for c in claims_from_dicts((d or {}).get("claims", []), p) if c.loaded}
    return [imported.get(c.number, c) if not c.loaded else c for c in claims] + \
        [c for n, c in sorted(imported.items()) if n not in {x.number for x in claims}]


def bundled_numbers() -> list[str]:
    return sorted(p.name for p in DATA.iterdir() if (p / "patent.yaml").exists())


def load_bundle(number: str = "US9977598", chart_path: str | Path | None = None, overlay: bool = True) -> ClaimChartBundle:
    """The patent, claims, references and chart (bundled, or ``chart_path`` with the patent
    and references found beside it or in the bundled data)."""
    chart = None
    base = DATA / number.replace(" ", "").replace(",", "")
    if chart_path is not None:
        chart_path = Path(chart_path)
        chart = chart_from_dict(load_yaml(chart_path), chart_path)
        number = chart.patent
        base = chart_path.parent if (chart_path.parent / "patent.yaml").exists() else DATA / number
    if not (base / "patent.yaml").exists():
        known = ", ".join(bundled_numbers())
        raise InputError(f"{number}: no such patent in the bundled data (known: {known}); import it with "
                         f"'pagemerge claims import FILE'")
    patent, claims = patent_from_dict(load_yaml(base / "patent.yaml"), base / "patent.yaml")
    if overlay:
        claims = overlay_claims(patent.number, claims)
    refs = references_from_list(load_yaml(base / "references.yaml"), base / "references.yaml") \
        if (base / "references.yaml").exists() else []
    if chart is None and (base / "chart.yaml").exists():
        chart = chart_from_dict(load_yaml(base / "chart.yaml"), base / "chart.yaml")
    return ClaimChartBundle(patent=patent, claims=claims, references=refs, chart=chart)
