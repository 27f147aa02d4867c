"""OCPP over AppDaemon's own web server (``/app/<serial>``), with the pack's own port off.

This is the only way in for a THOR when the pack runs in the Home Assistant add-on,
which publishes nothing but AppDaemon's port 5050. The AppDaemon here is real, and
so are the sockets: the simulated THOR, the byte-exact replay of the captured
traffic and the refused clients all connect to AppDaemon's HTTP port.
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from growatt_thor.simulator import SimSettings, ThorSimulator
from tests.adharness import AppDaemon
from tests.conftest import controls_apps
from tests.e2e.test_replay_captures import WIRE_SPEED, load, replay
from tests.e2e.test_session_log import read as rows
from tests.e2e.test_standalone import P, wait_state
from tests.helpers import async_wait_for

CID = "XGJ00003214700CA"
PASSWORD = "12345678"  # what the captured THOR sends (G_Authentication, factory default)


def apps(tmp_path: Path) -> dict[str, Any]:
    a = controls_apps(None, chargers={CID: {"password": PASSWORD, "max_current": 16}},
                      **WIRE_SPEED)
    a["growatt_thor_sessions"] = {"module": "growatt_thor.session_log", "class": "SessionLog",
                                  "dependencies": ["growatt_thor_hub"],
                                  "path": str(tmp_path / "sessions.csv"), "record_wait": 5}
    return a


@pytest.fixture
def ad(tmp_path: Path):
    ad = AppDaemon(tmp_path / "ad", apps(tmp_path))
    ad.start()
    yield ad
    ad.stop()


def sim_via_appdaemon(ad: AppDaemon, **kw: Any) -> ThorSimulator:
    return ThorSimulator(SimSettings(url=f"ws://127.0.0.1:{ad.http_port}/app",
                                     password=PASSWORD, reconnect_delay=(0.2, 0.5),
                                     call_timeout=5, **kw))



async def test_simulated_thor_through_appdaemon_port(ad: AppDaemon, tmp_path: Path):
    (ready,) = [ln for ln in ad.logs(tail=3000).splitlines() if "hub ready" in ln]
    assert f"ws://127.0.0.1:{ad.http_port}/app " in ready  # the URL a THOR can use, logged
    assert "/ocpp/ws" not in ready  # port: null, so no own port
    async with sim_via_appdaemon(ad) as sim:
        await sim.wait_connected()
        await wait_state(ad, f"binary_sensor.{P}_connected", "on")
        await wait_state(ad, f"sensor.{P}_vendor", "Growatt")
        await wait_state(ad, f"sensor.{P}_max_current", "15.00")  # the start-up sequence ran
        await wait_state(ad, "input_number.growatt_thor_max_current", 15.0)

        # a helper change reaches the charger through the write queue
        await asyncio.to_thread(ad.call_service, "default", "input_number/set_value",
                                entity_id="input_number.growatt_thor_max_current", value=10)
        await async_wait_for(lambda: {"key": "G_MaxCurrent", "value": "10"}
                             in sim.calls("ChangeConfiguration"), timeout=20,
                             what="G_MaxCurrent 10 on the wire")

        # a whole session: live entities, then exactly one CSV row
        tx = await sim.charge()
        await sim.send_meter_values(600)
        await wait_state(ad, f"sensor.{P}_status", "Charging")
        await wait_state(ad, f"sensor.{P}_power", str(sum(sim.power_w())))
        energy = int(sim.session.energy_wh)
        await sim.finish()
        await async_wait_for(lambda: len(rows(tmp_path / "sessions.csv")) == 1, timeout=20,
                             what="one session row")
        (row,) = rows(tmp_path / "sessions.csv")
        assert row["transaction_id"] == str(tx)
        assert row["energy_kwh"] == f"{energy / 1000:.3f}"

        # reloading the hub closes the connection; the charger comes back on the new route
        boots = sim.boots
        ad.write_apps({**ad.apps, "growatt_thor_hub": {**ad.apps["growatt_thor_hub"],
                                                       "heartbeat_interval": 61}})
        await async_wait_for(lambda: sim.boots > boots and sim.connected.is_set(),
                             timeout=30, what="the THOR reconnected after the reload")
        await wait_state(ad, f"binary_sensor.{P}_connected", "on")
    await wait_state(ad, f"binary_sensor.{P}_connected", "off")
    await asyncio.to_thread(ad.stop)
    logs = ad.logs(tail=5000)
    # the reload and the stop end every task and route cleanly (no 504, no pending task)
    assert [ln for ln in logs.splitlines() if " ERROR " in ln or " WARNING " in ln] == []
    assert "Traceback" not in logs


def test_captured_traffic_replayed_through_appdaemon_port(ad: AppDaemon):
    """The THOR's own handshake (Basic auth ``serial:12345678``, ``Host:`` with no space)."""
    lines = load("2025-12-18-cloud-session.jsonl")
    sent: dict[str, int] = defaultdict(int)
    for o in lines:
        fr = o.get("frame")
        if o["direction"] == "cp->cs" and fr and fr[0] == 2:
            sent[fr[2]] += 1
    counts = replay(lines, ad.http_port, path=f"/app/{CID}")
    # every CALL got a reply that validates against the 1.6 schema (checked in replay)
    assert {k: v for k, v in counts.items() if ":" not in k and k != "pong"} == dict(sent)
    assert counts["pong"] > 0  # aiohttp answers the THOR's pings
    ad.wait_state("default", f"sensor.{P}_energy", "4.204")
    ad.wait_state("default", f"sensor.{P}_firmware", "THOR_22AS-V2.2.16-20240902")
    ad.wait_state("default", f"sensor.{P}_grid_power", "738")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("case, serial, headers, protocols, status", [
    ("wrong password", CID, basic(CID, "wrong"), ["ocpp1.6"], 401),
    ("no password", CID, {}, ["ocpp1.6"], 401),
    ("someone else's user name", CID, basic("anybody", PASSWORD), ["ocpp1.6"], 401),
    ("no subprotocol", CID, basic(CID, PASSWORD), None, 400),
    ("unknown serial", "XGJ00000000000XX", basic("XGJ00000000000XX", PASSWORD), ["ocpp1.6"],
     None),
    ("serial in another case", CID.lower(), basic(CID.lower(), PASSWORD), ["ocpp1.6"], None),
])
async def test_refused_before_the_upgrade_and_nothing_created(ad: AppDaemon, case, serial,
                                                              headers, protocols, status):
    before = await asyncio.to_thread(ad.states, "default")
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{ad.http_port}/app/{serial}",
                           subprotocols=protocols, additional_headers=headers,
                           open_timeout=10):
            pass
    got = refused.value.response.status_code
    assert got != 101
    if status is not None:
        assert got == status, case
    # (an unknown route is AppDaemon's own "404" page, sent with status 200: no upgrade)
    after = await asyncio.to_thread(ad.states, "default")
    assert after == before, f"{case}: entities changed"
    assert f"{serial}: connected" not in ad.logs(tail=3000)


async def test_appdaemon_http_password_does_not_shut_the_thor_out(tmp_path: Path):
    """AppDaemon 4.5's route security (``route_secure``) wants its cookie or ``?token=``
    when ``http:`` has a password and tokens, which a THOR cannot send. Measured: 4.5.13
    never fills the token list it checks, so the routes stay open and the charger's own
    Basic-auth password is what protects them. If a later AppDaemon enforces it, this
    test fails and the hub's start-up error (see hub._register_routes) is what users see.
    """
    ad = AppDaemon(tmp_path / "ad", apps(tmp_path),
                   http={"password": "ad-secret", "tokens": ["ad-token"]})
    ad.start(wait_apps=[])
    try:
        await async_wait_for(lambda: "hub ready" in ad.logs(tail=3000), timeout=30,
                             what="the hub to start")
        async with sim_via_appdaemon(ad) as sim:
            await sim.wait_connected()
        assert f"{CID}: connected" in ad.logs(tail=3000)
        assert "refuses /app/ routes" not in ad.logs(tail=3000)
    finally:
        ad.stop()
