"""Patent ingest: USPTO grant XML (ICE v4.x), PDF (pdfplumber), and pasted text.

Each importer returns :class:`Imported` documents: the claims (structured, with sources),
and whatever bibliographic data the format carries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError

from ..model import Claim


@dataclass
class Imported:
    number: str                     # "US9977598" where known, else ""
    claims: list[Claim]
    source: str
    biblio: dict = field(default_factory=dict)
    pinpoints: dict = field(default_factory=dict)   # claim number -> "col:line-col:line"


def import_file(path: str | Path) -> list[Imported]:
    p = Path(path)
    try:
        head = p.open("rb").read(2048)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except (IsADirectoryError, PermissionError) as e:
        raise InputError(f"{p}: cannot read ({e.strerror})") from None
    if not head.strip():
        raise InputError(f"{p}: empty file")
    if head.startswith(b"%PDF"):
        from .pdf import import_pdf
        return [import_pdf(p)]
    if head.lstrip().startswith(b"<?xml") or head.lstrip().startswith(b"<us-patent-grant"):
        from .xml import import_xml
        return import_xml(p)
    from .text import import_text
    return [import_text(p)]
