"""Example node: charge only in the cheapest hours of the day (docs/nodes.md).

apps.yaml::

    cheap_hours:
      module: growatt_thor.cheap_hours
      class: CheapHours
      dependencies: [growatt_thor_hub]
      price_sensor: sensor.nordpool_kwh_nl_eur   # hourly prices of today in an attribute
      price_attribute: today                     # a list of 24 prices
      hours: 4                                   # charge in the 4 cheapest hours

At every full hour, when the prices change and when the charger changes, it
starts charging in a cheap hour (if a car is plugged in) and stops outside
them. Both go through the charger's write queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from .node import NodeConfig, ThorNode


def cheapest_hours(prices: list[float], hours: int) -> set[int]:
    """The hours (0..23) with the lowest prices; ties go to the earlier hour."""
    ranked = sorted(range(len(prices)), key=lambda h: (prices[h], h))
    return set(ranked[:hours])


class CheapHoursConfig(NodeConfig):
    price_sensor: str = Field(description="entity with today's hourly prices")
    price_attribute: str = "today"
    hours: int = Field(4, ge=1, le=24)


class CheapHours(ThorNode):
    Config = CheapHoursConfig

    async def on_start(self) -> None:
        self._asked: tuple[int, str] | None = None
        await self.listen_state(self._prices_changed, self.cfg.price_sensor,
                                attribute=self.cfg.price_attribute,
                                namespace=self.ha_namespace)
        await self.run_hourly(self._hourly, start=None)

    async def _prices_changed(self, *args: Any, **kwargs: Any) -> None:
        await self._decide()

    async def _hourly(self, kwargs: Any) -> None:
        await self._decide()

    async def on_update(self, charger: dict[str, Any]) -> None:
        await self._decide(charger)

    async def _decide(self, charger: dict[str, Any] | None = None) -> None:
        charger = charger or self.charger
        prices = await self.get_state(self.cfg.price_sensor, attribute=self.cfg.price_attribute,
                                      namespace=self.ha_namespace)
        if charger is None or not isinstance(prices, list) or len(prices) < 24:
            await self.publish("cheap_hours", "waiting", reason="no prices (or no charger) yet")
            return
        try:
            cheap = cheapest_hours([float(p) for p in prices[:24]], self.cfg.hours)
        except (TypeError, ValueError):
            await self.publish("cheap_hours", "waiting", reason="prices are not numbers")
            return
        hour = (await self.get_now()).astimezone(self.hub.charger_tz).hour
        want = hour in cheap
        await self.publish("cheap_hours", "charge" if want else "wait",
                           hours=", ".join(f"{h:02d}:00" for h in sorted(cheap)))
        action = None
        if want and self.plugged(charger) and not self.charging(charger):
            action = "start"
        elif not want and self.charging(charger):
            action = "stop"
        if action is None or self._asked == (hour, action):
            return  # asked once this hour; the queue reports the answer
        self._asked = (hour, action)
        self.log(f"{datetime.now():%H:%M}: hour {hour} is {'' if want else 'not '}"
                 f"among the {self.cfg.hours} cheapest: {action}")
        if action == "start":
            self.start_charging()
        else:
            self.stop_charging()
