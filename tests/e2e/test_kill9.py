"""Fault test: AppDaemon SIGKILLed at random points around sessions, restarted each time.

The simulated THOR behaves as OCPP 1.6 asks of a charger: a transaction message whose
reply did not come (StartTransaction, MeterValues, StopTransaction) and its session record
are sent again after the reconnect, unchanged. Kills land while one of those is in flight
or just after (start, meter, stop, record) and while the session log appends to the CSV.
At the end every session the charger closed is in the CSV exactly once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from growatt_thor.simulator.sim import ID_TAG, Session
from tests.adharness import AppDaemon
from tests.conftest import hub_app
from tests.e2e.test_session_log import read as rows
from tests.e2e.test_standalone import sim_for
from tests.helpers import async_wait_for, free_port

KILLS = 20
PHASES = ("start", "meter", "stop", "record", "csv")
CID = "XGJ00003214700CA"


def kill9(ad: AppDaemon) -> None:
    assert ad.proc is not None
    os.killpg(ad.proc.pid, signal.SIGKILL)
    ad.proc.wait(10)
    ad.stdout.close()
    ad.proc = None



async def until_acknowledged(sim: Any, step: Callable[[], Awaitable[Any]]) -> Any:
    """Send a transaction message until the pack acknowledges it (OCPP 1.6, 4.8 and 5.x)."""
    for _ in range(20):
        try:
            await sim.wait_connected(timeout=60)
            return await step()
        except (ConnectionError, ConnectionClosed, TimeoutError, asyncio.CancelledError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the test itself is being cancelled
            await asyncio.sleep(0.05)  # the THOR's pause before it tries again
    raise AssertionError("never acknowledged")


async def test_sigkill_around_sessions_loses_and_doubles_nothing(tmp_path: Path):
    rng = random.Random(20261201)
    log = tmp_path / "sessions.csv"
    port = free_port()
    ad = AppDaemon(tmp_path / "ad", {
        "growatt_thor_hub": hub_app(port, time_zone="Europe/Amsterdam", chargers={CID: {}}),
        "growatt_thor_sessions": {"module": "growatt_thor.session_log", "class": "SessionLog",
                                  "dependencies": ["growatt_thor_hub"], "path": str(log),
                                  "record_wait": 1}})
    await asyncio.to_thread(ad.start)
    restarts: list[asyncio.Task] = []
    kills: dict[str, int] = dict.fromkeys(PHASES, 0)

    async def kill_soon(phase: str) -> None:
        await asyncio.sleep(rng.uniform(0, 0.03))  # in flight, or just answered
        kill9(ad)
        kills[phase] += 1
        await asyncio.to_thread(ad.start)

    closed: list[int] = []
    try:
        async with sim_for(port) as sim:
            for i in range(KILLS):
                phase = PHASES[i % len(PHASES)]

                def arm(now: str, phase: str = phase) -> None:
                    if now == phase:
                        restarts.append(asyncio.ensure_future(kill_soon(phase)))

                await until_acknowledged(sim, sim.plug_in)
                begin = sim.now()
                arm("start")
                reply = await until_acknowledged(sim, lambda begin=begin: sim.call(
                    "StartTransaction", {"connectorId": 1, "idTag": ID_TAG, "meterStart": 0,
                                         "reservationId": 0, "timestamp": sim.local(begin)}))
                tx = int(reply["transactionId"])
                sim.session = Session(tx, begin, begin, last_reading=begin)
                sim.status, sim.info = "Charging", ""
                await until_acknowledged(sim, sim.send_status)
                arm("meter")
                await until_acknowledged(sim, lambda: sim.send_meter_values(600))
                sess, end = sim.session, sim.now()
                stop = {"idTag": ID_TAG, "meterStop": int(sess.energy_wh),
                        "timestamp": sim.local(end), "transactionId": tx,
                        "reason": "EVDisconnected"}
                arm("stop")
                await until_acknowledged(sim, lambda stop=stop: sim.call("StopTransaction",
                                                                         stop))
                sim.session, sim.status = None, "Available"
                closed.append(tx)
                arm("record")
                record_id = 900 + i
                await until_acknowledged(sim, lambda s=sess, e=end, r=record_id: sim.send_record(
                    "currentrecord", s, e, record_id=r))
                if phase == "csv":  # the row is written about now: kill during the append
                    await async_wait_for(lambda: len(rows(log)) >= len(closed) - 1,
                                         timeout=30, what="the previous rows")
                    restarts.append(asyncio.ensure_future(kill_soon("csv")))
                await asyncio.gather(*restarts)
                restarts.clear()
            await async_wait_for(lambda: len(rows(log)) >= len(closed), timeout=60,
                                 what=f"{len(closed)} rows")
        # one more (clean) restart: what the journal and the inbox still hold is read
        # again, and must not come back as a second row
        await asyncio.to_thread(ad.stop)
        await asyncio.to_thread(ad.start)
        await async_wait_for(lambda: "0 closing, 0 to write" in ad.logs(tail=300),
                             timeout=30, what="the session log idle after the restart")
    finally:
        for task in restarts:
            task.cancel()
        await asyncio.to_thread(ad.stop)
    assert sum(kills.values()) == KILLS and all(kills.values()), kills
    got = [int(r["transaction_id"]) for r in rows(log)]
    assert sorted(got) == sorted(closed), f"lost {set(closed) - set(got)}, rows {got}"
    assert len(got) == len(set(got)), "a doubled row"
