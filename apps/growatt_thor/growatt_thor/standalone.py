"""The helpers without Home Assistant: entities plus the HA services that change them.

For AppDaemon running standalone (no HA plugin). It creates every helper of the
pack's HA package file (``homeassistant/growatt_thor_package.yaml``, the same
file HA users copy) in AppDaemon's ``default`` namespace and registers the
services HA would offer, with HA's checks: ``input_number/set_value``,
``input_boolean/turn_on|turn_off|toggle``, ``input_select/select_option``,
``input_datetime/set_datetime``, ``input_button/press``. Dashboards, the REST
API and the helpers node then work the same with and without HA.

apps.yaml::

    growatt_thor_standalone_helpers:
      module: growatt_thor.standalone
      class: StandaloneHelpers
      priority: 10   # before the helpers node

Do not run it beside a real Home Assistant: HA owns these entities there.
"""

from __future__ import annotations

from datetime import date, datetime, UTC
from pathlib import Path
from typing import Any

import yaml
from appdaemon.adapi import ADAPI

from .adapter import load_config
from .thor.config import StandaloneHelpersConfig
from .thor.controls import BadValue, as_bool, hhmm

PACKAGE = Path(__file__).with_name("homeassistant") / "growatt_thor_package.yaml"


def initial_state(domain: str, conf: dict[str, Any]) -> Any:
    if domain == "input_number":
        return float(conf.get("initial", conf.get("min", 0)))
    if domain == "input_boolean":
        return "on" if conf.get("initial") else "off"
    if domain == "input_select":
        return conf.get("initial") or conf["options"][0]
    if domain == "input_datetime":
        if conf.get("initial"):
            return conf["initial"]
        if conf.get("has_date") and conf.get("has_time"):
            return f"{date.today().isoformat()} 00:00:00"
        return date.today().isoformat() if conf.get("has_date") else "00:00:00"
    return "unknown"  # input_button: the time of the last press


def attributes(domain: str, name: str, conf: dict[str, Any]) -> dict[str, Any]:
    attrs = {"friendly_name": conf.get("name", name), "editable": "false"}
    for key in ("icon", "unit_of_measurement", "min", "max", "step", "mode", "options",
                "has_date", "has_time"):
        if key in conf:
            attrs[key] = conf[key]
    return attrs


class StandaloneHelpers(ADAPI):
    async def initialize(self) -> None:
        self.cfg: StandaloneHelpersConfig = await load_config(self, StandaloneHelpersConfig,
                                                              "default")
        path = Path(self.cfg.package) if self.cfg.package else PACKAGE
        package = await self.run_in_executor(lambda: yaml.safe_load(path.read_text()))
        self.defs: dict[str, tuple[str, dict[str, Any]]] = {}
        ns = self.cfg.namespace
        for domain, entries in package.items():
            for name, conf in (entries or {}).items():
                conf = conf or {}
                eid = f"{domain}.{name}"
                self.defs[eid] = (domain, conf)
                if not await self.entity_exists(eid, namespace=ns):
                    await self.set_state(eid, state=initial_state(domain, conf),
                                         attributes=attributes(domain, name, conf),
                                         namespace=ns, check_existence=False)
        for service in ("input_number/set_value", "input_boolean/turn_on",
                        "input_boolean/turn_off", "input_boolean/toggle",
                        "input_select/select_option", "input_datetime/set_datetime",
                        "input_button/press"):
            self.register_service(service, self._service, namespace=ns)
        self.log(f"{len(self.defs)} helpers from {path.name} in namespace {ns!r}")

    async def _service(self, namespace: str, domain: str, service: str,
                       data: dict[str, Any]) -> Any:
        ids = data.get("entity_id")
        for eid in [ids] if isinstance(ids, str) else list(ids or []):
            try:
                state = await self._new_state(eid, domain, service, data)
            except BadValue as err:
                self.log(f"{domain}/{service} {eid}: {err}", level="WARNING")
                continue
            await self.set_state(eid, state=state, namespace=namespace)

    async def _new_state(self, eid: str, domain: str, service: str,
                         data: dict[str, Any]) -> Any:
        if eid not in self.defs or self.defs[eid][0] != domain:
            raise BadValue("no such helper")
        conf = self.defs[eid][1]
        if service == "set_value":
            try:
                value = float(data.get("value"))
            except (TypeError, ValueError):
                raise BadValue(f"{data.get('value')!r} is not a number") from None
            if not conf.get("min", value) <= value <= conf.get("max", value):
                raise BadValue(f"{value} is outside {conf.get('min')}..{conf.get('max')}")
            return value
        if service in ("turn_on", "turn_off"):
            return service[5:]
        if service == "toggle":
            now = await self.get_state(eid, namespace=self.cfg.namespace)
            return "off" if as_bool(now) else "on"
        if service == "select_option":
            if data.get("option") not in conf.get("options", []):
                raise BadValue(f"{data.get('option')!r} is not an option")
            return data["option"]
        if service == "set_datetime":
            if conf.get("has_date") and conf.get("has_time"):  # as HA: "datetime"
                try:
                    when = datetime.fromisoformat(str(data.get("datetime")))
                except ValueError:
                    raise BadValue(f"{data.get('datetime')!r} is not a date and time") from None
                return when.strftime("%Y-%m-%d %H:%M:%S")
            if conf.get("has_date") and not conf.get("has_time"):
                try:
                    return date.fromisoformat(str(data.get("date"))).isoformat()
                except ValueError:
                    raise BadValue(f"{data.get('date')!r} is not a date") from None
            return f"{hhmm(data.get('time'))}:00"
        if service == "press":
            return datetime.now(UTC).isoformat()
        raise BadValue(f"unknown service {service}")
