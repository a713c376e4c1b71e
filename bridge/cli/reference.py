"""The command-line reference (docs/CLI.md), written from the commands themselves: every command, every option
with its environment variable and default. ``python -m bridge.cli.reference > docs/CLI.md`` rewrites it; a test
fails when the file and the commands differ."""
from __future__ import annotations

import click

HEADER = """# Command-line reference

Written by `python -m bridge.cli.reference > docs/CLI.md` from the commands themselves (a test fails when they
differ). Every option can also be set from its environment variable; the options of `splade-bridge` itself
(connection, model, output) are accepted before or after the subcommand. Defaults in words are the help's.
"""


def reference(group: click.Group) -> str:
    ctx = click.Context(group, info_name="splade-bridge")
    model = ("--model", "--backend", "--precision")  # their defaults differ by command: listed with each
    shared = {o for p in group.params for o in getattr(p, "opts", ()) if o not in model}
    return HEADER + "".join(_section(ctx, name, command, shared if command is not group else set())
                            for name, command in _walk(group, ()))


def _walk(group: click.Group, path: tuple[str, ...]):
    yield " ".join(("splade-bridge", *path)), group
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            yield from _walk(command, (*path, name))
        else:
            yield " ".join(("splade-bridge", *path, name)), command


def _section(ctx: click.Context, name: str, command: click.Command, shared: set[str]) -> str:
    """A command's heading, first help paragraph and options; those of ``splade-bridge`` itself (``shared``:
    connection and output options, the same everywhere) are only named."""
    arguments = " ".join(p.human_readable_name for p in command.params if isinstance(p, click.Argument))
    lines = ["", f"## `{name}{' ' + arguments if arguments else ''}`", "",
             _cell((command.help or "").strip().split("\n\n")[0]), ""]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    own = [p for p in options if not set(p.opts) & shared]
    if own:
        lines += ["| option | env | default | what |", "|---|---|---|---|"]
        lines += [f"| {_flags(p)} | {_env(p)} | {_default(ctx, p)} | {_cell(p.help or '')} |" for p in own]
    if len(own) < len(options):
        lines += ["", "Also the connection and output options of `splade-bridge` that it takes: "
                  + ", ".join(f"`{p.opts[-1]}`" for p in options if p not in own) + "."]
    return "\n".join(lines) + "\n"


def _flags(p: click.Option) -> str:
    names = ", ".join(f"`{o}`" for o in (*p.opts, *p.secondary_opts))
    if isinstance(p.type, click.Choice):
        names += " " + "\\|".join(f"`{c}`" for c in p.type.choices)
    elif not p.is_flag:
        kind = p.type.name.split()[0].upper()  # "integer range" -> INTEGER, as click's own names
        names += f" {p.metavar or kind}"
    return names


def _env(p: click.Option) -> str:
    return f"`{p.envvar}`" if isinstance(p.envvar, str) else ""


def _default(ctx: click.Context, p: click.Option) -> str:
    value = p.get_default(ctx, call=False)
    if not isinstance(value, (str, int, float, tuple, list)) or value in ((), "") or (p.is_flag and value is False):
        return ""  # none, or click's "unset"
    if isinstance(value, (tuple, list)):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    from . import main_group

    click.echo(reference(main_group), nl=False)
