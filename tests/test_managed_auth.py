"""Managed-cluster authentication against real nodes behind proxies that check it for real: AWS SigV4 (the
proxy recomputes every signature from the wire with the known secret, tests/sigv4.py), API keys on
OpenSearch and Elasticsearch, and an Elastic Cloud id over verified TLS. Wrong credentials fail in one
line with exit 2; no secret is ever printed."""
from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import SAMPLE, cli
from tests.engines import engine_url
from tests.proxy import AuthProxy, self_signed
from tests.sigv4 import MISMATCH, SigV4Verifier

pytestmark = [pytest.mark.integration, pytest.mark.model]

AKID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID, KEY = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
ENCODED_KEY = base64.b64encode(f"{KEY_ID}:{KEY}".encode()).decode()
SECRETS = (SECRET, KEY, ENCODED_KEY)


def aws_env(secret: str = SECRET) -> dict:
    """Credentials from the environment only (no profile files, no instance metadata)."""
    return {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_REGION": "", "AWS_DEFAULT_REGION": ""}


def api_key_check(method, path, headers, body):
    return None if headers.get("authorization") == f"ApiKey {ENCODED_KEY}" else "unable to authenticate with the API key"


def corpus(tmp_path, n=12):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(line for _, line in zip(range(n), open(SAMPLE))))
    return src, json.loads(src.read_text().splitlines()[0])


def ingest_and_search(auth: list[str], index: str, tmp_path, env: dict | None = None):
    src, first = corpus(tmp_path)
    ingest = cli("-v", *auth, "ingest", index, str(src), "--model", "splade-tiny", "--format", "json", env=env,
                 cwd=tmp_path)
    search = cli(*auth, "search", index, first["title"], "--format", "json", env=env)
    return ingest, search, first


def assert_works(ingest, search, first, n=12):
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    assert json.loads(ingest.stdout)["indexed"] == n
    assert search.returncode == 0, search.stderr[-2000:]
    assert json.loads(search.stdout)["hits"][0]["_id"] == str(first["_id"])


def fails_in_one_line(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert all(n in lines[0] for n in needles), lines[0]


def no_secrets(*procs):
    for p in procs:
        for s in SECRETS:
            assert s not in p.stdout and s not in p.stderr, "a credential was printed"


def drop(url, index):
    from bridge.config import ConnectionConfig
    from bridge.connection.client import connect

    connect(ConnectionConfig(urls=(url,))).indices.delete(index=index, ignore_unavailable=True)


def test_sigv4_requests_are_verified_by_the_proxy_and_a_wrong_secret_fails(node_url, tmp_path):
    verifier = SigV4Verifier(AKID, SECRET, "eu-west-1", "es")
    try:
        with AuthProxy(node_url, verify=verifier) as proxy:
            auth = ["--url", proxy.url, "--aws-sigv4", "--aws-region", "eu-west-1"]
            ingest, search, first = ingest_and_search(auth, "test-sigv4", tmp_path, env=aws_env())
            assert_works(ingest, search, first)
            assert proxy.refused == [] and verifier.verified == len(proxy.requests) >= 4
            forwarded = len(proxy.requests)
            wrong = cli(*auth, "status", env=aws_env(secret="not-the-secret"))
            debug = cli("--debug", *auth, "status", env=aws_env())  # botocore's and the clients' debug logs too
            region_from_env = cli("--url", proxy.url, "--aws-sigv4", "status",
                                  env={**aws_env(), "AWS_DEFAULT_REGION": "eu-west-1"})
            other_region = cli("--url", proxy.url, "--aws-sigv4", "--aws-region", "us-east-1", "status", env=aws_env())
            no_region = cli("--url", proxy.url, "--aws-sigv4", "status", env=aws_env())
        fails_in_one_line(wrong, "HTTP 403", "check the AWS credentials", "'es'", "'eu-west-1'")
        assert proxy.refused == [f"GET /: {MISMATCH}", "GET /: Credential should be scoped to a valid region/service "
                                 "(eu-west-1/es)"]  # the wrong secret, the wrong region
        assert verifier.verified > forwarded  # region_from_env's requests
        assert region_from_env.returncode == 0 and "opensearch" in region_from_env.stdout, region_from_env.stderr
        fails_in_one_line(other_region, "HTTP 403")
        fails_in_one_line(no_region, "needs a region", "AWS_REGION")
        assert debug.returncode == 0 and "DEBUG" in debug.stderr, debug.stderr[-2000:]
        no_secrets(ingest, search, wrong, debug, region_from_env, other_region)
    finally:
        drop(node_url, "test-sigv4")


@pytest.mark.parametrize("engine", ["opensearch-2.19", "elasticsearch-7.17"])
def test_api_key_on_opensearch_and_elasticsearch(engine, tmp_path):
    url = engine_url(engine)
    key_file, wrong_file = tmp_path / "key", tmp_path / "wrong"
    key_file.write_text(f"{KEY_ID}:{KEY}\n")
    wrong_file.write_text("id:nope\n")
    try:
        with AuthProxy(url, verify=api_key_check) as proxy:
            ingest, search, first = ingest_and_search(["--url", proxy.url, "--api-key-file", str(key_file)],
                                                      "test-api-key", tmp_path)
            encoded_from_env = cli("--url", proxy.url, "status", env={"BRIDGE_API_KEY": ENCODED_KEY})
            wrong = cli("--url", proxy.url, "--api-key-file", str(wrong_file), "status")
            debug = cli("--debug", "--url", proxy.url, "--api-key-file", str(key_file), "status")
        assert_works(ingest, search, first)
        assert proxy.refused == ["GET /: unable to authenticate with the API key"]  # only the wrong key's
        assert encoded_from_env.returncode == 0, encoded_from_env.stderr
        fails_in_one_line(wrong, "HTTP 403", "check the API key")
        assert debug.returncode == 0 and "DEBUG" in debug.stderr, debug.stderr[-2000:]
        no_secrets(ingest, search, encoded_from_env, wrong, debug)
    finally:
        drop(url, "test-api-key")


def test_cloud_id_reaches_the_deployment_over_verified_tls(tmp_path):
    """A cloud id is ``name:base64(host:port$es-uuid$kibana-uuid)`` and names ``https://es-uuid.host:port``;
    ``0.0.1`` with the id ``127`` names 127.0.0.1, where a TLS proxy with an API key fronts the ES 7 node."""
    url = engine_url("elasticsearch-7.17")
    cert, key = self_signed(tmp_path)
    key_file = tmp_path / "key"
    key_file.write_text(ENCODED_KEY)
    try:
        with AuthProxy(url, tls=(cert, key), verify=api_key_check) as proxy:
            port = proxy.url.rsplit(":", 1)[1]
            cloud_id = "my-deployment:" + base64.b64encode(f"0.0.1:{port}$127$kibana-id".encode()).decode()
            auth = ["--cloud-id", cloud_id, "--ca-certs", str(cert), "--api-key-file", str(key_file)]
            ingest, search, first = ingest_and_search(auth, "test-cloud-id", tmp_path)
            unverified = cli("--cloud-id", cloud_id, "--api-key-file", str(key_file), "--retry-for", "0", "status")
            both = cli("--cloud-id", cloud_id, "--url", proxy.url, "status")
            garbled = cli("--cloud-id", "my-deployment:not-base64!", "status")
            status = cli(*auth, "status")
        assert_works(ingest, search, first)
        assert "elasticsearch" in status.stdout, status.stderr
        fails_in_one_line(unverified, "CERTIFICATE_VERIFY_FAILED")
        fails_in_one_line(both, "URL or its cloud id, not both")
        fails_in_one_line(garbled, "cloud id is not of the form")
        no_secrets(ingest, search, unverified)
    finally:
        drop(url, "test-cloud-id")


def test_one_way_to_authenticate(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(ENCODED_KEY)
    both = cli("--url", "http://127.0.0.1:9", "--username", "u", "--api-key-file", str(key_file), "status")
    fails_in_one_line(both, "choose one way to authenticate, not a username and an API key")
