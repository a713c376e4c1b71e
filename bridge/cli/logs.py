"""Where the command line's logs go: stderr, as text or as one JSON object per line (``--log-format json``,
for log shippers); ``--quiet`` keeps errors and results only. The only place handlers are set."""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

import click

TEXT = "%(levelname)s %(name)s: %(message)s"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    """``{"time", "level", "logger", "message", ...}``: fields passed as ``extra=`` are kept."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


_tqdm_disabled = False  # whether configure set TQDM_DISABLE (the user's own stays)
_handler: logging.Handler | None = None  # the one this module set, replaced when options come after the command


def configure(level: int, fmt: str = "text", quiet: bool = False) -> None:
    global _handler, _tqdm_disabled
    root = logging.getLogger()
    if _handler is not None and _handler in root.handlers:
        root.removeHandler(_handler)
    # like basicConfig: a process that already has handlers (an embedding program, pytest) keeps its own
    if not root.handlers:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT))
        root.addHandler(_handler)
        root.setLevel(logging.ERROR if quiet else level)
    if quiet or fmt == "json":  # progress bars are neither quiet nor JSON
        _tqdm_disabled = _tqdm_disabled or "TQDM_DISABLE" not in os.environ
        os.environ["TQDM_DISABLE"] = "1"
    elif _tqdm_disabled:  # an option after the subcommand turned them back on
        os.environ.pop("TQDM_DISABLE", None)
        _tqdm_disabled = False


def json_logging() -> bool:
    return any(isinstance(h.formatter, JsonLines) for h in logging.getLogger().handlers)


def say(text: str, level: int = logging.INFO) -> None:
    """A status line for people on stderr (a JSON record with --log-format json; nothing with --quiet unless
    it is an error)."""
    if json_logging():
        logging.getLogger("bridge.cli").handle(logging.LogRecord("bridge.cli", level, __file__, 0, text, None, None))
    elif level >= logging.ERROR or logging.getLogger().level < logging.ERROR:
        click.echo(text, err=True)
