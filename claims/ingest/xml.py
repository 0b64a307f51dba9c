"""USPTO grant full-text XML (ICE DTD v4.x, "Red Book").

A weekly file concatenates many documents, each with its own ``<?xml ...?>``; they are split
before parsing. Parsing goes through defusedxml: no entity expansion, no external entities,
no DTD fetched, no network. In each claim, the outer ``claim-text`` holds the number and
preamble, the nested ``claim-text`` elements are the limitations, and ``claim-ref`` gives the
dependency.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from xml.etree.ElementTree import ParseError

from engine.errors import InputError

from ..model import Claim, Element, Patent, PriorityClaim, Sourced
from ..parse import element_letter, parse_claim, strip_number
from . import Imported

_SPLIT = re.compile(rb"(?=<\?xml\s)")


def _date(s: str | None) -> dt.date | None:
    if not s or not re.fullmatch(r"\d{8}", s.strip()):
        return None
    s = s.strip()
    return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))


def _text(el) -> str:
    return re.sub(r"\s+", " ", "".join(el.itertext())).strip() if el is not None else ""


def _own_text(el) -> str:
    """The text of ``el`` without its nested claim-text children."""
    parts = [el.text or ""]
    for ch in el:
        if ch.tag != "claim-text":
            parts.append("".join(ch.itertext()))
        parts.append(ch.tail or "")
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _claim(el, source: str) -> Claim:
    num = int(el.get("num", "0") or 0)
    outer = el.find("claim-text")
    if outer is None:
        raise ValueError(f"claim {num} has no claim-text")
    nested = outer.findall("claim-text")
    parents = sorted({int(re.sub(r"\D", "", r.get("idref", "")) or 0) for r in el.iter("claim-ref")} - {0})
    if not nested:
        c = parse_claim(num, strip_number(_text(outer)), source=source)
    else:
        pre = strip_number(_own_text(outer))
        pieces = [pre] + [_text(n) for n in nested]
        text = " ".join(p for p in pieces if p)
        spans, pos = [], len(pre) + 1
        for p in pieces[1:]:
            spans.append((pos, pos + len(p)))
            pos += len(p) + 1
        c = parse_claim(num, text, source=source, elements=spans)
        if c.elements and c.elements[0].id.endswith("[pre]") and c.elements[0].end != len(pre):
            # the preamble is exactly the outer text, whatever the transition search found
            els = [Element(id=f"{num}[pre]", role="reference" if parents else "preamble", text=text[:len(pre)],
                           start=0, end=len(pre))]
            els += [Element(id=f"{num}[{element_letter(i)}]", role="limitation", text=text[s:e], start=s, end=e)
                    for i, (s, e) in enumerate(spans)]
            c = c.model_copy(update={"elements": els, "preamble": pre})
    if parents:
        c = c.model_copy(update={"parents": parents, "independent": False})
        els = [e.model_copy(update={"role": "reference"}) if e.id.endswith("[pre]") else e for e in c.elements]
        c = c.model_copy(update={"elements": els})
    return c


def _patent(root, source: str) -> tuple[str, dict, Patent | None]:
    bib = root.find("us-bibliographic-data-grant")
    if bib is None:
        bib = root.find(".//us-bibliographic-data-grant")
    pub = bib.find("publication-reference/document-id") if bib is not None else None
    app = bib.find("application-reference/document-id") if bib is not None else None
    number = ""
    kind = ""
    grant = None
    if pub is not None:
        number = f"{pub.findtext('country', 'US')}{int(re.sub(r'[^0-9]', '', pub.findtext('doc-number', '0')) or 0)}"
        kind = pub.findtext("kind", "")
        grant = _date(pub.findtext("date"))
    biblio = {"number": number, "kind": kind, "grant_date": grant}
    if bib is None:
        return number, biblio, None
    title = _text(bib.find("invention-title"))
    assignees = [_text(a.find(".//orgname")) or _text(a.find(".//last-name")) for a in bib.iter("assignee")]
    inventors = []
    for inv in bib.iter("inventor"):
        first, last = inv.findtext(".//first-name", ""), inv.findtext(".//last-name", "")
        inventors.append(f"{first} {last}".strip())
    prios = []
    for pc in bib.iter("priority-claim"):
        d = _date(pc.findtext("date"))
        if d:
            prios.append(PriorityClaim(kind=f"{pc.findtext('country', '')} priority".strip(),
                                       number=pc.findtext("doc-number", ""), date=d, source=source))
    for prov in bib.iter("us-provisional-application"):
        d = _date(prov.findtext("document-id/date"))
        if d:
            prios.append(PriorityClaim(kind="US provisional", number=prov.findtext("document-id/doc-number", ""),
                                       date=d, source=source))
    cpc = []
    for c in bib.iter("classification-cpc"):
        sec, cl, sub = c.findtext("section", ""), c.findtext("class", ""), c.findtext("subclass", "")
        mg, sg = c.findtext("main-group", ""), c.findtext("subgroup", "")
        if sec:
            cpc.append(f"{sec}{cl}{sub} {mg}/{sg}")
    filing = _date(app.findtext("date")) if app is not None else None
    abstract = _text(root.find("abstract"))
    if not (number and filing):
        return number, biblio, None
    pat = Patent(number=number, kind=kind, title=Sourced(value=title, source=source),
                 assignee=Sourced(value="; ".join(a for a in assignees if a), source=source),
                 inventors=inventors, inventors_source=source,
                 application_number=Sourced(value=app.findtext("doc-number", "") if app is not None else "", source=source),
                 filing_date=filing, filing_date_source=source, priority_claims=prios, grant_date=grant,
                 grant_date_source=source, cpc=cpc, cpc_source=source,
                 abstract=Sourced(value=abstract, source=source) if abstract else None)
    return number, biblio, pat


def import_xml(path: Path, data: bytes | None = None) -> list[Imported]:
    if data is None:
        data = Path(path).read_bytes()
    docs = [d for d in _SPLIT.split(data) if d.strip()]
    out = []
    for k, doc in enumerate(docs):
        where = f"{path}" + (f" (document {k + 1} of {len(docs)})" if len(docs) > 1 else "")
        try:
            root = fromstring(doc, forbid_dtd=False, forbid_entities=True, forbid_external=True)
        except DefusedXmlException as e:
            raise InputError(f"{where}: refused unsafe XML ({type(e).__name__}: entities are not expanded)") from None
        except ParseError as e:
            raise InputError(f"{where}: malformed XML ({e})") from None
        source = f"USPTO XML {Path(path).name}"
        number, biblio, patent = _patent(root, source)
        claims_el = root.find(".//claims")
        if claims_el is None:
            raise InputError(f"{where}: no <claims> element")
        try:
            claims = [_claim(c, source) for c in claims_el.findall("claim")]
        except ValueError as e:
            raise InputError(f"{where}: {e}") from None
        out.append(Imported(number=number, claims=claims, source=where, biblio=biblio | {"patent": patent}))
    if not out:
        raise InputError(f"{path}: no XML documents found")
    return out
