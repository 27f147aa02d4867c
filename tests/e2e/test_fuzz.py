"""Fuzz: 5,000 generated frames of every kind at the real pack, beside an honest charger.

A hostile (or broken) charger sends CALLs with random actions, ids and payloads, replies
to calls nobody made, malformed JSON, binary frames, deep nesting and huge numbers. Each
frame is followed by a probe Heartbeat, so the frames it caused can be told apart: every
CALL gets exactly one reply with its id (OCPP-J), a reply to nothing gets nothing, and
anything malformed gets at most a CALLERROR. Meanwhile the honest simulated THOR keeps
charging: its heartbeats are answered at once and its entities keep their values. After:
no traceback in AppDaemon's logs and its memory back within a bound.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect as sync_connect

from bench.stats import rss_mb
from tests.adharness import AppDaemon
from tests.conftest import hub_app
from tests.e2e.test_standalone import P, sim_for, wait_state
from tests.helpers import free_port

FUZZ_ID = "FUZZ0001"
EXAMPLES, PER_EXAMPLE = 100, 50  # 5,000 frames
CODES_16 = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError",
            "SecurityError", "FormationViolation", "PropertyConstraintViolation",
            "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError"}
ACTIONS = ["BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
           "StartTransaction", "StopTransaction", "DataTransfer", "Authorize",
           "FirmwareStatusNotification", "DiagnosticsStatusNotification", "Reset"]

json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12)
unique_id = st.text(max_size=50) | st.integers() | st.none()
sampled = st.fixed_dictionaries({"value": st.sampled_from(
    ["NaN", "Infinity", "-inf", "1e308", "12.5", "-3", "x", ""]) | st.text(max_size=8)},
    optional={"measurand": st.sampled_from(["Energy.Active.Import.Register", "Voltage",
                                            "Current.Import", "Power.Active.Import"]),
              "phase": st.sampled_from(["L1", "L2", "L3"]), "unit": st.sampled_from(
                  ["Wh", "kWh", "W", "A", "V"])})
meter_values = st.fixed_dictionaries({"connectorId": st.integers(0, 2), "meterValue": st.lists(
    st.fixed_dictionaries({"timestamp": st.just("2026-12-01T10:00:00Z"),
                           "sampledValue": st.lists(sampled, min_size=1, max_size=4)}),
    min_size=1, max_size=2)}, optional={"transactionId": st.integers(-5, 10**9)})
payload = st.dictionaries(st.text(max_size=12), json_value, max_size=5) | meter_values
call = st.tuples(st.just(2), unique_id, st.sampled_from(ACTIONS) | st.text(max_size=20),
                 payload | json_value).map(list)
reply = st.tuples(st.sampled_from([3, 4]), unique_id, json_value).map(list) | st.tuples(
    st.just(4), st.text(max_size=40), st.text(max_size=10), st.text(max_size=10),
    st.dictionaries(st.text(max_size=5), json_value, max_size=2)).map(list)
garbage = st.text(max_size=200) | st.builds(lambda n: "[" * n, st.integers(1, 200_000)) | \
    st.builds(lambda n: '[2,"big","Heartbeat",{"n":' + "9" * n + "}]", st.integers(4000, 6000))
frame = st.one_of(call.map(json.dumps), reply.map(json.dumps), garbage,
                  st.binary(max_size=64), call.map(lambda c: json.dumps(c).encode()))


def expected(raw: str | bytes) -> tuple[str, Any]:
    """("call", id) / ("none", None) / ("maybe-error", None) for a fuzz frame."""
    if isinstance(raw, bytes):
        return "maybe-error", None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return "maybe-error", None
    if isinstance(value, list) and len(value) == 4 and value[0] == 2 \
            and isinstance(value[1], str):
        return "call", value[1][:36]
    if isinstance(value, list) and value and value[0] in (3, 4) and len(value) == \
            (3 if value[0] == 3 else 5):
        return "none", None
    return "maybe-error", None


def check_reply(msg: list[Any]) -> None:
    assert isinstance(msg, list) and msg[0] in (3, 4), msg
    assert isinstance(msg[1], str) and len(msg[1]) <= 36, msg
    if msg[0] == 3:
        assert len(msg) == 3 and isinstance(msg[2], dict), msg
    else:
        assert len(msg) == 5 and msg[2] in CODES_16 and isinstance(msg[4], dict), msg


def fuzz(port: int, stats: dict[str, int]) -> None:
    with sync_connect(f"ws://127.0.0.1:{port}/ocpp/ws/{FUZZ_ID}", subprotocols=["ocpp1.6"],
                      max_size=2**22, open_timeout=10) as ws:
        _fuzz(ws, stats)


def _fuzz(ws: Any, stats: dict[str, int]) -> None:
    probe = iter(range(10**9))

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(frame, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def run(frames: list[str | bytes]) -> None:
        for raw in frames:
            ws.send(raw)
            pid = f"probe-{next(probe)}"
            ws.send(json.dumps([2, pid, "Heartbeat", {}]))
            got = []
            while True:
                msg = json.loads(ws.recv(timeout=10))
                if msg[0] == 2:
                    continue  # the hub's own calls to this "charger": left unanswered
                if msg[1] == pid:
                    assert msg[0] == 3, f"the probe after {raw!r:.200} got {msg}"
                    break
                got.append(msg)
            for msg in got:
                check_reply(msg)
            kind, uid = expected(raw)
            if kind == "call":
                assert [m[1] for m in got] == [uid], f"{raw!r:.200}: {got}"
            elif kind == "none":
                assert got == [], f"a reply to {raw!r:.200}: {got}"
            else:
                assert len(got) <= 1 and all(m[0] == 4 for m in got), f"{raw!r:.200}: {got}"
            stats[kind] += 1

    run()


@pytest.fixture
def fuzz_ad(tmp_path: Path):
    port = free_port()
    ad = AppDaemon(tmp_path, {"growatt_thor_hub": hub_app(
        port, chargers={"XGJ00003214700CA": {"prefix": P}, FUZZ_ID: {}},
        calls_per_second=5000)})  # the fuzzer is fast on purpose: test the handlers
    ad.start()
    yield ad, port
    ad.stop()


async def test_5000_generated_frames_beside_an_honest_charger(fuzz_ad):
    ad, port = fuzz_ad
    stats = {"call": 0, "none": 0, "maybe-error": 0}
    async with sim_for(port) as sim:
        await sim.wait_connected()
        await sim.charge()
        await sim.send_meter_values(120)
        power = str(sum(sim.power_w()))
        await wait_state(ad, f"sensor.{P}_power", power)
        rss_before = rss_mb(ad.proc.pid)
        loop = asyncio.get_running_loop()
        done = threading.Event()
        fuzzing = asyncio.ensure_future(asyncio.to_thread(lambda: (fuzz(port, stats),
                                                                   done.set())))
        latencies = []
        while not done.is_set() and not fuzzing.done():
            t0 = loop.time()
            await asyncio.wait_for(sim.call("Heartbeat", {}), 5)
            latencies.append(loop.time() - t0)
            await asyncio.sleep(0.2)  # the honest charger's pace, not a synchronisation
        await fuzzing  # raises what the fuzzer found
        assert latencies and max(latencies) < 1.0, max(latencies or [0])
        assert (await wait_state(ad, f"sensor.{P}_power", power))["state"] == power
        await wait_state(ad, f"sensor.{P}_status", "Charging")
    assert sum(stats.values()) == EXAMPLES * PER_EXAMPLE
    assert min(stats.values()) > 100, stats  # every class was exercised
    logs = ad.logs(tail=20000)
    assert "Traceback" not in logs
    assert rss_mb(ad.proc.pid) - rss_before < 60  # MB: nothing a peer sent was kept
