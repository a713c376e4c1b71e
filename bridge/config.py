"""Configuration as frozen, validated dataclasses."""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from .errors import ConfigError

DEFAULT_MODEL = "rasyosef/splade-small"
BACKENDS = ("auto", "torch", "onnx", "openvino")  # where the transformer runs (bridge/runtime.py)
# the arithmetic of the matrix multiplies; below fp32 is opt-in, and which backend runs which is runtime.SUPPORTED
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
# documents longer than the model's input: overlapping windows max-pooled into one vector, cut at the limit, or
# one nested passage per window, scored by its best passage (MaxP)
LONG_DOCUMENTS = ("window", "truncate", "passages")
POOLINGS = ("max", "sum")
ACTIVATIONS = ("log1p_relu", "relu", "log1p_log1p_relu")
DEFAULT_POOLING, DEFAULT_ACTIVATION = "max", "log1p_relu"


def check_options(pooling: str | None, activation: str | None) -> None:
    if pooling is not None and pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if activation is not None and activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


@dataclass(frozen=True)
class EncoderConfig:
    model: str = DEFAULT_MODEL
    query_model: str | None = None  # asymmetric models: a separate query checkpoint
    # None: what the checkpoint's 1_SpladePooling/config.json says (sentence-transformers format), else
    # max / log1p_relu
    pooling: str | None = None
    activation: str | None = None
    doc_max_length: int = 512
    query_max_length: int = 64
    doc_prompt: str = ""
    query_prompt: str = ""
    device: str = "auto"
    backend: str = "auto"  # auto: the fastest installed backend that runs the precision (runtime.choose)
    precision: str = "fp32"
    # fp32 on a CPU that multiplies bf16 natively: find the non-zero terms with a bf16 multiply, compute them in
    # fp32 (the same vectors, faster documents: pooling.pool_hidden's screen)
    bf16_screen: bool = True
    batch_tokens: int = 8192  # padded tokens per forward pass
    max_batch: int = 64
    threads: int | None = None
    long_documents: str = "passages"  # LONG_DOCUMENTS (EVALUATION.md: the mode within 0.5% of truncation everywhere)
    window_overlap: int = 64  # tokens shared by consecutive windows
    max_windows: int = 64     # windows per document at most (~28k tokens at 512); the rest is not encoded

    def __post_init__(self) -> None:
        check_options(self.pooling, self.activation)
        if self.long_documents not in LONG_DOCUMENTS:
            raise ConfigError(f"long_documents must be one of {LONG_DOCUMENTS}, got {self.long_documents!r}")
        if not 0 <= self.window_overlap <= self.doc_max_length // 2:
            raise ConfigError("window_overlap must be in [0, doc_max_length / 2]")
        if self.max_windows < 1:
            raise ConfigError("max_windows must be >= 1")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("doc_max_length", "query_max_length", "batch_tokens", "max_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads must be >= 1")


@dataclass(frozen=True)
class PruneConfig:
    """Which weights of a vector to keep; every set option applies, in the order listed."""

    top_k: int | None = None          # keep the k largest (per model window: a long document of n keeps k x n)
    max_ratio: float | None = None    # keep w >= max_ratio * max(w)
    alpha_mass: float | None = None   # keep the largest weights holding this fraction of the total mass
    abs_value: float | None = None    # keep w >= abs_value

    def __post_init__(self) -> None:
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError("top_k must be >= 1")
        for name in ("max_ratio", "alpha_mass"):
            v = getattr(self, name)
            if v is not None and not 0.0 < v <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {v}")
        if self.abs_value is not None and self.abs_value < 0:
            raise ConfigError("abs_value must be >= 0")

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


# Pruning defaults, picked by the rule in BENCHMARKS.md (benchmarks/pruning.py): on SciFact, Cranfield and MEDLINE
# alike, nDCG@10 within 0.5% of no pruning (SPLADE and hybrid) and 95% of the unpruned top 10 kept; then the fewest
# postings read. (128 / 32 had won a sweep on nDCG@10 alone, and lost up to 1.2% on collections it was not tuned on.)
DEFAULT_DOC_TOP_K = 320
DEFAULT_QUERY_TOP_K = 40


@dataclass(frozen=True)
class QuantConfig:
    """How weights are stored: ``float`` as-is, or ``int`` = round(w * scale) (cluster scores are then
    divided back by the query side so they still equal the SPLADE dot product)."""

    kind: str = "float"
    scale: float = 100.0
    floor: float = 0.0  # drop weights below this after quantization (never below Lucene's MIN_NORMAL)

    def __post_init__(self) -> None:
        if self.kind not in ("float", "int"):
            raise ConfigError(f"quantization kind must be 'float' or 'int', got {self.kind!r}")
        if not self.scale > 0:
            raise ConfigError("scale must be > 0")
        if self.floor < 0:
            raise ConfigError("floor must be >= 0")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "scale": self.scale if self.kind == "int" else 1.0, "floor": self.floor}

    @classmethod
    def from_meta(cls, meta: dict) -> "QuantConfig":
        kind = meta.get("kind", "float")
        return cls(kind=kind, scale=float(meta.get("scale") or 1.0) if kind == "int" else 100.0,
                   floor=float(meta.get("floor", 0.0)))


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying when the cluster is down, slow or throttling (see ``describe``)."""

    retry_for: float = 60.0       # seconds of retrying one request (or the first contact) before giving up
    initial_backoff: float = 0.5  # first wait; doubles per attempt, with jitter
    max_backoff: float = 30.0
    max_retries: int = 8          # resends of a document the cluster rejected with 429 (or 503)

    def __post_init__(self) -> None:
        if self.retry_for < 0 or self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff:
            raise ConfigError("retry_for must be >= 0 and 0 < initial_backoff <= max_backoff")
        if self.max_retries < 0:
            raise ConfigError("max_retries must be >= 0")

    def describe(self, limit: str | None = None) -> str:
        """The policy in words (``limit`` replaces the number of seconds, e.g. by a flag's metavar)."""
        limit = limit or f"{self.retry_for:g}s"
        return (f"connection errors, timeouts and HTTP 502/503/504 are retried with exponential backoff "
                f"({self.initial_backoff:g}s doubling, at most {self.max_backoff:g}s apart) for up to "
                f"{limit} per request; documents rejected with HTTP 429/503 are resent up to "
                f"{self.max_retries} times (ingest --max-retries) with the same backoff")


DEFAULT_URLS = ("http://127.0.0.1:9200",)
AWS_SERVICES = ("es", "aoss")


def cloud_id_url(cloud_id: str) -> str:
    """The HTTPS URL an Elastic Cloud id names: ``name:base64(host[:port]$es-uuid$kibana-uuid)``."""
    try:
        _, _, encoded = cloud_id.rpartition(":")
        host, es_uuid = base64.b64decode(encoded, validate=True).decode().split("$")[:2]
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ConfigError("the cloud id is not of the form name:base64(host$es-uuid$kibana-uuid) (copy it from "
                          "the deployment's page)") from None
    host, _, port = host.partition(":")
    if not host or not es_uuid:
        raise ConfigError("the cloud id names no host or no Elasticsearch id")
    return f"https://{es_uuid}.{host}:{port or 443}"


@dataclass(frozen=True)
class ConnectionConfig:
    """How to reach a cluster. Secrets are never part of ``repr``."""

    urls: tuple[str, ...] = DEFAULT_URLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 30.0
    max_retries: int = 3  # the transport's immediate retries on another node (multi-URL clusters)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_key: str | None = field(default=None, repr=False)  # "id:key", or its base64 as Elasticsearch prints it
    aws_sigv4: bool = False          # sign requests (Amazon OpenSearch Service / Serverless); botocore's credentials
    aws_region: str | None = None    # default: $AWS_REGION, then botocore's (AWS_DEFAULT_REGION, ~/.aws/config)
    aws_service: str = "es"          # "es" (managed domains) or "aoss" (OpenSearch Serverless)
    cloud_id: str | None = None      # Elastic Cloud: replaces the URLs

    def __post_init__(self) -> None:
        if self.cloud_id:
            if self.urls != DEFAULT_URLS:
                raise ConfigError("give the cluster's URL or its cloud id, not both")
            object.__setattr__(self, "urls", (cloud_id_url(self.cloud_id),))
        methods = [name for name, on in (("a username", self.username is not None), ("an API key", bool(self.api_key)),
                                         ("AWS SigV4", self.aws_sigv4)) if on]
        if len(methods) > 1:
            raise ConfigError(f"choose one way to authenticate, not {' and '.join(methods)}")
        if self.aws_service not in AWS_SERVICES:
            raise ConfigError(f"aws_service must be one of {AWS_SERVICES}, got {self.aws_service!r}")
        if not self.urls:
            raise ConfigError("at least one cluster URL is needed")
        for u in self.urls:
            if not u.startswith(("http://", "https://")):
                raise ConfigError(f"cluster URL must start with http:// or https://, got {u!r}")
        if self.timeout <= 0:
            raise ConfigError("timeout must be > 0")

    @property
    def safe_urls(self) -> str:
        """The URLs for messages: any ``user:password@`` part removed."""
        return ", ".join(redact_url(u) for u in self.urls)

    @classmethod
    def from_env(cls, **overrides) -> "ConnectionConfig":
        env = os.environ
        values = {
            "urls": tuple(u.strip() for u in env.get("BRIDGE_URL", DEFAULT_URLS[0]).split(",") if u.strip()),
            "username": env.get("BRIDGE_USERNAME") or None,
            "password": secret_from_env("BRIDGE_PASSWORD"),
            "api_key": secret_from_env("BRIDGE_API_KEY"),
            "ca_certs": env.get("BRIDGE_CA_CERTS") or None,
            "aws_sigv4": env.get("BRIDGE_AWS_SIGV4", "").lower() in ("1", "true", "yes"),
            "aws_region": env.get("BRIDGE_AWS_REGION") or None,
            "aws_service": env.get("BRIDGE_AWS_SERVICE") or "es",
            "cloud_id": env.get("BRIDGE_CLOUD_ID") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def secret_from_env(name: str) -> str | None:
    """``$NAME``, else the first line of the file ``$NAME_FILE`` (secrets never come from the command line)."""
    value = os.environ.get(name)
    if not value and os.environ.get(f"{name}_FILE"):
        with open(os.environ[f"{name}_FILE"]) as f:
            value = f.read().strip()
    return value or None


def redact_url(url: str) -> str:
    """``https://user:secret@host:9200`` -> ``https://***@host:9200`` (messages never carry credentials)."""
    scheme, sep, rest = url.partition("://")
    host, at, tail = rest.rpartition("@")
    if not sep or not at:
        return url
    return f"{scheme}://***@{tail}"
