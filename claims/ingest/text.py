"""Plain claims text pasted by a reviewer: "1. A method ... 2. The method of claim 1 ...".

The file is read as a regular file within the claims-text size limit; a byte-order mark
decides UTF-8/16/32. Control characters are dropped (they are no claim text)."""
from __future__ import annotations

from pathlib import Path

from engine.errors import InputError

from ..parse import parse_claim, split_claims_text, strip_number
from . import Imported, clean_text, normalize_number


def import_text(path: Path, text: str | None = None, number: str = "") -> Imported:
    if text is None:
        from engine.fileio import read_text_input
        text = read_text_input(path, "claims text")
    text = clean_text(text)
    parts = split_claims_text(text)
    if not parts:
        raise InputError(f"{path}: no numbered claims found (expected '1. A ...', '2. The ... of claim 1 ...')")
    kind = ""
    if not number:
        found = normalize_number(text[:2000].split("\n1.", 1)[0])
        if found:
            number, kind = found
    claims = [parse_claim(n, strip_number(t), source=f"text {Path(path).name}") for n, t in parts]
    return Imported(number=number, kind=kind, claims=claims, source=f"text {path}", from_text=True)
