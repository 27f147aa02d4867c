"""The hub node's ``apps.yaml`` arguments, validated once into a config object.

An error names every bad key and says what is expected; the app then does not
start at all (never half-way).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .identity import valid_charger_id

# Keys AppDaemon itself puts into ``self.args``.
APPDAEMON_KEYS = frozenset({
    "module", "class", "config_path", "dependencies", "disable", "priority", "pin_app",
    "pin_thread", "log", "log_level", "global", "global_dependencies", "name", "plugin",
    "use_dictionary_unpacking",
})

MIN_CURRENT = 6  # A, the lowest current an EV charger may offer (IEC 61851)
MAX_CURRENT = 32  # A, the THOR's own maximum

_SLUG = re.compile(r"^[a-z0-9_]+$")


class ConfigError(ValueError):
    """Bad arguments in apps.yaml. The message lists every problem, one per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChargerConfig(_Strict):
    prefix: str | None = Field(None, description="entity id prefix, e.g. growatt_thor_ev_charger")
    name: str | None = Field(None, description="friendly name prefix")
    password: str | None = Field(None, description="HTTP Basic password (G_Authentication)")
    max_current: int = Field(16, ge=MIN_CURRENT, le=MAX_CURRENT,
                             description="installation limit in A (fuse, cable)")
    location: str = ""

    @field_validator("prefix")
    @classmethod
    def _prefix_is_slug(cls, v: str | None) -> str | None:
        if v is not None and not _SLUG.match(v):
            raise ValueError("use lower-case letters, digits and _ only")
        return v


class HubConfig(_Strict):
    host: str = "0.0.0.0"
    port: int | None = Field(9000, ge=0, le=65535,
                             description="the pack's own OCPP port; null: only AppDaemon's "
                                         "web server (/app/<charger id>)")
    heartbeat_interval: int = Field(60, ge=10, le=86400)
    call_timeout: float = Field(15.0, gt=0, le=120)
    idle_timeout: float = Field(330.0, ge=30, le=3600)
    namespace: str = Field("growatt_thor", description="the pack's own AppDaemon namespace")
    ha_namespace: str = Field("default", description="where entities are published")
    time_zone: str | None = Field(None, description="charger local time zone (IANA name); "
                                                    "default AppDaemon's")
    state_dir: str | None = None
    accept_unknown_chargers: bool | None = Field(
        None, description="null: only the configured chargers, or with none configured the "
                          "first to connect; true: any charger; false: only configured ones")
    # the card policy (thor/identity.py CardPolicy): "any" card, or only the "listed"
    # id_tags (null: "listed" when id_tags is given, else "any")
    rfid_policy: Literal["any", "listed"] | None = None
    id_tags: list[Annotated[str, Field(min_length=1, max_length=20)]] | None = Field(
        None, max_length=1000)
    allow_ha_start: bool = Field(True, description="starts from Home Assistant (buttons, "
                                                   "nodes) are allowed")
    log_frames: bool = False
    calls_per_second: float = Field(20.0, gt=0, le=10000,
                                    description="calls a charger may make per second (bursts "
                                                "of 5 s worth); more get a CALLERROR")
    # the write queue (docs/controls.md)
    write_spacing: float = Field(15.0, ge=0.1, le=3600,
                                 description="seconds between configuration writes")
    write_settle: float = Field(1.0, ge=0, le=60,
                                description="a change waits this long for a newer one")
    poll_pause: float = Field(20.0, ge=0, le=3600, description="no polling this long after a write")
    command_spacing: float = Field(2.0, ge=0, le=60)
    write_retries: int = Field(3, ge=0, le=10)
    retry_backoff: float = Field(10.0, ge=0.1, le=600)
    command_ttl: float = Field(120.0, ge=1, le=86400)
    grid_poll_interval: float = Field(30.0, ge=5, le=3600,
                                      description="grid meter poll (only while load balancing)")
    remote_id_tag: str = Field("HomeAssistant", min_length=1, max_length=20)
    chargers: dict[str, ChargerConfig] = Field(default_factory=dict)
    # OCPP security profile 2 on the own port: wss:// with this certificate (PEM files)
    tls_certfile: str | None = Field(None, description="certificate chain (PEM) for wss://")
    tls_keyfile: str | None = Field(None, description="its private key (PEM)")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r} (use e.g. Europe/Amsterdam)") from None
        return v

    @field_validator("chargers", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): ({} if c is None else c) for k, c in v.items()}
        return {} if v is None else v

    @field_validator("chargers")
    @classmethod
    def _ids_are_distinct_chargers(cls, v: dict[str, ChargerConfig]
                                   ) -> dict[str, ChargerConfig]:
        bad = [cid for cid in v if not valid_charger_id(cid)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: a charger id is its serial number "
                             "(letters, digits, - and _, as the THOR sends it)")
        by_slug: dict[str, str] = {}
        for cid in v:
            if slug(cid) in by_slug:
                raise ValueError(f"{by_slug[slug(cid)]!r} and {cid!r} would share one entity "
                                 "prefix: list each charger once, as it sends its id")
            by_slug[slug(cid)] = cid
        return v

    @model_validator(mode="after")
    def _tls_files_together(self) -> HubConfig:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both tls_certfile and tls_keyfile (or neither)")
        return self

    @model_validator(mode="after")
    def _somewhere_to_connect(self) -> HubConfig:
        if self.port is None and not self.chargers:
            raise ValueError("with port: null a THOR can only connect to AppDaemon's web server "
                             "at /app/<serial>, one route per charger: list your charger's "
                             "serial under chargers:")
        return self


def format_validation_error(app: str, err: ValidationError) -> str:
    lines = [f"{app}: bad arguments in apps.yaml:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        value = e.get("input")
        shown = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {value!r})"
        lines.append(f"  - {where}: {msg}{shown}")
    return "\n".join(lines)


def parse_args(model: type[BaseModel], app: str, args: dict[str, Any]) -> Any:
    """Validate AppDaemon ``args`` (minus AppDaemon's own keys) into ``model``."""
    mine = {k: v for k, v in args.items() if k not in APPDAEMON_KEYS}
    try:
        return model.model_validate(mine)
    except ValidationError as err:
        raise ConfigError(format_validation_error(app, err)) from None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


class HelpersConfig(_Strict):
    """``growatt_thor.helpers``: HA helpers as the controls of one charger."""

    hub: str = Field("growatt_thor_hub", description="the hub app's name in apps.yaml")
    charger_id: str | None = Field(None, description="needed when the hub has several chargers")
    helper_prefix: str = Field("growatt_thor", description="default ids <domain>.<prefix>_<name>")
    helpers: dict[str, str] = Field(default_factory=dict, description="control name -> entity id")
    access_point_confirm_seconds: float = Field(30.0, ge=5, le=300)

    @field_validator("helper_prefix")
    @classmethod
    def _helper_prefix_is_slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("use lower-case letters, digits and _ only")
        return v

    @field_validator("helpers")
    @classmethod
    def _known_helpers(cls, v: dict[str, str]) -> dict[str, str]:
        from .controls import HELPERS

        domains = {h.name: h.domain for h in HELPERS}
        bad = []
        for name, eid in v.items():
            if name not in domains:
                bad.append(f"{name!r} is not a control (known: {', '.join(domains)})")
            elif not str(eid).startswith(domains[name] + "."):
                bad.append(f"{name}: {eid!r} must be an {domains[name]} entity")
        if bad:
            raise ValueError("; ".join(bad))
        return v


class StandaloneHelpersConfig(_Strict):
    """``growatt_thor.standalone``: the helpers and their services without HA."""

    namespace: str = "default"
    package: str | None = Field(None, description="HA package file with the helpers; "
                                                  "default the one shipped with the pack")


class SessionLogConfig(_Strict):
    """``growatt_thor.session_log``: one CSV row per finished charging session."""

    hub: str = "growatt_thor_hub"
    path: str | None = Field(None,
                             description="default <AppDaemon config>/growatt_thor_sessions.csv")
    journal: str | None = Field(None, description="default <hub state_dir>/sessions_journal.json")
    price_per_kwh: float | None = Field(None, ge=0, le=100,
                                        description="cost when the charger reports none")
    record_wait: float = Field(60.0, ge=0, le=3600,
                               description="how long a stopped session waits for its record")
    time_zone: str | None = Field(None, description="CSV times; default the hub's time_zone")
    export_dir: str | None = Field(None, description="default HA's www folder (/local/)")
    export_url: str = Field("/local", description="where export_dir is served")
    retry_interval: float = Field(60.0, ge=1, le=3600)
    helper_prefix: str = "growatt_thor"

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return HubConfig._known_zone(v)
