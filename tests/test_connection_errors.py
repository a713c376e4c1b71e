"""Node down, unreachable host, timeouts, wrong credentials and TLS: one clear line, a non-zero exit,
bounded retries with backoff, no traceback unless --debug, and credentials never printed.

Authentication and TLS go through ``proxy.AuthProxy`` in front of the real node (the integ-test
distribution has no security plugin)."""
from __future__ import annotations

import base64
import time

import pytest

from tests.conftest import cli
from tests.proxy import AuthProxy, Silent, free_port, self_signed

pytestmark = pytest.mark.integration

USER, PASSWORD = "ingest-bot", "Sup3r-S3cret-pa55word"
SECRETS = (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())


def _fails_in_one_line(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and all(n in last for n in needles), proc.stderr
    return last


def _no_secrets(*procs) -> None:
    for p in procs:
        for s in SECRETS:
            assert s not in p.stdout and s not in p.stderr, "a credential was printed"


def test_retry_policy_is_in_help():
    out = cli("--help")
    text = " ".join(out.stdout.split())
    assert "--retry-for" in text and "exponential backoff" in text and "HTTP 429/503" in text


def test_node_down_at_start_retries_with_backoff_then_fails():
    started = time.monotonic()
    proc = cli("--url", f"http://127.0.0.1:{free_port()}", "--retry-for", "3", "status")
    elapsed = time.monotonic() - started
    last = _fails_in_one_line(proc, "cannot reach the cluster", "Connection refused", "attempt(s)")
    assert proc.stderr.count("retrying in") >= 2  # bounded retries, each announced with its wait
    attempts = int(last.split(" attempt(s)")[0].rsplit(" ", 1)[-1])
    assert attempts == proc.stderr.count("retrying in") + 1
    assert elapsed < 3 + 15  # gave up after --retry-for (+ interpreter start-up)


def test_debug_shows_the_traceback():
    proc = cli("--url", f"http://127.0.0.1:{free_port()}", "--retry-for", "0", "--debug", "status")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_unresolvable_host():
    _fails_in_one_line(cli("--url", "http://no-such-host.invalid:9200", "--retry-for", "1", "status"),
                       "cannot reach the cluster at http://no-such-host.invalid:9200")


def test_request_timeout():
    with Silent() as silent:
        started = time.monotonic()
        proc = cli("--url", silent.url, "--timeout", "1", "--retry-for", "2", "status")
    _fails_in_one_line(proc, "cannot reach the cluster", "timed out")
    assert time.monotonic() - started < 2 + 2 + 15


def test_wrong_credentials_fail_at_once_and_right_ones_work(node_url, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(PASSWORD + "\n")
    bad.write_text("not-the-password\n")
    with AuthProxy(node_url, USER, PASSWORD) as proxy:
        wrong = cli("--url", proxy.url, "--username", USER, "--password-file", str(bad), "status")
        right = cli("--url", proxy.url, "--username", USER, "--password-file", str(good), "status")
        none = cli("--url", proxy.url, "--engine", "opensearch", "status")
    _fails_in_one_line(wrong, "HTTP 401", "check the username and password")
    assert "retrying" not in wrong.stderr  # not transient: no retries
    assert right.returncode == 0 and "opensearch" in right.stdout, right.stderr
    _fails_in_one_line(none, "HTTP 401")
    _no_secrets(wrong, right, none)


def test_tls_is_verified_by_default(node_url, tmp_path):
    cert, key = self_signed(tmp_path)
    with AuthProxy(node_url, USER, PASSWORD, tls=(cert, key)) as proxy:
        env = {"BRIDGE_PASSWORD": PASSWORD}
        default = cli("--url", proxy.url, "--username", USER, "status", env=env)
        trusted = cli("--url", proxy.url, "--username", USER, "--ca-certs", str(cert), "status", env=env)
        insecure = cli("--url", proxy.url, "--username", USER, "--insecure", "status", env=env)
    _fails_in_one_line(default, "CERTIFICATE_VERIFY_FAILED")
    assert "retrying" not in default.stderr
    assert trusted.returncode == 0 and "opensearch" in trusted.stdout, trusted.stderr
    assert "verification is disabled" not in trusted.stderr
    assert insecure.returncode == 0, insecure.stderr
    assert "TLS certificate verification is disabled" in insecure.stderr
    _no_secrets(default, trusted, insecure)


def test_credentials_never_appear_in_logs_errors_or_dry_runs(node_url, client, tmp_path):
    """Password from a file, from the environment and inside the URL; verbose, debug, failing and
    --dry-run commands: neither the password nor its base64 form is ever printed."""
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    src = tmp_path / "one.jsonl"
    src.write_text('{"_id": "1", "text": "garlic and blood pressure"}\n{"_id": 2, "text": ""}\n')
    with AuthProxy(node_url, USER, PASSWORD) as proxy:
        url_with_creds = proxy.url.replace("http://", f"http://{USER}:{PASSWORD}@")
        auth = ["--url", proxy.url, "--username", USER, "--password-file", str(pw)]
        runs = [
            cli(*auth, "-v", "ingest", "secrets-test", str(src), "--model", "splade-tiny", cwd=tmp_path),
            cli(*auth, "--debug", "status"),
            cli(*auth, "reindex", "--source", "secrets-test", "--alias", "secrets", "--model", "splade-tiny",
                "--dry-run"),
            cli("--url", url_with_creds, "-v", "status"),
            cli("--url", proxy.url, "--username", USER, "--debug", "status", env={"BRIDGE_PASSWORD": PASSWORD}),
            cli("--url", url_with_creds.replace(proxy.url.rsplit(":", 1)[1], str(free_port())), "--retry-for", "1",
                "status"),
        ]
    assert runs[0].returncode == 1, runs[0].stderr  # one good record, one bad: partial
    assert [r.returncode for r in runs[1:5]] == [0, 0, 0, 0], [r.stderr[-500:] for r in runs]
    assert "secrets-test" in runs[2].stdout  # the dry run printed its plan
    assert "***@" in runs[5].stderr  # the failing URL is shown, redacted
    _no_secrets(*runs)
    for letter in tmp_path.glob("*deadletter*"):
        assert PASSWORD not in letter.read_text()
    client.indices.delete(index="secrets-test", ignore_unavailable=True)


def test_transient_failures_are_classified():
    from opensearchpy.exceptions import AuthenticationException, ConnectionError, ConnectionTimeout, SSLError
    from opensearchpy.exceptions import TransportError

    from bridge.connection.failures import is_transient

    assert is_transient(ConnectionError("N/A", "refused", None))
    assert is_transient(ConnectionTimeout("TIMEOUT", "timed out", None))
    assert is_transient(TransportError(503, "unavailable", {}))
    assert is_transient(TransportError(429, "too many requests", {}))
    assert not is_transient(SSLError("N/A", "bad cert", None))
    assert not is_transient(AuthenticationException(401, "unauthorized", {}))
    assert not is_transient(TransportError(400, "bad request", {}))
