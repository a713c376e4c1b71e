"""``splade-bridge serve`` in a subprocess on a free port, for the service tests."""
import contextlib
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.proxy import free_port


@contextlib.contextmanager
def running_service(*args: str, headers: dict | None = None):
    """Yields (base URL, process); on exit SIGTERM, and the service must end cleanly (no traceback)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bridge", *args, "--port", str(port), "--model", "splade-tiny"],
                            env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            pytest.fail(f"serve exited: {proc.stderr.read()[-2000:]}")
    try:
        yield base, proc
    finally:
        proc.terminate()  # uvicorn drains, then re-raises SIGTERM: exit status 0 or -15, no traceback
        code = proc.wait(timeout=30)
        err = proc.stderr.read()
        assert code in (0, -15) and "Traceback" not in err, err[-3000:]
