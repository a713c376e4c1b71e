"""One place that turns failures into a one-line message and an exit code (tracebacks with --debug)."""
from __future__ import annotations

import sys

import click


def describe(exc: BaseException) -> str:
    """A one-line, credential-free description of a failure."""
    from .backends import exceptions, status_of

    connection_errors, _, transport_errors = exceptions()
    if isinstance(exc, connection_errors):
        detail = str(exc.info or exc.error)
        detail = detail.rsplit(": ", 1)[-1] if ": " in detail else detail
        return f"cannot reach the cluster ({type(exc).__name__}: {detail})"
    if isinstance(exc, transport_errors):
        info = getattr(exc, "info", None) or getattr(exc, "body", None)
        info = info if isinstance(info, dict) else {}
        err = info.get("error") if isinstance(info.get("error"), dict) else {}
        reason = err.get("reason") or (err.get("root_cause") or [{}])[0].get("reason") or getattr(exc, "error", exc)
        return f"cluster refused the request (HTTP {status_of(exc)}): {reason}"
    return str(exc) or type(exc).__name__


def run_cli(group: click.Group) -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        group.main(prog_name="splade-bridge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        exc.show()
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"error: {describe(exc)}", err=True)
        sys.exit(2)
