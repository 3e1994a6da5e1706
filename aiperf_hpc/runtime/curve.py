"""CURVE keys of one multi-node run: made fresh per run, handed over in a file only the user can read.

Every TCP socket of a run is CURVE-encrypted. Binding sockets are CURVE servers holding the run's
server key pair; connecting sockets are clients holding the run's client key pair, and the
binder's ZAP handler admits only that client key. A process without the key file can neither
complete a handshake with a binder (it lacks the server's public key) nor be admitted by one (it
lacks the client key), so it cannot register, send records or receive credits.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import zmq
from pydantic import BaseModel, ConfigDict

from aiperf_hpc.artifacts import CURVE_KEYS_FILE
from aiperf_hpc.errors import UsageError

KEY_FILE_ENV = "AIPERF_HPC_KEY_FILE"


class CurveKeys(BaseModel):
    """Z85-encoded key pairs (40 characters each)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server_public: str
    server_secret: str
    client_public: str
    client_secret: str

    @classmethod
    def generate(cls) -> CurveKeys:
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        return cls(
            server_public=server_public.decode(),
            server_secret=server_secret.decode(),
            client_public=client_public.decode(),
            client_secret=client_secret.decode(),
        )


def write_key_file(directory: Path, keys: CurveKeys) -> Path:
    """Write the keys into `directory/curve-keys.json`, readable by the owner only (0600 in a 0700
    directory), created with those modes so there is no moment where others could read it."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / CURVE_KEYS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(orjson.dumps(keys.model_dump()))
    return path


def read_key_file(path: Path) -> CurveKeys:
    try:
        return CurveKeys.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read the run's key file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"the run's key file {path} is not a valid key file") from None


def keys_from_environment() -> CurveKeys | None:
    path = os.environ.get(KEY_FILE_ENV)
    return None if not path else read_key_file(Path(path))
