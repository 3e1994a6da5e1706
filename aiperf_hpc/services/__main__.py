"""Entry point of every service process: `python -m aiperf_hpc.services TYPE SERVICE_ID CONTROL_ADDRESS`.

Builds the one service object this process runs and hands it its collaborators; the rest of the
configuration arrives over ZeroMQ in the `Configure` message.
"""

from __future__ import annotations

import os
import sys

import uvloop

from aiperf_hpc.core.placement import SLURM_TASK_ID
from aiperf_hpc.errors import UsageError
from aiperf_hpc.runtime.bus import Bus
from aiperf_hpc.runtime.curve import keys_from_environment
from aiperf_hpc.runtime.process import configure_logging, die_with_parent
from aiperf_hpc.runtime.service import Service
from aiperf_hpc.services.dataset import DatasetManager
from aiperf_hpc.services.records import RecordsManager
from aiperf_hpc.services.timing import TimingManager
from aiperf_hpc.services.worker import Worker
from aiperf_hpc.services.worker_manager import WorkerManager

SERVICES: dict[str, type[Service]] = {
    "dataset": DatasetManager,
    "timing": TimingManager,
    "records": RecordsManager,
    "worker_manager": WorkerManager,
    "worker": Worker,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in SERVICES:
        print(f"usage: python -m aiperf_hpc.services {{{','.join(SERVICES)}}} SERVICE_ID CONTROL_ADDRESS")
        return 2
    service_type, service_id, control_address = argv
    if service_id == SLURM_TASK_ID:  # one task of the workers' srun step
        service_id = f"worker-{os.environ['SLURM_PROCID']}"
    die_with_parent()
    configure_logging(service_id, os.environ.get("AIPERF_HPC_LOG_LEVEL", "INFO"))
    try:
        keys = keys_from_environment()
    except UsageError as exc:
        print(f"{service_id}: {exc}", file=sys.stderr)
        return 2
    bus = Bus(keys)
    service = SERVICES[service_type](service_id=service_id, control_address=control_address, bus=bus)
    try:
        return uvloop.run(service.main())
    finally:
        bus.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
