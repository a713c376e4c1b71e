"""What the command modules share: settings from the global options, model loading, output, and the
index-creation and ingest steps that several commands run."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click


class Settings:
    """Connection and model options shared by every command (``ctx.obj``)."""

    def __init__(self, **kw):
        self.kw = kw

    def connection(self):
        from .config import ConnectionConfig

        kw = self.kw
        urls = tuple(u.strip() for u in (kw["url"] or "").split(",") if u.strip()) or None
        password = None
        if kw["password_file"]:
            with open(kw["password_file"]) as f:
                password = f.read().strip()
        return ConnectionConfig.from_env(urls=urls, username=kw["username"], password=password,
                                         ca_certs=kw["ca_certs"], verify_certs=not kw["insecure"],
                                         client_cert=kw["client_cert"], client_key=kw["client_key"],
                                         timeout=kw["timeout"], retry=self.retry_policy())

    def retry_policy(self, **overrides):
        from .config import RetryPolicy

        return RetryPolicy(retry_for=self.kw["retry_for"], **overrides)

    def client(self):
        from .client import make_client

        return make_client(self.connection(), self.kw["engine"])


def load_encoder(model: str | None, meta: dict | None = None, **overrides):
    from .config import EncoderConfig
    from .encoder import SpladeEncoder
    from .model_store import DEFAULT_MODEL

    stamp = (meta or {}).get("model", {})
    ref = model or stamp.get("model") or DEFAULT_MODEL
    extra = {k: stamp[k] for k in ("pooling", "activation") if k in stamp}
    extra.update(long_document_options(stamp.get("long_documents")))
    return SpladeEncoder(EncoderConfig(model=ref, **{**extra, **overrides}))


def long_document_options(spec: str | None) -> dict:
    """Encoder options from an index stamp's ``long_documents`` (``window:512:64:64`` / ``truncate:512``)."""
    if not spec:
        return {}
    kind, *numbers = spec.split(":")
    if kind == "truncate":
        return {"long_documents": "truncate"}
    if kind == "window" and len(numbers) == 3:
        return {"long_documents": "window", "window_overlap": int(numbers[1]), "max_windows": int(numbers[2])}
    raise click.ClickException(f"unknown long_documents stamp {spec!r} (written by a newer splade-bridge?)")


def emit(fmt: str, data, text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False) if fmt == "json" else text)


FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="text for people, json for machines.")
MODEL = click.option("--model", envvar="BRIDGE_MODEL", default=None,
                     help="Hub id, local directory, or 'splade-tiny' (offline). Default: the index's "
                          "stamped model, else rasyosef/splade-small.")


def create_index(client, name, encoder, text_fields, vector_field, exclude_vector, shards, replicas,
                 top_k, max_ratio, alpha_mass, abs_value, quantize, scale, field_type="rank_features") -> dict:
    from . import mapping
    from .config import PruneConfig, QuantConfig

    cfg = mapping.IndexConfig(vector_field=vector_field, text_fields=tuple(text_fields),
                              exclude_vector_from_source=exclude_vector, shards=shards, replicas=replicas,
                              prune=PruneConfig(top_k, max_ratio, alpha_mass, abs_value),
                              quant=QuantConfig(kind=quantize, scale=scale), field_type=field_type,
                              engine_prune=engine_prune(client, field_type))
    body = mapping.build(cfg, encoder.stamp)
    client.indices.create(index=name, body=body)
    return body["mappings"]["_meta"][mapping.META_KEY]


def engine_prune(client, field_type: str) -> bool | None:
    """sparse_vector fields on Elasticsearch >= 8.19 prune query tokens by default: we prune ourselves."""
    from .backends import capabilities, engine_of, parse_version

    if field_type != "sparse_vector":
        return None
    caps = capabilities(engine_of(client), parse_version(client.info()["version"]["number"]))
    if field_type not in caps["vector_field_types"]:
        raise click.ClickException(f"{caps['engine']} {caps['version']} has no {field_type} field type")
    return False if caps["sparse_vector_default_prune"] else None


def ingest_file(client, name, source, model, create, text_fields, dead_letter, cfg_kw, encoder_kw=None):
    """Create the index when asked and missing, then stream SOURCE into it with a progress bar."""
    from tqdm import tqdm

    from . import ingest, mapping, records
    from .search import check_stamp

    encoder_kw = encoder_kw or {}
    if not client.indices.exists(index=name):
        if not create:
            raise click.ClickException(f"index {name!r} does not exist (use --create)")
        encoder = load_encoder(model, **encoder_kw)
        meta = create_index(client, name, encoder, text_fields, "splade", False, 1, None,
                             None, None, None, None, "float", 100.0)
    else:
        mappings = client.indices.get_mapping(index=name)
        _, meta = mapping.read_meta(mappings)
        mapping.vector_field_type(mappings, meta["vector_field"])
        stamped = long_document_options(meta.get("model", {}).get("long_documents"))
        if encoder_kw and stamped.get("long_documents") != encoder_kw["long_documents"]:
            raise click.ClickException(f"index {name!r} encodes long documents as "
                                       f"{meta['model'].get('long_documents')!r}; --truncate applies when "
                                       "the index is created")
        encoder = load_encoder(model, meta)
        check_stamp(name, meta, encoder.stamp)
    if dead_letter is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        dead_letter = f"{name}-deadletter-{stamp}.jsonl"
    total = None
    if source != "-":
        with open(source, "rb") as f:
            total = sum(1 for line in f if line.strip())
    cfg = ingest.IngestConfig(text_fields=tuple(meta.get("text_fields", text_fields)), **cfg_kw)
    with records.open_lines(source) as lines, tqdm(total=total, unit="doc", file=sys.stderr,
                                                 desc=f"ingest {name}", dynamic_ncols=True) as bar:
        return ingest.run(client, encoder, name, records.read_jsonl(lines), meta, cfg,
                          dead_letter=dead_letter, progress=bar.update)
