"""Shared fixtures: seeded random inputs, the `gpu` marker that skips without a device, and a clean environment:
tuning off (CUPY_FUSED_TUNE=0, unless a test turns it on) and a private tuning-cache folder."""

import numpy as np
import pytest


def _cuda_devices() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no driver, no device
        return 0


def pytest_collection_modifyitems(config, items):
    if _cuda_devices() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (cupy found none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _quiet_environment(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("CUPY_FUSED_TUNE", "0")
    patch.setenv("CUPY_FUSED_CACHE_DIR", str(tmp_path_factory.mktemp("tuning-cache")))
    yield
    patch.undo()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
