"""Shared fixtures: seeded random inputs, the `gpu` and `multigpu` markers that skip without one or two devices, and
a clean environment: tuning off (CUPY_FUSED_TUNE=0, unless a test turns it on), a private tuning-cache folder, and
JAX allocating device memory as it goes."""

import os

import numpy as np
import pytest

# JAX's CUDA backend would otherwise take 75% of the device's memory when the JAX tests first touch it
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _cuda_devices() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no driver, no device
        return 0


def pytest_collection_modifyitems(config, items):
    devices = _cuda_devices()
    needs = {"gpu": (1, "needs a CUDA device"), "multigpu": (2, "needs 2 CUDA devices")}
    for item in items:
        for marker, (count, text) in needs.items():
            if marker in item.keywords and devices < count:
                item.add_marker(pytest.mark.skip(reason=f"{text} (cupy found {devices or 'none'})"))


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
