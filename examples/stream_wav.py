"""A complete protocol-v1 client in one file: stream a WAV to `/v1/stream` and print the decision.

Only `websockets` and the standard library: copy it into your own program. It sends the audio in
100 ms messages at real-time pace, as a microphone would, and stops sending the moment a decision
arrives (a keyword crossing θ closes the stream early). At the end of the file it sends `stop`, which
asks for the best guess on everything sent. With `--endpoint-ms` the server answers once the speech
in the file is followed by that much quiet, as `firstspike listen` and the browser page do.

    python examples/stream_wav.py samples/yes.wav --url ws://127.0.0.1:8000/v1/stream [--token KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import wave

import websockets

CHUNK_S = 0.1


def read_wav(path: str) -> tuple[bytes, int, int]:
    """16-bit PCM frames, sample rate and channel count of a WAV file."""
    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit(f"{path}: this example sends 16-bit PCM only (pcm_s16le)")
        return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels()


async def stream(path: str, url: str, token: str | None, endpoint_ms: float | None) -> dict:
    pcm, rate, channels = read_wav(path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(url, additional_headers=headers, compression=None) as ws:
        start = {"type": "start", "sample_rate": rate, "encoding": "pcm_s16le", "channels": channels}
        if endpoint_ms:
            start["endpoint_ms"] = endpoint_ms
        await ws.send(json.dumps(start))
        ready = json.loads(await ws.recv())
        if ready["type"] != "ready":  # an error: the server closes right after it
            return ready

        async def send_audio() -> None:
            step = int(rate * CHUNK_S) * 2 * channels
            for offset in range(0, len(pcm), step):
                await ws.send(pcm[offset: offset + step])
                await asyncio.sleep(CHUNK_S)  # real time; drop this to send as fast as possible
            await ws.send(json.dumps({"type": "stop"}))

        sender = asyncio.create_task(send_audio())
        try:
            async for message in ws:  # scores (if asked for), then one decision or error, then the close
                reply = json.loads(message)
                if reply["type"] in ("decision", "error"):
                    return reply
        finally:
            sender.cancel()  # the decision ends the stream: stop sending
            await asyncio.gather(sender, return_exceptions=True)
    raise ConnectionError(f"the server closed the stream without a decision (close code {ws.close_code})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/stream")
    parser.add_argument("--token", help="API key, if the server has them")
    parser.add_argument("--endpoint-ms", type=float, help="answer once the speech is followed by this much quiet")
    args = parser.parse_args()
    try:
        reply = asyncio.run(stream(args.wav, args.url, args.token, args.endpoint_ms))
    except websockets.InvalidStatus as err:  # the upgrade was refused: 401 without a valid key, 503 when full
        print(f"error: {args.url} refused the stream: HTTP {err.response.status_code}", file=sys.stderr)
        return 1
    except (OSError, websockets.ConnectionClosed) as err:
        print(f"error: {args.url}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(reply))
    if reply["type"] == "error":
        return 1
    how = "early" if reply["early"] else ("speech ended" if reply.get("endpointed") else "at stop")
    print(f"{reply['label']} (score {reply['score']:.3f}, {how}, at {reply['audio_ms']} ms of audio)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
