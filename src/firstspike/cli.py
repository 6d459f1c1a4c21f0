"""The single `firstspike` command.

Each subcommand lives in the package that owns it and is imported only when it runs, so a
machine with just the `serve` extra never touches torch. A subcommand module exposes
`add_arguments(parser)` (cheap, no heavy imports) and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    extra: str
    help: str


COMMANDS: dict[str, Command] = {
    "data": Command("firstspike.model.data.cli", "train", "build or inspect keyword corpora (synthetic TTS, local Speech Commands)"),
    "train": Command("firstspike.model.train_cli", "train", "train a rank-coded (rc) or end-of-sequence (eos) LSTM"),
    "evaluate": Command("firstspike.model.evaluate_cli", "train", "evaluate a checkpoint on a test split, sweep the threshold"),
    "export": Command("firstspike.export.cli", "train", "export a checkpoint to a stepwise ONNX model"),
    "verify-onnx": Command("firstspike.export.verify_cli", "train", "check an exported ONNX model against its PyTorch checkpoint"),
    "serve": Command("firstspike.server.cli", "serve", "run the streaming websocket server"),
    "stream": Command("firstspike.client.stream_cli", "client", "stream WAV/FLAC files to a server and report latency"),
    "listen": Command("firstspike.client.listen_cli", "client", "stream the microphone to a server"),
    "bench": Command("firstspike.client.bench_cli", "client", "generate real-time load against a server"),
}

# Top-level modules each extra brings; a missing one means the extra is not installed.
_EXTRA_MODULES = {
    "train": {"torch", "onnx", "tqdm", "soundfile", "matplotlib", "sklearn"},
    "serve": {"onnxruntime", "fastapi", "uvicorn", "soxr", "prometheus_client", "pydantic", "pydantic_settings", "soundfile", "websockets"},
    "client": {"websockets", "soundfile", "sounddevice", "rich", "matplotlib", "psutil"},
}


def _missing_extra_message(command: str, spec: Command, err: ModuleNotFoundError) -> str:
    return (
        f"firstspike {command}: the Python package '{err.name}' is not installed.\n"
        f"Install the '{spec.extra}' extra:  pip install 'firstspike[{spec.extra}]'"
    )


def _load(command: str):
    spec = COMMANDS[command]
    try:
        return importlib.import_module(spec.module)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in _EXTRA_MODULES.get(spec.extra, set()):
            raise SystemExit(_missing_extra_message(command, spec, err)) from None
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from firstspike import __version__

    parser = argparse.ArgumentParser(prog="firstspike", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"firstspike {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, spec in COMMANDS.items():
        p = sub.add_parser(name, help=spec.help, description=spec.help)
        if name == only:
            _load(name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        build_parser().parse_args(argv or ["--help"])
        return 2
    args = build_parser(only=command).parse_args(argv)
    module = _load(command)
    try:
        return int(module.run(args) or 0)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in _EXTRA_MODULES.get(COMMANDS[command].extra, set()):
            print(_missing_extra_message(command, COMMANDS[command], err), file=sys.stderr)
            return 3
        raise
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output has gone (`firstspike data info | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
