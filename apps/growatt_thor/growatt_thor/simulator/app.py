"""The simulated THOR as an AppDaemon app, for the demo and for trying the pack.

apps.yaml::

    simulated_thor:
      module: growatt_thor.simulator.app
      class: SimulatedThor
      url: ws://127.0.0.1:9000/ocpp/ws   # or ws://127.0.0.1:5050/app (AppDaemon's port)
      # serial: XGJ00003214700CA
      # password: "12345678"             # G_Authentication, sent as HTTP Basic auth
      meter_interval: 10
      session_minutes: 10
      pause_minutes: 2

With a real THOR, delete this block. The simulator shares nothing with the pack
but the wire: it connects over a real socket like the charger does.
"""

from __future__ import annotations

import asyncio
import contextlib

from appdaemon.adapi import ADAPI

from .sim import SimSettings, demo


class SimulatedThor(ADAPI):
    async def initialize(self) -> None:
        a, d = self.args, SimSettings()
        settings = SimSettings(
            url=str(a.get("url", d.url)),
            serial=str(a.get("serial", d.serial)),
            password=str(a.get("password", d.password)),
            heartbeat_interval=float(a.get("heartbeat_interval", d.heartbeat_interval)),
            meter_interval=float(a.get("meter_interval", 10)),
            reconnect_delay=(2.0, 5.0),
        )
        self._task = await self.create_task(demo(
            settings, float(a.get("session_minutes", 10)), float(a.get("pause_minutes", 2))))
        self.log(f"Simulated THOR {settings.serial} connecting to {settings.url}")

    async def terminate(self) -> None:
        task = getattr(self, "_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
