"""A tiny PDF writer for test fixtures: text placed at coordinates in Helvetica, and pages
with no text at all. Enough to build a two-column patent-like document."""
from __future__ import annotations


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for b in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _standard_security(user_password: str, doc_id: bytes, perms: int = -44):
    """PDF standard security handler, revision 2 (40-bit RC4): the /O and /U entries and the
    file key, as in the PDF reference (algorithms 3.2 to 3.4)."""
    import hashlib
    pad = lambda pw: (pw.encode("latin-1") + _PAD)[:32]  # noqa: E731
    o = _rc4(hashlib.md5(pad(user_password + "-owner")).digest()[:5], pad(user_password))
    key = hashlib.md5(pad(user_password) + o + perms.to_bytes(4, "little", signed=True) + doc_id).digest()[:5]
    u = _rc4(key, _PAD)
    return o, u, key


def write_pdf(path, pages, size=(612, 792), user_password: str | None = None):
    """``pages``: a list of lists of (x, y, text, font size); an empty list is a page with a
    drawn rectangle and no text. ``user_password``: encrypt the file (RC4, revision 2), so
    that it cannot be read without the password."""
    import hashlib
    objs = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages_id = len(objs) + 1 + 0
    objs.append(None)                      # placeholder for /Pages
    kids = []
    for items in pages:
        if items:
            ops = ["BT"]
            for x, y, text, fs in items:
                ops.append(f"/F1 {fs} Tf 1 0 0 1 {x:.2f} {y:.2f} Tm ({_esc(text)}) Tj")
            ops.append("ET")
        else:
            ops = ["0.5 g 72 72 468 648 re f"]
        stream = "\n".join(ops).encode("latin-1")
        if user_password is not None:
            doc_id = hashlib.md5(str(path).encode()).digest()
            _o, _u, fkey = _standard_security(user_password, doc_id)
            num = len(objs) + 1
            okey = hashlib.md5(fkey + num.to_bytes(3, "little") + (0).to_bytes(2, "little")).digest()[:10]
            stream = _rc4(okey, stream)
        cid = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        pid = add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R >> >> "
                  b"/Contents %d 0 R >>" % (pages_id, size[0], size[1], font, cid))
        kids.append(pid)
    objs[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    encrypt = b""
    if user_password is not None:
        doc_id = hashlib.md5(str(path).encode()).digest()
        o, u, _key = _standard_security(user_password, doc_id)
        enc = add(b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -44 >>" % (o.hex().encode(), u.hex().encode()))
        encrypt = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (enc, doc_id.hex().encode(), doc_id.hex().encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, catalog, encrypt, xref)
    with open(path, "wb") as f:
        f.write(bytes(out))


def two_column_patent(path, number_line: str, columns: list[list[str]], front_lines: list[str],
                      inline_numbers: bool = False, gap_before=None, gap: float = 0.0, lines_per_column: int = 60,
                      image_pages_after: int = 0, drawing_sheets: list[str] | None = None):
    """A front page (one column) and text pages with two columns each: column numbers at the
    top (on a line of their own, or on the header line as grants print them), the patent
    number as a header, gutter line numbers every five lines on a fixed 11 pt grid.

    ``gap_before(text)``: lines before which ``gap`` points of extra space are set (as grants
    space claims apart), so that text drifts off the grid of printed numbers. Returns
    ``[(column, y, text)]`` for every text line (y in PDF points from the page bottom); line
    n of the grid is at ``730 - 11 * (n - 1)``. ``image_pages_after``: pages with a picture and
    no text at the end (claim pages that were scanned without OCR). ``drawing_sheets``: the
    header line of each drawing sheet between the front page and the text, as grants print
    them ("U.S. Patent  May 22, 2018  Sheet 1 of 5  US 9,977,598 B2"), each with a figure."""
    placed = []
    pages = [[(72, 720 - 14 * i, t, 10) for i, t in enumerate(front_lines)]]
    for h in drawing_sheets or []:
        pages.append([(60, 770, h, 9), (250, 400, "FIG. 1", 12)])
    for p in range(0, len(columns), 2):
        items = [(250, 770, number_line, 9)]
        for n in range(5, lines_per_column + 1, 5):
            items.append((302, 730 - 11 * (n - 1), str(n), 7))
        for side, col in enumerate(columns[p:p + 2]):
            x = 54 if side == 0 else 320
            items.append((x + 110, 770 if inline_numbers else 752, str(p + side + 1), 9))
            drop = 0.0
            for i, line in enumerate(col):
                if gap_before is not None and i and gap_before(line):
                    drop += gap
                y = 730 - 11 * i - drop
                items.append((x, y, line, 8.5))
                placed.append((p + side + 1, y, line))
        pages.append(items)
    write_pdf(path, pages + [[] for _ in range(image_pages_after)])
    return placed
