"""How the command line ends: one table from failures to exit codes, one-line ``error:`` messages on
stderr (tracebacks only with ``--debug``)."""
from __future__ import annotations

import logging
import os
import sys

import click

from ..api import BridgeError, as_bridge_error
from .logs import configure, json_logging

# failure -> (exit code, fixed message or None for the error's own); first match wins. Exit codes:
# 0 success, 1 partial failure (raised as SystemExit by the command), 2 failure, 3 node not running,
# 130 interrupted.
EXIT_CODES: tuple[tuple[type[BaseException], int, str | None], ...] = (
    (click.exceptions.Abort, 130, "aborted"),
    (KeyboardInterrupt, 130, "interrupted"),
    (click.ClickException, 2, None),
    (BridgeError, 2, None),
    (Exception, 2, None),
)


def run(group: click.Group, prog_name: str = "splade-bridge") -> None:
    argv = sys.argv[1:]
    debug = "--debug" in argv or _true(os.environ.get("BRIDGE_DEBUG"))
    try:
        group.main(prog_name=prog_name, standalone_mode=False)
    except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:  # a group with no command: its help
        click.echo(exc.format_message(), err=True)
        sys.exit(2)
    except click.UsageError as exc:  # one line like every other error, naming where the usage is
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        _report(2, f"error: {exc.format_message()}{where}", argv)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (Exception, KeyboardInterrupt) as exc:
        if debug and not isinstance(exc, (click.ClickException, click.exceptions.Abort, KeyboardInterrupt)):
            raise
        _report(*exit_for(exc), argv)


def _report(code: int, message: str, argv: list[str]) -> None:
    """The last line, as a JSON log record when JSON logs were asked for (even if the command line failed
    before the option was read)."""
    asked = os.environ.get("BRIDGE_LOG_FORMAT") == "json" or "--log-format=json" in argv or any(
        a == "--log-format" and b == "json" for a, b in zip(argv, argv[1:]))
    if asked and not json_logging():
        configure(logging.WARNING, "json")
    if json_logging():
        logging.getLogger("bridge.cli").error(message.removeprefix("error: "), extra={"exit_code": code})
    else:
        click.echo(message, err=True)
    sys.exit(code)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "t", "yes", "y", "on")


# a core error's hint (the API option that changes the outcome) -> what to say on the command line
HINTS = {
    "allow_model_mismatch": "pass --allow-model-mismatch to query anyway",
    "create": "pass --create to create it",
    "long_documents": "--long-documents applies when the index is created",
    "skip_unchanged": "rerun with --skip-unchanged to continue",
}


def exit_for(exc: BaseException) -> tuple[int, str]:
    """(exit code, the line printed on stderr) for a failure."""
    typed = as_bridge_error(exc)
    for kind, code, fixed in EXIT_CODES:
        if isinstance(typed, kind):
            if fixed:
                return code, fixed
            text = typed.format_message() if isinstance(typed, click.ClickException) else str(typed)
            hint = HINTS.get(getattr(typed, "hint", None) or "")
            return code, f"error: {text or type(typed).__name__}" + (f" ({hint})" if hint else "")
    return 2, f"error: {typed}"
