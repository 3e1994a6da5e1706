"""What a run shows while it runs: the terminal view and the live Prometheus text."""
