"""Kafka client properties as Kafka tools take them: a file of ``key=value`` lines (Java properties style:
``#``/``!`` comments, ``=`` or ``:`` between key and value; librdkafka's names — ``bootstrap.servers``,
``security.protocol``, ``sasl.mechanism``, ``sasl.username``, ``sasl.password``, ``ssl.ca.location``, ...),
applied to the worker's consumer and its dead-letter producer alike. A value ``${env:NAME}`` is read from the
environment, so the file need not hold the secret either. Secrets are never taken from the command line
(``refuse_secret``) and never logged."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from ..api import ConfigError

_SECRET = re.compile(r"(password|secret|jaas|token|credential|\.key$|key\.pem|private)", re.IGNORECASE)
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def is_secret(key: str) -> bool:
    return bool(_SECRET.search(key))


def parse(text: str, source: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The properties of ``text`` (``source`` names it in errors), ``${env:NAME}`` replaced from ``environ``."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if not match:
            raise ConfigError(f"{source} line {number}: expected key=value")
        key, value = match.group(1), match.group(2).strip()

        def env(m: re.Match) -> str:
            if m.group(1) not in environ:
                raise ConfigError(f"{source} line {number}: {key} names ${{env:{m.group(1)}}}, which is not set")
            return environ[m.group(1)]
        out[key] = _ENV.sub(env, value)
    return out


def read(path: str | Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The properties of the file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the Kafka client configuration {path}: {exc.strerror}") from None
    return parse(text, str(path), environ)


def refuse_secret(key: str, flag: str) -> None:
    """A secret given on the command line (visible to every user in ``ps``) is refused."""
    if is_secret(key):
        raise ConfigError(f"{key} is a secret: put it in a --kafka-config file (or ${{env:NAME}} there), "
                          f"not in {flag} on the command line")
