"""pyproject.toml's extras agree with the CLI, and the README's two commands behave as documented."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from firstspike.cli import _EXTRA_MODULES, COMMANDS

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "scripts").glob("*.sh")) + [REPO / ".ci" / "run"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, FIRSTSPIKE_VENV=sys.prefix)
    env.update(extra)
    return env


def test_serve_extra_has_no_torch_and_train_pins_it():
    assert not _names(EXTRAS["serve"]) & {"torch", "onnx", "onnxscript"}
    assert not _names(EXTRAS["client"]) & {"torch", "onnx"}
    assert "torch==2.13.0" in EXTRAS["train"]
    assert any(r.startswith("firstspike[") and {"serve", "client", "train"} <= set(r[11:-1].split(","))
               for r in EXTRAS["dev"])


@pytest.mark.parametrize("extra", sorted(_EXTRA_MODULES))
def test_every_module_the_cli_checks_comes_with_its_extra(extra):
    # The CLI names the extra to install when one of these modules is missing: the extra must bring it.
    owners = packages_distributions()
    provided = _names(EXTRAS[extra]) | _names(PYPROJECT["project"]["dependencies"])
    for module in _EXTRA_MODULES[extra]:
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        assert dists & provided, f"{module} (from {dists}) is not in the '{extra}' extra"
    assert {spec.extra for spec in COMMANDS.values()} <= set(EXTRAS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_explain_themselves(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if script.suffix == ".sh":
        result = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and "Usage" in result.stdout, result.stdout + result.stderr


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^exec bash scripts/test\.sh$", ci, flags=re.M)
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/demo.sh" in readme


def test_unknown_options_are_refused_clearly():
    for script in ("setup.sh", "demo.sh"):
        result = subprocess.run(["bash", str(REPO / "scripts" / script), "--bogus"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0 and "unknown option '--bogus'" in result.stderr


def test_test_command_fails_when_no_test_runs():
    # pytest exits 5 when it collects nothing; CI must not count that as a pass.
    result = subprocess.run(["bash", str(REPO / "scripts" / "test.sh"), "--no-setup", "-p", "no:cacheprovider",
                             "tests/packaging", "-k", "no_such_test_anywhere"],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "collected no tests" in result.stderr


def test_setup_rerun_is_a_quick_no_op():
    stamp = Path(sys.prefix) / ".firstspike-setup"
    if not stamp.exists():
        pytest.skip("this environment was not made by scripts/setup.sh (CI's is)")
    started = time.monotonic()
    result = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), "--no-browser"],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "python packages: up to date" in result.stdout
    assert "installing" not in result.stdout
    assert time.monotonic() - started < 30


def test_demo_streams_a_sample_and_stops_the_server(free_port):
    port = free_port()
    result = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), "--no-setup", "--port", str(port)],
                            env=_env(), capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "server ready" in output and "==> done" in output
    assert re.search(r"decision", output, flags=re.I), output[-4000:]
    with socket.socket() as sock:  # the server is gone: nothing listens on its port any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_readme_links_point_at_existing_files():
    readme = (REPO / "README.md").read_text()
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", readme) if "://" not in t}
    assert targets
    assert [t for t in targets if not (REPO / t).exists()] == []


def _readme_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    blocks = [block.replace("\\\n", " ") for block in blocks]  # join continued lines
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line.split()[1:] for line in lines if line.startswith("firstspike ")]


def test_readme_firstspike_commands_parse():
    # Parsing only: flags the README shows must exist on the real subcommands.
    from firstspike.cli import build_parser

    commands = _readme_commands()
    assert {argv[0] for argv in commands} >= {"train", "evaluate", "export", "serve", "stream"}
    for argv in commands:
        build_parser(only=argv[0]).parse_args(argv)


def test_demo_can_leave_the_server_running(free_port):
    port = free_port()
    result = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), "--no-setup", "--keep-running",
                             "--port", str(port)],
                            env=_env(), capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    match = re.search(r"server still running: pid (\d+)", output)
    assert result.returncode == 0 and match, output[-4000:]
    pid = int(match.group(1))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the demo's server (pid {pid}) did not stop on SIGTERM")
