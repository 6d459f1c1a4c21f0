"""The container's install steps, run without a Docker engine.

`scripts/install-serve-venv.sh` is what the Dockerfile's builder stage runs. Here it runs in a fresh
virtualenv on a copy of exactly the files the build context holds (.dockerignore), then the result is
checked the way the image would be used: no torch, `firstspike serve` answers /readyz with the bundled
model, and a training command explains which extra is missing. pip's cache is shared with the rest of
the machine, so a warm run takes well under a minute.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _build_context(dest: Path) -> Path:
    """Copy what the Dockerfile COPYs: pyproject.toml, README.md, src/, the install script."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    (dest / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "install-serve-venv.sh", dest / "scripts")
    return dest


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("image")
    context = _build_context(root / "src-context")
    venv = root / "opt-firstspike"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(os.environ.get("VIRTUAL_ENV", "\0")))
    result = subprocess.run(["bash", "scripts/install-serve-venv.sh", str(venv), str(context)],
                            cwd=context, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv


def _clean_env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "FIRSTSPIKE_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_serve_install_has_no_torch_and_no_build_tools(serve_venv):
    probe = ("import importlib.util as u; "
             "print(*[m for m in ('torch', 'onnx', 'pip', 'setuptools') if u.find_spec(m)])")
    result = subprocess.run([str(serve_venv / "bin" / "python"), "-c", probe],
                            env=_clean_env(serve_venv), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
    # Installed as a copy, not a link back to the source tree.
    where = subprocess.run([str(serve_venv / "bin" / "python"), "-c", "import firstspike; print(firstspike.__file__)"],
                           env=_clean_env(serve_venv), cwd="/", capture_output=True, text=True, timeout=60)
    assert where.returncode == 0 and where.stdout.startswith(str(serve_venv)), where.stdout + where.stderr


def test_bundled_model_ships_as_package_data(serve_venv):
    models = list(serve_venv.glob("lib/python*/site-packages/firstspike/server/models/*.onnx"))
    assert models, "no bundled .onnx model in the installed package (package-data firstspike.server/models)"


def test_serve_starts_and_answers_readyz(serve_venv, free_port, wait_ready):
    port = free_port()
    # Configured through env vars, the way the image is.
    env = _clean_env(serve_venv, FIRSTSPIKE_HOST="127.0.0.1", FIRSTSPIKE_PORT=str(port),
                     PYTHONDONTWRITEBYTECODE="1")
    server = subprocess.Popen([str(serve_venv / "bin" / "firstspike"), "serve"], env=env, cwd="/",
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, alive=lambda: server.poll() is None)
    except AssertionError:
        server.kill()
        raise AssertionError(server.communicate(timeout=10)[0][-3000:]) from None
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0


@pytest.mark.parametrize("command, extra", [("train", "train"), ("export", "train"), ("stream", "client")])
def test_commands_of_other_extras_say_what_to_install(serve_venv, tmp_path, command, extra):
    argv = {
        "train": ["train", "--corpus", str(tmp_path), "--out", str(tmp_path / "run")],
        "export": ["export", str(tmp_path / "best.pt"), "-o", str(tmp_path / "model.onnx")],
        "stream": ["stream", str(tmp_path / "yes.wav")],
    }[command]
    result = subprocess.run([str(serve_venv / "bin" / "firstspike"), *argv],
                            env=_clean_env(serve_venv), cwd="/", capture_output=True, text=True, timeout=60)
    message = result.stdout + result.stderr
    assert result.returncode != 0, message
    assert f"pip install 'firstspike[{extra}]'" in message, message
    assert "Traceback" not in message
