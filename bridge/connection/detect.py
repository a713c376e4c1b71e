"""Which engine and version answer at the configured URLs: one ``GET /`` over urllib, honouring TLS and
auth settings, retried under the connection's ``RetryPolicy``; errors name the attempts, never the
credentials."""
from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from ..config import ConnectionConfig, redact_url
from ..errors import AuthenticationFailed, BridgeError, ClusterRefused, ClusterUnreachable
from .auth import describe, detect_headers, sigv4_signer
from .engines import ENGINES, parse_version
from .failures import is_transient
from .retry import call


def detect(cfg: ConnectionConfig) -> tuple[str, tuple[int, int, int]]:
    """(engine, version) from ``GET /`` on the first reachable URL."""
    started, attempts = time.monotonic(), 0

    def once():
        nonlocal attempts
        attempts += 1
        return _detect_once(cfg)

    try:
        return call(once, cfg.retry, f"contacting {cfg.safe_urls}", is_transient)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise AuthenticationFailed(f"{cfg.safe_urls} answered HTTP {exc.code} ({exc.reason}): check "
                                       f"{describe(cfg)}", exc.code) from None
        raise ClusterRefused(f"{cfg.safe_urls} answered HTTP {exc.code} ({exc.reason})", exc.code) from None
    except BridgeError:  # refused, or misconfigured (no AWS credentials, ...): no retry, no rewording
        raise
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ClusterUnreachable(f"cannot reach the cluster at {cfg.safe_urls} ({reason}; {attempts} attempt(s) "
                                 f"over {time.monotonic() - started:.1f}s)") from None


def _detect_once(cfg: ConnectionConfig) -> tuple[str, tuple[int, int, int]]:
    context = ssl.create_default_context(cafile=cfg.ca_certs) if cfg.verify_certs else ssl._create_unverified_context()
    if cfg.client_cert:
        context.load_cert_chain(cfg.client_cert, cfg.client_key)
    last: Exception | None = None
    signer = sigv4_signer(cfg) if cfg.aws_sigv4 else None
    for url in cfg.urls:
        parts = urllib.parse.urlsplit(url)
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/") + "/"
        headers = {"accept": "application/json", **detect_headers(cfg, url if not signer else bare, signer)}
        try:
            req = urllib.request.Request(bare, headers=headers)
            with urllib.request.urlopen(req, timeout=cfg.timeout,
                                        context=context if url.startswith("https") else None) as resp:
                info = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise
            last = exc
            continue
        except Exception as exc:  # try the next URL; report the last failure
            last = exc
            continue
        version = info.get("version", {})
        engine = version.get("distribution", "elasticsearch")
        if engine not in ENGINES:
            raise ClusterRefused(f"{redact_url(url)} runs {engine!r}, which splade-bridge does not know")
        return engine, parse_version(version.get("number", "0.0.0"))
    raise last  # type: ignore[misc]
