"""The ``cachewatch`` command: subcommands (``main``), running serve and demo (``run``), the
process lifecycle (``lifecycle``), the report client (``report``) and the Alertmanager
client (``alertmanager``)."""

from .main import main

__all__ = ["main"]
