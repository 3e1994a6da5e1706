"""`python -m aiperf_hpc.cli`: the same as the `aiperf-hpc` command."""

from aiperf_hpc.cli.app import main

main()
