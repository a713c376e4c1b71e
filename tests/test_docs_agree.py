"""The documents say what the commands do: every `splade-bridge` line in README.md, COMPATIBILITY.md, SCALING.md,
EVALUATION.md, BENCHMARKS.md and RELIABILITY.md names commands and options that exist (on that command), a
bracketed `[--flag value]` is the option's default, every option of the configuration table reads the variable
the table names with the default it states, every BRIDGE_* variable the documents name is read by something, and
docs/CLI.md (every command's options, variables and defaults) is what the commands are now. So drift fails CI
instead of waiting for a reader. (docker-compose.yml and deploy/: tests/test_deploy_manifests.py.)"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from bridge.api import DEFAULT_DOC_TOP_K
from bridge.cli import main_group
from bridge.cli.reference import reference

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "COMPATIBILITY.md", "SCALING.md", "EVALUATION.md", "BENCHMARKS.md", "RELIABILITY.md"]
# variables named in the documents that are not options: read by the code, the scripts or the tests
CODE = [*(REPO / "bridge").rglob("*.py"), *(REPO / "scripts").glob("*"), *(REPO / "tests").glob("*.py"),
        REPO / ".ci" / "run", *(REPO / "benchmarks").glob("*.py")]
SEPARATORS = {"&&", "||", ";", "|", ">", "2>", "2>&1", "&"}


def _lines(doc: str):
    """(line number, text) of each `splade-bridge` command in ``doc``: in code blocks (continuation lines
    joined) and in inline code."""
    text = (REPO / doc).read_text()
    fenced, start, pending = False, 0, ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            if not pending:
                start = n
            pending += line.rstrip("\\").rstrip() + " "
            if line.endswith("\\"):
                continue
            if "splade-bridge " in pending:
                yield start, pending
            pending = ""
        else:
            for span in re.findall(r"`([^`]*splade-bridge [^`]*)`", line):
                yield n, span


def _commands(line: str):
    """The argument lists following each `splade-bridge` in a shell line."""
    try:
        words = shlex.split(re.sub(r"(?<=\S);", " ;", line), comments=True)
    except ValueError:  # an unbalanced quote in prose: take the words as they are
        words = line.split("#")[0].split()
    for i, word in enumerate(words):
        if word.endswith("splade-bridge") and not word.startswith("-"):
            rest = []
            for w in words[i + 1:]:
                if w in SEPARATORS:
                    break
                rest.append(w)
            yield rest


def _option(command: click.Command, name: str) -> click.Option | None:
    """The option ``name`` of ``command``; a hidden one (an old spelling kept for a release) is not documented."""
    for p in command.params:
        if isinstance(p, click.Option) and not p.hidden and (name in p.opts or name in p.secondary_opts):
            return p
    return None


def _placeholder(value: str) -> bool:
    return (not value or value.isupper() or any(c in value for c in "|…<>{}$*") or "..." in value
            or re.fullmatch(r"[A-Z][A-Z0-9_/.-]*", value) is not None)


def _check(words: list[str]) -> list[str]:
    """What in one command line does not exist or is not the default its brackets claim."""
    problems, command, path, i = [], main_group, ["splade-bridge"], 0
    while i < len(words):
        word = words[i]
        bracketed = word.startswith("[")
        word = word.lstrip("[").rstrip("]")
        if word.startswith("-") and word not in ("-",):
            name, _, inline = word.partition("=")
            if name in ("-h", "--help", "--version"):
                i += 1
                continue
            option = _option(command, name)
            if option is None:
                problems.append(f"{' '.join(path)} has no option {name}")
                i += 1
                continue
            value = None
            if not option.is_flag and not option.count:
                value = inline or (words[i + 1].rstrip("]") if i + 1 < len(words) else "")
                i += 0 if inline else 1
                if isinstance(option.type, click.Choice) and not _placeholder(value):
                    for alternative in value.split("|"):
                        if alternative not in option.type.choices:
                            problems.append(f"{' '.join(path)} {name}: {alternative!r} is not one of "
                                            f"{list(option.type.choices)}")
            if bracketed and value is not None and not _placeholder(value):
                default = option.default
                if isinstance(default, (str, int, float)) and default != "" and not isinstance(default, bool):
                    if str(value) != str(default) and _number(value) != _number(default):
                        problems.append(f"{' '.join(path)} [{name} {value}]: the default is {default}")
                elif value not in (option.help or "") and not isinstance(option.type, click.Choice):
                    problems.append(f"{' '.join(path)} [{name} {value}]: no default, and the help does not name it")
        elif isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
            path.append(word)
        elif isinstance(command, click.Group) and not _placeholder(word) and re.fullmatch(r"[a-z][a-z0-9-]*", word):
            return [*problems, f"{' '.join(path)} has no command {word}"]
        i += 1
    return problems


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("doc", DOCS)
def test_every_documented_command_line_exists_with_its_defaults(doc):
    problems = [f"{doc}:{n}: {problem}" for n, line in _lines(doc) for words in _commands(line)
                for problem in _check(words)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_drift():
    """What the test above would let through if the checker were blind."""
    assert _check(["index", "create", "docs", "[--top-k", "256]"]) == [
        f"splade-bridge index create [--top-k 256]: the default is {DEFAULT_DOC_TOP_K}"]
    assert _check(["expand", "x", "--hybrid"]) == ["splade-bridge expand has no option --hybrid"]
    assert _check(["eval", "--hybrid", "rrf"]) == ["splade-bridge eval has no option --hybrid"]  # the old name
    assert _check(["eval", "--modes", "x", "--hybrid-method", "mean"]) == [
        "splade-bridge eval --hybrid-method: 'mean' is not one of ['rrf', 'norm']"]
    assert _check(["nosuch", "x"]) == ["splade-bridge has no command nosuch"]
    assert _check(["model", "fetch-tinyy"]) == ["splade-bridge model has no command fetch-tinyy"]
    assert _check(["--model", "splade-tiny", "-q", "expand", "x", "--query-top-k", "3"]) == []
    lines = list(_lines("README.md"))
    assert len(lines) > 40 and sum(len(list(_commands(line))) for _, line in lines) > 40


# flags of other tools the documents quote: docker compose, py-spy, pip
FOREIGN = {"--profile", "--native", "--idle", "--index-url", "--help", "--option"}


@pytest.mark.parametrize("doc", DOCS)
def test_every_documented_flag_is_an_option(doc):
    """A flag quoted in prose (`--max-write-block`) is an option of some command (benchmarks' own excepted)."""
    known = {o for p in _all_options(main_group) if not p.hidden for o in (*p.opts, *p.secondary_opts)} | FOREIGN
    unknown = [f"{doc}:{n}: {flag}" for n, line in enumerate((REPO / doc).read_text().splitlines(), 1)
               for span in re.findall(r"`([^`]+)`", line) if "benchmarks/" not in span and "run.py" not in span
               for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span) if flag not in known]
    assert not unknown, "\n".join(unknown)


def _all_options(group: click.Group):
    yield from (p for p in group.params if isinstance(p, click.Option))
    for command in group.commands.values():
        if isinstance(command, click.Group):
            yield from _all_options(command)
        else:
            yield from (p for p in command.params if isinstance(p, click.Option))


def test_the_configuration_table_names_each_options_variable_and_default():
    """README's `| flag | env | default |` rows: each flag is an option of `splade-bridge` reading that variable;
    a default written as a literal is the option's."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| flag | env | default |"):]
    table = table[:table.index("\n\n")]
    rows = [[c.strip() for c in row.strip("|").split("|")] for row in table.splitlines()[2:]]
    assert len(rows) >= 20
    for flags, env, default in rows:
        names = re.findall(r"`(-[-a-z0-9]+)`", flags)
        variables = re.findall(r"`(BRIDGE_[A-Z0-9_]+)`", env)
        assert names, flags
        for name in names:
            option = _option(main_group, name)
            assert option is not None, f"splade-bridge has no option {name}"
            assert option.envvar in variables, (name, option.envvar, env)
            literal = re.match(r"`([^`]+)`", default)
            if literal and isinstance(option.default, (str, int, float)) and not isinstance(option.default, bool):
                assert literal.group(1) == str(option.default), (name, literal.group(1), option.default)


def test_every_documented_variable_is_read():
    options = {p.envvar for p in _all_options(main_group) if isinstance(p.envvar, str)}
    code = "\n".join(path.read_text(errors="replace") for path in CODE if path.is_file())
    named = {name for doc in [*DOCS, "docs/CLI.md", "Dockerfile", "docker-compose.yml"]
             for name in re.findall(r"\bBRIDGE_[A-Z0-9_]*[A-Z0-9]\b", (REPO / doc).read_text())}
    unread = sorted(n for n in named if n not in options and not re.search(rf"\b{n}\b", code))
    assert not unread, f"named in the documents, read by nothing: {unread}"


def test_the_cli_reference_is_current():
    """docs/CLI.md lists every command and option with its variable and default: rewrite it with
    `python -m bridge.cli.reference > docs/CLI.md` when a command changes."""
    assert (REPO / "docs" / "CLI.md").read_text() == reference(main_group)
