"""python -m growatt_thor.simulator --url ws://127.0.0.1:9000/ocpp/ws

Connects like a THOR (the serial is appended to the URL), boots, then charges
in a loop: plug in, StartTransaction, MeterValues, StopTransaction, record.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from .sim import SERIAL, SimSettings, demo


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m growatt_thor.simulator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://127.0.0.1:9000/ocpp/ws",
                   help="the server URL as set in G_ServerURL (serial is appended)")
    p.add_argument("--serial", default=SERIAL)
    p.add_argument("--password", default="12345678", help="G_Authentication (Basic auth)")
    p.add_argument("--heartbeat", type=float, default=60.0, help="seconds between heartbeats")
    p.add_argument("--meter-interval", type=float, default=10.0,
                   help="seconds between MeterValues (the THOR: 120)")
    p.add_argument("--session-minutes", type=float, default=10.0)
    p.add_argument("--pause-minutes", type=float, default=2.0)
    p.add_argument("--reconnect", type=float, nargs=2, default=(2.0, 5.0),
                   metavar=("MIN", "MAX"), help="reconnect delay range (the THOR: 20 70)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = SimSettings(url=a.url, serial=a.serial, password=a.password,
                           heartbeat_interval=a.heartbeat, meter_interval=a.meter_interval,
                           reconnect_delay=tuple(a.reconnect))
    try:
        asyncio.run(demo(settings, a.session_minutes, a.pause_minutes))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
