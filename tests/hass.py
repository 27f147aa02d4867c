"""A real Home Assistant for the end-to-end tests, in its own cached venv.

Starts ``hass -c <tmp>`` on a free loopback port with a minimal config (no
integration that reaches the internet), onboards a user without a person and
gets a long-lived access token.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as ws_connect

from tests.adharness import REPO, http_json
from tests.helpers import free_port, stop_process_group, wait_for

CONFIG = """
homeassistant:
  name: Test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: Europe/Amsterdam
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
websocket_api:
onboarding:
logger:
  default: warning
"""


def ha_venv() -> Path:
    venv = os.environ.get("GROWATT_THOR_HA_VENV")
    if not venv:
        venv = subprocess.run([str(REPO / "scripts" / "setup-ha"), "--print"], check=True,
                              capture_output=True, text=True).stdout.strip()
    path = Path(venv)
    if not (path / ".complete").exists():
        subprocess.run([str(REPO / "scripts" / "setup-ha")], check=True)
    return path


class HomeAssistant:
    def __init__(self, root: Path, extra_config: str = "") -> None:
        self.root = root
        self.config_dir = root / "ha"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.config_dir / "configuration.yaml").write_text(CONFIG.format(port=self.port)
                                                            + extra_config)
        self.venv = ha_venv()
        self.proc: subprocess.Popen | None = None
        self.token: str | None = None

    def start(self, timeout: float = 240) -> HomeAssistant:
        self.log = open(self.root / "ha.log", "ab")
        self.proc = subprocess.Popen([str(self.venv / "bin" / "hass"), "-c", str(self.config_dir)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"hass exited {self.proc.returncode}: {self.tail()}")
            try:
                http_json("GET", f"{self.url}/api/onboarding", timeout=3)
                return True
            except urllib.error.HTTPError as err:
                return err.code in (401, 404)  # up, onboarding done
            except OSError:
                return False
        wait_for(up, timeout=timeout, interval=0.5, what="Home Assistant HTTP", fail_fast=True)
        return self

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc, timeout)
        self.log.close()
        self.proc = None

    def tail(self, n: int = 60) -> str:
        p = self.root / "ha.log"
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:]) if p.exists() else ""

    def onboard(self) -> str:
        """Create the owner and return a long-lived access token."""
        client_id = f"{self.url}/"
        res = http_json("POST", f"{self.url}/api/onboarding/users", {
            "client_id": client_id, "name": "Test", "username": "test", "password": "test-pass-1",
            "language": "en"})
        body = urllib.parse.urlencode({"grant_type": "authorization_code",
                                       "code": res["auth_code"], "client_id": client_id}).encode()
        req = urllib.request.Request(f"{self.url}/auth/token", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            access = json.loads(resp.read())["access_token"]
        with ws_connect(f"ws://127.0.0.1:{self.port}/api/websocket", open_timeout=10) as ws:
            json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"type": "auth", "access_token": access}))
            assert json.loads(ws.recv(timeout=10))["type"] == "auth_ok"
            ws.send(json.dumps({"id": 1, "type": "auth/long_lived_access_token",
                                "client_name": "appdaemon-tests", "lifespan": 30}))
            reply = json.loads(ws.recv(timeout=10))
            assert reply.get("success"), reply
            self.token = reply["result"]
        return self.token

    def finish_onboarding(self) -> None:
        """Mark every onboarding step done (HA's frontend shows onboarding until then).

        Posting the core_config step would set up integrations that reach the internet, so
        the step list is written to HA's own store while it is stopped, then HA restarts.
        """
        self.stop()
        store = self.config_dir / ".storage" / "onboarding"
        store.write_text(json.dumps({"version": 4, "minor_version": 1, "key": "onboarding",
                                     "data": {"done": ["user", "core_config", "analytics",
                                                       "integration"]}}))
        self.start()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(method, f"{self.url}{path}", body,
                         headers={"Authorization": f"Bearer {self.token}"})

    def ws_command(self, command: dict[str, Any]) -> Any:
        """One command over HA's websocket API (as the frontend sends it); its result."""
        with ws_connect(f"ws://127.0.0.1:{self.port}/api/websocket", open_timeout=10) as ws:
            json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"type": "auth", "access_token": self.token}))
            assert json.loads(ws.recv(timeout=10))["type"] == "auth_ok"
            ws.send(json.dumps({"id": 1, **command}))
            reply = json.loads(ws.recv(timeout=30))
            assert reply.get("success"), reply
            return reply["result"]

    def notifications(self) -> list[dict[str, Any]]:
        """HA's persistent notifications (not states since 2023.6: read over the websocket)."""
        return list(self.ws_command({"type": "persistent_notification/get"}))

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.api("GET", "/api/states")}
