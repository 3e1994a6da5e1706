"""Entry point of every service process: `python -m aiperf_hpc.services TYPE SERVICE_ID CONTROL_ADDRESS`,
or `main(argv)` in a child of the fork server (`launch.fork_server`), which imports `SERVICES` first.

Builds the one service object this process runs and hands it its collaborators; the rest of the
configuration arrives over ZeroMQ in the `Configure` message.
"""

from __future__ import annotations

import importlib
import os
import sys

import uvloop

from aiperf_hpc.core.placement import SLURM_TASK_ID
from aiperf_hpc.errors import UsageError
from aiperf_hpc.runtime.bus import Bus
from aiperf_hpc.runtime.curve import keys_from_environment
from aiperf_hpc.runtime.process import configure_logging, die_with_parent, raise_open_file_limit, set_process_name
from aiperf_hpc.runtime.service import Service

# A subprocess imports only its own service: start-up is CPU-bound on imports (aiohttp for workers,
# numpy and tokenizers for the managers), and every process starts at once on the same cores.
SERVICES: dict[str, tuple[str, str]] = {
    "dataset": ("aiperf_hpc.services.dataset", "DatasetManager"),
    "timing": ("aiperf_hpc.services.timing", "TimingManager"),
    "records": ("aiperf_hpc.services.records", "RecordsManager"),
    "worker_manager": ("aiperf_hpc.services.worker_manager", "WorkerManager"),
    "worker": ("aiperf_hpc.services.worker", "Worker"),
}


def service_class(service_type: str) -> type[Service]:
    module_name, class_name = SERVICES[service_type]
    cls: type[Service] = getattr(importlib.import_module(module_name), class_name)
    return cls


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in SERVICES:
        print(f"usage: python -m aiperf_hpc.services {{{','.join(SERVICES)}}} SERVICE_ID CONTROL_ADDRESS")
        return 2
    service_type, service_id, control_address = argv
    if service_id == SLURM_TASK_ID:  # one task of the workers' srun step
        service_id = f"worker-{os.environ['SLURM_PROCID']}"
    die_with_parent()
    set_process_name(service_id)
    raise_open_file_limit()
    configure_logging(service_id, os.environ.get("AIPERF_HPC_LOG_LEVEL", "INFO"))
    try:
        keys = keys_from_environment()
    except UsageError as exc:
        print(f"{service_id}: {exc}", file=sys.stderr)
        return 2
    bus = Bus(keys)
    service = service_class(service_type)(service_id=service_id, control_address=control_address, bus=bus)
    try:
        return uvloop.run(service.main())
    finally:
        bus.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
