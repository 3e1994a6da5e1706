"""Offline tools that read finished runs' artifact directories: the HTML report and its plots
(`report`, `plots`, `series`), the run registry (`runs`) and side-by-side comparisons (`compare`).

Nothing here talks to a running benchmark: every function takes paths or the documents read from
them, so the tools work on a login node long after the job ended.
"""
