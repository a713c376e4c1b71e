"""Options accepted before or after the subcommand: the output options (``-q``, ``-v``, ``--debug``,
``--log-format``) on every command, and the model options (``--model``, ``--backend``, ``--precision``) on
every command that loads a model. ``splade-bridge -q --model splade-tiny expand x`` and
``splade-bridge expand x -q --model splade-tiny`` mean the same; written in both places, the later wins.

The connection options follow the same rule (``options.connection_options``)."""
from __future__ import annotations

import logging
import os

import click
from click.core import ParameterSource

from .logs import configure
from .options import BACKEND, PRECISION, Settings, model_option

OUTPUT = (
    (("--debug",), dict(is_flag=True, envvar="BRIDGE_DEBUG", help="Show tracebacks and debug logs.")),
    (("-v", "--verbose"), dict(is_flag=True, envvar="BRIDGE_VERBOSE", help="Info logs on stderr.")),
    (("-q", "--quiet"), dict(is_flag=True, envvar="BRIDGE_QUIET",
                             help="Errors and results only: no progress bars, no info or warnings.")),
    (("--log-format",), dict(type=click.Choice(["text", "json"]), default="text", show_default=True,
                             envvar="BRIDGE_LOG_FORMAT", help="json: one JSON object per line on stderr (no "
                                                              "progress bars).")),
)
MODEL_OPTIONS = ("model", "backend", "precision")


def output_options(on_group: bool = False):
    """The output options: the group reads them (and their environment variables) and sets up logging; a
    subcommand takes them from its own command line only and sets logging up again."""
    def decorate(f):
        for decls, kw in reversed(OUTPUT):
            f = click.option(*decls, expose_value=False, callback=_output, show_envvar=True,
                             **(kw if on_group else _command_line_only(kw)))(f)
        return f
    return decorate


def _command_line_only(kw: dict) -> dict:
    kw = {**kw, "default": None, "allow_from_autoenv": False}
    kw.pop("show_default", None)
    return kw


def _output(ctx: click.Context, param: click.Parameter, value) -> None:
    settings = ctx.ensure_object(Settings)
    if ctx.parent is None or ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        settings.output[param.name] = value
        if ctx.parent is not None:  # the group applies its own once all are read
            apply_output(settings.output)


def apply_output(values: dict) -> None:
    """Set up logging from the output options' values."""
    debug, verbose = values.get("debug"), values.get("verbose")
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    configure(level, values.get("log_format") or "text", quiet=bool(values.get("quiet")) and not debug)
    # the client logs every failed attempt with a traceback; our error line says it once
    logging.getLogger("opensearch").setLevel(logging.NOTSET if debug else logging.CRITICAL)
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        if not debug and name not in os.environ:
            os.environ[name] = value
            _SET.add(name)
        elif debug and name in _SET:  # --debug after the subcommand: undo what the group set, not the user
            del os.environ[name]
            _SET.discard(name)


_SET: set[str] = set()  # the variables apply_output set (the user's own stay as they are)


def model_options_on_group(f):
    """``--model``, ``--backend``, ``--precision`` before the subcommand: kept for the command, which uses
    them unless it is given its own."""
    for option in reversed((model_option("the command's own"), BACKEND, PRECISION)):
        f = option(f)
        param = f.__click_params__[-1]  # the click.Option the decorator just added
        param.expose_value, param.callback = False, _keep_for_command
    return f


def _keep_for_command(ctx: click.Context, param: click.Parameter, value) -> None:
    if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        ctx.ensure_object(Settings).model[param.name] = value


def install(group: click.Group) -> None:
    """Give every command under ``group`` the output options, and the model options of the commands that
    have them the value written before the subcommand."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            install(command)
            continue
        for decls, kw in OUTPUT:
            # eager: read before the command's other options, whose callbacks may already say something
            command.params.append(click.Option(decls, expose_value=False, callback=_output, show_envvar=True,
                                               is_eager=True, **_command_line_only(kw)))
        for param in command.params:
            if param.name in MODEL_OPTIONS and param.expose_value and param.callback is None:
                param.callback = _model_from_group


def _model_from_group(ctx: click.Context, param: click.Parameter, value):
    if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        return value
    return ctx.ensure_object(Settings).model.get(param.name, value)
