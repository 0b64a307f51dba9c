"""The side-by-side charts as documents reviewers exchange: Excel (openpyxl) and Word
(python-docx), both analyses (the later designs, and the prior art before the priority date);
and the ``--claims`` / ``--elements`` filters that every output of the report honours.

Each analysis is one sheet (one table in Word): one row per claim element, and for each
subject (a design or a reference) its status, reasoning and pinpoint citations, then a
comment column left for the reviewer (prefilled with the review comments already recorded).
The data come from :func:`claims.chart.analyses`, the same as ``pagemerge claims show --json``.
Technical evidence, not legal advice: every document says so on its first page.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from engine.errors import InputError

CREATOR = "pagemerge"
_ELEMENT = re.compile(r"^\d{1,4}\[[A-Za-z0-9.\-_]{1,20}\]$")


# ---- filters -------------------------------------------------------------------------------------
def parse_claims(spec: str | None) -> tuple[int, ...] | None:
    """``'1,2'`` -> ``(1, 2)``; ``None`` for no filter."""
    if spec is None:
        return None
    out = []
    for t in spec.split(","):
        t = t.strip()
        if not (t.isascii() and t.isdigit()) or len(t) > 4:
            raise InputError(f"--claims: {t[:40]!r} is not a claim number (use e.g. 1,2)")
        out.append(int(t))
    return tuple(dict.fromkeys(out))


def parse_elements(spec: str | None) -> tuple[str, ...] | None:
    """``'1[a],1[b]'`` -> ``('1[a]', '1[b]')``; ``None`` for no filter."""
    if spec is None:
        return None
    out = []
    for t in spec.split(","):
        t = t.strip()
        if not _ELEMENT.match(t):
            raise InputError(f"--elements: {t[:40]!r} is not an element id (use e.g. 1[a],1[b])")
        out.append(t)
    return tuple(dict.fromkeys(out))


def element_claims(bundle) -> dict[str, int]:
    """Every element id of the patent's loaded claims (sub-limitations too) -> its claim number."""
    out = {}
    for c in bundle.claims:
        for e in c.elements:
            out[e.id] = c.number
    return out


def element_filter(bundle, claims: tuple | None, elements: tuple | None):
    """A predicate on element ids, or None when nothing is filtered. Unknown claims or elements
    are refused, naming the valid ones."""
    if claims is None and elements is None:
        return None
    owner = element_claims(bundle)
    known_claims = sorted({c.number for c in bundle.claims if c.loaded})
    if claims is not None:
        bad = [c for c in claims if c not in known_claims]
        if bad:
            raise InputError(f"--claims: no claim {', '.join(map(str, bad))} in {bundle.patent.number}; "
                             f"use any of {', '.join(map(str, known_claims))}")
    charted = list(dict.fromkeys([r.element for r in (bundle.chart.rows if bundle.chart else [])] + list(owner)))
    if elements is not None:
        bad = [e for e in elements if e not in owner and e not in charted]
        if bad:
            raise InputError(f"--elements: unknown {', '.join(bad)}; use any of {', '.join(charted)}")

    def claim_of(el: str) -> int | None:
        if el in owner:
            return owner[el]
        m = re.match(r"(\d+)\[", el)
        return int(m.group(1)) if m else None

    def keep(el: str) -> bool:
        return (claims is None or claim_of(el) in claims) and (elements is None or el in elements)
    keep.claims = claims
    return keep


def filter_report(keep, chart_rows, csv_rows, prior_art, designs):
    """The report's rows, CSV rows and claim tables limited to the kept elements and claims."""
    if keep is None:
        return chart_rows, csv_rows, prior_art, designs
    claims = keep.claims
    chart_rows = [r for r in chart_rows if keep(r["id"])]
    csv_rows = [r for r in csv_rows if keep(r["element"])]
    if prior_art is not None:
        prior_art = dict(prior_art, rows=[r for r in prior_art["rows"] if keep(r["id"])],
                         csv_rows=[r for r in prior_art["csv_rows"] if keep(r["element"])],
                         claims=[c for c in prior_art["claims"] if claims is None or c["claim"] in claims],
                         claims_under_readings=[c for c in prior_art.get("claims_under_readings", [])
                                                if claims is None or c["claim"] in claims])
    if designs is not None and designs.get("claims") is not None:
        designs = dict(designs, claims=[c for c in designs["claims"] if claims is None or c["claim"] in claims],
                       claims_under_readings=[c for c in designs.get("claims_under_readings", [])
                                              if claims is None or c["claim"] in claims],
                       differences={d: [x for x in xs if keep(x["element"])]
                                    for d, xs in designs.get("differences", {}).items()})
    return chart_rows, csv_rows, prior_art, designs


# ---- the tables ----------------------------------------------------------------------------------
def _cites(cs) -> str:
    return "\n".join(f"{c['reference']} {c['pinpoint']}" + (f': "{c["quote"]}"' if c.get("quote") else "")
                     for c in cs)


def chart_tables(bundle, base=None, keep=None) -> list[dict]:
    """Both analyses as tables: ``{"id", "title", "disclaimer", "subjects", "rows"}``, each row
    ``{"element", "text", "cells": {subject: {"status", "reasoning", "citations", "comment"}}}``."""
    from claims.chart import analyses
    from .constructions import readings_text
    a = analyses(bundle, base)
    texts = {e.id: e.text for c in bundle.claims for e in c.elements}
    out = []
    for key, subj_key, subjects, cite in (
            ("designs", "mechanism", (a.get("designs") or {}).get("mechanisms", []),
             lambda c: c["evidence"]["citations"]),
            ("prior_art", "reference", [r["id"] for r in (a.get("prior_art") or {}).get("references", [])],
             lambda c: c["citations"])):
        d = a.get(key)
        if not d:
            continue
        by = {}
        for c in d["cells"]:
            under = readings_text(c)           # the status under each reading, where it turns on one
            by.setdefault(c["element"], {})[c[subj_key]] = {
                "status": c["status"],
                "reasoning": c["reasoning"] + (f"\nStatus under each reading: {under}" if under else ""),
                "citations": _cites(cite(c)),
                "comment": c.get("review_comment", "") or ""}
        rows = [{"element": el, "text": texts.get(el, ""), "cells": by[el]}
                for el in by if keep is None or keep(el)]
        out.append({"id": key, "title": d["title"], "disclaimer": d["disclaimer"], "subjects": list(subjects),
                    "rows": rows})
    return out


FIELDS = ("status", "reasoning", "pinpoint citations")
SHEET_NAMES = {"designs": "Later designs", "prior_art": "Prior art"}


def _comment(row, subjects) -> str:
    return "\n".join(f"{s}: {row['cells'][s]['comment']}" for s in subjects
                     if s in row["cells"] and row["cells"][s]["comment"])


def xlsx_bytes(tables, patent: str, disclaimer: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    wb = Workbook()
    wb.properties.creator = CREATOR
    wb.properties.title = f"{patent}: claim charts"
    about = wb.active
    about.title = "About"
    about.append([f"{patent}: side-by-side claim charts (pagemerge)"])
    about.append(["Not legal advice. " + disclaimer])
    for t in tables:
        about.append([f"{SHEET_NAMES.get(t['id'], t['id'])}: {t['title']}. {t['disclaimer']}"])
    about.column_dimensions["A"].width = 140
    for r in about.iter_rows():
        for c in r:
            c.alignment = Alignment(wrap_text=True, vertical="top")
    about["A1"].font = Font(bold=True, size=13)
    head_fill = PatternFill("solid", fgColor="EEF1F5")
    for t in tables:
        ws = wb.create_sheet(SHEET_NAMES.get(t["id"], t["id"])[:31])
        header = ["element", "claim text"] + [f"{s}: {f}" for s in t["subjects"] for f in FIELDS] + ["comment"]
        ws.append(header)
        for row in t["rows"]:
            vals = [row["element"], row["text"]]
            for s in t["subjects"]:
                c = row["cells"].get(s)
                vals += [c["status"], c["reasoning"], c["citations"]] if c else ["", "", ""]
            vals.append(_comment(row, t["subjects"]))
            ws.append(vals)
        widths = [10, 40] + [14, 48, 36] * len(t["subjects"]) + [40]
        for i, w in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = w
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = head_fill
        for r in ws.iter_rows(min_row=1):
            for c in r:
                c.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = "C2"
    no_formulas(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def docx_bytes(tables, patent: str, disclaimer: str) -> bytes:
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt
    doc = Document()
    doc.core_properties.author = CREATOR
    doc.core_properties.title = f"{patent}: claim charts"
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.LANDSCAPE
    sec.page_width, sec.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(sec, side, Cm(1.2))
    doc.styles["Normal"].font.size = Pt(7)
    doc.add_heading(f"{patent}: side-by-side claim charts", level=1)
    p = doc.add_paragraph()
    p.add_run("Not legal advice. ").bold = True
    p.add_run(disclaimer)
    for t in tables:
        doc.add_heading(f"{SHEET_NAMES.get(t['id'], t['id'])}: {t['title']}", level=2)
        doc.add_paragraph(t["disclaimer"])
        cols = ["element"] + t["subjects"] + ["comment"]
        table = doc.add_table(rows=1, cols=len(cols))
        table.style = "Table Grid"
        hdr = table.rows[0]
        trpr = hdr._tr.get_or_add_trPr()
        rep = OxmlElement("w:tblHeader")          # the header row repeats on every page
        rep.set(qn("w:val"), "true")
        trpr.append(rep)
        for i, name in enumerate(cols):
            hdr.cells[i].text = ""
            hdr.cells[i].paragraphs[0].add_run(name).bold = True
        for row in t["rows"]:
            cells = table.add_row().cells
            cells[0].text = ""
            cells[0].paragraphs[0].add_run(row["element"]).bold = True
            if row["text"]:
                cells[0].add_paragraph(row["text"])
            for i, s in enumerate(t["subjects"], 1):
                c = row["cells"].get(s)
                cells[i].text = ""
                if not c:
                    continue
                cells[i].paragraphs[0].add_run(c["status"]).bold = True
                cells[i].add_paragraph(c["reasoning"])
                for line in c["citations"].splitlines():
                    cells[i].add_paragraph(line).runs[0].italic = True
            cells[-1].text = _comment(row, t["subjects"])
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


#: what a spreadsheet program takes as the start of a formula in a CSV cell (OWASP's list)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def csv_text_cell(value):
    """A text cell as a spreadsheet program will show it, never run it: a string that would
    start a formula (``=HYPERLINK(...)`` as a process name, a claim quote starting with '+') is
    prefixed with an apostrophe, which spreadsheets hide. Numbers, and strings that are plain
    numbers or a lone dash, are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and value != "-" \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_bytes(df) -> bytes:
    """``df`` as CSV bytes (no index), every text cell passed through :func:`csv_text_cell`."""
    from pandas.api.types import is_numeric_dtype
    out = df.copy()
    for col in out.columns:
        if not is_numeric_dtype(out[col].dtype):       # object or string columns (pandas 3: str)
            out[col] = out[col].map(csv_text_cell)
    return out.to_csv(index=False).encode()


def no_formulas(wb) -> None:
    """Every cell holds text from documents (claims, reasoning, comments); openpyxl would store
    a string that starts with '=' as a live formula ("=HYPERLINK(...)"), so each is made text."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.data_type == "f":
                    c.data_type = "s"


def _ours(path: Path) -> bool:
    """An earlier export of ours (an OOXML file whose creator is pagemerge), which a rerun replaces."""
    from engine.fileio import open_input
    try:
        with open_input(path, "earlier output") as f:
            with zipfile.ZipFile(f) as z:
                with z.open("docProps/core.xml") as m:           # bounded: a crafted file cannot blow up
                    core = m.read(64 * 1024).decode("utf-8", "replace")
    except (InputError, OSError, zipfile.BadZipFile, KeyError):
        return False
    return f">{CREATOR}</dc:creator>" in core


def write_exports(bundle, out_dir: str | Path, xlsx: bool = False, docx: bool = False, keep=None, base=None,
                  disclaimer: str = "", force: bool = False) -> list[Path]:
    """Write ``chart-N.xlsx`` and/or ``chart-N.docx`` with both analyses; the paths written."""
    from engine.fileio import AtomicFile
    if not (xlsx or docx):
        return []
    tables = chart_tables(bundle, base, keep)
    out, written = Path(out_dir), []
    number = bundle.patent.number
    for want, ext, make in ((xlsx, "xlsx", xlsx_bytes), (docx, "docx", docx_bytes)):
        if not want:
            continue
        data = make(tables, bundle.patent.display_number, disclaimer)
        path = out / f"chart-{number}.{ext}"
        with AtomicFile(path, force=force, replaceable=_ours) as f:
            f.write(data)
        written.append(path)
    return written
