"""How requests prove who sends them: basic auth, an API key (``Authorization: ApiKey``), or AWS SigV4
request signing (Amazon OpenSearch Service ``es``, OpenSearch Serverless ``aoss``; opensearch-py's signer,
botocore's credential chain). As arguments for the client libraries, and as headers for the single
``GET /`` of detection. Messages name the method, never the secret."""
from __future__ import annotations

import os
import urllib.parse
from base64 import b64encode
from typing import Callable

from ..config import ConnectionConfig
from ..errors import ConfigError, MissingExtra

Signer = Callable[..., dict]


def api_key_header(key: str) -> str:
    """``id:key`` is encoded; an already encoded key (what Elasticsearch's API returns as ``encoded``) is kept."""
    return "ApiKey " + (b64encode(key.encode()).decode() if ":" in key else key)


def basic_header(user: str, password: str | None) -> str:
    return "Basic " + b64encode(f"{user}:{password or ''}".encode()).decode()


def sigv4_signer(cfg: ConnectionConfig) -> Signer:
    """opensearch-py's urllib3 signer with the credentials botocore finds (environment, profile, SSO, role)."""
    try:
        import botocore.session
        from opensearchpy import Urllib3AWSV4SignerAuth
    except ImportError:
        raise MissingExtra("botocore (for --aws-sigv4)", "aws") from None
    from botocore.exceptions import BotoCoreError

    session = botocore.session.Session()
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # e.g. a profile named but not configured
        raise ConfigError(f"--aws-sigv4: {exc}") from None
    if credentials is None:
        raise ConfigError("--aws-sigv4: no AWS credentials found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                          "AWS_PROFILE, ~/.aws, or an instance/task role)")
    return Urllib3AWSV4SignerAuth(credentials, region(cfg, session), cfg.aws_service)


def region(cfg: ConnectionConfig, session=None) -> str:
    found = cfg.aws_region or os.environ.get("AWS_REGION") or (session and session.get_config_variable("region"))
    if not found:
        raise ConfigError("--aws-sigv4 needs a region: --aws-region, AWS_REGION or AWS_DEFAULT_REGION")
    return found


def describe(cfg: ConnectionConfig) -> str:
    """What to check when the cluster refuses us (no secret in it)."""
    if cfg.aws_sigv4:
        where = cfg.aws_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return (f"the AWS credentials (SigV4 for service {cfg.aws_service!r} in region "
                f"{repr(where) if where else 'of the AWS profile'})")
    if cfg.api_key:
        return "the API key"
    if cfg.username is not None:
        return "the username and password"
    return "the credentials (none were given)"


def client_kwargs(cfg: ConnectionConfig, engine: str, basic_name: str) -> dict:
    """Authentication arguments for the client; ``basic_name`` is the library's name for basic auth."""
    if cfg.aws_sigv4:
        if engine != "opensearch":
            raise ConfigError("--aws-sigv4 is for Amazon OpenSearch Service; this cluster is Elasticsearch")
        return {"http_auth": sigv4_signer(cfg)}
    if cfg.api_key:
        return {"headers": {"authorization": api_key_header(cfg.api_key)}}
    if cfg.username is not None:
        return {basic_name: (cfg.username, cfg.password or "")}
    return {}


def detect_headers(cfg: ConnectionConfig, url: str, signer: Signer | None = None) -> dict:
    """Headers that authenticate ``GET url`` (user:password in the URL itself counts as basic auth)."""
    if cfg.aws_sigv4:
        return dict((signer or sigv4_signer(cfg))("GET", url, None))
    if cfg.api_key:
        return {"authorization": api_key_header(cfg.api_key)}
    parts = urllib.parse.urlsplit(url)
    user, password = (cfg.username, cfg.password) if cfg.username is not None else (parts.username, parts.password)
    if user is None:
        return {}
    return {"authorization": basic_header(urllib.parse.unquote(user), urllib.parse.unquote(password or ""))}
