"""A bundled OpenAI-compatible mock server with TTFT/ITL knobs, error and fault injection and a truth endpoint."""

from aiperf_hpc.mock_server.app import create_app
from aiperf_hpc.mock_server.config import MockServerConfig
from aiperf_hpc.mock_server.server import run_mock_server

__all__ = ["MockServerConfig", "create_app", "run_mock_server"]
