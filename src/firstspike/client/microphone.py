"""Capture from an input device through PortAudio (sounddevice), as int16 chunks in a bounded queue.

A reader thread does blocking reads so that a device that delivers faster than real time (an ALSA
file-backed capture device, for instance) is held back by the queue instead of flooding memory; the
session then paces what it sends by sample count.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from firstspike.protocol import SUPPORTED_RATES


class MicrophoneError(RuntimeError):
    """PortAudio is missing, or no usable input device: a setup problem the user can fix."""


def import_sounddevice():
    try:
        import sounddevice
    except OSError as err:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise MicrophoneError(
            f"PortAudio is not available ({err}). Install it, e.g. 'apt-get install libportaudio2'."
        ) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool


def input_devices() -> list[InputDevice]:
    sd = import_sounddevice()
    default_index = _default_input_index(sd)
    apis = sd.query_hostapis()
    devices = []
    for info in sd.query_devices():
        if info["max_input_channels"] > 0:
            devices.append(InputDevice(
                index=info["index"], name=info["name"], host_api=apis[info["hostapi"]]["name"],
                max_input_channels=info["max_input_channels"], default_samplerate=info["default_samplerate"],
                is_default=info["index"] == default_index,
            ))
    return devices


def _default_input_index(sd) -> int | None:
    try:
        return int(sd.query_devices(kind="input")["index"])
    except sd.PortAudioError:
        return None


def resolve_device(spec: str | None) -> InputDevice:
    """An index, or a case-insensitive part of a name; None means the system default input."""
    devices = input_devices()
    if not devices:
        raise MicrophoneError("no audio input device found (see 'firstspike listen --list-devices')")
    if spec is None:
        for device in devices:
            if device.is_default:
                return device
        raise MicrophoneError(
            "there is no default input device; pick one with --device (see 'firstspike listen --list-devices')"
        )
    if spec.isdigit():
        for device in devices:
            if device.index == int(spec):
                return device
        raise MicrophoneError(f"no input device with index {spec} (see 'firstspike listen --list-devices')")
    matches = [d for d in devices if spec.lower() in d.name.lower()]
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise MicrophoneError(f"no input device matches {spec!r} (see 'firstspike listen --list-devices')")
    names = ", ".join(f"{d.index}: {d.name}" for d in matches)
    raise MicrophoneError(f"{spec!r} matches several input devices ({names}); give the index")


def pick_rate(device: InputDevice, requested: int | None) -> int:
    if requested is not None:
        if requested not in SUPPORTED_RATES:
            raise MicrophoneError(f"--rate must be one of {', '.join(map(str, SUPPORTED_RATES))}")
        return requested
    native = int(device.default_samplerate)
    return native if native in SUPPORTED_RATES else 16000


class Microphone:
    """Mono int16 capture; `chunks` is a queue of bytes objects of `chunk_frames` samples each."""

    def __init__(self, device: InputDevice, sample_rate: int, chunk_frames: int, max_queued: int = 50) -> None:
        sd = import_sounddevice()
        try:
            sd.check_input_settings(device=device.index, samplerate=sample_rate, channels=1, dtype="int16")
            self._stream = sd.InputStream(
                device=device.index, samplerate=sample_rate, channels=1, dtype="int16", blocksize=chunk_frames
            )
        except sd.PortAudioError as err:
            raise MicrophoneError(f"cannot open input device {device.index} ({device.name}) at {sample_rate} Hz: {err}") from None
        self.sample_rate = sample_rate
        self.chunk_frames = chunk_frames
        self.chunks: queue.Queue[bytes] = queue.Queue(maxsize=max_queued)
        self.overflows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="microphone", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> "Microphone":
        self._stream.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        try:
            self._stream.abort()
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing a dead stream must not hide the real error
            pass

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                data, overflowed = self._stream.read(self.chunk_frames)
                self.overflows += int(bool(overflowed))
                payload = data.tobytes()
                while not self._stop.is_set():
                    try:
                        self.chunks.put(payload, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except Exception as err:  # noqa: BLE001 - handed to the session, which reports it
            self.error = err

    def drain(self) -> int:
        """Drop audio captured while no session was open, so a new session starts from now."""
        dropped = 0
        while True:
            try:
                self.chunks.get_nowait()
                dropped += 1
            except queue.Empty:
                return dropped
