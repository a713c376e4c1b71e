"""Options shared by the commands: the connection options (accepted before or after the subcommand),
``--model``, ``--format``, and the ``Settings`` they fill."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click
from click.core import ParameterSource

from ..api import (BACKENDS, DEFAULT_DOC_TOP_K, DEFAULT_FUSION, DEFAULT_MODEL, ENGINES, LONG_DOCUMENTS, PRECISIONS,
                   ConnectionConfig, EncoderConfig, PruneConfig, QuantConfig, RetryPolicy, connect)
from .logs import say


class Settings:
    """Connection options from the group and the subcommand (``ctx.obj``); the subcommand's win."""

    def __init__(self):
        self.values: dict = {}   # connection options
        self.output: dict = {}   # -q, -v, --debug, --log-format (anywhere.py)
        self.model: dict = {}    # --model, --backend, --precision written before the subcommand (anywhere.py)

    def connection(self) -> ConnectionConfig:
        v = self.values
        urls = {"urls": tuple(u.strip() for u in v["url"].split(",") if u.strip())} if v.get("url") else {}
        password = _secret(v.get("password_file"), "BRIDGE_PASSWORD")
        api_key = _secret(v.get("api_key_file"), "BRIDGE_API_KEY")
        return ConnectionConfig(**urls, username=v.get("username") or None, password=password,
                                ca_certs=v.get("ca_certs"), verify_certs=not v.get("insecure"),
                                client_cert=v.get("client_cert"), client_key=v.get("client_key"),
                                timeout=v.get("timeout") or 30.0, retry=self.retry_policy(), api_key=api_key,
                                aws_sigv4=bool(v.get("aws_sigv4")), aws_region=v.get("aws_region") or None,
                                aws_service=v.get("aws_service") or "es", cloud_id=v.get("cloud_id") or None)

    def retry_policy(self, **overrides) -> RetryPolicy:
        retry_for = self.values.get("retry_for")
        return RetryPolicy(retry_for=60.0 if retry_for is None else retry_for, **overrides)

    @property
    def url_given(self) -> bool:
        return bool(self.values.get("url"))

    def client(self):
        return connect(config=self.connection(), engine=self.values.get("engine"))


def _secret(path: str | None, variable: str) -> str | None:
    """The content of a ``--*-file`` option's file, else ``$variable`` (a secret is never a flag's value)."""
    value = None
    if path:
        with open(path) as f:
            value = f.read().strip()
    return value or os.environ.get(variable) or None


_CONNECTION = (
    (("--url",), dict(envvar="BRIDGE_URL", help="Cluster URL(s), comma-separated [default http://127.0.0.1:9200].")),
    (("--username",), dict(envvar="BRIDGE_USERNAME", help="Basic-auth user.")),
    (("--password-file",), dict(envvar="BRIDGE_PASSWORD_FILE", type=click.Path(dir_okay=False),
                                help="File holding the password (or env BRIDGE_PASSWORD). Never printed.")),
    (("--api-key-file",), dict(envvar="BRIDGE_API_KEY_FILE", type=click.Path(dir_okay=False),
                               help="File holding an API key, id:key or its base64 (or env BRIDGE_API_KEY); sent "
                                    "as 'Authorization: ApiKey'. Never printed.")),
    (("--aws-sigv4",), dict(is_flag=True, default=False, envvar="BRIDGE_AWS_SIGV4",
                            help="Sign requests with AWS SigV4 (Amazon OpenSearch Service); credentials from the "
                                 "standard AWS chain (env, profile, role). Needs the [aws] extra.")),
    (("--aws-region",), dict(envvar="BRIDGE_AWS_REGION", help="Region for --aws-sigv4 [default: AWS_REGION, then "
                                                              "AWS_DEFAULT_REGION or the profile's].")),
    (("--aws-service",), dict(envvar="BRIDGE_AWS_SERVICE", type=click.Choice(("es", "aoss")), default="es",
                              show_default=True, help="es: managed domains; aoss: OpenSearch Serverless.")),
    (("--cloud-id",), dict(envvar="BRIDGE_CLOUD_ID", help="Elastic Cloud deployment id (instead of --url).")),
    (("--ca-certs",), dict(envvar="BRIDGE_CA_CERTS", help="CA bundle for TLS verification.")),
    (("--client-cert",), dict(envvar="BRIDGE_CLIENT_CERT", help="TLS client certificate (PEM).")),
    (("--client-key",), dict(envvar="BRIDGE_CLIENT_KEY", help="TLS client key (PEM).")),
    (("--insecure",), dict(is_flag=True, default=False, envvar="BRIDGE_INSECURE",
                           help="Disable TLS certificate verification (warns).")),
    (("--timeout",), dict(type=float, default=30.0, show_default=True, envvar="BRIDGE_TIMEOUT",
                          help="Request timeout in seconds.")),
    (("--retry-for",), dict(type=float, default=60.0, show_default=True, metavar="SECONDS", envvar="BRIDGE_RETRY_FOR",
                            help=f"Retry policy: {RetryPolicy().describe(limit='SECONDS')}. 0 = no retries.")),
    (("--engine",), dict(envvar="BRIDGE_ENGINE", type=click.Choice(ENGINES),
                         help="The cluster's engine; skips detection from GET / (default: detected).")),
)

CONNECTION_FLAGS = tuple(decls[0] for decls, _ in _CONNECTION)


def _store(ctx: click.Context, param: click.Parameter, value) -> None:
    settings = ctx.ensure_object(Settings)
    on_group = ctx.parent is None
    if on_group or ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        settings.values[param.name] = value


def connection_options(on_group: bool = False):
    """The connection options, for the group (read from BRIDGE_* env vars, with defaults) or for a
    subcommand (only what is written after it counts, overriding the group's)."""
    def decorate(f):
        for decls, kw in reversed(_CONNECTION):
            kw = dict(kw)
            if not on_group:  # the environment is read by the group; here only the command line counts
                kw.pop("show_default", None)
                kw["default"] = None
                kw["allow_from_autoenv"] = False
            f = click.option(*decls, expose_value=False, callback=_store, show_envvar=True, **kw)(f)
        return f
    return decorate


def emit(fmt: str, data, text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False) if fmt == "json" else text)


FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="text for people, json for machines.")
def model_option(default: str, value: str | None = None, what: str = "Model"):
    """``--model``: one option, one environment variable (``BRIDGE_MODEL``); ``default`` says in words what
    the command uses without it."""
    return click.option("--model", envvar="BRIDGE_MODEL", default=value,
                        help=f"{what}: a hub id, a local directory, or 'splade-tiny' (offline) [default: {default}].")


MODEL = model_option(f"the index's stamped model, else {DEFAULT_MODEL}")
BACKEND = click.option("--backend", envvar="BRIDGE_BACKEND", type=click.Choice(BACKENDS), default=None,
                       help="Where the model's transformer runs: openvino or onnx (ONNX Runtime), each its own extra, "
                            "on a graph exported from the same weights on first use and cached; torch; or auto "
                            "[default]: the first installed of onnx, openvino, torch that runs the precision (torch "
                            "on a GPU). At fp32 they agree within 1e-4.")
PRECISION = click.option("--precision", envvar="BRIDGE_PRECISION", type=click.Choice(PRECISIONS), default=None,
                         help="Arithmetic of the model's matrix multiplies [default: the index's stamp, else fp32]. "
                              "Below fp32 is opt-in and changes results a little (BENCHMARKS.md): bf16 (CPUs with "
                              "AVX512-BF16/AMX, or a GPU), fp16 (GPU), int8 (onnx). Recorded in the index stamp; "
                              "queries must use the index's.")


def encoding(backend: str | None, precision: str | None) -> dict:
    """``EncoderConfig`` options from --backend/--precision: only the given ones, so an index's stamp fills in
    the rest."""
    return {k: v for k, v in (("backend", backend), ("precision", precision)) if v}


def long_documents_options(f):
    """``--long-documents`` (and ``--truncate``, its old spelling, hidden): read with ``long_documents``."""
    f = click.option("--truncate", is_flag=True, hidden=True, help="Old spelling of --long-documents truncate.")(f)
    return click.option(
        "--long-documents", "long_documents_mode", type=click.Choice(LONG_DOCUMENTS), default=None,
        help="How a document longer than the model's input (512 tokens) is encoded: passages (one nested passage "
             "per window, a document scored by its best passage), window (overlapping windows max-pooled into one "
             "vector) or truncate (cut at the limit) "
             f"[default: the index's stamp, else {EncoderConfig.long_documents}]. "
             "Chosen when the index is created and recorded in its stamp.")(f)


def long_documents(mode: str | None, truncate: bool) -> str | None:
    """The long-document mode asked for (None: the index's, or the default)."""
    if not truncate:
        return mode
    if mode not in (None, "truncate"):
        raise click.UsageError(f"--truncate is the old spelling of --long-documents truncate, not {mode}")
    say("warning: --truncate is now --long-documents truncate; the old name goes in 0.4", logging.WARNING)
    return "truncate"


def name_environment_variables(group: click.Group, prefix: str = "BRIDGE") -> None:
    """Give every option without one an environment variable named after the command path and the flag,
    ``BRIDGE_<COMMAND>_<FLAG>`` (``search --size`` -> ``BRIDGE_SEARCH_SIZE``), shown in ``--help``."""
    for param in group.params:
        _name(param, prefix)
    for name, command in group.commands.items():
        path = f"{prefix}_{name.upper().replace('-', '_')}"
        if isinstance(command, click.Group):
            name_environment_variables(command, path)
        else:
            for param in command.params:
                _name(param, path)


def _name(param: click.Parameter, path: str) -> None:
    if not isinstance(param, click.Option) or param.is_eager or not param.allow_from_autoenv:
        return
    if param.envvar is None:
        flag = max(param.opts, key=len).lstrip("-").upper().replace("-", "_")
        param.envvar = f"{path}_{flag}"
    param.show_envvar = True

KAFKA = click.option("--kafka", "bootstrap", default=None,
                     help="Kafka bootstrap servers, e.g. 127.0.0.1:9092 [default: bootstrap.servers of --kafka-config].")
KAFKA_CONFIG = click.option("--kafka-config", "kafka_config", type=click.Path(dir_okay=False), default=None,
                            help="Kafka client properties file (security.protocol, sasl.*, ssl.*, ...; ${env:NAME} "
                                 "values read from the environment); secrets go here.")
SLICE = click.option("--slice", "part", default="0/1", show_default=True, metavar="I/N",
                     help="Do part I of N: N processes (on N machines) given 0/N ... N-1/N share the work.")
DRY_RUN = click.option("--dry-run", is_flag=True, help="Show what would be done (the plan, or what would be "
                                                       "written); change nothing.")
def window_option(default: int, why: str = ""):
    """``--window``: documents encoded together, with the command's default and why it differs."""
    return click.option("--window", default=default, show_default=True, type=click.IntRange(1),
                        help="Documents encoded together, sorted by length inside (larger: less padding, coarser "
                             "progress)" + (f"; {why}." if why else "."))


CHUNK_SIZE = click.option("--chunk-size", default=500, show_default=True, type=click.IntRange(1),
                          help="Documents per bulk request.")
MAX_RETRIES = click.option("--max-retries", default=8, show_default=True,
                           help="Resends of a document the cluster rejected one by one with 429 (write queue full) "
                                "or 503 (shard not yet recovered), with --retry-for's backoff.")
HYBRID_METHOD = click.option("--hybrid-method", type=click.Choice(["rrf", "norm"]), default=DEFAULT_FUSION,
                             show_default=True,
                             help="How hybrid fuses BM25 and SPLADE: norm, the sum of min-max normalised scores "
                                  "(better than RRF on all three collections of EVALUATION.md), or rrf, reciprocal "
                                  "rank fusion.")


def query_top_k_option(default: int | None):
    return click.option("--query-top-k", type=click.IntRange(0), default=default, show_default=default is not None,
                        help="Query pruning: keep the k largest query weights (0 or unset keeps all; fewer postings "
                             "read, see BENCHMARKS.md).")


def renamed_option(old: str, new: str, **kw):
    """A hidden option under its old name (``old``) and its old variable, accepted with a warning for one
    release; ``renamed_value`` picks between it and the new option."""
    def warn(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            where = f" ({param.envvar})" if ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT else ""
            say(f"warning: {old}{where} is now {new}; the old name goes in 0.4", logging.WARNING)
        return value
    return click.option(old, hidden=True, default=None, callback=warn, **kw)


_RANK = {ParameterSource.COMMANDLINE: 2, ParameterSource.ENVIRONMENT: 1}


def renamed_value(old: str, old_value, new: str, new_value):
    """The value of a renamed option: the command line beats the environment beats the default, and at a tie
    the new name wins; both names on the command line are an error."""
    ctx = click.get_current_context()
    if old_value is None:
        return new_value
    old_rank = _RANK.get(ctx.get_parameter_source(old.lstrip("-").replace("-", "_")), 0)
    new_rank = _RANK.get(ctx.get_parameter_source(new.lstrip("-").replace("-", "_")), 0)
    if old_rank == new_rank == 2:
        raise click.UsageError(f"{old} is the old name of {new}: give {new} only")
    return old_value if old_rank > new_rank else new_value


DEAD_LETTER = click.option("--dead-letter", type=click.Path(dir_okay=False), default=None,
                           help="JSONL of rejected records (default: ./<index>-deadletter-<UTC time>.jsonl, "
                                "written only when something is rejected).")
WRITE = click.option("--write", type=click.Choice(["index", "update", "upsert"]), default="index", show_default=True,
                     help="index: whole documents. On an enabled index (whose documents other writers own): update "
                          "= encode the document's stored text (records need only the id), upsert = merge the "
                          "record into the stored document (Kafka Connect's upsert) and encode the merged text; "
                          "both write only if the document did not change since it was read.")


# how an index stores vectors: pruning and quantization (index create, index enable)
STORAGE = [
    click.option("--top-k", type=click.IntRange(0), default=DEFAULT_DOC_TOP_K, show_default=True,
                 help="Document pruning: keep the k largest weights per model window (a long document of n "
                      "windows keeps k x n; 0 keeps all; the default is chosen by the pruning rule in "
                      "BENCHMARKS.md)."),
    click.option("--max-ratio", type=float, default=None, help="Pruning: keep w >= ratio * max(w)."),
    click.option("--alpha-mass", type=float, default=None, help="Pruning: keep this fraction of mass."),
    click.option("--abs-value", type=float, default=None, help="Pruning: keep w >= value."),
    click.option("--quantize", type=click.Choice(["float", "int"]), default="float", show_default=True),
    click.option("--scale", type=float, default=100.0, show_default=True, help="Scale for --quantize int."),
]


def storage(top_k, max_ratio, alpha_mass, abs_value, quantize, scale) -> dict:
    """``IndexConfig`` pruning and quantization from the ``STORAGE`` options."""
    return {"prune": PruneConfig(top_k or None, max_ratio, alpha_mass, abs_value),
            "quant": QuantConfig(kind=quantize, scale=scale)}


def applied(options: list):
    """A decorator applying ``options`` (click options) in the order listed, as the help shows them."""
    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return decorate


def jvm_options(what: str, java_default: str) -> list:
    """``--heap`` and ``--java-home`` of a local process ``up`` runs on a JVM (a node, the broker)."""
    return [click.option("--heap", default="512m", show_default=True, help="JVM heap (-Xms/-Xmx)."),
            click.option("--java-home", type=click.Path(path_type=Path), default=None,
                         help=f"JDK to run the {what} with (default: {java_default}).")]
