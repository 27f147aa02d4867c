"""Benchmark (not a test): many chargers at once, against the pack and a bare server.

    .venv/bin/python -m bench.load [--chargers 200] [--period-ms 1000] [--seconds 20]
                                   [--mode spread|burst] [--servers pack,bare]
                                   [--power-cut] [--json out.json]

N simulated THORs in this process (the simulator speaks the captured dialect) connect,
boot, start a session, then each sends a MeterValues every P ms for D s: spread evenly
over the period, or all at once (burst). Against (a) the pack in a real AppDaemon
subprocess and (b) ``bench/bare_cs.py``, a bare ``ocpp`` + websockets central system
that only acknowledges, one after the other. Per server: chargers connected, errors, the
MeterValues round trip (p50/p95/p99/max), the server's CPU per message and share of a
core, its RSS before and after; for the pack also the latency from a MeterValues to its
value in the entity, sampled over AppDaemon's REST API. ``--power-cut``: then every
charger drops its connection at once and reconnects and boots (the whole start-up
sequence): time until all are booted and, for the pack, their entities live again. A
``set_max_current`` for every charger is queued during the cut (an AppDaemon event over
REST); each charger's calls after the cut are then checked against the write queue's
spacing (``bench/spacing.py``): no call before the previous one was answered, no write
or grid-meter poll closer to the previous write, poll or connection than the queue
allows (``--write-spacing``, ``--poll-pause``, ``--grid-poll``: the hub's defaults).

Everything runs on 127.0.0.1 and stops after D seconds; the client side shares this
machine's cores with the server, so the numbers are for comparing the two servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "apps" / "growatt_thor")]

from bench import spacing  # noqa: E402
from bench.stats import cpu_seconds, rss_mb, summary_ms  # noqa: E402
from growatt_thor.simulator import SimSettings, ThorSimulator  # noqa: E402
from growatt_thor.thor.config import slug  # noqa: E402
from tests.adharness import AppDaemon  # noqa: E402
from tests.conftest import hub_app  # noqa: E402
from tests.helpers import free_port  # noqa: E402


@dataclass
class Tally:
    """What the load generator sent and got back."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    rtts: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def begin(self) -> None:
        self.sent += 1

    def done(self, rtt: float) -> None:
        self.ok += 1
        self.rtts.append(rtt)

    def failed(self, err: BaseException) -> None:
        self.errors += 1
        kind = type(err).__name__
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def offsets(n: int, period: float, mode: str) -> list[float]:
    """When in the period each charger sends: evenly spread, or all at once."""
    if mode == "burst":
        return [0.0] * n
    return [i * period / n for i in range(n)]


def charger_ids(n: int) -> list[str]:
    return [f"LOAD{i:04d}" for i in range(n)]


def prefix(cid: str) -> str:
    """Each charger's entity prefix, set in apps.yaml (one charger alone would otherwise
    get the default prefix)."""
    return f"thor_{slug(cid)}"


async def send_loop(sim: ThorSimulator, offset: float, period: float, until: float,
                    tally: Tally, sent: Any) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time() + offset
    while due < until:
        await asyncio.sleep(max(0.0, due - loop.time()))
        tally.begin()
        t0 = loop.time()
        try:
            await sim.send_meter_values(period)
            tally.done(loop.time() - t0)
            sent(sim, t0)
        except Exception as err:  # noqa: BLE001  (counted, reported)
            tally.failed(err)
        due += period  # drift-free: the next one is due a period after this one was


class EntitySampler:
    """The latency from a MeterValues to its value in ``sensor.<prefix>_energy`` (REST)."""

    def __init__(self, url: str, max_samples: int = 200) -> None:
        self.url = url
        self.max_samples = max_samples
        self.latencies: list[float] = []
        self._busy = False
        self._tasks: set[asyncio.Task] = set()

    def sent(self, sim: ThorSimulator, t0: float) -> None:
        if self._busy or len(self.latencies) >= self.max_samples or sim.session is None:
            return
        self._busy = True
        expected = f"{int(sim.session.energy_wh) / 1000:.3f}"
        eid = f"sensor.{prefix(sim.s.serial)}_energy"
        task = asyncio.ensure_future(self._watch(eid, expected, t0))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, eid: str, expected: str, t0: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while loop.time() - t0 < 10:
                if await asyncio.to_thread(self._state, eid) == expected:
                    self.latencies.append(loop.time() - t0)
                    return
                await asyncio.sleep(0.005)
        finally:
            self._busy = False

    def _state(self, eid: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/appdaemon/state/default/{eid}",
                                    timeout=5) as resp:
            got = json.loads(resp.read() or b"{}")
        got = got.get("state", got) if isinstance(got, dict) else {}
        return got.get("state") if isinstance(got, dict) else None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def states(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/appdaemon/state/default", timeout=10) as resp:
        got = json.loads(resp.read() or b"{}")
    return got.get("state", got)


def fire_event(url: str, event: str, data: dict[str, Any]) -> None:
    req = urllib.request.Request(f"{url}/api/appdaemon/event/default/{event}",
                                 data=json.dumps(data).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


WRITE_AMPS = "10"  # what the bench asks every charger for during the power cut


def spacing_after(sims: list[ThorSimulator], seen: dict[int, int], t0: float,
                  rules: spacing.Rules) -> dict[str, Any]:
    """The write queue's spacing, charger by charger, after the cut (bench/spacing.py)."""
    reps = []
    for s in sims:
        i = seen[id(s)]
        calls = [spacing.Call(f[2], f[3], at, ans) for f, at, ans in
                 zip(s.received[i:], s.received_at[i:], s.answered_at[i:])]
        reps.append(spacing.check(calls, [t for t in s.connected_at if t >= t0], rules))
    gaps = [r.min_write_gap_s for r in reps if r.min_write_gap_s is not None]
    return {"queue_calls": sum(r.queue_calls for r in reps),
            "overlapping_calls": sum(r.overlaps for r in reps),
            "spacing_violations": sum(len(r.violations) for r in reps),
            "first_violations": [v for r in reps for v in r.violations][:5],
            "min_write_gap_s": round(min(gaps), 2) if gaps else None}


async def power_cut(sims: list[ThorSimulator], url: str | None,
                    rules: spacing.Rules | None = None) -> dict[str, Any]:
    """Every charger drops its connection at once, then reconnects and boots."""
    loop = asyncio.get_running_loop()
    boots = {id(s): s.boots for s in sims}
    seen = {id(s): len(s.received) for s in sims}  # the server's calls before the cut
    t0 = loop.time()
    for s in sims:
        s.s.reconnect_delay = (0.0, 0.05)
    await asyncio.gather(*(s.disconnect() for s in sims), return_exceptions=True)
    if url is not None:  # a write waits in every charger's queue while it is away
        await asyncio.gather(*(asyncio.to_thread(
            fire_event, url, "growatt_thor_command",
            {"command": "set_max_current", "value": WRITE_AMPS, "charger_id": s.s.serial})
            for s in sims))
    while not all(s.boots > boots[id(s)] and s.connected.is_set() for s in sims):
        if loop.time() - t0 > 120:
            break
        await asyncio.sleep(0.05)
    booted = loop.time() - t0
    out = {"booted": sum(s.boots > boots[id(s)] for s in sims), "all_booted_s": round(booted, 2)}
    if url is not None:
        # live: its start-up sequence ran to the end (the grid meter read, its last step)
        # and its connected entity says so
        while loop.time() - t0 < 120:
            now = await asyncio.to_thread(states, url)
            live = [s for s in sims
                    if any(f[2] == "DataTransfer" for f in s.received[seen[id(s)]:])
                    and (now.get(f"binary_sensor.{prefix(s.s.serial)}_connected")
                         or {}).get("state") == "on"]
            if len(live) == len(sims):
                break
            await asyncio.sleep(0.25)
        out |= {"entities_live": len(live), "all_live_s": round(loop.time() - t0, 2)}

        def written(s: ThorSimulator) -> bool:
            return any(f[2] == "ChangeConfiguration" and f[3].get("value") == WRITE_AMPS
                       for f in s.received[seen[id(s)]:])

        # the queued write, then one grid-meter poll after it (when the queue polls)
        wait = rules.poll_pause + rules.grid_poll_interval + rules.spacing + 30
        while loop.time() - t0 < wait:
            if all(written(s) and any(f[2] == "DataTransfer" for f in
                                      s.received[seen[id(s)] + 4:]) for s in sims):
                break
            await asyncio.sleep(0.25)
        out |= {"writes_after_cut": sum(written(s) for s in sims),
                "writes_all_done_s": round(loop.time() - t0, 2),
                **spacing_after(sims, seen, t0, rules)}
    return out


async def run_server(kind: str, a: argparse.Namespace, root: Path) -> dict[str, Any]:
    port = free_port()
    ids = charger_ids(a.chargers)
    ad: AppDaemon | None = None
    bare: asyncio.subprocess.Process | None = None
    if kind == "pack":
        ad = AppDaemon(root / "pack", {"growatt_thor_hub": hub_app(
            port, chargers={cid: {"prefix": prefix(cid)} for cid in ids}, call_timeout=15,
            write_spacing=a.write_spacing, poll_pause=a.poll_pause,
            grid_poll_interval=a.grid_poll)},
            appdaemon={"production_mode": True} if a.production_mode else None)
        await asyncio.to_thread(ad.start)
        pid = ad.proc.pid
    else:
        bare = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bare_cs", "--port", str(port), cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        await asyncio.wait_for(bare.stdout.readline(), 30)  # listening
        pid = bare.pid
    sims = [ThorSimulator(SimSettings(url=f"ws://127.0.0.1:{port}/ocpp/ws", serial=cid,
                                      reconnect_delay=(1.0, 3.0), call_timeout=15))
            for cid in ids]
    out: dict[str, Any] = {"server": kind}
    sampler = EntitySampler(ad.url) if ad is not None else None
    try:
        await asyncio.gather(*(s.start() for s in sims))
        await asyncio.gather(*(s.wait_connected(timeout=120) for s in sims),
                             return_exceptions=True)
        out["connected"] = sum(s.connected.is_set() for s in sims)
        await asyncio.gather(*(s.charge() for s in sims if s.connected.is_set()),
                             return_exceptions=True)
        await asyncio.sleep(2)  # start-up sequences done: measure the steady state only
        tally = Tally()
        rss0, cpu0, t0 = rss_mb(pid), cpu_seconds(pid), time.monotonic()
        loop = asyncio.get_running_loop()
        until = loop.time() + a.seconds
        period = a.period_ms / 1000
        await asyncio.gather(*(send_loop(s, off, period, until, tally,
                                         sampler.sent if sampler else lambda *_: None)
                               for s, off in zip(sims, offsets(len(sims), period, a.mode))
                               if s.session is not None))
        wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        out |= {"sent": tally.sent, "ok": tally.ok, "errors": tally.errors,
                "error_kinds": tally.error_kinds, "round_trip_ms": summary_ms(tally.rtts),
                "cpu_ms_per_message": round(cpu / max(tally.ok, 1) * 1000, 2),
                "cpu_share_of_a_core": round(cpu / wall, 2),
                "rss_mb_before": round(rss0, 1), "rss_mb_after": round(rss_mb(pid), 1)}
        if sampler is not None:
            await asyncio.sleep(0.5)
            out["entity_latency_ms"] = {**summary_ms(sampler.latencies),
                                        "samples": len(sampler.latencies)}
        if a.power_cut:
            rules = spacing.Rules(spacing=a.write_spacing, command_spacing=2.0,
                                  poll_pause=a.poll_pause, grid_poll_interval=a.grid_poll)
            out["power_cut"] = await power_cut(sims, ad.url if ad is not None else None, rules)
    finally:
        if sampler is not None:
            await sampler.close()
        await asyncio.gather(*(s.stop() for s in sims), return_exceptions=True)
        if ad is not None:
            await asyncio.to_thread(ad.stop)
            out["tracebacks_in_log"] = ad.logs(tail=100000).count("Traceback")
        if bare is not None:
            bare.terminate()
            await asyncio.wait_for(bare.wait(), 10)
    return out


async def run(a: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        return [await run_server(kind, a, Path(tmp)) for kind in a.servers]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chargers", type=int, default=200)
    p.add_argument("--period-ms", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--mode", choices=("spread", "burst"), default="spread")
    p.add_argument("--servers", type=lambda s: s.split(","), default=["pack", "bare"])
    p.add_argument("--power-cut", action="store_true")
    p.add_argument("--write-spacing", type=float, default=15.0, help="the hub's write_spacing")
    p.add_argument("--poll-pause", type=float, default=20.0, help="the hub's poll_pause")
    p.add_argument("--grid-poll", type=float, default=30.0,
                   help="the hub's grid_poll_interval")
    p.add_argument("--production-mode", action="store_true",
                   help="AppDaemon's production_mode: no check of the app files every second")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    results = asyncio.run(run(a))
    for r in results:
        print(json.dumps(r))
    if a.json:
        a.json.write_text(json.dumps({"args": {k: v for k, v in vars(a).items()
                                               if k != "json"}, "results": results},
                                     indent=1, default=str))


if __name__ == "__main__":
    main()
