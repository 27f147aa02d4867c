"""Replay the charger side of the captured THOR traffic against the pack.

Byte for byte where it matters: the THOR's own handshake (``Host:`` without a
space, HTTP Basic auth, no Origin, no User-Agent), its frames in capture order,
its pings. Every CALL must get a reply with the same id that validates against
the OCPP 1.6 response schema; calls the pack makes are answered with what the
THOR answered the cloud. Then the entities must show the replayed values.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

import ocpp
from tests.adharness import REPO, AppDaemon
from tests.conftest import hub_app

CAPTURES = Path(os.environ.get("THOR_CAPTURES", REPO / "tests" / "captures"))
SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"
P = "growatt_thor_ev_charger"
# The replay sends 17 hours of the THOR's frames at wire speed, far above the calls a
# second a charger may make (the THOR's own rate is a few a minute).
WIRE_SPEED = {"calls_per_second": 10000}


def load(name: str) -> list[dict[str, Any]]:
    path = CAPTURES / name
    if not path.exists():
        raise FileNotFoundError(f"captures not found at {path} (set THOR_CAPTURES)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RawWs:
    """Just enough of a WebSocket client to send exactly what the THOR sends."""

    def __init__(self, port: int, handshake: str, path: str | None = None) -> None:
        """``path``: ask for this path instead of the captured one (the rest stays as sent)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        lines = handshake.split("\r\n")
        lines = [f"Host:127.0.0.1:{port}" if ln.startswith("Host:") else ln for ln in lines]
        if path is not None:
            method, _, version = lines[0].split(" ")
            lines[0] = f"{method} {path} {version}"
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed during the handshake"
            head += chunk
        self.response, _, self.buf = head.partition(b"\r\n\r\n")

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> tuple[int, bytes]:
        b1, b2 = self._read(2)
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        assert not b2 & 0x80, "server frames must not be masked"
        return b1 & 0x0F, self._read(n)

    def close(self) -> None:
        self.sock.close()


def thor_replies(lines: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """What the THOR answered the cloud, by action (to answer the pack's calls)."""
    calls, replies = {}, defaultdict(list)
    for o in lines:
        fr = o.get("frame")
        if fr and o["direction"] == "cs->cp" and fr[0] == 2:
            calls[(o["conn"], fr[1])] = fr
        elif fr and o["direction"] == "cp->cs" and fr[0] == 3 and (o["conn"], fr[1]) in calls:
            call = calls[(o["conn"], fr[1])]
            key = call[2] + ("/" + call[3].get("messageId", "") if call[2] == "DataTransfer"
                             else "")
            replies[key].append(fr[2])
    return replies


def answer_for(frame: list[Any], replies: dict[str, list[Any]]) -> Any:
    action, payload = frame[2], frame[3]
    if action == "GetConfiguration":
        if not payload.get("key"):
            return next(r for r in replies["GetConfiguration"] if len(r["configurationKey"]) > 30)
        known = {k["key"]: k for r in replies["GetConfiguration"] for k in r["configurationKey"]}
        return {"configurationKey": [known[k] for k in payload["key"] if k in known],
                "unknownKey": [k for k in payload["key"] if k not in known]}
    if action == "DataTransfer":
        return replies[f"DataTransfer/{payload.get('messageId')}"][0]
    return replies.get(action, [{"status": "Accepted"}])[0]


def replay(lines: list[dict[str, Any]], port: int, path: str | None = None) -> dict[str, int]:
    # Answers to the pack's calls come from the long capture (the other has none).
    replies = thor_replies(load("2025-12-18-cloud-session.jsonl"))
    default_hs = next(o["http"] for o in lines if "http" in o and o["direction"] == "cp->cs")
    by_conn: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for o in lines:
        if o["direction"] == "cp->cs":
            by_conn[o["conn"]].append(o)
    counts = defaultdict(int)
    validators: dict[str, Draft4Validator] = {}
    for _conn, items in sorted(by_conn.items()):
        hs = next((o["http"] for o in items if "http" in o), default_hs)
        ws = RawWs(port, hs, path)
        status_line = ws.response.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 101"), ws.response
        assert b"sec-websocket-protocol: ocpp1.6" in ws.response.lower()
        before = dict(counts)  # the server's calls on this connection are counted from here
        try:
            for o in items:
                if "ctrl" in o and o["ctrl"][0] == "ping":
                    ws.send(0x9, o["ctrl"][1].encode())
                    while True:
                        op, data = ws.recv()
                        if op == 0xA:
                            counts["pong"] += 1
                            break
                        if op == 0x1:
                            _answer_server(ws, json.loads(data), replies, counts)
                    continue
                fr = o.get("frame")
                if not fr or fr[0] != 2:
                    continue  # replies to the cloud's calls: the pack never asked them
                ws.send(0x1, json.dumps(fr).encode())
                while True:
                    op, data = ws.recv()
                    assert op == 0x1, f"unexpected opcode {op}"
                    msg = json.loads(data)
                    if msg[0] == 2:
                        _answer_server(ws, msg, replies, counts)
                        continue
                    assert msg[0] == 3, f"{fr[2]} {fr[1]} got {msg}"
                    assert msg[1] == fr[1]
                    v = validators.get(fr[2]) or Draft4Validator(json.loads(
                        (SCHEMAS / f"{fr[2]}Response.json").read_text()))
                    validators[fr[2]] = v
                    v.validate(msg[2])
                    counts[fr[2]] += 1
                    break
            # The pack's start-up sequence (status trigger, configuration in two reads,
            # grid meter) runs on every connection: answer it as the THOR did.
            startup = {"TriggerMessage": 1, "GetConfiguration": 2, "DataTransfer": 1}
            if not any(o.get("frame", [0, 0, ""])[2:3] == ["BootNotification"] for o in items):
                startup = {}  # it starts 10 s after a connect without boot; not waited for
            # (some of it may already have come while a reply was awaited above)
            deadline = time.monotonic() + 30
            while waiting := [a for a, n in startup.items()
                              if counts[f"server:{a}"] - before.get(f"server:{a}", 0) < n]:
                assert time.monotonic() < deadline, f"start-up calls not seen: {waiting}"
                op, data = ws.recv()  # frames keep coming (pings): the deadline bounds it
                if op == 0x1 and (msg := json.loads(data))[0] == 2:
                    _answer_server(ws, msg, replies, counts)
        finally:
            ws.close()
    return counts


def _answer_server(ws: RawWs, msg: list[Any], replies: dict[str, list[Any]],
                   counts: dict[str, int]) -> None:
    counts[f"server:{msg[2]}"] += 1
    ws.send(0x1, json.dumps([3, msg[1], answer_for(msg, replies)]).encode())


@pytest.fixture
def appdaemon(tmp_path, ocpp_port: int):
    ad = AppDaemon(tmp_path, {"growatt_thor_hub": hub_app(ocpp_port, **WIRE_SPEED)})
    ad.start()
    yield ad
    ad.stop()


def test_replay_cloud_session(appdaemon: AppDaemon, ocpp_port: int) -> None:
    lines = load("2025-12-18-cloud-session.jsonl")
    sent = defaultdict(int)
    for o in lines:
        fr = o.get("frame")
        if o["direction"] == "cp->cs" and fr and fr[0] == 2:
            sent[fr[2]] += 1
    counts = replay(lines, ocpp_port)
    # every CALL of the charger got a valid reply
    assert {k: v for k, v in counts.items() if ":" not in k and k != "pong"} == dict(sent)
    assert counts["pong"] == sum(1 for o in lines
                                 if o["direction"] == "cp->cs" and o.get("ctrl", [""])[0] == "ping")
    assert counts["server:GetConfiguration"] >= 2 and counts["server:DataTransfer"] >= 1
    ad = appdaemon
    # the last session of the capture: 4204 Wh, then unplugged
    ad.wait_state("default", f"sensor.{P}_energy", "4.204")
    ad.wait_state("default", f"sensor.{P}_status", lambda s: s in ("Available", "Unavailable"))
    ad.wait_state("default", f"sensor.{P}_firmware", "THOR_22AS-V2.2.16-20240902")
    ad.wait_state("default", f"sensor.{P}_voltage_l1", "224.7")
    ad.wait_state("default", f"sensor.{P}_max_current", "15.00")
    ad.wait_state("default", f"sensor.{P}_grid_power", "738")  # the THOR's first reply


def test_replay_reconnect_loop(appdaemon: AppDaemon, ocpp_port: int) -> None:
    lines = load("2025-12-19-reconnect-loop.jsonl")
    counts = replay(lines, ocpp_port)
    sent = sum(1 for o in lines if o["direction"] == "cp->cs" and o.get("frame", [0])[0] == 2)
    assert counts["StatusNotification"] == sent


def capture_secrets(lines: list[dict[str, Any]]) -> set[str]:
    """Every secret the captures hold: secret keys' values, the Basic auth token and
    password, the cards' id tags."""
    from base64 import b64decode

    from growatt_thor.thor.dialect import SECRET_KEYS

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("key"), str) and node["key"] in SECRET_KEYS \
                    and isinstance(node.get("value"), str):
                found.add(node["value"])
            if isinstance(node.get("idTag"), str):
                found.add(node["idTag"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    for o in lines:
        walk(o.get("frame"))
        for ln in (o.get("http") or "").split("\r\n"):
            if ln.lower().startswith("authorization: basic "):
                token = ln.split()[-1]
                found |= {token, b64decode(token).decode().split(":", 1)[1]}
    return {s for s in found if len(s) >= 4}


def test_diagnostics_after_the_replay_are_complete_and_hold_no_secret(appdaemon, ocpp_port):
    lines = load("2025-12-18-cloud-session.jsonl")
    secrets = capture_secrets(lines)
    assert {"12345678", "REDACTED", "freevenIdTag"} <= secrets  # the test sees them
    replay(lines, ocpp_port)
    ad = appdaemon
    ad.wait_state("default", f"sensor.{P}_energy", "4.204")
    ad.call_service("growatt_thor", "growatt_thor/diagnostics")
    folder = ad.config_dir / "growatt_thor" / "diagnostics"
    files = sorted(folder.glob("growatt_thor_diagnostics_*.json"))
    assert len(files) == 1
    text = files[0].read_text()
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == [], f"secrets in the diagnostics: {leaked}"
    doc = json.loads(text)
    assert doc["version"] and doc["settings"]["port"] == ocpp_port
    (charger,) = doc["chargers"]
    assert charger["state"]["firmware"] == "THOR_22AS-V2.2.16-20240902"
    cfg = charger["configuration"]
    assert cfg["G_MaxCurrent"] == "15.00" and cfg["G_Authentication"] == "***"
    assert len(cfg) >= 55  # everything the charger reported
    frames = charger["frames"]
    assert 0 < len(frames["received"]) <= 200 and 0 < len(frames["sent"]) <= 200
    assert any('"StopTransaction"' in f["frame"] for f in frames["received"])
    assert "length" in charger["write_queue"] and isinstance(charger["write_history"], list)
    assert isinstance(doc["recent_warnings"], list) and "last_sessions" in doc
    assert "tag:" in text  # the card's id is there, hashed
