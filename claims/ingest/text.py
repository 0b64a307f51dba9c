"""Plain claims text pasted by a reviewer: "1. A method ... 2. The method of claim 1 ..."."""
from __future__ import annotations

import re
from pathlib import Path

from engine.errors import InputError

from ..parse import parse_claim, split_claims_text, strip_number
from . import Imported


def import_text(path: Path, text: str | None = None, number: str = "") -> Imported:
    if text is None:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror})") from None
    parts = split_claims_text(text)
    if not parts:
        raise InputError(f"{path}: no numbered claims found (expected '1. A ...', '2. The ... of claim 1 ...')")
    if not number:
        m = re.search(r"\bUS\s*([\d,]{7,11})\b", text[:2000])
        number = "US" + m.group(1).replace(",", "") if m else ""
    claims = [parse_claim(n, strip_number(t), source=f"text {Path(path).name}") for n, t in parts]
    return Imported(number=number, claims=claims, source=f"text {path}")
