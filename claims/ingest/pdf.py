"""Claims from a patent PDF with a text layer (pdfplumber), with column:line pinpoints.

US grant PDFs print the description and the claims in two columns per page. The columns
are numbered through the document (1, 2 on the first text page, 3, 4 on the next), and a
line number is printed in the gutter every five lines. Reading a page top to bottom would
interleave the columns, so each page is cut at its gutter and each column is read on its
own. The gutter is the widest vertical strip near the middle with no words in it, found
after the gutter line numbers are set aside.

* Running header: the patent number, as modern grants print it ("US 9,977,598 B2", with the
  column numbers on the same line) or as older ones do (the bare "4,136,359", column numbers
  on a line below). It is dropped from the text and gives the patent's number, normalised
  (``US 6,285,999 B1``, ``US006285999``, ``6285999`` -> ``US6285999``) and checked against
  the title page's "Patent Number" / "[11]" field.
* Gutter numbers (5, 10, 15 ...; OCR's "O" and "S" read as 0 and 5) are told from numbers in
  the text by their common x position and their regular spacing. A line's number is counted
  from the nearest printed number, as a reader does, so extra space between claims does not
  shift the count.
* OCR text is normalised for the claim text (ligatures, words split at a line end with or
  without a hyphen when the joined word occurs in the document, case confusions such as
  "knoWn"); the pinpoints come from the raw lines.
* A PDF without a text layer, or whose claim pages are images, is refused with a message
  that names OCR (``ocrmypdf``) and the image pages; an encrypted PDF says it needs a password.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

from engine.errors import InputError

from ..parse import parse_claim
from . import Imported, clean_text, normalize_number

_START = re.compile(r"(what\s+is\s+claimed\s+is|we\s+claim|i\s+claim|the\s+invention\s+claimed\s+is|"
                    r"claims?\s+what\s+is\s+claimed)\s*:?", re.I)


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
    import io
    import pdfplumber
    from engine.fileio import read_input
    # the bytes that were checked are the bytes parsed (the path is not opened a second time)
    data = read_input(path, "PDF file")
    try:
        return pdfplumber.open(io.BytesIO(data))
    except Exception as e:  # pdfminer raises several types for broken files
        inner = [e] + [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        names = " ".join(type(x).__name__ for x in inner)
        if "Password" in names or "Encrypt" in names:
            raise InputError(f"{path}: the PDF is encrypted and needs a password to be read; decrypt it first "
                             f"(e.g. 'qpdf --password=PASSWORD --decrypt {path} plain.pdf')") from None
        raise InputError(f"{path}: not a readable PDF ({names})") from None


_HEADER_NUMBER = re.compile(r"^(?:US\s*)?(?:\d{1,2},\d{3},\d{3}|RE\s?\d{2},\d{3}|D\s?\d{3},\d{3})(?:\s*[A-Z]\d?)?$")
_GUTTER_OCR = str.maketrans({"O": "0", "o": "0", "S": "5", "s": "5", "l": "1", "I": "1", "|": "1"})


def _numbers_in(text: str) -> list[tuple[str, str]]:
    out = []
    for m in re.finditer(r"(?:US\s*)?[\d,]{7,11}(?:\s*[A-Z]\d?)?|US0?\d{7,8}[A-Z]?\d?", text):
        n = normalize_number(m.group(0))
        if n:
            out.append(n)
    return out


def _gutter_marks(words, width):
    """The gutter line numbers of a page: [(value, y centre, word)]."""
    cands = []
    for w in words:
        xc = (w["x0"] + w["x1"]) / 2
        if not (width * 0.4 <= xc <= width * 0.6) or len(w["text"]) > 3:
            continue
        t = w["text"].translate(_GUTTER_OCR)
        if t.isdigit() and int(t) % 5 == 0 and 5 <= int(t) <= 95:
            cands.append((int(t), (w["top"] + w["bottom"]) / 2, xc, w))
    if len(cands) < 2:
        return [(v, y, w) for v, y, _x, w in cands], None, (cands[0][2] if cands else None)
    # one column of numbers: the x position most of them share
    best = max(cands, key=lambda c: sum(1 for d in cands if abs(d[2] - c[2]) < 5))
    col = [c for c in cands if abs(c[2] - best[2]) < 5]
    if len(col) < 2:
        return [(v, y, w) for v, y, _x, w in col], None, best[2]
    pitches = sorted((b[1] - a[1]) / (b[0] - a[0]) for i, a in enumerate(col) for b in col[i + 1:] if b[0] != a[0])
    pitch = pitches[len(pitches) // 2] if pitches else 0
    if pitch <= 0:
        return [], None, None
    icpts = sorted(c[1] - c[0] * pitch for c in col)
    icpt = icpts[len(icpts) // 2]
    marks = [(v, y, w) for v, y, _x, w in col if abs(y - (icpt + v * pitch)) < 0.6 * pitch]
    # numbers OCR garbled ("O" for 10) or left out: the printed grid is regular, so every
    # multiple of 5 between the first and the last one seen stands where the fit puts it
    have = {v for v, _y, _w in marks}
    lo, hi = min(have), max(have)
    for v in range(lo, hi + 1, 5):
        if v not in have:
            marks.append((v, icpt + v * pitch, None))
    # refit on the numbers kept: line v is printed at icpt + v * pitch
    real = [(v, y) for v, y, w in marks if w is not None]
    if len(real) >= 2:
        n = len(real)
        mv, my = sum(v for v, _ in real) / n, sum(y for _, y in real) / n
        sxx = sum((v - mv) ** 2 for v, _ in real)
        if sxx > 0:
            pitch = sum((v - mv) * (y - my) for v, y in real) / sxx
            icpt = my - pitch * mv
    return sorted(marks, key=lambda m: m[0]), (icpt, pitch), best[2]


def _split_header(words, height):
    """(header words, column-number words, the header's text) at the top of a text page."""
    band = [w for w in words if w["top"] < height * 0.1]
    line = {}
    for w in band:
        line.setdefault(round(w["top"] / 4), []).append(w)
    for _k, ws in sorted(line.items()):
        ws = [w for w in band if abs(w["top"] - ws[0]["top"]) < 4]
        ws.sort(key=lambda w: w["x0"])
        text = " ".join(w["text"] for w in ws)
        nonnum = " ".join(w["text"] for w in ws if not re.fullmatch(r"\d{1,3}\.?", w["text"]))
        if (re.search(r"US\s*[\d,]{7,11}|U\.S\.\s*Patent|Sheet\s+\d+\s+of", text)
                or _HEADER_NUMBER.match(nonnum.strip())):
            bottom = max(w["bottom"] for w in ws)
            colnums = [w for w in ws if re.fullmatch(r"\d{1,3}\.?", w["text"])]
            below = [w for w in band if w not in ws and re.fullmatch(r"\d{1,3}\.?", w["text"])
                     and w["top"] < bottom + 14]
            for w in below:                      # a column number alone on its side of the line
                alone = [x for x in band if x is not w and abs(x["top"] - w["top"]) < 3
                         and abs((x["x0"] + x["x1"]) / 2 - (w["x0"] + w["x1"]) / 2) < 120]
                if not alone:
                    colnums.append(w)
            return ws, colnums, nonnum
        break
    return [], [], ""


def read_pages(path: Path, headers: list | None = None, image_pages: list | None = None, title: list | None = None,
               row_pages: list | None = None):
    """Yield (column number, line number, text) through the document's two-column pages.
    The running headers are appended to ``headers``, the numbers of pages that are images
    without text to ``image_pages``, and the first page's text to ``title``."""
    pdf = open_pdf(path)
    with pdf:
        col_no = 0
        for pno, page in enumerate(pdf.pages, 1):
            words = page.extract_words(keep_blank_chars=False, use_text_flow=False)
            if pno == 1 and title is not None:
                title.append(" ".join(w["text"] for w in words))
            if len(page.chars) < 20:
                if (page.images or page.rects or page.curves) and image_pages is not None:
                    image_pages.append(pno)
                continue
            if len(words) < 8:
                continue
            width, height = float(page.width), float(page.height)
            hdr, colnums, htext = _split_header(words, height)
            if hdr and headers is not None:
                headers.append(htext)
            body = [w for w in words if w not in hdr and w not in colnums]
            marks, fit, mark_x = _gutter_marks(body, width)
            mark_words = [m[2] for m in marks if m[2] is not None]
            # and what OCR made of the numbers it garbled ("O", "SO"), in the same narrow strip
            body = [w for w in body if w not in mark_words
                    and not (mark_x is not None and len(w["text"]) <= 3 and not re.search(r"[a-z]{2}", w["text"])
                             and abs((w["x0"] + w["x1"]) / 2 - mark_x) < 6)]
            g = _gutter(body, width)
            if g is None:
                continue                                   # single-column page (front page)
            for side in (0, 1):
                cw = [w for w in body if (w["x1"] <= g if side == 0 else w["x0"] >= g)]
                lines = _lines(cw)
                printed = None
                mine = [w for w in colnums if ((w["x0"] + w["x1"]) / 2 < g) == (side == 0)]
                if mine:
                    printed = int(mine[0]["text"].rstrip("."))
                elif lines and re.fullmatch(r"\d{1,3}", lines[0][1].strip()):
                    printed = int(lines[0][1])
                    lines = lines[1:]
                col_no = printed if printed else col_no + 1
                for num, text in _number_lines(lines, marks, fit):
                    if row_pages is not None:
                        row_pages.append(pno)
                    yield col_no, num, text


def _number_lines(lines, marks, fit=None):
    """Line numbers from the printed gutter numbers: where two or more were read, each line's
    vertical centre is placed on the grid they define (``line = (y - y0) / pitch``), which is
    what the numbers mean even where extra space between claims puts text between grid lines;
    with a single number, lines are counted from it; with none, from the column's top."""
    if not lines:
        return []
    if fit is not None and fit[1] > 0:
        y0, pitch = fit
        return [(max(1, round((c - y0) / pitch)), t) for c, t in lines]
    if marks:
        v, y, _w = marks[0]
        k = min(range(len(lines)), key=lambda i: abs(lines[i][0] - y))
        return [(v + (i - k), t) for i, (_c, t) in enumerate(lines)]
    return [(i + 1, t) for i, (_c, t) in enumerate(lines)]


def _lines(words, tol=3.0):
    """Group words into lines by their vertical centre; return [(centre, text)]."""
    words = sorted(words, key=lambda w: ((w["top"] + w["bottom"]) / 2, w["x0"]))
    lines, cur, top = [], [], None
    for w in words:
        c = (w["top"] + w["bottom"]) / 2
        if top is None or abs(c - top) > tol:
            if cur:
                lines.append((sum((x["top"] + x["bottom"]) / 2 for x in cur) / len(cur),
                              " ".join(x["text"] for x in sorted(cur, key=lambda x: x["x0"]))))
            cur, top = [w], c
        else:
            cur.append(w)
    if cur:
        lines.append((sum((x["top"] + x["bottom"]) / 2 for x in cur) / len(cur),
                      " ".join(x["text"] for x in sorted(cur, key=lambda x: x["x0"]))))
    return lines


_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})
_CONFUSABLE_CAPS = "WVOSCXZ"


def _vocabulary(rows) -> Counter:
    v = Counter()
    for _c, _l, t in rows:
        v.update(w.lower() for w in re.findall(r"[A-Za-z]+", t.translate(_LIGATURES)))
    return v


def _fix_word(w: str, vocab: Counter) -> str:
    """Case and digit confusions inside one word ("knoWn" -> "known", "c1aim" -> "claim")."""
    if re.fullmatch(r"[a-z]+[A-Z][a-z]*", w) and w[1:].lower() != w[1:] and \
            all(ch in _CONFUSABLE_CAPS for ch in w if ch.isupper()):
        return w.lower()
    if re.fullmatch(r"[A-Za-z]*[01][A-Za-z]*", w) and re.search(r"[a-z]", w):
        cand = w.replace("1", "l").replace("0", "o")
        if vocab[cand.lower()] > 0:
            return cand
    return w


def normalize_ocr(lines: list[str], vocab: Counter) -> str:
    """Join a claim's lines into text, undoing what OCR and typesetting did to the words."""
    out = ""
    for raw in lines:
        t = raw.translate(_LIGATURES).strip()
        if not t:
            continue
        if not out:
            out = t
            continue
        m_end = re.search(r"([A-Za-z]+)(-?)$", out)
        m_start = re.match(r"([a-z]+)", t)
        if m_end and m_start:
            head, hyphen, tail = m_end.group(1), m_end.group(2), m_start.group(1)
            joined = (head + tail).lower()
            known = vocab[joined] > 0
            # a fragment is rarer than the word it completes; two real words are not
            rare = min(vocab[head.lower()], vocab[tail.lower()]) <= vocab[joined]
            if hyphen:
                if known or vocab[tail.lower()] <= 1:    # "predeter-" + "mined"; the fragment occurs only here
                    out = out[:-1] + t
                else:
                    out = out + t                        # a compound's own hyphen: "mid-" + "dialog"
                continue
            if not hyphen and known and rare:
                out = out + t                            # "refer" + "ence" (OCR dropped the hyphen)
                continue
        out = out + " " + t
    words = re.split(r"(\W+)", out)
    return "".join(_fix_word(w, vocab) if w and w[0].isalpha() else w for w in words)


_CLAIM_LINE = re.compile(r"^\s*([0-9lI]{1,3})\s*[.,]\s+(?=[A-Z\"'(])")
_JUNK = re.compile(r"^[\W_]*$")


def _ocr_hint(path) -> str:
    return f"run OCR first, e.g. 'ocrmypdf {path} ocr.pdf', then import ocr.pdf"


def _page_list(pages) -> str:
    out, start, prev = [], None, None
    for p in pages + [None]:
        if start is None:
            start = prev = p
        elif p is not None and p == prev + 1:
            prev = p
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = p
    return ", ".join(out)


def import_pdf(path: Path) -> Imported:
    headers: list[str] = []
    images: list[int] = []
    title: list[str] = []
    row_pages: list[int] = []
    rows = list(read_pages(path, headers, images, title, row_pages))
    if not rows and not headers and not any(t.strip() for t in title):
        raise InputError(f"{path}: the PDF has no text layer (scanned page images only); {_ocr_hint(path)}")
    # the claims: from "What is claimed is:" / "I claim:" to the end
    start = None
    for k, (_c, _l, t) in enumerate(rows):
        if _START.search(t):
            start = k
            break
    if start is None:
        if images:
            raise InputError(f"{path}: no claims section in the text layer, and pages {_page_list(images)} are images "
                             f"without text (the claims are likely there); {_ocr_hint(path)}")
        if not rows:
            raise InputError(f"{path}: no two-column text pages found (is this a US patent grant PDF?)")
        raise InputError(f"{path}: no claims section found (no 'What is claimed is:', 'We claim:' or 'I claim:')")
    first = rows[start]
    m = _START.search(first[2])
    lines = [(first[0], first[1], first[2][m.end():].strip())] + rows[start + 1:]
    lines = [x for x in lines if x[2] and not (_JUNK.match(x[2]) or _mostly_dots(x[2]))]
    vocab = _vocabulary(rows)
    starts, expect = [], 1
    for k, (_c, _l, t) in enumerate(lines):
        mm = _CLAIM_LINE.match(t)
        if mm and _num(mm.group(1)) == expect:
            starts.append((expect, k, mm.end()))
            expect += 1
    if not starts:
        raise InputError(f"{path}: the claims section has no numbered claims")
    number, kind, notes = _patent_number(path, headers, title)
    claims, pins = [], {}
    for i, (num, k, cut) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(lines)
        chunk = [lines[k][2][cut:]] + [x[2] for x in lines[k + 1:end]]
        text = clean_text(normalize_ocr(chunk, vocab))
        a, b = lines[k], lines[end - 1]
        pins[num] = f"{a[0]}:{a[1]}-{b[0]}:{b[1]}"
        c = parse_claim(num, text, source=f"PDF {Path(path).name}, col:line {pins[num]}")
        claims.append(c.model_copy(update={"pinpoint": pins[num]}))
    after = [p for p in images if p > row_pages[start]]
    if after:
        if _claims_may_continue(claims):
            raise InputError(f"{path}: claim {claims[-1].number} breaks off where pages {_page_list(after)} are images "
                             f"without text (the claims continue there); {_ocr_hint(path)}")
        notes.append(f"pages {_page_list(after)} after the claims' start are images without text; check that no "
                     f"claim is on them (OCR them with ocrmypdf if so)")
    biblio = {}
    if number:
        biblio["patent"] = pat = _front_page(number, kind, title[0] if title else "", Path(path).name)
        if pat.claims_total is not None and pat.claims_total != len(claims):
            notes.append(f"the title page says {pat.claims_total} claims, but {len(claims)} were found in the text; "
                         f"check the claim pages (OCR, images)")
    return Imported(number=number, kind=kind, claims=claims, source=f"PDF {path}", pinpoints=pins, notes=notes,
                    from_text=True, biblio=biblio)


_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), 1)}
_DATE = r"([A-Z][a-z]{2,8})\.?\s+(\d{1,2})\s*,\s*(\d{4})"


def _front_date(m) -> dt.date | None:
    if not m:
        return None
    mon = _MONTHS.get(m.group(1)[:3].lower())
    try:
        return dt.date(int(m.group(3)), mon, int(m.group(2))) if mon else None
    except ValueError:
        return None


def _front_page(number: str, kind: str, page1: str, name: str):
    """What the title page states plainly: filing and grant dates, the number of claims."""
    from ..model import Patent
    src = f"title page of {name}"
    filed = _front_date(re.search(r"Filed\s*:\s*" + _DATE, page1))
    granted = _front_date(re.search(r"(?:Date\s+of\s+Patent\s*:?|\[45\]|\(45\))\s*(?:\*\s*)?" + _DATE, page1))
    total = re.search(r"\b(\d{1,3})\s+Claims?\b", page1)
    return Patent(number=number, kind=kind, filing_date=filed, filing_date_source=src if filed else "",
                  grant_date=granted, grant_date_source=src if granted else "",
                  claims_total=int(total.group(1)) if total else None)


def _claims_may_continue(claims) -> bool:
    return bool(claims) and not claims[-1].text.rstrip().endswith(".")


def _mostly_dots(t: str) -> bool:
    alnum = sum(ch.isalnum() for ch in t)
    return alnum * 3 < sum(not ch.isspace() for ch in t)


def _num(tok: str) -> int:
    return int(tok.translate(str.maketrans({"l": "1", "I": "1"})))


def _patent_number(path, headers: list[str], title: list[str]) -> tuple[str, str, list[str]]:
    """The number from the running headers, checked against the title page."""
    notes = []
    found = Counter()
    kinds = {}
    for h in headers:
        for n, k in _numbers_in(h):
            found[n] += 1
            kinds.setdefault(n, k)
    page1 = title[0] if title else ""
    explicit = [normalize_number(m.group(1)) for m in
                re.finditer(r"(?:Patent\s+(?:Number|No\.?)\s*:?|\[?11\]?\)?)\s*((?:US\s*)?\d{1,2},\d{3},\d{3}(?:\s*[A-Z]\d)?)",
                            page1)]
    explicit = [e for e in explicit if e]
    if not found:
        if explicit:
            n, k = explicit[0]
            return n, k, notes
        barcode = [normalize_number(m.group(0)) for m in re.finditer(r"US0?\d{7,8}[A-Z]\d?", page1)]
        if barcode and barcode[0]:
            return barcode[0][0], barcode[0][1], notes
        return "", "", ["no patent number found in the running headers or on the title page"]
    number = found.most_common(1)[0][0]
    kind = kinds.get(number, "")
    if explicit and number not in {e[0] for e in explicit}:
        raise InputError(f"{path}: the running headers give {number} but the title page gives "
                         f"{explicit[0][0]}; which document is this?")
    if not explicit and number not in {n for n, _k in _numbers_in(page1)}:
        notes.append(f"the number {number} from the running headers is not on the title page (not checked)")
    for e in explicit:
        if e[0] == number and e[1]:
            kind = kind or e[1]
    return number, kind, notes
