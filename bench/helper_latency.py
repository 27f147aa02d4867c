"""Benchmark: time from a helper change to the ChangeConfiguration on the wire.

The queue is idle for every sample (its spacing has passed), so what is
measured is the path itself: REST/HA -> helper state -> helpers node -> hub's
write queue (including its ``settle`` time, default 1 s, which lets a dragged
slider become one write) -> OCPP frame at the simulated THOR.

    .venv/bin/python -m bench.helper_latency [--samples 30] [--settle 1.0] [--no-ha]

Prints p50/p99 for standalone AppDaemon (helper changed over AppDaemon's REST
API) and through Home Assistant (``input_number.set_value`` called in HA).
Loopback only; a bounded number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "apps" / "growatt_thor")]

from growatt_thor.standalone import PACKAGE  # noqa: E402
from tests.adharness import AppDaemon  # noqa: E402
from tests.conftest import controls_apps  # noqa: E402
from tests.hass import HomeAssistant  # noqa: E402
from tests.helpers import async_wait_for, free_port  # noqa: E402
from tests.e2e.test_standalone import sim_for  # noqa: E402
from growatt_thor.simulator import ThorSimulator  # noqa: E402
from bench.stats import percentile as pct  # noqa: E402

HELPER = "input_number.growatt_thor_max_current"


async def measure(change, sim: ThorSimulator, samples: int, spacing: float) -> list[float]:
    loop = asyncio.get_running_loop()
    out = []
    for i in range(samples):
        value = 10 + i % 2  # alternate, so that each change is a real change
        n = len(sim.calls("ChangeConfiguration"))
        t0 = loop.time()
        await asyncio.to_thread(change, value)
        await async_wait_for(lambda n=n: len(sim.calls("ChangeConfiguration")) > n, timeout=30,
                             interval=0.005, what="the write")
        out.append(sim.call_times("ChangeConfiguration")[n] - t0)
        await asyncio.sleep(spacing + 0.3)  # the queue is idle again for the next sample
    return out


async def run(samples: int, settle: float, with_ha: bool) -> dict[str, list[float]]:
    spacing = 0.5
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        modes = ["standalone"] + (["home assistant"] if with_ha else [])
        for mode in modes:
            port = free_port()
            ha = None
            if mode == "home assistant":
                ha = HomeAssistant(root / "ha", extra_config=PACKAGE.read_text()).start()
                ha.onboard()
                plugins = {"HASS": {"type": "hass", "ha_url": ha.url, "token": ha.token}}
            else:
                plugins = None
            ad = AppDaemon(root / mode.replace(" ", "_"),
                           controls_apps(port, standalone=ha is None, write_spacing=spacing,
                                         poll_pause=spacing),
                           plugins=plugins)
            # the queue's settle time is the one setting this benchmark varies
            ad.apps["growatt_thor_hub"]["write_settle"] = settle
            ad.write_apps(ad.apps)
            await asyncio.to_thread(ad.start)
            sim = sim_for(port)
            try:
                await sim.start()
                await sim.wait_connected()
                await async_wait_for(lambda sim=sim: sim.calls("GetConfiguration"), timeout=20)
                await asyncio.sleep(2)  # start-up sequence done, queue idle
                if ha is None:
                    def change(v, ad=ad):
                        ad.call_service("default", "input_number/set_value",
                                        entity_id=HELPER, value=v)
                else:
                    def change(v, ha=ha):
                        ha.api("POST", "/api/services/input_number/set_value",
                               {"entity_id": HELPER, "value": v})
                results[mode] = await measure(change, sim, samples, spacing)
            finally:
                await sim.stop()
                await asyncio.to_thread(ad.stop)
                if ha is not None:
                    await asyncio.to_thread(ha.stop)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--no-ha", action="store_true")
    args = ap.parse_args()
    results = asyncio.run(run(args.samples, args.settle, not args.no_ha))
    print(f"helper change -> ChangeConfiguration on the wire, idle queue, "
          f"settle {args.settle:g} s, {args.samples} samples each")
    for mode, values in results.items():
        print(f"  {mode:15s} p50 {pct(values, 50) * 1000:7.0f} ms   "
              f"p99 {pct(values, 99) * 1000:7.0f} ms   "
              f"min {min(values) * 1000:6.0f} ms   mean {statistics.mean(values) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
