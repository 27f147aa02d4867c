"""A simulated Growatt THOR EV charger speaking the captured OCPP 1.6J dialect."""

from .sim import GridMeter, SimSettings, ThorSimulator

__all__ = ["GridMeter", "SimSettings", "ThorSimulator"]
