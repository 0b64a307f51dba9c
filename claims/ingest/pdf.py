"""Claims from a patent PDF with a text layer (pdfplumber), with column:line pinpoints.

US grant PDFs print the description and the claims in two columns per page. The columns
are numbered through the document (1, 2 on the first text page, 3, 4 on the next), and a
line number is printed in the gutter every five lines. Reading a page top to bottom would
interleave the columns, so each page is cut at its gutter and each column is read on its
own. The gutter is the widest vertical strip near the middle with no words in it, found
after the gutter line numbers are set aside. Those numbers are dropped from the text; where
present, they calibrate the line count. Headers (patent number, sheet) and the printed
column numbers are dropped too. Pages with no gutter (the front page, drawing sheets) are
skipped.

The claims start after "What is claimed is:" (or "We claim:" and similar). Hyphens at line
ends are joined when a lowercase word continues on the next line. A PDF with no text layer
(scanned images only) is refused with a message that names OCR (e.g. ``ocrmypdf``) as the
way forward.
"""
from __future__ import annotations

import re
from pathlib import Path

from engine.errors import InputError

from ..parse import parse_claim
from . import Imported

_START = re.compile(r"(what\s+is\s+claimed\s+is|we\s+claim|i\s+claim|the\s+invention\s+claimed\s+is|"
                    r"claims?\s+what\s+is\s+claimed)\s*:?", re.I)
_CLAIM_START = re.compile(r"(?m)^\s*(\d{1,3})\s*\.\s+(?=[A-Z])")


def _lines(words, tol=3.0):
    """Group words into lines by their top coordinate; return [(top, text)]."""
    words = sorted(words, key=lambda w: (round(w["top"], 1), w["x0"]))
    lines, cur, top = [], [], None
    for w in words:
        if top is None or abs(w["top"] - top) > tol:
            if cur:
                lines.append((top, " ".join(x["text"] for x in sorted(cur, key=lambda x: x["x0"]))))
            cur, top = [w], w["top"]
        else:
            cur.append(w)
    if cur:
        lines.append((top, " ".join(x["text"] for x in sorted(cur, key=lambda x: x["x0"]))))
    return lines


def _gutter(words, width):
    cover = [False] * (int(width) + 2)
    for w in words:
        for x in range(max(0, int(w["x0"])), min(len(cover), int(w["x1"]) + 1)):
            cover[x] = True
    best, run_start = None, None
    lo, hi = int(width * 0.3), int(width * 0.7)
    for x in range(lo, hi + 1):
        if not cover[x]:
            if run_start is None:
                run_start = x
        else:
            if run_start is not None and (best is None or x - run_start > best[1] - best[0]):
                best = (run_start, x)
            run_start = None
    if run_start is not None and (best is None or hi + 1 - run_start > best[1] - best[0]):
        best = (run_start, hi + 1)
    if best is None or best[1] - best[0] < 6:
        return None
    return (best[0] + best[1]) / 2


def open_pdf(path: Path):
    """pdfplumber's document, after the file was checked to be a regular file within the size
    limit; an encrypted file is one line that says it needs a password."""
    import pdfplumber
    from engine.fileio import open_input, LIMITS
    with open_input(path, "PDF file") as f:
        import os
        size = os.fstat(f.fileno()).st_size
    if size > LIMITS["PDF file"]:
        raise InputError(f"{path}: PDF file is larger than the limit of {LIMITS['PDF file'] >> 20} MiB")
    try:
        return pdfplumber.open(str(path))
    except Exception as e:  # pdfminer raises several types for broken files
        inner = [e] + [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        names = " ".join(type(x).__name__ for x in inner)
        if "Password" in names or "Encrypt" in names:
            raise InputError(f"{path}: the PDF is encrypted and needs a password to be read; decrypt it first "
                             f"(e.g. 'qpdf --password=PASSWORD --decrypt {path} plain.pdf')") from None
        raise InputError(f"{path}: not a readable PDF ({names})") from None


def read_columns(path: Path, headers: list | None = None):
    """Yield (column number, line number, text) through the document's two-column pages;
    the page headers dropped on the way are appended to ``headers``."""
    try:
        import pdfplumber
    except ImportError:                      # pragma: no cover
        raise InputError("pdfplumber is not installed (pip install pdfplumber)") from None
    pdf = open_pdf(path)
    with pdf:
        first = pdf.pages[:5]
        if sum(len(p.chars) for p in first) < 20:
            raise InputError(f"{path}: the PDF has no text layer (scanned page images only); run OCR first, "
                             f"e.g. 'ocrmypdf {path} ocr.pdf', then import ocr.pdf")
        col_no = 0
        for page in pdf.pages:
            words = page.extract_words(keep_blank_chars=False, use_text_flow=False)
            if len(words) < 8:
                continue                                   # drawing sheet or blank
            width = float(page.width)
            mid_lo, mid_hi = width * 0.4, width * 0.6
            gutter_nums = [w for w in words if re.fullmatch(r"\d{1,3}", w["text"]) and int(w["text"]) % 5 == 0
                           and mid_lo <= (w["x0"] + w["x1"]) / 2 <= mid_hi]
            body = [w for w in words if w not in gutter_nums]
            # the running header: the patent number, and on grants the column numbers printed on
            # the same line ("1   US 9,977,598 B2   2"), or on a line of their own just below
            head_cut = float(page.height) * 0.08
            top_words = [w for w in body if w["top"] < head_cut]
            header_text = " ".join(w["text"] for w in sorted(top_words, key=lambda w: w["x0"]))
            is_header = bool(re.search(r"US\s*[\d,]{7,11}|U\.S\.\s*Patent|Sheet\s+\d+\s+of", header_text))
            top_numbers = []
            if is_header:
                if headers is not None:
                    headers.append(header_text)
                top_numbers = [w for w in top_words if re.fullmatch(r"\d{1,3}", w["text"])]
                body = [w for w in body if w["top"] >= head_cut]
            g = _gutter(body, width)
            if g is None:
                continue                                   # single-column page (front page)
            for side in (0, 1):
                cw = [w for w in body if (w["x1"] <= g if side == 0 else w["x0"] >= g)]
                lines = _lines(cw)
                printed = None
                same_line = [w for w in top_numbers if ((w["x0"] + w["x1"]) / 2 < g) == (side == 0)]
                if same_line:
                    printed = int(same_line[0]["text"])
                elif lines and re.fullmatch(r"\d{1,3}", lines[0][1].strip()):
                    printed = int(lines[0][1])
                    lines = lines[1:]
                col_no = printed if printed else col_no + 1
                offset = 1
                marks = gutter_nums                        # one set of numbers serves both columns
                if marks and lines:
                    m = min(marks, key=lambda w: int(w["text"]))
                    idx = min(range(len(lines)), key=lambda i: abs(lines[i][0] - m["top"]))
                    offset = int(m["text"]) - idx
                for i, (_top, text) in enumerate(lines):
                    yield col_no, i + offset, text


def import_pdf(path: Path) -> Imported:
    headers: list[str] = []
    rows = list(read_columns(path, headers))
    if not rows:
        raise InputError(f"{path}: no two-column text pages found (is this a US patent grant PDF?)")
    text_parts, index = [], []        # index: (char offset, col, line)
    pos = 0
    started = False
    number = ""
    for h in headers:
        m = re.search(r"US\s*([\d,]{7,11})", h)
        if m:
            number = "US" + m.group(1).replace(",", "")
            break
    for col, line, t in rows:
        if not number:
            m = re.search(r"US\s*([\d,]{7,11})", t)
            if m:
                number = "US" + m.group(1).replace(",", "")
        if not started:
            m = _START.search(t)
            if not m:
                continue
            started = True
            t = t[m.end():].strip()
            if not t:
                continue
        index.append((pos, col, line))
        text_parts.append(t)
        pos += len(t) + 1
    if not started:
        raise InputError(f"{path}: no claims section found (no 'What is claimed is:' or 'We claim:')")
    raw = "\n".join(text_parts)
    starts, expect = [], 1
    for m in _CLAIM_START.finditer(raw):
        if int(m.group(1)) == expect:
            starts.append((expect, m.start(), m.end()))
            expect += 1
    if not starts:
        raise InputError(f"{path}: the claims section has no numbered claims")

    def where(off):
        best = index[0]
        for e in index:
            if e[0] <= off:
                best = e
            else:
                break
        return f"{best[1]}:{best[2]}"

    claims, pins = [], {}
    for k, (num, s, body) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else len(raw)
        chunk = raw[body:end]
        chunk = re.sub(r"(\w)-\n\s*([a-z])", r"\1\2", chunk)     # join wrap hyphens
        text = re.sub(r"\s+", " ", chunk).strip()
        pins[num] = f"{where(s)}-{where(max(s, end - 1))}"
        claims.append(parse_claim(num, text, source=f"PDF {Path(path).name}, col:line {pins[num]}"))
    return Imported(number=number, claims=claims, source=f"PDF {path}", pinpoints=pins)
