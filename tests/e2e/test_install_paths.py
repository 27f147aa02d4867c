"""The README's install paths, run as far as this machine allows.

- The add-on (path A): the README's own blocks (read from README.md) as the add-on's
  ``appdaemon.yaml`` and ``apps.yaml``, the pack where HACS puts it
  (``<HA config>/appdaemon/apps/<repository name>/``) joined by ``app_dir``, the HASS plugin
  with only ``type: hass`` and the token in ``SUPERVISOR_TOKEN`` as the add-on gives it,
  a real Home Assistant with the pack's helper package, and the simulated THOR app of the
  README connecting through AppDaemon's port alone.
- Docker (path B): ``docker/conf`` with the pack copied where the compose file mounts it and
  ``HA_URL``/``TOKEN`` substituted the way the image's start script does it, and
  ``docker compose config`` on the compose file.

What cannot run here: the Supervisor, HACS's download, and a Docker engine.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from growatt_thor.simulator import SimSettings, ThorSimulator
from growatt_thor.standalone import PACKAGE
from tests.adharness import REPO, AppDaemon
from tests.e2e.test_home_assistant import ha_state
from tests.hass import HomeAssistant
from tests.helpers import free_port

P = "growatt_thor_ev_charger"
CID = "XGJ00003214700CA"
HACS_FOLDER = "growatt-thor-appdaemon"  # HACS names the installed folder after the repo


def readme_block(name: str) -> str:
    """The fenced block right after ``<!-- name -->`` in README.md."""
    text = (REPO / "README.md").read_text()
    after = text.split(f"<!-- {name} -->", 1)[1]
    body = after.split("```yaml\n", 1)[1].split("```", 1)[0]
    lines = body.splitlines()
    indent = min(len(ln) - len(ln.lstrip()) for ln in lines if ln.strip())
    return "\n".join(ln[indent:] for ln in lines) + "\n"


class GivenConfig(AppDaemon):
    """The real AppDaemon on a configuration the test wrote itself (not the harness's)."""

    def __init__(self, root: Path, config_dir: Path, env: dict[str, str]) -> None:
        self._given = config_dir
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, {}, env=env)

    @property
    def config_dir(self) -> Path:
        return self._given

    def _write_config(self) -> None:
        pass

    def logs_to_files(self, cfg: dict[str, Any]) -> dict[str, Any]:
        cfg["logs"] = {"main_log": {"filename": str(self.root / "main.log")},
                       "error_log": {"filename": str(self.root / "error.log")}}
        return cfg


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    # step 6 of path A: the helper package in HA
    ha = HomeAssistant(tmp_path_factory.mktemp("ha"), extra_config=PACKAGE.read_text()).start()
    ha.onboard()
    yield ha
    ha.stop()


def clean(ad: AppDaemon) -> None:
    logs = ad.logs(tail=5000)
    bad = [ln for ln in logs.splitlines() if " ERROR " in ln or "Traceback" in ln]
    assert bad == [], "\n".join(bad)


@pytest.mark.ha
async def test_addon_path_from_the_readme(tmp_path: Path, ha: HomeAssistant):
    homeassistant = tmp_path / "homeassistant"   # the add-on's /homeassistant
    addon_config = tmp_path / "addon_configs" / "a0d7b954_appdaemon"  # the add-on's /config
    apps_dir = homeassistant / "appdaemon" / "apps"
    (homeassistant / "www").mkdir(parents=True)
    addon_config.mkdir(parents=True)
    # step 3, HACS: the one app folder, under the repository's name
    shutil.copytree(REPO / "apps" / "growatt_thor", apps_dir / HACS_FOLDER,
                    ignore=shutil.ignore_patterns("__pycache__"))

    ad = GivenConfig(tmp_path / "run", addon_config, env={"SUPERVISOR_TOKEN": ha.token})
    # step 4: the README's appdaemon.yaml; what the Supervisor provides is filled in here
    cfg = yaml.safe_load(readme_block("addon:appdaemon.yaml"))
    assert cfg["appdaemon"]["app_dir"] == "/homeassistant/appdaemon/apps"
    cfg["appdaemon"]["app_dir"] = str(apps_dir)
    assert cfg["appdaemon"]["plugins"]["HASS"] == {"type": "hass"}  # token: SUPERVISOR_TOKEN
    cfg["appdaemon"]["plugins"]["HASS"]["ha_url"] = ha.url  # http://supervisor/core there
    assert cfg["http"]["url"] == "http://0.0.0.0:5050"
    cfg["http"]["url"] = ad.url  # the add-on's 5050, on loopback and a free port here
    (addon_config / "appdaemon.yaml").write_text(yaml.safe_dump(ad.logs_to_files(cfg)))
    # step 5 and the simulated THOR: the README's apps.yaml
    apps = yaml.safe_load(readme_block("addon:apps.yaml"))
    assert apps["growatt_thor_hub"]["port"] is None
    apps["growatt_thor_sessions"]["export_dir"] = str(homeassistant / "www")
    sim = yaml.safe_load(readme_block("addon:simulator"))
    assert sim["simulated_thor"]["url"] == "ws://127.0.0.1:5050/app"
    sim["simulated_thor"]["url"] = f"ws://127.0.0.1:{ad.http_port}/app"
    (apps_dir / "apps.yaml").write_text(yaml.safe_dump({**apps, **sim}, sort_keys=False))

    await asyncio.to_thread(ad.start, ["growatt_thor_hub", "growatt_thor_helpers",
                                       "growatt_thor_sessions", "simulated_thor"], 90)
    try:
        # step 7: the log says where the THOR goes, and there is no own port
        (ready,) = [ln for ln in ad.logs(tail=3000).splitlines() if "hub ready" in ln]
        assert f":{ad.http_port}/app " in ready and "/ocpp/ws" not in ready
        # step 8: the (simulated) THOR talks over AppDaemon's port alone
        await ha_state(ha, f"binary_sensor.{P}_connected", "on", timeout=60)
        await ha_state(ha, f"sensor.{P}_vendor", "Growatt")
        await ha_state(ha, f"sensor.{P}_status", "Charging", timeout=60)
        # a helper changed in HA reaches the charger and comes back as its configuration
        await asyncio.to_thread(ha.api, "POST", "/api/services/input_number/set_value",
                                {"entity_id": "input_number.growatt_thor_max_current",
                                 "value": 10})
        await ha_state(ha, f"sensor.{P}_max_current", "10", timeout=60)
    finally:
        await asyncio.to_thread(ad.stop)
    clean(ad)  # also: the simulator and the hub stop without a pending task


def docker_start_substitutions(text: str, ha_url: str, token: str) -> str:
    """What AppDaemon's image (dockerStart.sh) does to appdaemon.yaml with HA_URL and TOKEN."""
    text = re.sub(r"(?m)^      ha_url:.*", f"      ha_url: {ha_url}", text)
    return re.sub(r"(?m)^      token:.*", f"      token: {token}", text)


@pytest.mark.ha
async def test_docker_conf_with_the_pack_mounted(tmp_path: Path, ha: HomeAssistant):
    conf = tmp_path / "conf"  # ./conf:/conf
    shutil.copytree(REPO / "docker" / "conf", conf)
    shutil.copytree(REPO / "apps" / "growatt_thor", conf / "apps" / "growatt_thor",
                    ignore=shutil.ignore_patterns("__pycache__"))  # the pack's mount
    ad = GivenConfig(tmp_path / "run", conf, env={})
    cfg = yaml.safe_load(docker_start_substitutions((conf / "appdaemon.yaml").read_text(),
                                                    ha.url, ha.token))
    assert cfg["appdaemon"]["plugins"]["HASS"]["token"] == ha.token
    cfg["http"]["url"] = ad.url  # published 5050 -> a free loopback port
    (conf / "appdaemon.yaml").write_text(yaml.safe_dump(ad.logs_to_files(cfg)))
    apps = yaml.safe_load((conf / "apps" / "apps.yaml").read_text())
    own_port = free_port()
    assert apps["growatt_thor_hub"]["port"] == 9000
    apps["growatt_thor_hub"].update(port=own_port, host="127.0.0.1")  # published 9000
    (conf / "apps" / "apps.yaml").write_text(yaml.safe_dump(apps, sort_keys=False))
    password = apps["growatt_thor_hub"]["chargers"][CID]["password"]

    await asyncio.to_thread(ad.start, list(apps), 90)
    try:
        # the two ways to point a THOR at it
        for url in (f"ws://127.0.0.1:{own_port}/ocpp/ws", f"ws://127.0.0.1:{ad.http_port}/app"):
            sim = ThorSimulator(SimSettings(url=url, password=password,
                                            reconnect_delay=(0.2, 0.5), call_timeout=5))
            async with sim:
                await sim.wait_connected()
                await ha_state(ha, f"binary_sensor.{P}_connected", "on")
                await ha_state(ha, f"sensor.{P}_max_current", "15.00")
            await ha_state(ha, f"binary_sensor.{P}_connected", "off")
    finally:
        await asyncio.to_thread(ad.stop)
    clean(ad)


def compose_command() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True,
                                                   timeout=30).returncode == 0:
            return cmd
    return None


def test_docker_compose_file_is_valid():
    cmd = compose_command()
    if cmd is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    folder = REPO / "docker"
    done = subprocess.run([*cmd, "config"], cwd=folder, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HA_TOKEN": "x"})
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    service = config["services"]["appdaemon"]
    assert service["image"].startswith("acockburn/appdaemon:4.5")
    published = {str(p.get("published", p) if isinstance(p, dict) else p) for p in
                 service["ports"]}
    assert {"5050", "9000"} <= {p.split(":")[0] for p in published}
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in
              service["volumes"]]
    assert any(m.split(":")[1] == "/conf/apps/growatt_thor" and
               Path(m.split(":")[0]) == REPO / "apps" / "growatt_thor" for m in mounts), mounts
    # without the token it refuses, with a message that says what to set
    missing = subprocess.run([*cmd, "config"], cwd=folder, capture_output=True, text=True,
                             timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode != 0 and "HA_TOKEN" in missing.stderr


async def test_venv_path_standalone_from_the_readme(tmp_path: Path):
    """Path C without Home Assistant: the README's appdaemon.yaml without ``plugins:``, the
    add-on's apps.yaml with the own port on, and the standalone helpers node."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "apps" / "growatt_thor", conf / "apps" / "growatt_thor",
                    ignore=shutil.ignore_patterns("__pycache__"))  # step 2
    ad = GivenConfig(tmp_path / "run", conf, env={})
    cfg = yaml.safe_load(readme_block("venv:appdaemon.yaml").replace("!env_var ", ""))
    del cfg["appdaemon"]["plugins"]  # "leave out to run without Home Assistant"
    assert cfg["http"]["url"] == "http://0.0.0.0:5050" and "api" in cfg
    cfg["http"]["url"] = ad.url
    (conf / "appdaemon.yaml").write_text(yaml.safe_dump(ad.logs_to_files(cfg)))
    apps = yaml.safe_load(readme_block("addon:apps.yaml"))  # step 4: as in path A, ...
    own_port = free_port()
    apps["growatt_thor_hub"].update(port=own_port, host="127.0.0.1")  # ... with a port
    apps.update(yaml.safe_load(readme_block("venv:standalone")))
    apps["growatt_thor_helpers"]["dependencies"].append("growatt_thor_standalone_helpers")
    del apps["growatt_thor_sessions"]["export_dir"]  # an HA folder: not there standalone
    (conf / "apps" / "apps.yaml").write_text(yaml.safe_dump(apps, sort_keys=False))
    password = apps["growatt_thor_hub"]["chargers"][CID]["password"]

    await asyncio.to_thread(ad.start, list(apps), 60)
    try:
        (ready,) = [ln for ln in ad.logs(tail=3000).splitlines() if "hub ready" in ln]
        assert f":{own_port}/ocpp/ws" in ready and f":{ad.http_port}/app" in ready  # step 6
        for url in (f"ws://127.0.0.1:{own_port}/ocpp/ws", f"ws://127.0.0.1:{ad.http_port}/app"):
            sim = ThorSimulator(SimSettings(url=url, password=password,
                                            reconnect_delay=(0.2, 0.5), call_timeout=5))
            async with sim:
                await sim.wait_connected()
                await asyncio.to_thread(ad.wait_state, "default", f"sensor.{P}_max_current",
                                        "15.00")
                await asyncio.to_thread(ad.wait_state, "default",
                                        "input_number.growatt_thor_max_current", 15.0)
            await asyncio.to_thread(ad.wait_state, "default", f"binary_sensor.{P}_connected",
                                    "off")
    finally:
        await asyncio.to_thread(ad.stop)
    clean(ad)
