"""`aiperf-hpc serve`: client groups (profile runs) created, watched and stopped over a REST API.

```
  HTTP client ──> app.py (aiohttp routes, bearer auth, /docs, /openapi.json)
                    │ body ──> validation.py ──> options.py (the CLI's own parser) ──> argv
                    │ rows <──> store.py (SQLite in the state dir; survives a restart)
                    │ local ──> local_runs.py: `aiperf-hpc profile ...` subprocesses (pid + start time)
                    │ slurm ──> slurm_runs.py: `launch.submit` (sbatch), scontrol/sacct, scancel
                    └ progress.py: records.jsonl lines, or the run's live Prometheus counters
```

A client group is one `profile` run. Its artifacts go to `STATE_DIR/runs/ID`.
"""
