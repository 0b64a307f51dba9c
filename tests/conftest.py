import os

# Command-line cases run in forked children (tests/isolated.py). GNU OpenMP cannot run in a
# child forked from a process that already used it, so the suite uses numba's built-in
# workqueue layer, which can; results do not depend on the threading layer.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import pytest  # noqa: E402

from engine.kernel.zram0 import zram_unavailable_reason  # noqa: E402

#: fixtures that hand a test the live kernel; a test using one must carry the kernel mark
KERNEL_FIXTURES = {"live_zram", "live_ksm"}


def pytest_collection_modifyitems(config, items):
    """Refuse to run a test that asks for the live kernel without the ``kernel`` mark, so
    ``-m "not kernel"`` never touches zram0 or ksmd."""
    bad = [it.nodeid for it in items
           if KERNEL_FIXTURES & set(getattr(it, "fixturenames", ())) and it.get_closest_marker("kernel") is None]
    if bad:
        raise pytest.UsageError("tests use the live kernel without @pytest.mark.kernel: " + ", ".join(bad))


@pytest.fixture(autouse=True)
def _kernel_only_when_marked(request, monkeypatch):
    """A test without the kernel mark that reaches for the live kernel anyway (a kernel
    session takes the kernel lock before it touches anything) fails instead."""
    if request.node.get_closest_marker("kernel") is None:
        import engine.kernel.safety as safety

        def refuse(*a, **k):
            pytest.fail("this test touches the live kernel (zram0 or KSM) but lacks @pytest.mark.kernel")
        monkeypatch.setattr(safety, "kernel_lock", refuse)


@pytest.fixture
def live_zram():
    """Skip cleanly where the live zram0 cannot be used (no root, no device, device busy)."""
    why = zram_unavailable_reason()
    if why:
        pytest.skip(f"live zram0 unavailable: {why}")
    return True


@pytest.fixture(scope="session")
def real_pages(tmp_path_factory):
    """Real anonymous memory of a process this test session starts itself (root needed)."""
    if os.geteuid() != 0:
        pytest.skip("capturing process memory needs root")
    from tests.pagesets import real_process_pages
    return real_process_pages(tmp_path_factory.mktemp("real"))


@pytest.fixture
def live_ksm():
    """Skip cleanly where the live ksmd cannot be used (no root, no KSM, KSM busy)."""
    from engine.kernel.ksm import ksm_unavailable_reason
    why = ksm_unavailable_reason()
    if why:
        pytest.skip(f"live KSM unavailable: {why}")
    return True
