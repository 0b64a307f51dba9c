import os

import pytest

from engine.kernel.zram0 import zram_unavailable_reason


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
