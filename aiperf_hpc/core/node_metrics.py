"""The run's figures broken down by node, so a slow or failing node stands out from the total.

`core.metrics` collects, per profiling record and in record order, the record's node, worker and
outcome (node and worker as integer codes, `core.record_columns`); this module groups those columns
by node. Everything is vectorised: counts and sums are `np.bincount`s, and per-node percentiles come from one sort
by (node, value), so the cost barely depends on the number of nodes.

Lost records carry no node (`node == ""`: the worker died before saying where it ran). Each is put
under the node of its worker when another record of that worker names one, else under
`UNKNOWN_NODE`.

Per node (`NodeMetrics`):

- request, success, error, cancelled and lost counts, as in the run's totals (errors exclude
  cancelled and lost records);
- request and output token throughput: successes (output tokens) / the run's benchmark duration,
  so the nodes' throughputs add up to the run's;
- send lag p50/p99 over the node's sent records with a schedule, request latency p50/p99 over its
  successes (ms, numpy's linear interpolation, like `RunMetrics.metrics`);
- the largest clock offset bound of its records: how far its wall-clock times may be off the
  controller's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from aiperf_hpc.core.record_columns import OUTCOME_CANCELLED, OUTCOME_ERROR, OUTCOME_LOST, OUTCOME_SUCCESS

_OUTCOMES = 4  # the number of OUTCOME_* codes

UNKNOWN_NODE = "unknown"

_NS_PER_MS = 1e6

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class NodeMetrics(BaseModel):
    """One node's share of the run. Throughputs are None when the run has no benchmark duration;
    a percentile is None when the node has no value for it (send lag: no schedule); the clock
    offset bound is None when no record of the node carries one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int
    request_count: int
    success_count: int
    error_count: int
    cancelled_count: int
    lost_count: int
    request_throughput: float | None
    output_token_throughput: float | None
    send_lag_p50_ms: float | None
    send_lag_p99_ms: float | None
    request_latency_p50_ms: float | None
    request_latency_p99_ms: float | None
    clock_offset_bound_ms: float | None


@dataclass(frozen=True)
class NodeColumns:
    """What the breakdown needs, as `core.metrics` collects it.

    Per profiling record, in record order: `node_code` and `worker_code` (indexes into
    `node_names` and `worker_names`; a node name "" means none), `outcome` (an `OUTCOME_*` code),
    `has_schedule` and `clock_offset_bound_ns` (NaN when absent). Per success, in record order:
    `success_latency_ns` and `success_output_tokens` (-1 when missing). Per sent record with a
    schedule (every outcome but lost), in record order: `send_lag_ns`.
    """

    node_code: IntArray
    node_names: Sequence[str]
    worker_code: IntArray
    worker_names: Sequence[str]
    outcome: IntArray
    has_schedule: BoolArray
    clock_offset_bound_ns: FloatArray
    success_latency_ns: IntArray
    success_output_tokens: IntArray
    send_lag_ns: IntArray


@dataclass(frozen=True)
class NodeBreakdown:
    """`by_node` is keyed by node name in sorted order; `node_count` counts the nodes named by
    records, so an `UNKNOWN_NODE` made up for lost records is not one."""

    by_node: dict[str, NodeMetrics]
    node_count: int


def compute_by_node(cols: NodeColumns, duration_s: float | None) -> NodeBreakdown:
    """Group `cols` by node; `duration_s` is the run's benchmark duration (None: no throughputs)."""
    if cols.outcome.size == 0:
        return NodeBreakdown(by_node={}, node_count=0)
    worker_code = cols.worker_code
    names, group, node_count = _node_groups(list(cols.node_names), cols.node_code, worker_code)
    n_groups = len(names)

    outcome_counts = np.bincount(group * _OUTCOMES + cols.outcome, minlength=n_groups * _OUTCOMES)
    outcome_counts = outcome_counts.reshape(n_groups, _OUTCOMES)
    workers = _distinct_workers(group, worker_code, len(cols.worker_names), n_groups)

    success_group = group[cols.outcome == OUTCOME_SUCCESS]
    output_tokens = cols.success_output_tokens
    tokens = np.bincount(success_group, weights=np.where(output_tokens >= 0, output_tokens, 0), minlength=n_groups)
    latency_ms = np.where(cols.success_latency_ns >= 0, cols.success_latency_ns / _NS_PER_MS, np.nan)
    latency = group_percentiles(success_group, latency_ms, n_groups, (50, 99))

    lag_group = group[cols.has_schedule & (cols.outcome != OUTCOME_LOST)]
    lag = group_percentiles(lag_group, cols.send_lag_ns / _NS_PER_MS, n_groups, (50, 99))
    bound = _group_max(group, cols.clock_offset_bound_ns / _NS_PER_MS, n_groups)

    def per_s(total: float) -> float | None:
        return None if duration_s is None else total / duration_s

    by_node = {
        name: NodeMetrics(
            workers=int(workers[g]),
            request_count=int(outcome_counts[g].sum()),
            success_count=int(outcome_counts[g, OUTCOME_SUCCESS]),
            error_count=int(outcome_counts[g, OUTCOME_ERROR]),
            cancelled_count=int(outcome_counts[g, OUTCOME_CANCELLED]),
            lost_count=int(outcome_counts[g, OUTCOME_LOST]),
            request_throughput=per_s(int(outcome_counts[g, OUTCOME_SUCCESS])),
            output_token_throughput=per_s(float(tokens[g])),
            send_lag_p50_ms=_or_none(lag[g, 0]),
            send_lag_p99_ms=_or_none(lag[g, 1]),
            request_latency_p50_ms=_or_none(latency[g, 0]),
            request_latency_p99_ms=_or_none(latency[g, 1]),
            clock_offset_bound_ms=_or_none(bound[g]),
        )
        for g, name in enumerate(names)
    }
    return NodeBreakdown(by_node=by_node, node_count=node_count)


def group_percentiles(group: IntArray, values: FloatArray, n_groups: int, percents: Sequence[float]) -> FloatArray:
    """Percentiles of `values` per group (`group[i]` in [0, n_groups) is the group of `values[i]`),
    ignoring NaN values: an (n_groups, len(percents)) array, NaN for a group with no value.

    Same linear interpolation as `np.percentile`, done for all groups at once after sorting by
    (group, value).
    """
    out = np.full((n_groups, len(percents)), np.nan)
    keep = ~np.isnan(values)
    group, values = group[keep], values[keep]
    if values.size == 0:
        return out
    # By value, then stably by group: several times faster than np.lexsort, and the group codes
    # sort by radix when they fit in 16 bits.
    order = np.argsort(values)
    order = order[np.argsort(group[order].astype(np.min_scalar_type(n_groups)), kind="stable")]
    sorted_values = values[order]
    counts = np.bincount(group, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    counts, starts = counts[has], starts[has]
    for j, percent in enumerate(percents):
        position = (percent / 100) * (counts - 1)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, counts - 1)
        weight = position - below
        low, high = sorted_values[starts + below], sorted_values[starts + above]
        # numpy's _lerp: interpolate from the nearer end, so weights of 0 and 1 give exact values.
        out[has, j] = np.where(weight >= 0.5, high - (high - low) * (1 - weight), low + (high - low) * weight)
    return out


def _node_groups(node_names: list[str], node_code: IntArray, worker_code: IntArray) -> tuple[list[str], IntArray, int]:
    """Each record's node as a group code: (names sorted, group per record, nodes named by records).

    Records without a node take their worker's node (any one of them, should a worker id appear on
    two nodes) or `UNKNOWN_NODE`. `node_names` may be extended with `UNKNOWN_NODE`.
    """
    node_count = len(node_names) - ("" in node_names)
    if "" in node_names:
        known = node_code != node_names.index("")
        worker_node = np.full(int(worker_code.max()) + 1, -1, dtype=np.int64)
        worker_node[worker_code[known]] = node_code[known]
        if UNKNOWN_NODE not in node_names:
            node_names.append(UNKNOWN_NODE)
        inherited = worker_node[worker_code[~known]]
        node_code = node_code.copy()
        node_code[~known] = np.where(inherited >= 0, inherited, node_names.index(UNKNOWN_NODE))
    # Renumber the codes still in use ("" is not, once resolved) in the order of their names.
    used = np.flatnonzero(np.bincount(node_code, minlength=len(node_names)))
    by_name = sorted(used.tolist(), key=node_names.__getitem__)
    group_of_code = np.full(len(node_names), -1, dtype=np.int64)
    group_of_code[by_name] = np.arange(len(by_name))
    return [node_names[code] for code in by_name], group_of_code[node_code], node_count


def _distinct_workers(group: IntArray, worker_code: IntArray, n_workers: int, n_groups: int) -> IntArray:
    """Distinct worker ids per group."""
    pairs = np.unique(group * n_workers + worker_code)
    return np.bincount(pairs // n_workers, minlength=n_groups)


def _group_max(group: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    """Largest non-NaN value per group; NaN for a group with none."""
    out = np.full(n_groups, -np.inf)
    keep = ~np.isnan(values)
    np.maximum.at(out, group[keep], values[keep])
    out[np.isneginf(out)] = np.nan
    return out


def _or_none(value: np.float64) -> float | None:
    return None if np.isnan(value) else float(value)
