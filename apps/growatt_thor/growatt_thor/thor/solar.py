"""Solar surplus charging: the decision, as a pure function of measurements, settings and time.

:class:`SolarController` is fed one :class:`SolarInput` per measurement and
returns a :class:`Decision`: the charging current to ask for (whole amperes,
within ``min_current..max_current``), whether to start or stop, the surplus it
sees, and why it waits. It knows nothing of AppDaemon or OCPP; the solar node
sends its decisions through the charger's write queue (which enforces spacing
and the installation limit), and ``bench/solar.py`` runs it against a model of
the THOR.

Modes: ``off`` (leave the charger alone), ``now`` (full current), ``minpv``
(charge at least at the minimum, more from surplus), ``pv`` (surplus only).

The surplus available to the car is ``-grid + ev`` (grid import positive: what
the car draws now is part of the import), plus what a home battery charges
with once its state of charge is at ``battery_priority_soc`` (below that the
battery keeps it); a discharging battery never counts as surplus.

Compared with a plain threshold/timer controller (evcc's defaults), what
matters on the THOR, measured in ``bench/solar.py`` (the defaults here are the
best of searches over these settings on that benchmark's first 15 days of each
kind; ``--per-kind 25`` adds ten more that were never tuned on):
- the decision runs on every grid reading; the write queue coalesces, so this
  costs no extra writes, and a falling surplus is followed within one write slot;
- stopping is decided on the grid energy imported, not on time alone: it stops
  once the import exceeds ``disable_import_wh`` plus ``max_import_share`` of
  what was taken from surplus (both remembered with a ``budget_memory_s`` time
  constant, so a sunny half hour buys a passing cloud and a cloudy one does
  not), or after ``disable_delay_s`` at minimum current. The import counted is
  the grid import up to what the setpoint allows (``SolarInput.setpoint_a``):
  the car's own power is known only from MeterValues every 120 s, and the first
  of a session often comes before the car draws;
- a deficit that came on slowly (over ``drop_window_s`` the surplus declined by
  ``slow_min_decline_w`` or more but never fell ``sudden_drop_w``: the sun going
  down) stops after ``slow_disable_delay_s``;
  a sudden one (a cloud, a kettle) is ridden out on the budget;
- it sets the current from the lowest surplus of the last ``smoothing_s`` (a
  dip lowers it at once, a peak raises it only once it has held);
- it starts only with ``enable_threshold_w`` to spare for ``enable_delay_s``
  (``calm_enable_delay_s`` while the sky is calm: over ``calm_window_s`` the
  surplus never fell ``calm_drop_w`` below a peak and is not falling), and
  with ``start_headroom_wh`` left in the import budget (after a stop for the
  budget, a start waits until time or sunshine has restored some of it),
  after bringing ``G_MaxCurrent`` down to the start current (a THOR left at
  16 A would otherwise start at 16 A), and after each stop the delay doubles for
  ``backoff_window_s``: on a day of fast clouds it charges in the sunnier
  stretches instead of starting and stopping with every cloud. The price is
  energy: on such a day it puts much less of the surplus into the car than a
  controller that rides through clouds on grid power (see docs/solar.md for the
  numbers); ``minpv`` or a shorter delay trade the other way.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

MODES = ("off", "now", "minpv", "pv")


@dataclass
class EvPowerEstimate:
    """What the car draws now, as well as the THOR lets us know.

    The THOR reports power only in MeterValues, every 120 s; a reading is stale
    as soon as the current is changed. So the car is taken to draw what the
    current setpoint allows, unless the last reading showed it drawing clearly
    less than the setpoint of that moment (a car that limits itself, or a full
    battery): then that reading, capped by the setpoint.
    """

    phases: int = 3
    voltage: float = 230.0
    reported_w: float | None = None
    setpoint_at_report: float | None = None

    def report(self, meter_w: float | None, setpoint_a: float | None) -> None:
        self.reported_w = None if meter_w is None else max(meter_w, 0.0)
        self.setpoint_at_report = setpoint_a

    def power(self, setpoint_a: float | None, charging: bool) -> float:
        if not charging:
            return 0.0
        if setpoint_a is None:
            return self.reported_w or 0.0
        allowed = setpoint_a * self.voltage * self.phases
        if self.reported_w is not None and self.setpoint_at_report:
            expected = self.setpoint_at_report * self.voltage * self.phases
            if self.reported_w < 0.85 * expected:
                return min(self.reported_w, allowed)
        return allowed


@dataclass
class SolarSettings:
    mode: str = "pv"
    min_current: int = 6
    max_current: int = 16
    phases: int = 1
    voltage: float = 230.0
    # The defaults are tuned on money (bench/money.py, docs/plan.md): start on any surplus
    # that reaches the minimum power for a minute, ride 3 minutes at the minimum current
    # (a charging plan's top-up rides longer while the grid costs no more than its own)
    enable_threshold_w: float = 0.0  # surplus above the minimum power needed to start
    enable_delay_s: float = 60.0
    disable_threshold_w: float = 0.0  # import at minimum current that is tolerated freely
    disable_delay_s: float = 180.0  # longest time at minimum current while importing
    # or stop once the session imported more than this allowance plus max_import_share of
    # what it took from surplus (None: stop on time alone)
    disable_import_wh: float | None = None
    max_import_share: float = 0.03
    # None: the budget is per session; else the import and surplus energy are remembered
    # across sessions with this time constant (a sunny morning buys an afternoon cloud)
    budget_memory_s: float | None = 3600.0
    # a start waits until the import budget has this much left (None: off): after a stop
    # for the budget, the next start waits until sunshine or time has restored some of it
    start_headroom_wh: float | None = 1.0
    smoothing_s: float = 0.0  # current from the lowest surplus of this window (0: off)
    # a deficit that came on slowly (in the last ``drop_window_s`` the surplus fell by at
    # least ``slow_min_decline_w`` but never by ``sudden_drop_w``: sunset) stops after
    # ``slow_disable_delay_s`` (None: off)
    slow_disable_delay_s: float | None = None
    # a session in which the car takes less than the minimum while nothing is imported (a
    # full car) is not stopped for lack of surplus: the next start would only undo it
    keep_idle_session: bool = True
    sudden_drop_w: float = 500.0
    drop_window_s: float = 300.0
    slow_min_decline_w: float = 100.0  # and fell at least this much over it (not noise)
    # a start waits only this long while the sky is calm: over the last ``calm_window_s``
    # the surplus never fell ``calm_drop_w`` below an earlier reading, and it is not lower
    # than at the window's start (None: off)
    calm_enable_delay_s: float | None = None
    calm_drop_w: float = 500.0
    calm_window_s: float = 600.0
    # after each stop, the enable delay doubles for ``backoff_window_s`` (flapping clouds)
    enable_backoff: bool = False
    backoff_window_s: float = 900.0
    max_enable_delay_s: float = 600.0
    battery_priority_soc: float = 100.0  # the home battery charges first up to this SoC (%)

    def power(self, amps: float) -> float:
        return amps * self.voltage * self.phases


@dataclass
class SolarInput:
    grid_power_w: float | None  # import positive, export negative; None: unavailable
    ev_power_w: float = 0.0
    # the charger's current setpoint (G_MaxCurrent, A; None: unknown). While a session
    # runs, grid import up to what it allows is counted as the car's; a start waits
    # until it is no higher than the start current
    setpoint_a: float | None = None
    charging: bool = False  # a session is running (the charger draws or may draw)
    plugged: bool = True  # a car is connected
    battery_power_w: float | None = None  # positive while charging
    battery_soc: float | None = None


@dataclass
class Decision:
    current: int | None  # the G_MaxCurrent to ask for; None: leave it
    charge: bool | None  # True: start, False: stop, None: leave it
    surplus_w: float | None
    reason: str

    def wants(self, charging: bool) -> bool | None:
        """The node's demand on start/stop (``thor/arbiter.py``): a start, a stop, or,
        while it lets a running session go on, "keep charging". Without that last one a
        lower-priority stop (the plan at its target) would win every step after a start,
        and the charger would be started and stopped again and again."""
        if self.charge is None and charging and self.current is not None:
            return True
        return self.charge


@dataclass
class SolarController:
    settings: SolarSettings = field(default_factory=SolarSettings)
    _enable_since: float | None = None
    _deficit_since: float | None = None
    _deficit_slow: bool = False  # the current deficit came on slowly (judged at its onset)
    _last_t: float | None = None
    _window: deque = field(default_factory=deque)
    # (time, surplus), back to one reading at least as old as the longest window used
    _history: deque = field(default_factory=deque)
    _stops: deque = field(default_factory=deque)  # times of our recent stops
    _session_solar_wh: float = 0.0
    _session_import_wh: float = 0.0

    def enable_delay(self, now: float) -> float:
        s = self.settings
        while self._stops and self._stops[0] < now - s.backoff_window_s:
            self._stops.popleft()
        base = s.enable_delay_s
        if s.calm_enable_delay_s is not None and self._calm(now):
            base = min(base, s.calm_enable_delay_s)
        if not s.enable_backoff:
            return base
        return min(base * 2 ** len(self._stops), max(s.max_enable_delay_s, base))

    def _calm(self, now: float) -> bool:
        """Over a whole ``calm_window_s`` the surplus never fell ``calm_drop_w`` below a peak,
        and it is not lower now than at the window's start."""
        s = self.settings
        h = self._recent(s.calm_window_s, now)
        if h is None:
            return False
        peak = -math.inf
        for _, a in h:
            peak = max(peak, a)
            if peak - a >= s.calm_drop_w:
                return False
        return h[-1][1] >= h[0][1]  # not falling (an evening's slow decline is not calm)

    def budget_wh(self) -> float | None:
        """The import budget (Wh; None: no budget, stops on time alone)."""
        s = self.settings
        if s.disable_import_wh is None:
            return None
        return s.disable_import_wh + s.max_import_share * self._session_solar_wh

    def budget_left(self) -> float | None:
        """What the import budget has left (Wh; None: no budget)."""
        budget = self.budget_wh()
        return None if budget is None else budget - self._session_import_wh

    def available(self, inp: SolarInput) -> float | None:
        if inp.grid_power_w is None or not math.isfinite(inp.grid_power_w):
            return None
        avail = -inp.grid_power_w + max(inp.ev_power_w, 0.0)
        if inp.battery_power_w is not None:
            bp = inp.battery_power_w
            soc = inp.battery_soc
            if soc is not None and soc >= self.settings.battery_priority_soc:
                avail += bp  # the car before the battery: its charging power is ours
            else:
                avail += min(bp, 0.0)  # a discharging battery is not surplus
        return avail

    def step(self, inp: SolarInput, now: float) -> Decision:
        s = self.settings
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        if s.mode not in MODES:
            return Decision(None, None, None, f"unknown mode {s.mode!r}: doing nothing")
        if s.mode == "off":
            self._reset()
            return Decision(None, None, None, "off")
        avail = self.available(inp)
        if s.mode == "now":
            self._reset()
            return Decision(s.max_current, True if inp.plugged and not inp.charging else None,
                            avail, "charging at full current")
        if avail is None:
            self._reset()
            if s.mode == "minpv":
                return Decision(s.min_current, True if inp.plugged and not inp.charging
                                else None, None,
                                "grid sensor unavailable: minimum current")
            return Decision(s.min_current, False if inp.charging else None, None,
                            "grid sensor unavailable: not charging from the grid")
        self._window.append((now, avail))
        self._history.append((now, avail))
        keep = max(s.drop_window_s, 0.0 if s.calm_enable_delay_s is None else s.calm_window_s)
        while len(self._history) > 1 and self._history[1][0] <= now - keep:
            self._history.popleft()
        while self._window and self._window[0][0] < now - s.smoothing_s:
            self._window.popleft()
        low = min(a for _, a in self._window) if s.smoothing_s > 0 else avail
        target = math.floor(low / s.power(1) + 1e-9)
        current = max(s.min_current, min(s.max_current, target))
        min_power = s.power(s.min_current)
        if s.mode == "minpv":
            self._reset()
            return Decision(current, True if inp.plugged and not inp.charging else None, avail,
                            f"minimum plus surplus: {current} A")
        # --- pv: surplus only
        if not inp.charging:
            self._deficit_since = None
            self._forget(dt, charging=False)
            if not inp.plugged:
                self._enable_since = None
                return Decision(None, None, avail, "no car plugged in")
            need = min_power + s.enable_threshold_w
            if avail < need:
                self._enable_since = None
                return Decision(None, None, avail,
                                f"surplus {avail / 1000:.2f} kW below {need / 1000:.2f} kW")
            if self._enable_since is None:
                self._enable_since = now
            waited = now - self._enable_since
            delay = self.enable_delay(now)
            if waited < delay:
                calm = " (calm sky)" if delay < s.enable_delay_s else ""
                return Decision(None, None, avail, f"surplus above {need / 1000:.2f} kW for "
                                f"{waited:.0f} s of {delay:.0f} s{calm}")
            if inp.setpoint_a is not None and inp.setpoint_a > current:
                return Decision(current, None, avail,
                                f"setting {current} A before starting")
            left = self.budget_left()
            if s.start_headroom_wh is not None and left is not None \
                    and left < s.start_headroom_wh:
                return Decision(None, None, avail,
                                f"waiting for the import budget: {left:.1f} Wh left, "
                                f"{s.start_headroom_wh:g} Wh needed")
            self._enable_since = None
            return Decision(current, True, avail, f"starting at {current} A")
        self._enable_since = None
        ev = max(inp.ev_power_w, 0.0)
        ev_import = max(0.0, min(ev, ev - avail))
        if inp.setpoint_a is not None:
            allowed = max(s.power(inp.setpoint_a), ev)
            ev_import = max(ev_import, min(max(inp.grid_power_w, 0.0), allowed))
        self._forget(dt, charging=True)
        self._session_import_wh += ev_import * dt / 3600.0
        self._session_solar_wh += max(ev - ev_import, 0.0) * dt / 3600.0
        deficit = min_power - avail  # import at minimum current
        if deficit <= s.disable_threshold_w:
            self._deficit_since = None
            return Decision(current, None, avail, f"charging from surplus at {current} A")
        if s.keep_idle_session and inp.grid_power_w <= s.disable_threshold_w:
            # the car takes less than the minimum (full, or not drawing yet) and nothing
            # is imported: a stop would only have to be undone by the next start
            self._deficit_since = None
            return Decision(current, None, avail,
                            f"the car takes {ev:.0f} W, less than {current} A: nothing imported")
        if self._deficit_since is None:
            self._deficit_since = now
            self._deficit_slow = self._came_slowly(avail, now)
        waited = now - self._deficit_since
        budget_wh = self.budget_wh()
        over_budget = budget_wh is not None and self._session_import_wh >= budget_wh
        delay = s.disable_delay_s
        if s.slow_disable_delay_s is not None and self._deficit_slow:
            delay = min(delay, s.slow_disable_delay_s)
        if waited >= delay or over_budget:
            self._deficit_since = None
            self._stops.append(now)
            why = (f"the session imported {self._session_import_wh:.0f} Wh" if over_budget
                   else f"{delay:.0f} s")
            if s.budget_memory_s is None:
                self._session_import_wh = self._session_solar_wh = 0.0
            return Decision(s.min_current, False, avail, f"stopping: not enough surplus ({why})")
        budget = "" if budget_wh is None else \
            f", {self._session_import_wh:.0f} of {budget_wh:.0f} Wh imported"
        return Decision(s.min_current, None, avail,
                        f"surplus {avail / 1000:.2f} kW below {min_power / 1000:.2f} kW for "
                        f"{waited:.0f} s of {s.disable_delay_s:.0f} s{budget}")

    def _came_slowly(self, avail: float, now: float) -> bool:
        """Over a whole ``drop_window_s`` the surplus declined (by ``slow_min_decline_w`` or
        more) but never fell ``sudden_drop_w`` below its highest: a sunset, not a cloud and
        not a flat surplus dipping with the house's noise."""
        s = self.settings
        h = self._recent(s.drop_window_s, now)
        return h is not None and max(a for _, a in h) - avail < s.sudden_drop_w \
            and h[0][1] - avail >= s.slow_min_decline_w

    def _recent(self, window: float, now: float) -> list[tuple[float, float]] | None:
        """The readings of the last ``window`` s, from the newest one at least that old
        (None while the history does not reach back that far)."""
        h = self._history
        if not h or h[0][0] > now - window:
            return None
        start = 0
        for i, (t, _) in enumerate(h):
            if t > now - window:
                break
            start = i
        return list(h)[start:]

    def _forget(self, dt: float, charging: bool) -> None:
        memory = self.settings.budget_memory_s
        if memory is None:
            if not charging:  # per session: a new session starts from nothing
                self._session_import_wh = self._session_solar_wh = 0.0
            return
        keep = math.exp(-dt / memory) if memory > 0 else 0.0
        self._session_import_wh *= keep
        self._session_solar_wh *= keep

    def _reset(self) -> None:
        self._enable_since = None
        self._deficit_since = None
        # what the surplus did before a mode change or an outage says nothing of the sky now
        self._history.clear()
