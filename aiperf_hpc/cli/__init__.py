"""The `aiperf-hpc` command: one module per command, assembled in `app.py`; nothing imports this package."""

from aiperf_hpc.cli.app import app, main

__all__ = ["app", "main"]
