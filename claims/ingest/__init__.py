"""Patent ingest: USPTO grant XML (ICE v4.x), PDF (pdfplumber), and pasted text.

Each importer returns :class:`Imported` documents: the claims (structured, with sources),
and whatever bibliographic data the format carries. Every input is opened as a regular file
only and read within a size limit (:mod:`engine.fileio`). Names taken from a document
(country, doc-number, kind) are checked against their formats before they can name a file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError

from ..model import Claim

KIND = re.compile(r"[A-Z][0-9]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufffe\uffff\ud800-\udfff]")


@dataclass
class Imported:
    number: str                     # "US9977598" where known, else ""
    claims: list[Claim]
    source: str
    kind: str = ""
    biblio: dict = field(default_factory=dict)
    pinpoints: dict = field(default_factory=dict)   # claim number -> "col:line-col:line"
    notes: list = field(default_factory=list)       # what the importer normalised or could not check
    from_text: bool = False                         # every claim is parse_claim(number, text): saved as text


def short(s: str, n: int = 24) -> str:
    """A document's value shortened for a one-line message."""
    s = str(s)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} characters)"


def clean_text(s: str) -> str:
    """Claim text without control characters (C0 but tab/newline/return, DEL, C1), byte-order
    marks and lone surrogates: none of them is claim text, and none survives a YAML file."""
    return _CONTROL.sub("", s)


def checked_number(country, doc_number, kind, where: str) -> tuple[str, str]:
    """``("US8927118", "B2")`` from a document's country, doc-number and kind, each checked
    against its format (``[A-Z]{2}``, digits with an optional series letter, ``[A-Z][0-9]?``)."""
    country = (country or "US").strip()
    doc = (doc_number or "").strip()
    kind = (kind or "").strip()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise InputError(f"{where}: country {short(country)!r} is not a two-letter country code")
    m = re.fullmatch(r"(D|PP|RE|RX|H|T|AI)?0*([0-9]{1,11})", doc)
    if not m:
        raise InputError(f"{where}: doc-number {short(doc)!r} is not a patent number (digits, at most 11)")
    if kind and not KIND.fullmatch(kind):
        raise InputError(f"{where}: kind {short(kind)!r} is not a kind code (a letter and an optional digit)")
    return f"{country}{m.group(1) or ''}{m.group(2)}", kind


def normalize_number(s: str) -> tuple[str, str] | None:
    """``US 6,285,999 B1``, ``US006285999``, ``US006285999A``, ``6285999``, ``4,136,359`` ->
    ``("US6285999", kind)``; None when ``s`` holds no patent number."""
    m = re.search(r"(?<![\w,])(?:(US|U\.S\.)\s*(?:Pat(?:ent)?\.?\s*(?:No\.?)?\s*)?)?"
                  r"(\d{1,2},\d{3},\d{3}|0?\d{7,8}|RE\s?\d{2},\d{3}|D\s?\d{3},\d{3})(?:\s*([A-Z]\d?))?(?![\w,])", s)
    if not m:
        return None
    digits = re.sub(r"[^0-9A-Z]", "", m.group(2))
    series = re.match(r"[A-Z]+", digits)
    prefix = series.group(0) if series else ""
    n = digits[len(prefix):].lstrip("0") or "0"
    if len(n) > 11:
        return None
    kind = m.group(3) or ""
    if kind and not KIND.fullmatch(kind):
        kind = ""
    return f"US{prefix}{n}", kind


def import_file(path: str | Path, number: str = "") -> list[Imported]:
    from engine.fileio import open_input
    p = Path(path)
    with open_input(p, "patent file") as f:
        head = f.read(4096)
    if not head.strip():
        raise InputError(f"{p}: empty file")
    h = head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
    if head.startswith(b"%PDF") or head[:1024].find(b"%PDF-") >= 0:
        from .pdf import import_pdf
        return [import_pdf(p)]
    h8 = h.replace(b"\x00", b"")
    if h8.startswith(b"<?xml") or h8.startswith(b"<us-patent-grant") or h8.startswith(b"<!DOCTYPE us-patent"):
        from .xml import import_xml
        return import_xml(p)
    from .text import import_text
    return [import_text(p, number=number)]
