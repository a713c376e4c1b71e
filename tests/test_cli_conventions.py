"""Command-line conventions: connection options before or after the subcommand, BRIDGE_* environment
variables for every option, --version, and no option name with two meanings."""
import json

import click
import pytest

from bridge.cli import main_group
from bridge.version import __version__
from tests.conftest import SAMPLE, cli
from tests.proxy import free_port


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"splade-bridge {__version__}"


def test_no_option_name_means_two_things():
    seen: dict[str, set[str]] = {}
    for path, cmd in _commands(main_group):
        for p in cmd.params:
            if isinstance(p, click.Option):
                for opt in p.opts:
                    seen.setdefault(opt, set()).add(p.help or "")
    for opt in main_group.params:
        if isinstance(opt, click.Option):
            for name in opt.opts:
                seen.setdefault(name, set()).add(opt.help or "")
    twice = {opt: helps for opt, helps in seen.items() if len(helps) > 1 and opt not in ("--model", "--format")}
    # options defined in several places with different help texts, each read to mean one thing:
    # --port (what a server listens on), --server-version (the server's version), --window (documents
    # encoded together), --top-k (k largest weights kept), --index (the index), --text-field, --heap,
    # --data-dir, --java-home, --wait (seconds to wait for a local server), --query (a query: demo's texts,
    # backfill's DSL selecting documents)
    assert set(twice) <= {"--query", "--text-field", "--top-k", "--index", "--port", "--window", "--server-version",
                          "--heap", "--data-dir", "--java-home", "--wait"}, twice
    cluster_up = dict(_commands(main_group))[("cluster", "up")]
    names = {o for p in cluster_up.params for o in getattr(p, "opts", ())}
    assert not names & {"--engine", "--timeout", "--version"} and {"--distribution", "--server-version", "--wait"} <= names


def test_every_command_function_takes_exactly_its_options():
    """click calls a command's function with one keyword per exposed option: a function that lacks one (an
    option added through a shared decorator list) fails only when the command runs."""
    import inspect

    for path, cmd in _commands(main_group):
        exposed = {p.name for p in cmd.params if p.expose_value}
        params = inspect.signature(inspect.unwrap(cmd.callback)).parameters.values()
        taken = {p.name for p in params if p.kind is not p.VAR_KEYWORD} - {"settings", "ctx"}
        if any(p.kind is p.VAR_KEYWORD for p in params):  # **kw takes the rest
            assert taken <= exposed, (path, taken - exposed)
        else:
            assert exposed == taken, (path, exposed ^ taken)
    create = dict(_commands(main_group))[("index", "create")]
    assert {"backend", "precision"} <= {p.name for p in create.params}


def test_cluster_commands_talking_to_a_cluster_accept_connection_options():
    for path, cmd in _commands(main_group):
        names = {o for p in cmd.params for o in getattr(p, "opts", ())}
        talks = path[0] not in ("cluster", "kafka", "model", "expand")
        assert ("--url" in names) == talks, path
        if talks:
            assert {"--username", "--password-file", "--ca-certs", "--insecure", "--timeout", "--retry-for"} <= names


@pytest.mark.model
def test_model_and_output_options_before_or_after_the_subcommand():
    """-q, -v, --debug, --log-format and --model/--backend/--precision mean the same on either side of the
    subcommand; written on both, the later wins (as the connection options)."""
    before = cli("-q", "--model", "splade-tiny", "expand", "vitamin d", "--format", "json")
    after = cli("expand", "vitamin d", "--format", "json", "-q", "--model", "splade-tiny")
    for proc in (before, after):
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stderr == ""  # quiet: no warnings, no progress
    assert json.loads(before.stdout) == json.loads(after.stdout) and "vitamin" in json.loads(after.stdout)["tokens"]
    # the group's --model is overridden by the command's, wherever the environment points
    wins = cli("--model", "no/such-model", "expand", "vitamin d", "--model", "splade-tiny", "--format", "json",
               env={"BRIDGE_MODEL": "no/such-model-either"})
    assert wins.returncode == 0 and json.loads(wins.stdout) == json.loads(after.stdout), wins.stderr[-2000:]
    lost = cli("--model", "no/such-model", "expand", "vitamin d", env={"HF_HUB_OFFLINE": "1"})
    assert lost.returncode == 2 and "no/such-model" in lost.stderr
    # an old spelling: still read (its variable too) with a warning that -q after the subcommand silences;
    # given with its new name on the command line, an error
    old = cli("expand", "vitamin d", "--model", "splade-tiny", "--top-k", "2", "--format", "json")
    assert old.returncode == 0 and len(json.loads(old.stdout)["tokens"]) == 2 and "--query-top-k" in old.stderr
    silenced = cli("expand", "vitamin d", "--model", "splade-tiny", "--top-k", "2", "-q")
    assert silenced.returncode == 0 and silenced.stderr == ""
    from_env = cli("expand", "vitamin d", "--model", "splade-tiny", "--format", "json", env={"BRIDGE_EXPAND_TOP_K": "3"})
    assert len(json.loads(from_env.stdout)["tokens"]) == 3 and "BRIDGE_EXPAND_TOP_K" in from_env.stderr
    new_wins = cli("expand", "vitamin d", "--model", "splade-tiny", "--query-top-k", "1", "--format", "json",
                   env={"BRIDGE_EXPAND_TOP_K": "3"})
    assert len(json.loads(new_wins.stdout)["tokens"]) == 1
    both = cli("expand", "vitamin d", "--model", "splade-tiny", "--top-k", "2", "--query-top-k", "3")
    assert both.returncode == 2 and "give --query-top-k only" in both.stderr
    logged = cli("expand", "vitamin d", "--model", "splade-tiny", "--precision", "bf16", "--backend", "torch",
                 "--log-format", "json", "--format", "json")
    lines = [json.loads(line) for line in logged.stderr.splitlines()]  # every stderr line is a JSON object
    assert logged.returncode in (0, 2) and all("message" in line for line in lines)


def test_usage_errors_are_one_line_naming_the_help_to_read():
    for args, said in ((("expand", "x", "--bogus"), "No such option '--bogus'"),
                       (("index", "create"), "Missing argument 'NAME'"),
                       (("nosuch",), "No such command 'nosuch'")):
        proc = cli(*args)
        assert proc.returncode == 2 and proc.stdout == ""
        line, = proc.stderr.splitlines()
        assert line.startswith("error: ") and said in line and "--help)" in line, line
    assert "(see splade-bridge index create --help)" in cli("index", "create").stderr
    # asked for JSON logs, even after the mistake, the error is a JSON record
    logged = cli("expand", "x", "--bogus", "--log-format", "json")
    record, = [json.loads(line) for line in logged.stderr.splitlines()]
    assert logged.returncode == 2 and record["exit_code"] == 2 and "--bogus" in record["message"]


def test_down_and_status_take_only_what_finds_the_server():
    commands = dict(_commands(main_group))
    for group in ("cluster", "kafka"):
        up = {o for p in commands[(group, "up")].params for o in getattr(p, "opts", ())}
        for name in ("down", "status"):
            names = {o for p in commands[(group, name)].params for o in getattr(p, "opts", ())}
            assert names <= up and not names & {"--heap", "--java-home", "--setting", "--plugin", "--wait"}, names
            assert {"--port", "--server-version", "--data-dir", "--format"} <= names


@pytest.mark.integration
@pytest.mark.model
def test_connection_options_before_or_after_the_subcommand(node_url, client, tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text("".join(line for _, line in zip(range(12), open(SAMPLE))))
    dead = f"http://127.0.0.1:{free_port()}"
    names = ["test-cli-after", "test-cli-before", "test-cli-override"]
    try:
        after = cli("ingest", names[0], str(src), "--model", "splade-tiny", "--url", node_url, "--format", "json")
        before = cli("--url", node_url, "ingest", names[1], str(src), "--model", "splade-tiny", "--format", "json")
        # what is written after the subcommand wins over the group option and the environment
        override = cli("--url", dead, "--retry-for", "0", "ingest", names[2], str(src), "--model", "splade-tiny",
                       "--url", node_url, "--format", "json", env={"BRIDGE_URL": dead})
        for proc in (after, before, override):
            assert proc.returncode == 0, proc.stderr[-2000:]
            assert json.loads(proc.stdout)["indexed"] == 12
        for name in names:
            assert client.count(index=name)["count"] == 12
        # and the group option still applies when the subcommand does not repeat it
        refused = cli("--url", dead, "--retry-for", "0", "status")
        assert refused.returncode == 2 and "cannot reach the cluster" in refused.stderr
    finally:
        for name in names:
            client.indices.delete(index=name, ignore_unavailable=True)


@pytest.mark.integration
@pytest.mark.model
def test_every_option_reads_a_bridge_environment_variable(node_url, client, tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text("".join(line for _, line in zip(range(12), open(SAMPLE))))
    try:
        assert cli("--url", node_url, "ingest", "test-cli-env", str(src), "--model", "splade-tiny").returncode == 0
        env = {"BRIDGE_URL": node_url, "BRIDGE_SEARCH_SIZE": "2", "BRIDGE_SEARCH_FORMAT": "json"}
        proc = cli("search", "test-cli-env", "vitamin D", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert len(json.loads(proc.stdout)["hits"]) == 2
        flag = cli("search", "test-cli-env", "vitamin D", env={**env, "BRIDGE_SEARCH_PRINT_QUERY": "1"})
        assert "rank_feature" in json.dumps(json.loads(flag.stdout)["query"])  # the query printed
    finally:
        client.indices.delete(index="test-cli-env", ignore_unavailable=True)


@pytest.mark.integration
@pytest.mark.model
def test_gzipped_input_quiet_and_json_logs(node_url, client, tmp_path):
    """``.jsonl.gz`` is read as is; ``--quiet`` leaves stderr empty on success; ``--log-format json`` writes
    nothing but JSON objects on stderr, the final error included."""
    import gzip

    lines = [line for _, line in zip(range(12), open(SAMPLE))]
    gz = tmp_path / "docs.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.writelines(lines)
    client.indices.delete(index="test-cli-gz*", ignore_unavailable=True)
    try:
        quiet = cli("--url", node_url, "--quiet", "ingest", "test-cli-gz", str(gz), "--model", "splade-tiny",
                    "--format", "json", cwd=tmp_path)
        assert quiet.returncode == 0 and json.loads(quiet.stdout)["indexed"] == 12, quiet.stderr
        assert quiet.stderr == ""
        logged = cli("--url", node_url, "-v", "--log-format", "json", "ingest", "test-cli-gz-2", str(gz),
                     "--model", "splade-tiny", cwd=tmp_path)
        failed = cli("--url", f"http://127.0.0.1:{free_port()}", "--retry-for", "0", "--log-format", "json", "status")
    finally:
        client.indices.delete(index="test-cli-gz*", ignore_unavailable=True)
    assert logged.returncode == 0, logged.stderr[-2000:]
    records = [json.loads(line) for line in logged.stderr.splitlines()]  # every line parses
    assert any(r["level"] == "INFO" and r["logger"].startswith("bridge") for r in records)
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert failed.returncode == 2
    (last,) = [json.loads(line) for line in failed.stderr.splitlines()][-1:]
    assert last["level"] == "ERROR" and last["exit_code"] == 2 and "cannot reach the cluster" in last["message"]


def test_shell_completion_as_documented():
    env = {"_SPLADE_BRIDGE_COMPLETE": "bash_complete", "COMP_WORDS": "splade-bridge clu", "COMP_CWORD": "1"}
    proc = cli(env=env)
    assert proc.returncode == 0 and "plain,cluster" in proc.stdout.splitlines(), proc.stdout
