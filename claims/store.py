"""Loading patents, references and charts from YAML, with one-line errors; saving imports.

The bundled data lives in ``claims/data/<NUMBER>/`` (``patent.yaml``, ``references.yaml``,
``chart.yaml``). Claims imported with ``pagemerge claims import`` are saved in
``output/claims/<NUMBER>.yaml`` (the git-ignored output folder, relative to the working
directory, or ``$PAGEMERGE_OUTPUT``). They are laid over the bundled claims that are not yet
loaded, so claims 3 to 16 of US 9,977,598 appear once a user imports their copy of the PDF.
A patent that is not bundled is loaded from its import alone: ``claims show``, ``claims
check`` and ``report --patent`` work on it like on a bundled one.

An import is saved with its full structure (elements with offsets and nesting, parents as
the source stated them, pinpoints), written by the YAML library's own emitter, which escapes
every character YAML cannot carry raw; what the importer saved is exactly what is loaded.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import ValidationError

from engine.errors import InputError

from .model import PATENT_NUMBER as _NUMBER
from .model import Chart, Claim, ClaimChartBundle, Patent, Reference
from .parse import parse_claim, strip_number

DATA = Path(str(files("claims") / "data"))
# libyaml where it is built in (the same YAML 1.1 resolver, at C speed): a multi-megabyte import
# has hundreds of thousands of elements
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def output_dir() -> Path:
    return Path(os.environ.get("PAGEMERGE_OUTPUT", "output"))


def load_yaml(path: Path):
    from engine.fileio import read_text_input
    text = read_text_input(path, "YAML file")
    try:
        return yaml.load(text, Loader=_Loader)
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
        if "elements" in c:                      # a saved import: its structure as the source gave it
            try:
                out.append(Claim.model_validate(_with_element_text(c)))
            except ValidationError as e:
                raise validation_error(f"{path}: claims[{i}]", e) from None
            continue
        claim = parse_claim(n, strip_number(str(c["text"])), source=str(c.get("source", "")))
        if c.get("pinpoint"):
            claim = claim.model_copy(update={"pinpoint": str(c["pinpoint"])})
        out.append(claim)
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


def imported_path(number: str) -> Path:
    """``output/claims/<NUMBER>.yaml``, with the number checked against its format and the
    path proven to stay inside the folder (the number comes from a document)."""
    from engine.fileio import inside
    if not _NUMBER.fullmatch(number or ""):
        raise InputError(f"{number[:40]!r}: not a patent number (e.g. US9977598); it cannot name a file")
    return inside(output_dir() / "claims", f"{number}.yaml", "patent number")


def normal_number(number: str) -> str:
    """"US 9,977,598 B2", "us9977598", "9977598" -> "US9977598" (as given if it is no number)."""
    from .ingest import normalize_number
    n = (number or "").strip().upper()
    if _NUMBER.fullmatch(n):
        return n
    found = normalize_number(n)
    return found[0] if found else n


def load_imported(number: str) -> dict | None:
    p = imported_path(number)
    if not p.exists():
        return None
    d = load_yaml(p)
    if not isinstance(d, dict):
        raise InputError(f"{p}: expected a mapping with the patent's number and claims")
    return d


def overlay_claims(number: str, claims: list[Claim]) -> list[Claim]:
    """Replace not-yet-loaded claims by imported ones from ``output/claims/NUMBER.yaml``."""
    d = load_imported(number)
    if d is None:
        return claims
    p = imported_path(number)
    imported = {c.number: c for c in claims_from_dicts(d.get("claims", []), p) if c.loaded}
    have = {x.number for x in claims}
    return [imported.get(c.number, c) if not c.loaded else c for c in claims] + \
        [c for n, c in sorted(imported.items()) if n not in have]


def bundled_numbers() -> list[str]:
    return sorted(p.name for p in DATA.iterdir() if (p / "patent.yaml").exists())


def imported_numbers() -> list[str]:
    d = output_dir() / "claims"
    try:
        return sorted(p.stem for p in d.iterdir() if p.suffix == ".yaml" and _NUMBER.fullmatch(p.stem))
    except OSError:
        return []


def _imported_bundle(number: str) -> ClaimChartBundle | None:
    d = load_imported(number)
    if d is None:
        return None
    p = imported_path(number)
    d = dict(d)
    d.pop("imported_from", None)
    d.pop("notes", None)
    patent, claims = patent_from_dict(d, p)
    if patent.number != number:
        raise InputError(f"{p}: holds patent {patent.number}, not {number}")
    return ClaimChartBundle(patent=patent, claims=claims, references=[], chart=None)


def load_bundle(number: str = "US9977598", chart_path: str | Path | None = None, overlay: bool = True) -> ClaimChartBundle:
    """The patent, claims, references and chart (bundled, or ``chart_path`` with the patent
    and references found beside it or in the bundled data), or a patent known only from
    its import (no references, no chart)."""
    from engine.fileio import inside
    chart = None
    number = normal_number(number)
    if chart_path is not None:
        chart_path = Path(chart_path)
        chart = chart_from_dict(load_yaml(chart_path), chart_path)
        number = normal_number(chart.patent)
        if not _NUMBER.fullmatch(number):            # a name from a document, before it names a folder
            raise InputError(f"{chart_path}: patent: {chart.patent!r} is not a patent number (e.g. US9977598)")
    base = inside(DATA, number, "patent number") if _NUMBER.fullmatch(number) else DATA / "-"
    if chart_path is not None and (chart_path.parent / "patent.yaml").exists():
        base = chart_path.parent
    if not (base / "patent.yaml").exists():
        b = _imported_bundle(number) if _NUMBER.fullmatch(number) else None
        if b is not None:
            return b.model_copy(update={"chart": chart}) if chart is not None else b
        known = ", ".join(bundled_numbers() + [n + " (imported)" for n in imported_numbers()])
        raise InputError(f"{number}: no such patent in the bundled data or the imports (known: {known}); "
                         f"import it with 'pagemerge claims import FILE'")
    patent, claims = patent_from_dict(load_yaml(base / "patent.yaml"), base / "patent.yaml")
    if overlay:
        claims = overlay_claims(patent.number, claims)
    refs = references_from_list(load_yaml(base / "references.yaml"), base / "references.yaml") \
        if (base / "references.yaml").exists() else []
    if chart is None and (base / "chart.yaml").exists():
        chart = chart_from_dict(load_yaml(base / "chart.yaml"), base / "chart.yaml")
    return ClaimChartBundle(patent=patent, claims=claims, references=refs, chart=chart)


def _with_element_text(c: dict) -> dict:
    """A saved claim's elements carry offsets, not copies of the text: fill the text in."""
    text = c.get("text")
    els = c.get("elements")
    if not isinstance(text, str) or not isinstance(els, list):
        return c
    out = []
    for e in els:
        if isinstance(e, dict) and "text" not in e and isinstance(e.get("start"), int) and isinstance(e.get("end"), int):
            e = {**e, "text": text[e["start"]:e["end"]]}
        out.append(e)
    return {**c, "elements": out}


def _saved_claim(c: Claim, from_text: bool = False) -> dict:
    """A claim as saved: its text alone where parsing the text gives back exactly this claim
    (text and PDF imports; a multi-megabyte claim stays one string), else its full structure
    (XML imports, whose nesting and claim-refs the text does not carry)."""
    if from_text or parse_claim(c.number, c.text, source=c.source).model_copy(update={"pinpoint": c.pinpoint}) == c:
        d = {"number": c.number, "text": f"{c.number}. {c.text}", "source": c.source}
        if c.pinpoint:
            d["pinpoint"] = c.pinpoint
        return d
    d = c.model_dump(mode="json")
    d["elements"] = [{k: v for k, v in e.items() if k != "text" and not (k == "parent" and not v)
                      and not (k == "means_plus_function" and not v)} for e in d["elements"]]
    return d


def imported_document(imp) -> dict:
    """An import as the mapping saved in ``output/claims/<NUMBER>.yaml``: the patent's data
    where the format has it (else its number and kind) and every claim with its structure."""
    pat = imp.biblio.get("patent") if imp.biblio else None
    d: dict = {"imported_from": imp.source}
    if pat is not None:
        d.update(pat.model_dump(mode="json", exclude_none=True))
    else:
        d["number"] = imp.number
        d["kind"] = imp.kind or ""
    if imp.notes:
        d["notes"] = list(imp.notes)
    d["claims"] = [_saved_claim(c, getattr(imp, "from_text", False)) for c in imp.claims]
    return d


_HEAD = "# imported by 'pagemerge claims import'; every value as the document gave it\n"


def dump_imported(imp) -> bytes:
    head = _HEAD
    body = yaml.dump(imported_document(imp), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 30,
                     default_flow_style=False)
    return (head + body).encode("utf-8")


def save_imported(imp, out: Path | None = None, force: bool = False) -> Path:
    """Write an import to ``out`` (default ``output/claims/<NUMBER>.yaml``) atomically; an
    existing file is replaced only with ``force``. The saved file is read back and compared
    with what was imported before it is renamed into place."""
    from engine.fileio import AtomicFile
    replaceable = None
    if out is None:
        if not imp.number:
            raise InputError(f"{imp.source}: the document gives no patent number; name the output with -o "
                             f"or give it with --number")
        out = imported_path(imp.number)
        replaceable = _earlier_import                # the default place holds our own earlier import
    data = dump_imported(imp)
    back = yaml.load(data.decode("utf-8"), Loader=_Loader)
    loaded = claims_from_dicts(back.get("claims", []), out)
    if [c.model_dump() for c in loaded] != [c.model_dump() for c in imp.claims]:
        raise InputError(f"{out}: the saved claims would not read back as imported (please report this)")
    with AtomicFile(out, force=force, replaceable=replaceable) as f:
        f.write(data)
    return out


def _earlier_import(p: Path) -> bool:
    from engine.fileio import open_input
    try:
        with open_input(p, "earlier import") as f:
            return f.read(len(_HEAD.encode())) == _HEAD.encode()
    except (OSError, InputError):
        return False
