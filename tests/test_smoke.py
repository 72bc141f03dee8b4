"""deploy/smoke.sh passes against a healthy deployment under supervisord and fails, at
the step that went wrong, on a missing worker or a dead URL."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support import ROOT
from tests.support.deployment import Deployment, supervisor
from tests.support.processes import free_port


@pytest.mark.slow
def test_smoke_script_passes_against_supervisord_and_fails_on_surprises(
    deployment: Deployment,
) -> None:
    """deploy/smoke.sh walks a healthy deployment; a missing worker or a dead URL makes
    it exit non-zero at the step that went wrong."""

    def smoke(base_url: str, timeout: str = "60") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "deploy" / "smoke.sh"), base_url],
            env={**os.environ, "SMOKE_TIMEOUT": timeout},
            capture_output=True,
            text=True,
            timeout=180,
        )

    with supervisor(deployment) as sup:
        passed = smoke(deployment.base_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        for step in ("register", "login", "upload", "wait for ready", "download", "logout"):
            assert f"ok   [{step}]" in passed.stdout
        assert "smoke test passed" in passed.stdout

        # Without workers nothing gets validated: the script says so and fails.
        assert "stopped" in sup.ctl("stop", "worker:*")
        stuck = smoke(deployment.base_url, timeout="3")
        assert stuck.returncode == 1
        assert "FAIL [wait for ready]" in stuck.stderr and "still pending" in stuck.stderr

    dead = smoke(f"http://127.0.0.1:{free_port()}")
    assert dead.returncode == 1 and "FAIL [health]" in dead.stderr
    usage = subprocess.run(
        ["bash", str(ROOT / "deploy" / "smoke.sh")], capture_output=True, text=True, timeout=30
    )
    assert usage.returncode == 2 and "usage" in usage.stderr
