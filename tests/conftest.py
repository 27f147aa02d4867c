from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.adharness import AppDaemon
from tests.helpers import free_port


def hub_app(port: int, **extra: Any) -> dict[str, Any]:
    return {"module": "growatt_thor.hub", "class": "GrowattThorHub", "host": "127.0.0.1",
            "port": port, "call_timeout": 5, **extra}


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
