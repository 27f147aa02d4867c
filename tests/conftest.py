from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from tests.adharness import AppDaemon
from tests.helpers import free_port


def hub_app(port: int, **extra: Any) -> dict[str, Any]:
    return {"module": "growatt_thor.hub", "class": "GrowattThorHub", "host": "127.0.0.1",
            "port": port, "call_timeout": 5, **extra}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """A failed test that ran an AppDaemon shows the end of its logs: a failure seen only
    once in CI can then be read from CI's output."""
    report = yield
    if report.failed and report.when in ("call", "setup"):
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, AppDaemon):
                report.sections.append((f"AppDaemon logs ({name})", value.logs(tail=120)))
    return report


@pytest.fixture
def ocpp_port() -> int:
    return free_port()


@pytest.fixture
def appdaemon(tmp_path: Path, ocpp_port: int) -> Iterator[AppDaemon]:
    """A standalone AppDaemon running the hub on a free port."""
    ad = AppDaemon(tmp_path, {"growatt_thor_hub": hub_app(ocpp_port)})
    ad.start()
    yield ad
    ad.stop()


def controls_apps(port: int, standalone: bool = True, **hub_extra: Any) -> dict[str, Any]:
    """The hub with short queue timings, the helpers node, and (standalone) the helpers."""
    hub = hub_app(port, **{"write_spacing": 1.0, "poll_pause": 1.0, "command_spacing": 0.2,
                           "retry_backoff": 0.5, "grid_poll_interval": 5, **hub_extra})
    apps: dict[str, Any] = {"growatt_thor_hub": hub}
    deps = ["growatt_thor_hub"]
    if standalone:
        apps["growatt_thor_standalone_helpers"] = {"module": "growatt_thor.standalone",
                                                   "class": "StandaloneHelpers"}
        deps.append("growatt_thor_standalone_helpers")
    apps["growatt_thor_helpers"] = {"module": "growatt_thor.helpers", "class": "ThorHelpers",
                                    "dependencies": deps}
    return apps


def solar_app(**args: Any) -> dict[str, Any]:
    """The solar node on the standalone helpers, deciding every second; ``args`` as in
    apps.yaml (default: a grid power sensor, no smoothing)."""
    return {"module": "growatt_thor.solar_node", "class": "SolarSurplus",
            "dependencies": ["growatt_thor_hub", "growatt_thor_standalone_helpers"],
            "interval": 1, **(args or {"grid_power_sensor": "sensor.grid_power",
                                       "smoothing_s": 0})}
