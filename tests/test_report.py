"""The comparison report: sections, escaping, determinism, CSV, and a real browser."""
import csv
import datetime as dt
import re
import shutil

import pytest
import yaml

from claims.store import DATA
from reports.build import build_report, default_inputs
from tests.browser import launch, needs_chromium

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    path = build_report(default_inputs(), out_dir=out, now=NOW)
    return path, path.read_text()


def test_sections_and_disclaimer(report):
    _, page = report
    for sid in ("summary", "chain", "claim-chart", "algorithms", "results", "fidelity", "timeline"):
        assert f'id="{sid}"' in page, sid
    assert "not legal advice" in page.lower()
    assert not re.search(r"\binfringes\b|\bis invalid\b", page.replace("infringement, validity", ""))
    # the live kernel is touched only when asked, and the report says how to ask
    assert "This run shows the model alone: the live kernel was not asked for" in page
    assert "pagemerge report --kernel" in page


def test_self_contained(report):
    _, page = report
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""src=["']?(https?:)?//""", page)            # nothing to fetch
    # links to the sources are plain <a href> (followed only when the reader clicks)
    assert all(m.startswith("<a ") for m in re.findall(r"""<\w+[^>]*\bhref=["']?(?:https?:)?//""", page))
    assert page.count("<svg") >= 6 + 3                                   # six chains and three plots


def test_no_path_of_this_machine(report):
    """The report names its data files as a reader finds them in the source tree; nothing of
    this checkout's or this machine's absolute paths ends up in a document that is filed."""
    from pathlib import Path
    _, page = report
    root = str(Path(DATA).resolve().parents[1])
    assert root not in page
    assert "claims/data/US9977598/constructions.yaml" in page


def test_chart_rows_and_columns(report):
    _, page = report
    body = page[page.index('id="chart-table"'):page.index("</table>", page.index('id="chart-table"'))]
    rows = re.findall(r'<tr data-element="([^"]+)"', body)
    assert rows == ["1[pre]", "1[a]", "1[b]", "1[c]", "1[d]", "1[e]", "1[f]", "2[a]"]
    cols = re.findall(r'<th data-mechanism="([^"]+)"', body)
    assert cols == ["upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "patent_claim1"]
    assert body.count('data-status="') == 48
    assert "claim 2 -&gt; claim 1; only the added limitation is charted" in body
    assert re.search(r"dedup\.share</code> \[mechanism=zram_dedup, link=slot -&gt; handle\]: [1-9][\d,]* in this run", body)


def test_same_inputs_same_report(tmp_path, report):
    path, page = report
    again = build_report(default_inputs(kernel=False), out_dir=tmp_path, now=NOW).read_text()
    assert again == page
    later = build_report(default_inputs(kernel=False), out_dir=tmp_path,
                         now=NOW + dt.timedelta(days=1)).read_text()
    diff = [(a, b) for a, b in zip(page.splitlines(), later.splitlines()) if a != b]
    assert len(diff) == 1 and "2026-01-0" in diff[0][0]


def test_csv_has_every_row(report):
    path, _ = report
    rows = list(csv.DictReader(open(path.with_name("chart-US9977598.csv"))))
    assert len(rows) == 48 and {r["mechanism"] for r in rows} >= {"ksm", "patent_claim1"}
    assert all(r["status"] in ("present", "absent", "partial", "undetermined") for r in rows)


def test_text_is_escaped(tmp_path):
    d = tmp_path / "US9977598"
    shutil.copytree(DATA / "US9977598", d)
    chart = yaml.safe_load((d / "chart.yaml").read_text())
    chart["rows"][0]["reasoning"] = "Compare <b>bold</b> & <script>alert(1)</script> from <foo@bar.org>."
    (d / "chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False, allow_unicode=True))
    page = build_report(default_inputs(kernel=False, chart=str(d / "chart.yaml")), out_dir=tmp_path / "o",
                        now=NOW).read_text()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; from &lt;foo@bar.org&gt;" in page
    assert "<script>alert(1)" not in page




@needs_chromium
def test_report_in_headless_chromium(report, tmp_path):
    from playwright.sync_api import sync_playwright
    path, _ = report
    console, requests = [], []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            assert page.title().startswith("pagemerge: US 9,977,598 B2")
            assert page.locator("#chart-table tbody tr").count() == 8
            assert page.locator("#chart-table thead th[data-mechanism]").count() == 6
            assert page.locator("#chart-table td[data-status]").count() == 48
            assert page.locator("#disclaimer").is_visible()
            assert page.locator("svg.chain").count() == 6
            shot = path.with_name("report-screenshot.png")
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10000
        finally:
            browser.close()
    assert [c for c in console if c[0] in ("error", "pageerror")] == []
    assert [u for u in requests if not u.startswith("file://")] == []
