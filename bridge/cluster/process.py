"""Running a local server process the way the engines demand: as a dedicated system user when invoked
as root (OpenSearch and Elasticsearch refuse root; the Kafka broker runs the same way), with a pid
file, and stopped by SIGTERM (SIGKILL after a grace period)."""
from __future__ import annotations

import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def http_json(url: str, timeout: float = 2.0) -> dict | list | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        return pwd.getpwnam(name)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def command_as(user: str, env: dict[str, str], argv: list[str], owned: tuple[Path, ...] = ()) -> list[str]:
    """``argv`` with ``env``, run as ``user`` (who then owns ``owned``) when we are root."""
    prefix = ["env"] + [f"{k}={v}" for k, v in env.items()]
    if os.geteuid() == 0:
        account = ensure_user(user)
        for path in owned:
            chown_tree(path, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", user, "--"] + prefix
    return prefix + argv


def stop(pid_file: Path, timeout: float = 60.0, what: str = "process") -> bool:
    """SIGTERM the process of ``pid_file`` and wait; SIGKILL after ``timeout``. False if it was not running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_pid(pid_file) is None:
            break
        time.sleep(0.3)
    else:
        log.warning("%s %d ignored SIGTERM for %.0fs; sending SIGKILL", what, pid, timeout)
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True
