"""Run the real AppDaemon as a subprocess with the pack, and talk to it over REST.

Each instance writes a fresh config dir (free loopback ports, a copy of the
pack), starts ``python -m appdaemon -c <dir>``, and waits until the named apps
are running (``admin/app.<name>`` == ``idle``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import free_port, stop_process_group, wait_for

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("growatt_thor",)  # the one app folder HACS installs


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


class AppDaemon:
    def __init__(self, root: Path, apps: dict[str, dict[str, Any]],
                 plugins: dict[str, Any] | None = None, time_zone: str = "Europe/Amsterdam",
                 env: dict[str, str] | None = None, extra_modules: tuple[Path, ...] = (),
                 http: dict[str, Any] | None = None,
                 appdaemon: dict[str, Any] | None = None) -> None:
        self.root = root
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.apps = apps
        self.plugins = plugins
        self.time_zone = time_zone
        self.env = env or {}
        self.extra_modules = extra_modules
        self.http_extra = http or {}
        self.appdaemon_extra = appdaemon or {}
        self.proc: subprocess.Popen | None = None
        self._write_config()

    @property
    def config_dir(self) -> Path:
        return self.root / "conf"

    def _write_config(self) -> None:
        conf = self.config_dir
        apps_dir = conf / "apps"
        apps_dir.mkdir(parents=True, exist_ok=True)
        for pkg in PACKAGES:
            dst = apps_dir / pkg
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(REPO / "apps" / pkg, dst,
                            ignore=shutil.ignore_patterns("__pycache__"))
        for module in self.extra_modules:
            shutil.copy(module, apps_dir / module.name)
        (apps_dir / "apps.yaml").write_text(yaml.safe_dump(self.apps, sort_keys=False))
        ad: dict[str, Any] = {
            "appdaemon": {"latitude": 52.37, "longitude": 4.89, "elevation": 0,
                          "time_zone": self.time_zone, **self.appdaemon_extra},
            "http": {"url": self.url, **self.http_extra},
            "api": {},
            "hadashboard": {},
            "logs": {"main_log": {"filename": str(self.root / "main.log")},
                     "error_log": {"filename": str(self.root / "error.log")}},
        }
        if self.plugins:
            ad["appdaemon"]["plugins"] = self.plugins
        (conf / "appdaemon.yaml").write_text(yaml.safe_dump(ad, sort_keys=False))
        dash = REPO / "dashboards"
        if dash.exists():
            shutil.copytree(dash, conf / "dashboards", dirs_exist_ok=True)
            shutil.copytree(dash / "custom_widgets", conf / "custom_widgets", dirs_exist_ok=True)

    def write_apps(self, apps: dict[str, dict[str, Any]]) -> None:
        """Replace apps.yaml (AppDaemon notices and reloads)."""
        self.apps = apps
        (self.config_dir / "apps" / "apps.yaml").write_text(yaml.safe_dump(apps, sort_keys=False))

    # --- process ----------------------------------------------------------------------

    def start(self, wait_apps: list[str] | None = None, timeout: float = 60) -> AppDaemon:
        self.stdout = open(self.root / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appdaemon", "-c", str(self.config_dir)],
            stdout=self.stdout, stderr=subprocess.STDOUT,
            env={**os.environ, **self.env}, start_new_session=True)
        for name in wait_apps if wait_apps is not None else list(self.apps):
            self.wait_app(name, timeout=timeout)
        return self

    def wait_app(self, name: str, state: str = "idle", timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"AppDaemon exited ({self.proc.returncode}):\n{self.logs()}")
            now = self.state("admin", f"app.{name}").get("state")
            if now != state and now and "error" in str(now):
                raise AssertionError(f"app {name} is {now}")
            return now == state
        try:
            wait_for(ready, timeout=timeout, interval=0.1, what=f"app {name} {state}",
                     fail_fast=True)
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- logs ---\n{self.logs()}") from None

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc, timeout)
        self.stdout.close()
        self.proc = None

    def logs(self, tail: int = 200) -> str:
        out = []
        for name in ("stdout.log", "main.log", "error.log"):
            p = self.root / name
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"== {name} ==\n" + "\n".join(lines))
        return "\n".join(out)

    # --- REST -------------------------------------------------------------------------

    def state(self, namespace: str, entity_id: str) -> dict[str, Any]:
        """``{}`` when the entity does not exist (yet)."""
        try:
            got = http_json("GET", f"{self.url}/api/appdaemon/state/{namespace}/{entity_id}")
            # AppDaemon 4.5 wraps the entity: {"state": {"entity_id": ..., "state": ...}}
            if isinstance(got, dict) and isinstance(got.get("state"), dict):
                return got["state"]
            return got or {}
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return {}

    def states(self, namespace: str) -> dict[str, Any]:
        got = http_json("GET", f"{self.url}/api/appdaemon/state/{namespace}") or {}
        return got.get("state", got)

    def set_state(self, namespace: str, entity_id: str, state: Any,
                  attributes: dict[str, Any] | None = None) -> Any:
        body = {"entity_id": entity_id, "state": state}
        if attributes is not None:
            body["attributes"] = attributes
        return http_json("POST", f"{self.url}/api/appdaemon/service/{namespace}/state/set", body)

    def call_service(self, namespace: str, service: str, **data: Any) -> Any:
        return http_json("POST", f"{self.url}/api/appdaemon/service/{namespace}/{service}", data)

    def fire_event(self, namespace: str, event: str, **data: Any) -> Any:
        return http_json("POST", f"{self.url}/api/appdaemon/event/{namespace}/{event}", data)

    def wait_state(self, namespace: str, entity_id: str, expected: Any,
                   timeout: float = 20) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            st = self.state(namespace, entity_id)
            ok = expected(st.get("state")) if callable(expected) else st.get("state") == expected
            return st if ok else None
        try:
            return wait_for(check, timeout=timeout, what=f"{entity_id} == {expected!r}")
        except AssertionError as err:
            raise AssertionError(f"{err}; now {self.state(namespace, entity_id)!r}") from None
