"""One local Ray for the Ray backend's tests: 2 CPUs, a declared GPU and a custom resource.

Started once per test session (a Ray start takes seconds), in a temporary folder of its
own that is removed afterwards with everything Ray wrote there; shut down at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

_ENV = {
    "RAY_AUTH_MODE": "disabled",  # no token file in the user's home
    # under `uv run` (as `make test` runs), Ray would start its workers with `uv run` in a
    # copy of the working folder, where they never start; read when ray is imported
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
}
for _k, _v in _ENV.items():
    os.environ.setdefault(_k, _v)

ray = pytest.importorskip("ray")  # the extra is installed by `make test`; plain installs skip

CPUS = 2
GPUS = 1  # declared, not real: Ray hands it out as an id and CUDA_VISIBLE_DEVICES
SPECIAL = 1  # a custom resource only this cluster has


@pytest.fixture(scope="session")
def local_ray() -> Iterator[str]:
    """The address of the test session's local Ray (started here, stopped after)."""
    if ray.is_initialized():  # started by someone else: theirs to stop
        yield str(ray.get_runtime_context().gcs_address)
        return
    temp = tempfile.mkdtemp(prefix="cpray", dir="/tmp")  # short: it holds Unix sockets
    try:
        ray.init(
            num_cpus=CPUS,
            num_gpus=GPUS,
            resources={"special": SPECIAL},
            object_store_memory=128 * 2**20,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=temp,
        )
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
