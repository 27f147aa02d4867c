"""One charger's write queue against a real link and a flaky simulated THOR (no AppDaemon)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from growatt_thor.link import LinkSettings
from growatt_thor.server import CentralSystem
from growatt_thor.thor.writequeue import QueueSettings
from growatt_thor.writer import ChargerWriter, WriterSettings
from tests.helpers import async_wait_for
from tests.integration.test_link import Hooks, sim_for


@pytest.fixture
async def rig():
    hooks = Hooks()
    cs = CentralSystem(hooks, LinkSettings(call_timeout=1, startup_delay=0.05),
                       logging.getLogger("test.cs"))
    await cs.serve("127.0.0.1", 0)
    writers: list[ChargerWriter] = []
    tasks: list[asyncio.Task] = []

    def writer_for(cid: str, **queue: Any) -> ChargerWriter:
        w = ChargerWriter(cid, cs.state(cid), lambda: cs.link(cid),
                          lambda topic, payload: hooks.emit(cid, topic, payload),
                          WriterSettings(queue=QueueSettings(**{
                              "spacing": 0.3, "settle": 0, "backoff": 0.2, "retries": 2,
                              "poll_pause": 0.1, **queue}), max_current=16),
                          logging.getLogger("test.writer"))
        writers.append(w)
        tasks.append(asyncio.ensure_future(w.run()))
        return w

    yield cs, hooks, writer_for
    for t in tasks:
        t.cancel()
    await cs.close()


def results(hooks: Hooks) -> list[tuple[str, str]]:
    return [(p["status"], p["value"]) for _, t, p in hooks.events if t == "write"]


async def test_callerror_and_timeout_are_retried_with_backoff_then_answered(rig):
    cs, hooks, writer_for = rig
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        w = writer_for(sim.s.serial)
        await async_wait_for(lambda: sim.calls("GetConfiguration"), what="start-up")
        sim.fail_next["ChangeConfiguration"] = 1
        sim.ignore_next["ChangeConfiguration"] = 0
        w.set_config("G_MaxCurrent", 10)
        await async_wait_for(lambda: ("Accepted", "10") in results(hooks), timeout=10,
                             what="accepted after a retry")
        assert results(hooks) == [("retrying", "10"), ("Accepted", "10")]
        # a call that gets no answer at all (1 s timeout) is retried too
        sim.ignore_next["ChangeConfiguration"] = 1
        w.set_config("G_MaxCurrent", 12)
        await async_wait_for(lambda: ("Accepted", "12") in results(hooks), timeout=10,
                             what="accepted after a timeout")
        assert [c["value"] for c in sim.calls("ChangeConfiguration")] == ["10", "10", "12", "12"]
        t = sim.call_times("ChangeConfiguration")
        assert t[1] - t[0] >= 0.3 and t[3] - t[2] >= 1.0  # spacing / the timeout itself


async def test_a_write_that_keeps_failing_is_given_up_and_reported(rig):
    cs, hooks, writer_for = rig
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        w = writer_for(sim.s.serial)
        sim.fail_next["ChangeConfiguration"] = 10
        w.set_config("G_ExternalLimitPower", 9)
        await async_wait_for(lambda: any(s == "failed" for s, _ in results(hooks)),
                             timeout=15, what="given up")
        assert len(sim.calls("ChangeConfiguration")) == 3  # first try + 2 retries
        failed = [p for _, t, p in hooks.events if t == "write" and p["status"] == "failed"]
        assert "gave up after 3 attempts" in failed[0]["message"]
        assert w.summary()["length"] == 0


async def test_reboot_required_is_reported_and_queued_writes_follow_the_reboot(rig):
    cs, hooks, writer_for = rig
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        w = writer_for(sim.s.serial)
        await async_wait_for(lambda: sim.calls("GetConfiguration"), what="start-up")
        boots = sim.boots
        w.set_config("G_ChargerMode", "Plug & Charge")
        w.set_config("G_MaxCurrent", 11)  # goes after the reboot
        await async_wait_for(lambda: ("RebootRequired", "1") in results(hooks), timeout=10,
                             what="RebootRequired reported")
        await async_wait_for(lambda: sim.boots > boots and sim.config["G_MaxCurrent"] == "11",
                             timeout=15, what="the queued write after the reboot")
        assert [c["key"] for c in sim.calls("ChangeConfiguration")] == [
            "G_ChargerMode", "G_MaxCurrent"]


async def test_above_the_limit_never_reaches_the_wire(rig):
    cs, hooks, writer_for = rig
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        w = writer_for(sim.s.serial)
        for amps in (40, 32, 16.9, "17", 1e9):
            w.set_config("G_MaxCurrent", amps)
            await async_wait_for(lambda: not w.pending("G_MaxCurrent"), timeout=10)
        values = {c["value"] for c in sim.calls("ChangeConfiguration")}
        assert values == {"16"}


async def test_a_quick_reconnect_restarts_the_spacing_from_the_new_connection(rig):
    """A charger back within one step of the queue's loop (a power cut with a fast
    reconnect) must still get ``spacing`` of quiet before the first write."""
    cs, hooks, writer_for = rig
    async with sim_for(cs) as sim:
        sim.s.reconnect_delay = (0.0, 0.0)
        sim.config["G_ExternalLimitPowerEnable"] = "0"  # no polling: the loop sleeps 5 s
        await sim.wait_connected()
        w = writer_for(sim.s.serial, spacing=2.0)
        await async_wait_for(lambda: w.queue.online, what="queue online")
        w.queue.last_write_end -= 60  # as if the last write was long ago
        old = cs.link(sim.s.serial)
        boots = sim.boots
        await sim.disconnect()
        await async_wait_for(lambda: sim.boots > boots and cs.link(sim.s.serial) is not old
                             and cs.state(sim.s.serial).connected, what="reconnected")
        w.set_config("G_MaxCurrent", 9)  # wakes the loop, which never saw the outage
        await async_wait_for(lambda: sim.calls("ChangeConfiguration"), timeout=10,
                             what="the queued write")
        gap = sim.call_times("ChangeConfiguration")[0] - sim.connected_at[-1]
        assert gap >= 2.0, f"the write came {gap:.2f} s after the reconnect"


async def test_the_arbiter_sends_changes_only_and_a_manual_stop_stands(rig):
    from growatt_thor.thor.arbiter import PLAN, SOLAR, Demand

    cs, hooks, writer_for = rig
    async with sim_for(cs) as sim:
        await sim.wait_connected()
        w = writer_for(sim.s.serial, command_spacing=0.05)
        await async_wait_for(lambda: w.queue.online, what="queue online")
        await sim.plug_in()
        await async_wait_for(lambda: cs.state(sim.s.serial).status == "Preparing")
        w.put_demand(Demand("solar", SOLAR, charge=False))
        w.put_demand(Demand("plan", PLAN, charge=True, current=40, reason="cheap hour"))
        await async_wait_for(lambda: sim.session is not None, timeout=10, what="started")
        assert len(sim.calls("RemoteStartTransaction")) == 1
        await async_wait_for(lambda: ("G_MaxCurrent", "16") in [
            (c["key"], c["value"]) for c in sim.calls("ChangeConfiguration")], timeout=10,
            what="the plan's current, clamped to the limit")
        # the user stops it; the car stays plugged in (Finishing, then Preparing): the
        # same demands again do not start it again
        w.stop("helper")
        await async_wait_for(lambda: sim.session is None, timeout=10, what="stopped")
        for status in ("Finishing", "Preparing"):
            sim.status = status
            await sim.send_status()
            await async_wait_for(lambda s=status: cs.state(sim.s.serial).status == s)
            w.put_demand(Demand("plan", PLAN, charge=True, current=16, reason="cheap hour"))
            w.arbitrate("status")
        assert len(sim.calls("RemoteStartTransaction")) == 1
        # unplugged and plugged in again: a new start
        sim.status = "Available"
        await sim.send_status()
        await async_wait_for(lambda: cs.state(sim.s.serial).status == "Available")
        w.arbitrate("status")
        await sim.plug_in()
        await async_wait_for(lambda: cs.state(sim.s.serial).status == "Preparing")
        w.arbitrate("status")
        await async_wait_for(lambda: len(sim.calls("RemoteStartTransaction")) == 2,
                             timeout=10, what="the start after a new plug-in")
        # the plan lets go: the solar node's "no" decides, and stops the session
        w.withdraw("plan")
        assert w.decision.charge is False and w.decision.by == "solar"
        await async_wait_for(lambda: len(sim.calls("RemoteStopTransaction")) == 2,
                             timeout=10, what="the solar node's stop")
