"""The notebooks run top to bottom (executed with nbclient, outputs not compared)."""
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_three_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    import os
    root = str(Path(__file__).resolve().parent.parent)        # the kernel finds the packages here too
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    # allow_errors: a failing cell is recorded in the outputs (and every cell still runs), so
    # the check below sees every error rather than only the first
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "a code cell did not run"
    errors = [f"{o.ename}: {o.evalue}" for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # the notebooks run clean: nothing on stderr that warns or fails (a TqdmWarning, a
    # FutureWarning from pandas, a traceback printed by a library)
    noisy = [o.text[:300] for c in code for o in c.get("outputs", [])
             if o.output_type == "stream" and o.name == "stderr"
             and any(w in o.text for w in ("Warning", "Error", "Traceback"))]
    assert not noisy
    # the chain drawings carry their own styles: they show the same in a notebook as in the report
    html = [o.data["text/html"] for c in code for o in c.get("outputs", [])
            if o.output_type == "display_data" and "text/html" in o.get("data", {}) and "<svg" in o.data["text/html"]]
    assert all('style="fill:' in h for h in html)
