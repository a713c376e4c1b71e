"""``splade-bridge serve`` in a subprocess on a free port, for the service tests."""
import contextlib
import os
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from tests.proxy import free_port


@contextlib.contextmanager
def running_service(*args: str, headers: dict | None = None, model: str | None = "splade-tiny"):
    """Yields (base URL, process); on exit SIGTERM, and the service must end cleanly (no traceback).
    ``model=None``: no --model, the served index's stamp names it."""
    port = free_port()
    # stderr to a file: the access log writes a line per request, which would fill a pipe nobody reads
    log_file = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "bridge", *args, "--port", str(port),
                             *(("--model", model) if model else ())],
                            env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.PIPE, stderr=log_file,
                            text=True)
    proc.log_file = log_file
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            pytest.fail(f"serve exited: {stderr_of(proc)[-2000:]}")
    try:
        yield base, proc
    finally:
        proc.terminate()  # uvicorn drains, then re-raises SIGTERM: exit status 0 or -15, no traceback
        code = proc.wait(timeout=30)
        err = stderr_of(proc)
        assert code in (0, -15) and "Traceback" not in err, err[-3000:]


def stderr_of(proc) -> str:
    """What the service has written to stderr so far."""
    proc.log_file.seek(0)
    return proc.log_file.read()
