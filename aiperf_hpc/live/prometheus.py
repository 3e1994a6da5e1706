"""A run's live figures as Prometheus text, for the client's live /metrics (`--metrics-port`).

Rendered from one `LiveStatus` per scrape by a collector of our own, handed straight to
`prometheus_client.generate_latest`: no global registry, nothing kept between scrapes. Everything
but the gauges counts profiling records only, as the final results do, so a warmup phase shows as
zeros. Families (counters and histograms by node; seconds):

    aiperf_requests_total{node}                      records: successes, errors, cancelled, lost
    aiperf_request_errors_total{node,error_type}     records with an error, cancelled ones left out
    aiperf_output_tokens_total{node}                 output tokens of the successes
    aiperf_input_tokens_total{node}                  input tokens of the successes
    aiperf_time_to_first_token_seconds{node}         one observation per streamed success
    aiperf_inter_token_latency_seconds{node}         per success: (latency - TTFT) / (tokens - 1)
    aiperf_request_latency_seconds{node}             one observation per success
    aiperf_requests_in_flight                        requests the workers hold now
    aiperf_workers_alive                             workers not lost

A family with nothing to report yet (before the first figures) has no samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from aiperf_hpc.core.live_stats import ITL_BOUNDS_S, LATENCY_BOUNDS_S, TTFT_BOUNDS_S, LiveStatus
from aiperf_hpc.protocol.messages import LiveHistogram, NodeLiveStats

_NodeValue = Callable[[NodeLiveStats], int]

# name, help, bucket bounds, NodeLiveStats field
_HISTOGRAMS: tuple[tuple[str, str, tuple[float, ...], str], ...] = (
    ("aiperf_time_to_first_token_seconds", "Time to first token.", TTFT_BOUNDS_S, "time_to_first_token"),
    ("aiperf_inter_token_latency_seconds", "Inter-token latency, per request.", ITL_BOUNDS_S, "inter_token_latency"),
    ("aiperf_request_latency_seconds", "Request latency.", LATENCY_BOUNDS_S, "request_latency"),
)


class LiveCollector(Collector):
    """The metric families of one `LiveStatus`."""

    def __init__(self, status: LiveStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        stats = self._status.stats
        nodes = {} if stats is None else stats.by_node
        yield _counter("aiperf_requests", "Requests finished (profiling phase).", nodes, lambda n: n.requests)
        errors = CounterMetricFamily(
            "aiperf_request_errors",
            "Failed requests by error type, not cancelled ones.",
            labels=["node", "error_type"],
        )
        for node, figures in nodes.items():
            for error_type, count in sorted(figures.errors.items()):
                errors.add_metric([node, error_type], count)
        yield errors
        yield _counter("aiperf_output_tokens", "Output tokens of successes.", nodes, lambda n: n.output_tokens)
        yield _counter("aiperf_input_tokens", "Input tokens of successes.", nodes, lambda n: n.input_tokens)
        for name, documentation, bounds_s, field in _HISTOGRAMS:
            family = HistogramMetricFamily(name, documentation, labels=["node"])
            for node, figures in nodes.items():
                histogram: LiveHistogram = getattr(figures, field)
                family.add_metric([node], _buckets(bounds_s, histogram), histogram.sum_s)
            yield family
        yield _gauge("aiperf_requests_in_flight", "Requests in flight at the workers.", self._status.in_flight)
        yield _gauge("aiperf_workers_alive", "Workers not lost.", self._status.workers_alive)


def render_prometheus(status: LiveStatus) -> bytes:
    """`status` in the Prometheus text format (`prometheus_client.CONTENT_TYPE_LATEST`)."""
    return generate_latest(LiveCollector(status))


def _counter(name: str, documentation: str, nodes: dict[str, NodeLiveStats], value: _NodeValue) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=["node"])
    for node, figures in nodes.items():
        family.add_metric([node], value(figures))
    return family


def _gauge(name: str, documentation: str, value: int | None) -> Metric:
    family = GaugeMetricFamily(name, documentation)
    if value is not None:
        family.add_metric([], value)
    return family


def _buckets(bounds_s: tuple[float, ...], histogram: LiveHistogram) -> list[tuple[str, float]]:
    buckets = [(repr(bound), float(count)) for bound, count in zip(bounds_s, histogram.buckets, strict=True)]
    return [*buckets, ("+Inf", float(histogram.count))]
