"""The report's layout in a real browser and on paper: chart cells never overflow (on screen at
1400 px with every <details> open, and at A4 print width with print media), and the PDF that
``pagemerge report --pdf`` prints holds every citation pinpoint, every evidence excerpt and
every results column."""
import datetime as dt
import html
import re
import unicodedata

import pytest

from claims.analysis import load_prior_art
from claims.store import load_bundle
from reports.build import build_report, default_inputs
from tests.browser import launch, needs_chromium

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
A4_PRINTABLE_PX = round((210 - 20) / 25.4 * 96)      # A4 less the stylesheet's 10 mm side margins, CSS px






@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    path = build_report(default_inputs(argv=("report", "-o", str(out), "--pdf")), out_dir=out, now=NOW)
    return path, path.read_text()


def test_header_has_version_command_and_contents(report):
    from pagemerge import __version__
    _, page = report
    head = page[page.index("<header>"):page.index("</header>")]
    assert f"pagemerge {__version__}" in head
    assert "command: <code>pagemerge report -o " in head and " --pdf</code>" in head
    toc = page[page.index('<nav id="toc"'):page.index("</nav>")]
    ids = re.findall(r'<section id="([^"]+)">\s*<h2>', page)
    assert len(ids) >= 7 and re.findall(r'href="#([^"]+)"', toc) == ids


def test_citations_link_to_their_source(report):
    _, page = report
    # a kernel tag's file at its line, a mainline tag in Linus's tree, a Message-ID in the archive
    assert ('href="https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/tree/mm/ksm.c?h=v2.6.32.2#n1092"'
            in page)
    assert 'href="https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/mm/zswap.c?h=v3.11#n649"' in page
    assert 'href="https://lore.kernel.org/r/20230418062503.62121-1-avromanov@sberdevices.ru/"' in page
    # the algorithm table's sources link their Message-IDs, and stay escaped text otherwise
    alg = page[page.index('id="algorithm-table"'):page.index("</table>", page.index('id="algorithm-table"'))]
    assert ('<a class="src" href="https://lore.kernel.org/r/1494556204-25796-1-git-send-email-iamjoonsoo.kim@lge.com/">'
            'Message-ID 1494556204-25796-1-git-send-email-iamjoonsoo.kim@lge.com</a>') in alg
    # every reference's own address is a link in the reference table
    table = page[page.index('id="reference-table"'):page.index("</table>", page.index('id="reference-table"'))]
    bundle = load_bundle("US9977598")
    for r in bundle.references:
        if r.link:
            assert f'href="{html.escape(r.link)}"' in table, r.id


def test_every_details_has_a_print_copy(report):
    _, page = report
    n_details = len(re.findall(r"<details\b", page))
    assert n_details > 100
    assert page.count('<div class="print-only evidence"') == n_details


def _overflowing(page, selector):
    return page.evaluate("""sel => [...document.querySelectorAll(sel)]
        .filter(c => c.getClientRects().length && c.scrollWidth > c.clientWidth)
        .map(c => (c.closest('tr') && c.closest('tr').dataset.element) + ' / ' + c.className + ' '
                  + c.scrollWidth + '>' + c.clientWidth)""", selector)


@needs_chromium
def test_chart_cells_do_not_overflow_on_screen_and_in_print(report):
    from playwright.sync_api import sync_playwright
    path, _ = report
    cells = "table.chart td, table.chart th"
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(path.as_uri())
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            assert page.locator("table.chart td").count() > 100
            assert _overflowing(page, cells) == []
            assert _overflowing(page, "#results td, #results th") == []
            page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1100})
            page.emulate_media(media="print")
            # print shows the evidence copies, not the <details>
            assert page.locator("table.chart .print-only.evidence").first.is_visible()
            assert not page.locator("table.chart details").first.is_visible()
            assert _overflowing(page, cells) == []
            assert _overflowing(page, "#results td, #results th") == []
            assert page.evaluate("getComputedStyle(document.querySelector('#chart-table thead')).display") \
                == "table-header-group"
        finally:
            browser.close()


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", html.unescape(s)))


def _pdf_text(pdf) -> str:
    """The PDF's text, normalised: each page read as a whole, and again column by column between
    the table's vertical rules (a line-by-line read interleaves the cells of a table row)."""
    import pdfplumber
    from pdfplumber.utils import extract_text
    parts = []
    with pdfplumber.open(pdf) as doc:
        assert len(doc.pages) > 5
        for pg in doc.pages:
            chars = pg.chars
            parts.append(extract_text(chars))
            xs = sorted({round(e["x0"]) for e in pg.vertical_edges})
            cuts = [x for i, x in enumerate(xs) if i == 0 or x - xs[i - 1] > 3]
            for a, b in zip(cuts, cuts[1:]):
                parts.append(extract_text([c for c in chars if a <= (c["x0"] + c["x1"]) / 2 < b]))
    return _norm("\n".join(parts))


@needs_chromium
def test_pdf_holds_every_citation_excerpt_and_column(report):
    from reports.print import write_pdf
    path, page = report
    pdf = write_pdf(path, path.with_suffix(".pdf"))
    text = _pdf_text(pdf)
    # every citation pinpoint of both analyses, from the claim data (not from the report)
    bundle = load_bundle("US9977598")
    pins = {c.pinpoint for r in bundle.chart.rows for c in r.evidence.citations}
    pins |= {c.pinpoint for cell in load_prior_art(bundle).cells for c in cell.citations}
    assert len(pins) > 20
    missing = [x for x in pins if _norm(x) not in text]
    assert missing == []
    # every excerpt of the trace the report shows on screen
    excerpts = {x for x in re.findall(r'<div class="trace mono">(.*?)</div>', page)}
    assert len(excerpts) > 30
    missing = [x for x in excerpts if _norm(x) not in text]
    assert missing == []
    # every column of the results table
    res = page[page.index('<section id="results"'):]
    res = res[:res.index("</section>")]
    cols = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th\b[^>]*>(.*?)</th>", res, re.S)]
    assert len(cols) >= 8
    missing = [c for c in cols if c.strip() and _norm(c) not in text]
    assert missing == []


def test_pdf_without_chromium_is_one_clear_line(report, tmp_path, monkeypatch):
    import shutil

    from engine.errors import PagemergeError
    from reports.print import write_pdf
    path, _ = report
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(PagemergeError) as e:
        write_pdf(path, tmp_path / "r.pdf")
    msg = str(e.value)
    assert msg.startswith("--pdf: no headless Chromium found") and "\n" not in msg and str(path) in msg
    assert not (tmp_path / "r.pdf").exists()


def test_results_and_matrix_are_tables_not_dumps(report):
    _, page = report
    res = page[page.index('<section id="results"'):]
    res = res[:res.index("</section>")]
    assert "True" not in res and "NaN" not in res and 'class="dataframe' not in page
    assert re.search(r"<td>[−+]?[\d,.]+ (B|KiB|MiB)</td>", res)                # bytes carry their unit
    zc = res[res.index('id="zramctl"'):]
    assert re.findall(r"<th>([A-Z/-]+)</th>", zc[:zc.index("</thead>")]) == [
        "NAME", "ALGORITHM", "DATA", "COMPR", "TOTAL", "MEM-LIMIT", "MEM-USED", "ZERO/SAME", "MIGRATED", "COMP-RATIO"]
    m = page[page.index('id="dependency-matrix"'):]
    assert "<th>claim 2</th><td>direct</td>" in m[:m.index("</table>")]
