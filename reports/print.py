"""The report on paper: the stylesheet that keeps chart cells inside their columns on screen and
in print, the print-only copies of the evidence that sits in ``<details>`` on screen, the table
of contents, links to pinpointed sources, and the PDF through headless Chromium.

Print cannot open a ``<details>``: each one is followed by a print-only block holding the same
summary and content, which the print stylesheet shows while it hides the ``<details>``. The
chart's header row repeats on every printed page and a row stays on one page where it fits.
"""
from __future__ import annotations

import html
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.errors import PagemergeError

#: added to the report's own stylesheet
CSS = """
/* long tokens (event filters, code paths, Message-IDs, trace excerpts) wrap inside their cell */
table.chart td, table.chart th, table.chart td * { overflow-wrap: anywhere; word-break: normal; min-width: 0; }
table.chart td .trace, table.chart td code, table.chart td .mono, table.chart summary { overflow-wrap: anywhere; }
table.chart td blockquote { margin: 4px 0 4px 6px; padding-left: 6px; border-left: 2px solid var(--line); }
table.chart td .badge { white-space: normal; max-width: 100%; }
.trace { word-break: normal !important; overflow-wrap: anywhere; white-space: normal; }
a { color: #234d7a; } a.src { text-decoration: none; border-bottom: 1px dotted #234d7a; }
nav#toc { max-width: 1500px; margin: 0 auto; padding: 8px 28px; }
nav#toc ol { margin: 4px 0; padding-left: 4px; list-style: none; columns: 2; font-size: 13px; }
.runinfo { color: var(--mute); font-size: 12.5px; }
.runinfo code { overflow-wrap: anywhere; }
.print-only { display: none; }
table.results { font-size: 12.5px; margin-bottom: 10px; }
table.results td { white-space: nowrap; } table.results th { white-space: normal; }
table.results th { text-align: right; } table.results th:first-child, table.results td:first-child { text-align: left; }
.kpi .pct { color: var(--mute); font-size: 12.5px; display: block; }
#cards > div { flex: 1 1 380px; max-width: 560px; }
.kpi .neg { color: var(--hot); }
table.zramctl td { text-align: right; font-variant-numeric: tabular-nums; } table.zramctl td:first-child { text-align: left; }
@page { size: A4; margin: 12mm 10mm; }
@page wide { size: A4 landscape; margin: 10mm; }
@media print {
  body { font-size: 10px; background: #fff; }
  header, section, nav#toc { max-width: none; padding: 6px 0; }
  details { display: none !important; }
  .print-only { display: block; }
  .print-only .ps { font-weight: 600; color: #234d7a; }
  .print-only.evidence { border-top: 1px dotted #ccc; margin-top: 3px; padding-top: 2px; }
  nav#toc ol { columns: 1; }
  a { color: inherit; text-decoration: none; }
  a.src::after { content: none; }
  table { width: 100%; }
  table.chart { font-size: 8px; }
  table.chart td, table.chart th, table.chart td *, table.chart th * { font-size: inherit !important; }
  table.chart td.eltext { font-size: 8.5px !important; }
  table.chart code, table.chart .mono { font-size: 7.5px; }
  table.chart .badge, table.chart .parts { font-size: 7.5px; }
  thead { display: table-header-group; }
  tfoot { display: table-footer-group; }
  tr, td, th { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  #prior-art { page: wide; }
  table.results, table.zramctl, table.fidelity, table.construction { font-size: 8px; table-layout: fixed; width: 100%; }
  table.results td, table.results th { white-space: normal; overflow-wrap: anywhere; padding: 2px 3px; }
  .scroll { overflow: visible !important; }
  .kpi div { min-width: 0; flex: 1 1 30%; }
  .figure svg { max-width: 100%; height: auto; }
  svg.chain { width: 100%; height: auto; }
  .chainrow { grid-template-columns: 160px 1fr; break-inside: avoid; }
}
"""

_DETAILS = re.compile(r"<details\b[^>]*>(.*?)</details>", re.S)
_SUMMARY = re.compile(r"<summary\b[^>]*>(.*?)</summary>", re.S)
_SECTION = re.compile(r'<section id="([^"]+)">\s*<h2>(.*?)</h2>', re.S)


def expand_details(page: str) -> str:
    """After each ``<details>``, a print-only block with its summary and content (the report's
    ``<details>`` are never nested)."""
    def one(m: re.Match) -> str:
        inner = m.group(1)
        s = _SUMMARY.search(inner)
        summary = s.group(1) if s else ""
        body = _SUMMARY.sub("", inner, count=1)
        return (m.group(0) + f'<div class="print-only evidence" aria-hidden="true"><div class="ps">{summary}</div>'
                f'{body}</div>')
    return _DETAILS.sub(one, page)


def toc(page: str) -> str:
    """A table of contents from the sections' headings."""
    items = [(sid, re.sub(r"<[^>]+>", "", title)) for sid, title in _SECTION.findall(page)]
    lis = "".join(f'<li><a href="#{html.escape(sid)}">{t}</a></li>' for sid, t in items)
    return f'<nav id="toc" aria-label="contents"><b>Contents</b><ol>{lis}</ol></nav>'


def finish(page: str) -> str:
    """The rendered page with its table of contents and the print copies of the evidence."""
    page = expand_details(page)
    i = page.find("</header>")
    if i >= 0:
        i += len("</header>")
        page = page[:i] + "\n" + toc(page) + page[i:]
    return page


def command_line(argv) -> str:
    """The exact command line, quoted as a shell would need it."""
    return "pagemerge " + " ".join(shlex.quote(a) for a in argv) if argv is not None else ""


# ---- links to the pinpointed source -------------------------------------------------------------
_TAG_PATH = re.compile(r"^(v\d[\w.\-]*)\s+(\S+\.(?:c|h|txt|rst|S|py))(?::(\d+)(?:-\d+)?)?")
_COMMIT_PATH = re.compile(r"^@([0-9a-f]{7,40})\s+(\S+\.(?:c|h|txt|rst))(?::(\d+))?")
_MSGID = re.compile(r"^Message-ID\s+<?([^\s>]+)>?")
_KERNEL = "https://git.kernel.org/pub/scm/linux/kernel/git/"


def pinpoint_url(ref, pinpoint: str) -> str:
    """The address of a citation's pinpoint where one is known: a kernel tag's file (at its line),
    a commit's file, a Message-ID's archive entry; else the reference's own link; else ''."""
    link = getattr(ref, "link", "") or ""
    m = _TAG_PATH.match(pinpoint)
    if m and link.startswith(_KERNEL):
        tag, path, line = m.groups()
        # a stable release (v2.6.32.2, v3.14.1) lives in the stable tree; a mainline tag in Linus's
        tree = "stable/linux.git" if tag.count(".") >= 2 and not tag.startswith("v2.6.") or tag.count(".") >= 3 \
            else "torvalds/linux.git"
        return f"{_KERNEL}{tree}/tree/{path}?h={tag}" + (f"#n{line}" if line else "")
    m = _COMMIT_PATH.match(pinpoint)
    commit = getattr(ref, "commit", "") or ""
    if m and link.startswith("https://github.com/") and commit.startswith(m.group(1)):
        repo = "/".join(link.split("/")[3:5])
        return f"https://github.com/{repo}/blob/{commit}/{m.group(2)}" + (f"#L{m.group(3)}" if m.group(3) else "")
    m = _MSGID.match(pinpoint)
    if m:
        return f"https://lore.kernel.org/r/{m.group(1)}/"
    return link if link.startswith(("https://", "http://")) else ""


# ---- PDF ---------------------------------------------------------------------------------------
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for n in CHROMIUM_NAMES:
        p = shutil.which(n)
        if p:
            return p
    return None


def write_pdf(html_path: Path, pdf_path: Path, force: bool = False, timeout: float = 180.0) -> Path:
    """Print the report to PDF with headless Chromium (print media, A4, no header or footer).
    A clear one-line error where Chromium is not installed or fails."""
    from engine.fileio import AtomicFile
    exe = find_chromium()
    if exe is None:
        raise PagemergeError("--pdf: no headless Chromium found (install Debian's 'chromium'); the HTML report "
                             f"was written to {html_path}")
    with tempfile.TemporaryDirectory(prefix="pagemerge-pdf-") as tmp:
        out = Path(tmp) / "report.pdf"
        # Chromium prints a private copy, not the file in the output folder (which someone
        # could replace between writing and printing)
        from engine.fileio import read_input
        page = Path(tmp) / "report.html"
        page.write_bytes(read_input(html_path, "report", 1 << 30))
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={out}",
               page.as_uri()]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)          # the session this call started, and only it
            proc.wait()
            raise PagemergeError(f"--pdf: {exe} did not finish within {timeout:.0f} s")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
        if proc.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            last = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise PagemergeError(f"--pdf: {exe} failed to print the report ({last[0][:200]})")
        data = out.read_bytes()
    with AtomicFile(pdf_path, force=force, replaceable=lambda q: _is_our_pdf(q)) as f:
        f.write(data)
    return pdf_path


def _is_our_pdf(path: Path) -> bool:
    """A PDF is replaced by the next run when it is a PDF (its own earlier output)."""
    from engine.errors import InputError
    from engine.fileio import open_input
    try:
        with open_input(path, "earlier output") as f:
            return f.read(5) == b"%PDF-"
    except InputError:
        return False


_MSGID_IN_TEXT = re.compile(r"Message-ID <?([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+[A-Za-z0-9])>?")


def linkify(text: str):
    """Escaped text with each Message-ID turned into a link to its archive entry (a Jinja filter)."""
    from markupsafe import Markup, escape
    out, pos = [], 0
    for m in _MSGID_IN_TEXT.finditer(text or ""):
        out.append(escape(text[pos:m.start()]))
        out.append(Markup('<a class="src" href="{}">{}</a>').format(f"https://lore.kernel.org/r/{m.group(1)}/",
                                                                    m.group(0)))
        pos = m.end()
    out.append(escape((text or "")[pos:]))
    return Markup("").join(out)
