"""USPTO grant full-text XML (ICE DTD v4.0 to v4.7, "Red Book").

A weekly file concatenates many documents, each with its own ``<?xml ...?>``; they are split
before parsing. Parsing goes through defusedxml: no entity expansion, no external entities,
no DTD fetched, no network. A byte-order mark or the declared encoding decides how the bytes
are read (UTF-8, UTF-16 ...).

Claims are read without loss:

* every ``claim-text`` of a claim is kept, in document order, also when a claim has several
  top-level ``claim-text`` elements (a formula between the preamble and the definitions);
* tables, formulas, chemical structures and images become placeholders with their ids
  (``[table TABLE-US-00001]``, ``[formula MATH-US-00001]``, ``[chemistry CHEM-US-00849]``,
  ``[image EMI-C00849]``), never dropped; any other markup keeps its text;
* nested ``claim-text`` are nested elements: ``1[a]``, ``1[a.i]``, ``1[a.i.1]``. The text of
  the first ``claim-text`` before its first nested one is the preamble. A ``claim-text``
  that is a bare connective ("wherein:") opens the element that follows it;
* ``claim-ref`` is the authority for dependency: a phrase such as "claim 1 of the related
  application" without a ``claim-ref`` makes no dependency.

Inventors come from ``inventor`` (v4.3 and later) or, in v4.0 to v4.2, from ``applicant``
elements with ``app-type="applicant-inventor"``. Country, doc-number, kind and dates are
checked against their formats; a bad one is a one-line error naming the document.
"""
from __future__ import annotations

import codecs
import datetime as dt
import re
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from engine.errors import InputError

from ..model import Claim, Patent, PriorityClaim, Sourced
from ..parse import _CONNECTIVE, _claim_number, level_label, parse_claim
from . import Imported, checked_number, clean_text, short

_SPLIT = re.compile(r"(?=<\?xml\s)")
_DECL_ENC = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_PLACEHOLDER = {"tables": "table", "table": "table", "maths": "formula", "math": "formula",
                "chemistry": "chemistry", "img": "image", "figref": None}
_INLINE_BREAK = {"br"}


def _date(s: str | None, what: str, where: str) -> dt.date | None:
    if s is None or not s.strip():
        return None
    s = s.strip()
    if not re.fullmatch(r"\d{8}", s):
        raise InputError(f"{where}: {what} {short(s)!r} is not a date (YYYYMMDD expected)")
    try:
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError:
        raise InputError(f"{where}: {what} {s!r} is not a valid date (YYYYMMDD)") from None


def decode_xml(data: bytes, where: str) -> str:
    """The document text: a byte-order mark first, else the declared encoding, else UTF-8."""
    from engine.fileio import decode_text
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:3] == b"\xef\xbb\xbf" or data[:4] in (b"\x00\x00\xfe\xff",):
        return decode_text(data, where, "XML file")
    if data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):               # UTF-16 without a mark
        enc = "utf-16-le" if data[0] == 0x3C else "utf-16-be"
    else:
        m = _DECL_ENC.match(data[:400])
        enc = m.group(1).decode("ascii").lower() if m else "utf-8"
        try:
            codecs.lookup(enc)
        except LookupError:
            raise InputError(f"{where}: unknown encoding {enc!r} in the XML declaration") from None
        if enc.replace("-", "").replace("_", "") in ("utf16", "utf32"):
            enc = "utf-8"                                      # declared UTF-16 but no mark: bytes say otherwise
    try:
        return data.decode(enc)
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: XML file is not valid {enc.upper()} (byte {e.start}: {e.reason})") from None


class _Builder:
    """Claim text with whitespace collapsed as it is built, and the spans of claim-text nodes."""

    def __init__(self):
        self.parts: list[str] = []
        self.n = 0
        self.space = True              # the text so far ends with a space (or is empty)

    def add(self, s: str | None):
        if not s:
            return
        s = clean_text(s)
        s = re.sub(r"\s+", " ", s)
        if self.space:
            s = s.lstrip(" ")
        if not s:
            return
        self.parts.append(s)
        self.n += len(s)
        self.space = s.endswith(" ")

    def sep(self):
        if not self.space:
            self.add(" ")

    def text(self) -> str:
        return "".join(self.parts)


def _inline(el, b: _Builder):
    """Text of an inline element (not a claim-text), placeholders for non-text content."""
    tag = el.tag
    if tag in _PLACEHOLDER and _PLACEHOLDER[tag]:
        ident = el.get("id") or el.get("num") or (el.find(".//img").get("id") if el.find(".//img") is not None else "")
        b.sep()
        b.add(f"[{_PLACEHOLDER[tag]} {ident}]".replace(" ]", "]"))
        return
    if tag in _INLINE_BREAK:
        b.add(" ")
    b.add(el.text)
    for ch in el:
        if ch.tag == "claim-text":
            raise ValueError("nested claim-text inside inline markup")
        _inline(ch, b)
        b.add(ch.tail)


def _walk(el, b: _Builder, nodes: list, depth: int):
    """Add a claim-text node; record [start, end, depth, children, own_end]."""
    b.sep()
    rec = {"start": b.n, "depth": depth, "children": [], "own_end": None}
    nodes.append(rec)
    b.add(el.text)
    for ch in el:
        if ch.tag == "claim-text":
            if rec["own_end"] is None:
                rec["own_end"] = b.n
            child = _walk(ch, b, nodes, depth + 1)
            rec["children"].append(child)
        else:
            _inline(ch, b)
        b.add(ch.tail)
    rec["end"] = b.n
    if rec["own_end"] is None:
        rec["own_end"] = b.n
    return rec


def _parents(el, num: int) -> list[int]:
    out: set[int] = set()
    for r in el.iter("claim-ref"):
        ids = [int(x) for x in re.findall(r"CLM-0*(\d{1,4})", r.get("idref", "") or "")]
        if not ids:
            toks = re.findall(r"[0-9lI|][0-9lI|Oo]*", "".join(r.itertext()))
            ids = [n for n in (_claim_number(t) for t in toks) if n is not None]
        if len(ids) == 2 and re.search(r"-|\bto\b|through", "".join(r.itertext()) + (r.get("idref") or "")[9:]):
            out.update(range(ids[0], ids[1] + 1))
        else:
            out.update(ids)
    return sorted(p for p in out if 0 < p < num)


def _claim(el, source: str, where: str) -> Claim:
    raw = el.get("num", "") or ""
    if not re.fullmatch(r"\s*\d{1,5}\s*", raw):
        raise InputError(f"{where}: claim num {short(raw)!r} is not a number")
    num = int(raw)
    tops = el.findall("claim-text")
    if not tops:
        raise InputError(f"{where}: claim {num} has no claim-text")
    b = _Builder()
    nodes: list = []
    roots = []
    for t in tops:
        try:
            roots.append(_walk(t, b, nodes, 0))
        except ValueError as e:
            raise InputError(f"{where}: claim {num}: {e}") from None
    text = b.text()
    # the leading claim number ("1." or "<b>1</b>.") is not claim text
    m = re.match(r"\s*\d{1,5}\s*\.\s*", text)
    cut = m.end() if m and int(re.match(r"\s*(\d+)", text).group(1)) == num else 0
    body = text[cut:].rstrip()

    def span(r):
        s, e = max(r["start"] - cut, 0), min(r["end"] - cut, len(body))
        while s < e and body[s].isspace():
            s += 1
        while e > s and body[e - 1].isspace():
            e -= 1
        return s, e

    parents = _parents(el, num)
    nested = any(r["children"] for r in roots)
    if not nested:
        return parse_claim(num, body, source=source, parents=parents)

    elements: list[tuple] = []

    def emit(kids: list, level: int, parent_label: str):
        merged, carry = [], None
        for k in kids:
            s, e = span(k)
            if carry is not None:
                s = carry
                carry = None
            if not k["children"] and _CONNECTIVE.match(body[s:e]) and k is not kids[-1]:
                carry = s                        # "wherein:" opens the next element
                continue
            merged.append((s, e, k))
        for i, (s, e, k) in enumerate(merged):
            label = (parent_label + "." if parent_label else "") + level_label(level, i)
            elements.append((s, e, label, parent_label))
            emit(k["children"], level + 1, label)

    first = roots[0]
    pre_end = max(min(first["own_end"] - cut, len(body)), 0) if first["children"] else span(first)[1]
    level1 = list(first["children"]) + roots[1:]
    emit(level1, 1, "")
    # ids in document order: sort by start (the first root's children come before later roots)
    return parse_claim(num, body, source=source, elements=elements, parents=parents, preamble_end=pre_end)


def _names(entries) -> list[str]:
    out = []
    for a in entries:
        first, last = a.findtext(".//first-name", ""), a.findtext(".//last-name", "")
        name = clean_text(f"{first} {last}").strip() or clean_text(a.findtext(".//orgname", "") or "").strip()
        if name:
            out.append(" ".join(name.split()))
    return out


def _patent(root, source: str, where: str) -> tuple[str, dict, Patent | None]:
    bib = root.find("us-bibliographic-data-grant")
    if bib is None:
        bib = root.find(".//us-bibliographic-data-grant")
    pub = bib.find("publication-reference/document-id") if bib is not None else None
    app = bib.find("application-reference/document-id") if bib is not None else None
    number, kind, grant = "", "", None
    if pub is not None:
        number, kind = checked_number(pub.findtext("country"), pub.findtext("doc-number"), pub.findtext("kind"),
                                      f"{where}: publication-reference")
        grant = _date(pub.findtext("date"), "publication date", where)
    biblio = {"number": number, "kind": kind, "grant_date": grant}
    if bib is None:
        return number, biblio, None
    title = " ".join(clean_text("".join(bib.find("invention-title").itertext())).split()) \
        if bib.find("invention-title") is not None else ""
    assignees = _names(bib.iter("assignee"))
    inventors = _names(bib.iter("inventor"))
    if not inventors:                                          # v4.0 to v4.2 (and v4.3/4.4 us-applicant)
        inventors = _names(a for tag in ("applicant", "us-applicant") for a in bib.iter(tag)
                           if "inventor" in (a.get("app-type", "") or ""))
    prios = []
    for pc in bib.iter("priority-claim"):
        d = _date(pc.findtext("date"), "priority-claim date", where)
        if d:
            prios.append(PriorityClaim(kind=f"{pc.findtext('country', '') or ''} priority".strip(),
                                       number=short(pc.findtext("doc-number", "") or "", 40), date=d, source=source))
    for prov in bib.iter("us-provisional-application"):
        d = _date(prov.findtext("document-id/date"), "provisional application date", where)
        if d:
            prios.append(PriorityClaim(kind="US provisional", number=short(prov.findtext("document-id/doc-number", "") or "", 40),
                                       date=d, source=source))
    cpc = []
    for c in bib.iter("classification-cpc"):
        sec, cl, sub = c.findtext("section", ""), c.findtext("class", ""), c.findtext("subclass", "")
        mg, sg = c.findtext("main-group", ""), c.findtext("subgroup", "")
        if sec:
            cpc.append(f"{sec}{cl}{sub} {mg}/{sg}")
    filing = _date(app.findtext("date"), "application date", where) if app is not None else None
    abstract = root.find("abstract")
    abstract_text = " ".join(clean_text("".join(abstract.itertext())).split()) if abstract is not None else ""
    claims_total = bib.findtext("number-of-claims")
    if not number:
        return number, biblio, None
    pat = Patent(number=number, kind=kind, title=Sourced(value=title, source=source),
                 assignee=Sourced(value="; ".join(assignees), source=source),
                 inventors=inventors, inventors_source=source,
                 application_number=Sourced(value=short(app.findtext("doc-number", "") or "", 40) if app is not None else "",
                                            source=source),
                 filing_date=filing, filing_date_source=source if filing else "", priority_claims=prios,
                 grant_date=grant, grant_date_source=source, cpc=cpc, cpc_source=source,
                 abstract=Sourced(value=abstract_text, source=source) if abstract_text else None,
                 claims_total=int(claims_total) if claims_total and claims_total.strip().isdigit()
                 and len(claims_total.strip()) < 5 else None)
    return number, biblio, pat


def import_xml(path: Path, data: bytes | None = None) -> list[Imported]:
    if data is None:
        from engine.fileio import read_input
        data = read_input(path, "XML file")
    text = decode_xml(data, str(path))
    docs = [d for d in _SPLIT.split(text) if d.strip()]
    out = []
    for k, doc in enumerate(docs):
        where = f"{path}" + (f" (document {k + 1} of {len(docs)})" if len(docs) > 1 else "")
        doc = re.sub(r"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][^\"']*[\"']", r"\1", doc.lstrip("\ufeff"), count=1)
        try:
            root = fromstring(doc, forbid_dtd=False, forbid_entities=True, forbid_external=True)
        except DefusedXmlException as e:
            raise InputError(f"{where}: refused unsafe XML ({type(e).__name__}: entities are not expanded)") from None
        except ParseError as e:
            raise InputError(f"{where}: malformed XML ({e})") from None
        source = f"USPTO XML {Path(path).name}"
        number, biblio, patent = _patent(root, source, where)
        claims_el = root.find(".//claims")
        if claims_el is None:
            raise InputError(f"{where}: no <claims> element")
        claims = [_claim(c, source, where) for c in claims_el.findall("claim")]
        if not claims:
            raise InputError(f"{where}: the <claims> element has no claims")
        out.append(Imported(number=number, kind=biblio.get("kind", ""), claims=claims, source=where,
                            biblio=biblio | {"patent": patent}))
    if not out:
        raise InputError(f"{path}: no XML documents found")
    return out
