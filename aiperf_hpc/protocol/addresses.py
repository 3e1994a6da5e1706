"""The socket wiring table: every ZeroMQ socket of a run, who binds it and what flows through it.

```
                        control (ROUTER, bound by the controller)
        +-----------------+-----------------+--------------------+------------------+
     dataset            timing            records          worker_manager      worker x N
   (DEALER)            (DEALER)           (DEALER)           (DEALER)           (DEALER)

  worker --DEALER--> dataset   (ROUTER, bound by dataset)         DatasetRequest / DatasetReply
  worker <-DEALER--> credits   (ROUTER, bound by timing)          WorkerReady, CreditReturn / CreditDrop
  worker --PUSH----> records   (PULL,   bound by records)         RecordBatch  (timing pushes lost ones)
  worker --DEALER--> health    (ROUTER, bound by worker_manager)  WorkerHealth
```

| socket  | pattern        | binds          | connects               | kinds                                   |
|---------|----------------|----------------|------------------------|-----------------------------------------|
| control | ROUTER/DEALER  | controller     | every service          | Register, Configure(d), Heartbeat, ...  |
| dataset | ROUTER/DEALER  | dataset        | workers                | DatasetRequest, DatasetReply            |
| credits | ROUTER/DEALER  | timing         | workers                | WorkerReady, CreditDrop, CreditReturn   |
| records | PULL/PUSH      | records        | workers, timing        | RecordBatch                             |
| health  | ROUTER/DEALER  | worker_manager | workers                | WorkerHealth                            |

Inside one node every address is `ipc://` in a private temporary directory that the controller
removes at the end of the run. Across nodes (the Slurm launcher) every socket is `tcp://` on an
address all nodes can reach, on a port chosen at bind time (`tcp://HOST:*`), CURVE-encrypted. A
binder reports the endpoint it really bound in its `Configured` detail (`endpoint`), and the
controller hands the real addresses on: dataset, records and worker_manager first, then timing
(which connects to dataset and records), then the workers (which connect to all of them).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Addresses(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    control: str
    dataset: str
    credits: str
    records: str
    health: str


def tcp_bind_specs(host: str) -> Addresses:
    """Every socket on `host`, each on a port the operating system picks at bind time."""
    spec = f"tcp://{host}:*"
    return Addresses(control=spec, dataset=spec, credits=spec, records=spec, health=spec)


def ipc_addresses(socket_dir: Path) -> Addresses:
    """ipc:// addresses inside `socket_dir` (kept short: ipc paths are limited to ~100 bytes)."""
    return Addresses(
        control=f"ipc://{socket_dir}/control",
        dataset=f"ipc://{socket_dir}/dataset",
        credits=f"ipc://{socket_dir}/credits",
        records=f"ipc://{socket_dir}/records",
        health=f"ipc://{socket_dir}/health",
    )
