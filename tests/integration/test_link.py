"""The OCPP core over real sockets on 127.0.0.1, without AppDaemon."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from growatt_thor.link import LinkSettings
from growatt_thor.server import CentralSystem
from growatt_thor.simulator import SimSettings, ThorSimulator
from tests.helpers import async_wait_for


class Hooks:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.next_tx = 5000

    async def allocate_transaction_id(self, charger_id: str) -> int:
        self.next_tx += 1
        return self.next_tx

    async def emit(self, charger_id: str, topic: str, payload: dict[str, Any]) -> None:
        self.events.append((charger_id, topic, payload))

    def topics(self) -> list[str]:
        return [t for _, t, _ in self.events]


@pytest.fixture
async def system():
    hooks = Hooks()
    cs = CentralSystem(hooks, LinkSettings(call_timeout=5, startup_delay=0.05),
                       logging.getLogger("test.cs"))
    await cs.serve("127.0.0.1", 0)
    yield cs, hooks
    await cs.close()


def sim_for(cs: CentralSystem, **kw: Any) -> ThorSimulator:
    return ThorSimulator(SimSettings(url=f"ws://127.0.0.1:{cs.port}/ocpp/ws",
                                     reconnect_delay=(0.1, 0.2), call_timeout=5, **kw))


async def test_boot_runs_startup_sequence_and_reads_config(system):
    cs, hooks = system
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        st = cs.state(sim.s.serial)
        await async_wait_for(lambda: st.grid is not None, what="grid reading")
        assert [f[2] for f in sim.received][:4] == [
            "TriggerMessage", "GetConfiguration", "GetConfiguration", "DataTransfer"]
        assert sim.calls("DataTransfer")[0] == {"vendorId": "Growatt",
                                                "messageId": "get_external_meterval"}
        assert st.connected and st.vendor == "Growatt" and st.model == "THOR_22AS"
        assert st.config["G_MaxCurrent"] == "15.00"
        assert st.config["G_DaylightSavingTime"] == "03-31&10-27"  # from the named read
        assert st.public_config()["G_WifiPassword"] == "***"
        assert st.grid.power_w == 826 and st.grid.wiring == 1


async def test_charging_session_updates_state(system):
    cs, hooks = system
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        tx = await sim.charge()
        assert tx == 5001
        # like the THOR, a first MeterValues half a second in, before the car draws
        st = cs.state(sim.s.serial)
        assert st.meter["power"] == 0 and st.meter["current_l1"] == 0
        await sim.send_meter_values(120)
        st = cs.state(sim.s.serial)
        assert st.status == "Charging" and st.transaction_id == tx
        assert st.meter["current_l1"] == 15.0
        assert st.meter["power"] == sum(sim.power_w())
        assert st.meter["temperature"] == 15.0
        await sim.finish()
        assert st.transaction_id is None and st.status == "Available"
        assert st.meter["power"] == 0
        assert "session_record" in hooks.topics()


async def test_malformed_frames_get_callerror_and_connection_survives(system):
    cs, hooks = system
    async with connect(f"ws://127.0.0.1:{cs.port}/ocpp/ws/BAD1",
                       subprotocols=["ocpp1.6"]) as ws:
        async def ask(frame: str) -> list:
            await ws.send(frame)
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if reply[0] != 2:  # skip the server's own start-up calls
                    return reply

        r = await ask("not json at all")
        assert r[0] == 4 and r[2] == "FormationViolation"
        r = await ask('[2, "7", "BootNotification", {"chargePointVendor": 5}]')
        assert r[:3] == [4, "7", "TypeConstraintViolation"]
        r = await ask('[2, "8", "NoSuchAction", {}]')
        assert r[:3] == [4, "8", "NotImplemented"]
        r = await ask('[2, "9", "StatusNotification", {"connectorId": 1}]')
        assert r[:3] == [4, "9", "ProtocolError"]  # required fields missing
        r = await ask('[2, "10", "Heartbeat", "x"]')
        assert r[:3] == [4, "10", "FormationViolation"]
        r = await ask('[2, "11", "Heartbeat", {}]')
        assert r[0] == 3 and r[2]["currentTime"].endswith("Z")


async def test_wrong_path_is_refused(system):
    cs, _ = system
    with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
        async with connect(f"ws://127.0.0.1:{cs.port}/not/ours/at/all"):
            pass
    assert exc.value.response.status_code == 404


@pytest.mark.parametrize("path", ["/ocpp/ws/A1", "/ocpp/A1", "/A1"])
async def test_accepted_paths(system, path):
    cs, _ = system
    async with connect(f"ws://127.0.0.1:{cs.port}{path}", subprotocols=["ocpp1.6"]) as ws:
        await ws.send('[2,"100","Heartbeat",{}]')
        while (reply := json.loads(await asyncio.wait_for(ws.recv(), 5)))[0] == 2:
            pass
        assert reply[1] == "100"
    assert "A1" in cs.states


async def test_password_is_checked_when_configured():
    hooks = Hooks()
    cs = CentralSystem(hooks, LinkSettings(call_timeout=5), logging.getLogger("t"),
                       passwords={"XGJ00003214700CA": "secret"})
    await cs.serve("127.0.0.1", 0)
    try:
        with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
            async with connect(f"ws://127.0.0.1:{cs.port}/ocpp/ws/XGJ00003214700CA",
                               subprotocols=["ocpp1.6"]):
                pass
        assert exc.value.response.status_code == 401
        async with sim_for(cs, password="secret") as sim:
            await sim.wait_connected()
    finally:
        await cs.close()


async def test_disconnect_marks_unavailable_and_reconnect_restores(system):
    cs, hooks = system
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        st = cs.state(sim.s.serial)
        await sim.disconnect()
        await async_wait_for(lambda: not st.connected, what="disconnect noticed")
        assert st.status == "Unavailable"
        await async_wait_for(lambda: st.connected and st.status == "Available", what="reconnect")
