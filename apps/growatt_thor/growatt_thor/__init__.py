"""Growatt THOR for AppDaemon: a local OCPP 1.6J central system and its nodes."""

__version__ = "0.1.0"  # the same as pyproject.toml (a unit test checks)
