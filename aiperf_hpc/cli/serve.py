"""`aiperf-hpc serve`: the client-group REST service (`rest/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter


def serve(
    *,
    host: Annotated[str, Parameter(help="Address to listen on; beyond loopback a token is required.")] = "127.0.0.1",
    port: int = 8003,
    token: Annotated[
        str | None,
        Parameter(
            env_var="AIPERF_HPC_SERVICE_TOKEN",
            help="Every /api request must send 'Authorization: Bearer TOKEN' (prefer the environment variable).",
        ),
    ] = None,
    state_dir: Annotated[Path, Parameter(help="Where the run list (SQLite) and each run's artifacts go.")] = Path(
        "aiperf-service"
    ),
) -> int:
    """Serve the client-group REST API: create, watch and stop profile runs over HTTP (docs at /docs)."""
    from aiperf_hpc.rest.app import serve as serve_api

    return serve_api(host=host, port=port, token=token, state_dir=state_dir)
