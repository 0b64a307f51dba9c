"""The CLI contract: JSON shape, tables, one-line errors and exit statuses."""
import json
import os
import subprocess
import sys

import pytest

from pagemerge.cli import main
from engine.zram import MM_STAT_FIELDS, IO_STAT_FIELDS
from tests import pagesets


@pytest.fixture
def pages_file(tmp_path):
    ps = pagesets.mixed_pages()
    f = tmp_path / "mixed.pages"
    f.write_bytes(bytes(ps.array.reshape(-1)))
    return f


def run(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_simulate_zram_json_shape(pages_file, capsys):
    rc, out, _ = run(["simulate", "zram", str(pages_file), "--json"], capsys)
    d = json.loads(out)
    assert rc == 0
    assert list(d) == ["mm_stat", "io_stat", "comp_algorithm"] and d["comp_algorithm"] == "lzo-rle"
    assert tuple(d["mm_stat"]) == MM_STAT_FIELDS and tuple(d["io_stat"]) == IO_STAT_FIELDS
    assert d["mm_stat"]["orig_data_size"] == 900 * 4096


def test_simulate_zram_operations_and_table(pages_file, tmp_path, capsys):
    rc, out, _ = run(["simulate", "zram", str(pages_file), "--discard", "0-99,200,300-399:3",
                      "--overwrite", "0-9", "--overwrite-with", str(pages_file), "--compact",
                      "--mem-limit", "2M"], capsys)
    assert rc == 0
    assert "mm_stat" in out and "notify_free" in out and "pages_compacted" in out
    rc, out, _ = run(["simulate", "zram", str(pages_file), "--discard", "0-99,200,300-399:3", "--json"], capsys)
    assert json.loads(out)["io_stat"]["notify_free"] == 100 + 1 + 34


@pytest.mark.parametrize("args,msg", [
    (["--algo", "zstd"], "--algo zstd: unknown compressor"),
    (["--discard", "5-1"], "--discard: bad range"),
    (["--overwrite", "1"], "--overwrite needs --overwrite-with"),
    (["--mem-limit", "lots"], "--mem-limit: cannot parse"),
])
def test_bad_options_are_one_line(pages_file, capsys, args, msg):
    rc, out, err = run(["simulate", "zram", str(pages_file), *args], capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and msg in err


def test_kernel_refuses_without_root(pages_file, capsys, monkeypatch):
    """As an unprivileged user the kernel commands refuse in one line and touch nothing."""
    import engine.kernel.safety
    import engine.kernel.zram0
    touched = []
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(engine.kernel.zram0.KernelZram, "_write", lambda *a: touched.append(a))
    for cmd in ("kernel", "compare"):
        rc, out, err = run([cmd, "zram", str(pages_file)], capsys)
        assert rc == 2 and "needs root" in err and err.count("\n") == 1
    assert touched == []


@pytest.mark.kernel
@pytest.mark.parametrize("algo", ["lzo-rle", "lzo", "lz4"])
def test_compare_zram_agrees_with_kernel(live_zram, pages_file, capsys, algo):
    rc, out, _ = run(["compare", "zram", str(pages_file), "--discard", "0-899:4", "--compact", "--json",
                      "--algo", algo, "--io-pages", "8", "--mem-limit", "1M"], capsys)
    d = json.loads(out)
    assert rc == 0 and d["differences"] == [] and d["model"] == d["kernel"]
    assert d["kernel"]["comp_algorithm"] == algo and d["kernel"]["io_stat"]["failed_writes"] > 0


@pytest.mark.kernel
def test_kernel_zram_same_shape(live_zram, pages_file, capsys):
    rc, out, _ = run(["kernel", "zram", str(pages_file), "--json"], capsys)
    assert rc == 0 and tuple(json.loads(out)["mm_stat"]) == MM_STAT_FIELDS


def test_report_runs_on_embedded_default(tmp_path):
    import engine
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(engine.__file__))
    r = subprocess.run([sys.executable, "-m", "pagemerge", "report", "-o", str(tmp_path)],
                       capture_output=True, text=True, env=env, cwd="/")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "report-US9977598.html").exists() and (tmp_path / "chart-US9977598.csv").exists()
    assert str(tmp_path / "report-US9977598.html") in r.stdout


def test_events_doc_is_in_step_with_the_code(capsys):
    import pathlib
    assert main(["events", "--markdown"]) == 0
    doc = pathlib.Path(__file__).resolve().parent.parent / "docs" / "events.md"
    assert capsys.readouterr().out == doc.read_text(), "regenerate: pagemerge events --markdown > docs/events.md"


def test_simulate_ksm_with_a_write_trace(tmp_path, capsys):
    pages = tmp_path / "k.pages"
    pages.write_bytes(b"*" * 4096 * 6)
    trace = tmp_path / "t.csv"
    trace.write_text("# after_scan,page,offset,hexbytes\n2,0,0,ff\n2,1,0,ff\n")
    assert main(["simulate", "ksm", str(pages), "--trace", str(trace), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    # pages 0 and 1 change after scan 2 (identical to each other): 4 + 2 pages end in two KSM pages
    assert (d["ksm"]["pages_shared"], d["ksm"]["pages_sharing"]) == (2, 4)
    assert [w[:2] for w in d["writes"]] == [[2, 0], [2, 1]]
    trace.write_text("2,0,zero,ff\n")
    assert main(["simulate", "ksm", str(pages), "--trace", str(trace)]) == 2
    assert "line 1: expected" in capsys.readouterr().err


def test_every_option_has_help_text():
    import argparse
    from pagemerge.cli import build_parser

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    yield from walk(sp, [*path, name])
            elif not isinstance(a, argparse._HelpAction) and not a.help:
                yield " ".join(path), a.option_strings or a.dest
    missing = list(walk(build_parser(), ["pagemerge"]))
    assert missing == []


def test_version(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"pagemerge {version('pagemerge')}"
