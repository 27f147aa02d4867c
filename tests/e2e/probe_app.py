"""A test app that uses the hub like any other node would: events and get_app."""

from appdaemon.adapi import ADAPI


class Probe(ADAPI):
    async def initialize(self) -> None:
        self.hub = await self.get_app("growatt_thor_hub")
        await self.listen_event(self.on_event, "growatt_thor", namespace="growatt_thor")

    async def on_event(self, event, data, kwargs) -> None:
        if data.get("topic") == "state":
            return
        await self.set_state("sensor.probe_last_topic", state=data["topic"],
                             attributes={"charger_id": data["charger_id"]}, namespace="default")
        snap = self.hub.charger_snapshot(data["charger_id"])
        await self.set_state("sensor.probe_snapshot_status", state=snap["status"],
                             attributes={"model": snap["model"]}, namespace="default")
