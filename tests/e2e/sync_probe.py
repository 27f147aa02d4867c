"""A plain synchronous app (the kind most users write) using the hub's API from its thread."""

from appdaemon.adapi import ADAPI


class SyncProbe(ADAPI):
    def initialize(self):
        self.listen_event(self.go, "sync_probe_go")

    def go(self, event, data, kwargs):
        hub = self.get_app("growatt_thor_hub")
        try:
            result = hub.set_max_current(data.get("amps"))
            state = "queued" if result["queued"] else "nothing to do"
        except ValueError as err:
            state = f"refused: {err}"
        self.set_state("sensor.sync_probe", state=state)
