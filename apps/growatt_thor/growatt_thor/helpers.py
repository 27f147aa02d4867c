"""The helpers node: Home Assistant helpers as the controls of one charger.

apps.yaml::

    growatt_thor_helpers:
      module: growatt_thor.helpers
      class: ThorHelpers
      dependencies: [growatt_thor_hub]
      # hub: growatt_thor_hub        # the hub app's name
      # charger_id: XGJ00003214700CA  # needed with several chargers
      # helper_prefix: growatt_thor   # default ids: input_number.growatt_thor_max_current ...
      # helpers: {max_current: input_number.my_own_slider}

A helper change becomes a request to the hub's write queue (never a write of
its own). The helpers follow the charger: after GetConfiguration and after every
answered write they are set to what the charger reports, and that update is not
taken as a new request. The two schedule times are staged: once the user changes
one, it keeps the user's value until "apply schedule" writes both. A write the
charger refuses puts the helper back and says why (log, and an HA persistent
notification when HA is there).
"""

from __future__ import annotations

import time
from typing import Any

from appdaemon.adapi import ADAPI

from .adapter import NOT_A_VALUE, connect_to_hub, notify_ha
from .hub import EVENT
from .thor import controls
from .thor.config import HelpersConfig

_BY_NAME = {h.name: h for h in controls.HELPERS}
_BOOST = ("pv_boost", "pv_boost_start", "pv_boost_stop", "pv_boost_energy", "pv_boost_by")


class ThorHelpers(ADAPI):
    async def initialize(self) -> None:
        self.hub, self.cfg = await connect_to_hub(self, HelpersConfig)
        self.ns = self.hub.cfg.ha_namespace
        self.ids = controls.helper_ids(self.cfg.helper_prefix, self.cfg.helpers)
        self._echo: dict[str, Any] = {}  # helper -> value we set (not a user request)
        # schedule times the user changed and has not applied yet: syncs leave them alone
        self._staged: set[str] = set()
        self._synced: dict[str, Any] = {}  # helper -> the value we last showed in it
        self._ap_armed_at: float | None = None

        for name, eid in self.ids.items():
            if not await self.entity_exists(eid, namespace=self.ns):
                self.log(f"helper {eid} ({name}) does not exist: add the pack's HA package "
                         f"(or run growatt_thor.standalone without HA)", level="WARNING")
            await self.listen_state(self._on_helper, eid, namespace=self.ns, control=name)
        await self.listen_event(self._on_hub_event, EVENT, namespace=self.hub.cfg.namespace)
        cid = self._charger()
        if cid is not None:
            await self._sync_all(cid)
        self.log(f"controls for {cid or 'the charger'}: "
                 + ", ".join(f"{n}={e}" for n, e in self.ids.items()))

    # --- which charger ------------------------------------------------------------------

    def _charger(self) -> str | None:
        return self.cfg.charger_id or self.hub.only_charger()

    def _mine(self, charger_id: str | None) -> bool:
        return charger_id is not None and charger_id == self._charger()

    # --- helper -> charger --------------------------------------------------------------

    async def _on_helper(self, entity: str, attribute: str, old: Any, new: Any,
                         kwargs: dict[str, Any]) -> None:
        name = kwargs["control"]
        if new in NOT_A_VALUE:
            return
        if entity in self._echo:
            expected = self._echo.pop(entity)
            if controls.same_helper_value(expected, new):
                return  # our own sync, not a user request
        cid = self._charger()
        source = f"helper {entity}"
        try:
            if cid is None:
                raise ValueError("no charger known yet (or several: set charger_id)")
            await self._request(name, new, cid, source)
        except ValueError as err:
            self.log(f"{entity} = {new!r}: {err}", level="WARNING")
            await notify_ha(self, self.ns, "Growatt THOR: value not sent", f"{entity}: {err}")
            if cid is not None:
                await self._sync_helper(cid, name, handled=True)

    async def _request(self, name: str, value: Any, cid: str, source: str) -> None:
        hub = self.hub
        helper = _BY_NAME.get(name)
        if helper is not None and helper.staged:
            self._staged.add(name)
            return  # staged: its "apply" button writes it with the others
        if helper is not None and helper.key is not None:
            result = hub.set_config(helper.key, value, cid, source)
        elif name == "apply_schedule":
            start = await self.get_state(self.ids["schedule_start"], namespace=self.ns)
            stop = await self.get_state(self.ids["schedule_stop"], namespace=self.ns)
            result = hub.set_schedule(start, stop, cid, source)
            self._staged -= {"schedule_start", "schedule_stop"}  # the charger's value again
        elif name == "apply_pv_boost":
            values = {n: await self.get_state(self.ids[n], namespace=self.ns)
                      for n in _BOOST}
            self._staged -= set(_BOOST)  # applied or refused: the charger's values again
            try:
                result = hub.set_pv_boost(values["pv_boost"], values["pv_boost_start"],
                                          values["pv_boost_stop"], values["pv_boost_energy"],
                                          values["pv_boost_by"], cid, source)
            except ValueError:
                for n in _BOOST:
                    await self._sync_helper(cid, n, force=True)
                raise
            if not result["queued"]:
                for n in _BOOST:
                    await self._sync_helper(cid, n, force=True)
            return
        elif name == "start_charging":
            result = hub.start_charging(cid, source)
        elif name == "stop_charging":
            result = hub.stop_charging(cid, source)
        elif name == "access_point_mode":
            await self._access_point(cid, source)
            return
        else:
            return
        if result.get("note"):
            await notify_ha(self, self.ns, "Growatt THOR: value adjusted", result["note"])
        if helper is not None and helper.key is not None and not result["queued"]:
            # nothing to write: show the charger's value
            await self._sync_helper(cid, name, handled=True)

    async def _access_point(self, cid: str, source: str) -> None:
        now = time.monotonic()
        window = self.cfg.access_point_confirm_seconds
        if self._ap_armed_at is not None and now - self._ap_armed_at <= window:
            self._ap_armed_at = None
            self.hub.access_point_mode(True, cid, source)
            self.log("access-point mode confirmed: queued", level="WARNING")
            return
        self._ap_armed_at = now
        msg = (f"Access-point mode takes the charger off the network (it opens its own "
               f"Wi-Fi for set-up). Press the button again within {window:.0f} s to confirm.")
        self.log(msg, level="WARNING")
        await notify_ha(self, self.ns, "Growatt THOR: confirm access-point mode", msg)

    # --- charger -> helper --------------------------------------------------------------

    async def _on_hub_event(self, event: str, data: dict[str, Any], kwargs: Any) -> None:
        cid = data.get("charger_id")
        if not self._mine(cid):
            return
        topic, payload = data.get("topic"), data.get("payload") or {}
        if topic == "config":
            await self._sync_all(cid)
        elif topic == "apply":
            if payload.get("result") != "applied":
                msg = (f"{payload.get('setting')}: {payload.get('result')} - "
                       f"{payload.get('message')}")
                self.log(f"not applied, helpers show the charger's values: {msg}",
                         level="WARNING")
                await notify_ha(self, self.ns, "Growatt THOR: setting not applied", msg)
            for name in (_BOOST if payload.get("setting") == "solar boost" else ()):
                await self._sync_helper(cid, name, force=True)
        elif topic == "write" and payload.get("key"):
            status = payload.get("status")
            if status == "retrying":
                return
            if status not in controls.WRITE_OK:
                msg = (f"{payload['key']}={payload.get('value')}: {status}"
                       f"{' - ' + payload['message'] if payload.get('message') else ''}")
                self.log(f"write refused, helper put back: {msg}", level="WARNING")
                await notify_ha(self, self.ns, "Growatt THOR: setting not changed", msg)
            elif status == "RebootRequired":
                await notify_ha(self, self.ns, "Growatt THOR: charger reboots",
                                f"{payload['key']}={payload.get('value')} needs a reboot; "
                                f"the charger restarts now.")
            for h in controls.HELPERS:
                if h.shows == payload["key"]:
                    await self._sync_helper(cid, h.name, handled=True)
        elif topic == "write" and payload.get("status") not in controls.WRITE_OK + ("retrying",):
            await notify_ha(self, self.ns, "Growatt THOR: command not done",
                            f"{payload.get('value')}: {payload.get('status')} - "
                            f"{payload.get('message')}")

    async def _sync_all(self, cid: str) -> None:
        for h in controls.HELPERS:
            await self._sync_helper(cid, h.name)

    async def _sync_helper(self, cid: str, name: str, force: bool = False,
                           handled: bool = False) -> None:
        """Show the charger's value in the helper, unless a write of it is waiting or
        the user has just edited it.

        A helper that no longer shows what we last put there was edited by the user,
        even if its state callback has not run yet: writing the charger's value over
        it would lose the edit (the callback would then request the old value). Once
        the user's request has been dealt with (``handled``: queued, refused, or
        answered by the charger) the helper shows the charger's value again.

        A staged helper keeps the user's value until its "apply" button has been
        pressed; after that (``force``) it shows the charger's again."""
        helper = _BY_NAME.get(name)
        key = helper.shows if helper is not None else None
        if key is None:
            return
        if helper.staged and not force and name in self._staged:
            return  # the user's edit, waiting for its "apply" button
        eid = self.ids[name]
        # One read, and no await between it and the service call: a user's edit that lands
        # in between would otherwise be overwritten with the charger's (old) value, and the
        # callback of our overwrite would then ask for that old value.
        now = await self.get_state(eid, namespace=self.ns)
        if not (force or handled):
            last = self._synced.get(eid)
            if last is not None and now not in NOT_A_VALUE \
                    and not controls.same_helper_value(now, last):
                if helper.staged:
                    self._staged.add(name)
                return
        config = (self.hub.charger_snapshot(cid) or {}).get("config") or {}
        if key not in config or self.hub.write_pending(key, cid):
            return
        try:
            value = controls.helper_value(key, config[key])
        except ValueError:
            return
        if isinstance(value, tuple):  # a window: start and stop
            value = value[0] if name.endswith("_start") else value[1]
        await self._set_helper(eid, value, now)

    async def _set_helper(self, eid: str, value: Any, now: Any) -> None:
        """Put ``value`` in the helper that shows ``now``."""
        self._synced[eid] = value
        if now not in NOT_A_VALUE and controls.same_helper_value(now, value):
            return
        domain = eid.split(".", 1)[0]
        if domain == "input_number":
            service, data = "input_number/set_value", {"value": value}
        elif domain == "input_boolean":
            service, data = f"input_boolean/turn_{'on' if value else 'off'}", {}
            value = "on" if value else "off"
        elif domain == "input_select":
            service, data = "input_select/select_option", {"option": value}
        elif domain == "input_datetime":
            service, data = "input_datetime/set_datetime", {"time": value}
        else:
            return
        self._echo[eid] = value
        try:
            await self.call_service(service, entity_id=eid, namespace=self.ns, **data)
        except Exception as err:
            self._echo.pop(eid, None)
            self.log(f"could not set {eid} to {value!r}: {err}", level="WARNING")
