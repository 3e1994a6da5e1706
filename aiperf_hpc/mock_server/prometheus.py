"""The mock server's `/metrics`: vLLM's Prometheus metrics, driven by the mock's own counters.

Served with vLLM's names and a `model_name` label (the first served model), so a client's scraper
reads the mock as it reads vLLM:

    vllm:num_requests_running          requests in flight (`MockStats.requests_in_flight`)
    vllm:num_requests_waiting          always 0: the mock queues nothing
    vllm:kv_cache_usage_perc           (prompt + output tokens of the generation requests in flight)
                                       / `KV_CACHE_CAPACITY_TOKENS`, at most 1
    vllm:prompt_tokens_total           prompt tokens of the generation requests the mock worked on
    vllm:generation_tokens_total       output tokens of the generation requests it answered in full
    vllm:num_preemptions_total         always 0
    vllm:prefix_cache_queries_total    prompt tokens looked up in the prefix cache (all of them)
    vllm:prefix_cache_hits_total       of which found: whole blocks of `PREFIX_BLOCK_WORDS` words of
                                       the last user message (the prompt) seen before, from the start
    vllm:request_success_total         generation requests answered in full, by finished_reason
    vllm:time_to_first_token_seconds   histogram of the mock's TTFT (its schedule: `ttft_ms`)
    vllm:inter_token_latency_seconds   histogram of its ITL (`itl_ms`, once per token after the first)
    vllm:e2e_request_latency_seconds   histogram of the measured time from arrival to the last token

A request the client abandons counts its prompt tokens, not its output tokens. The same counters
appear in `/mock/stats` (`truth()`), so the two always agree, and `/mock/stats/reset` zeroes them
(a scraper sees a counter reset, as after a server restart). Zero-work answers count only in
`vllm:num_requests_running`. Each app has its own `CollectorRegistry`: no global state.
Only the event loop thread calls these methods.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from aiperf_hpc.mock_server.parsing import GenerationRequest
from aiperf_hpc.mock_server.truth import MockStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KV_CACHE_CAPACITY_TOKENS = 65_536
PREFIX_BLOCK_WORDS = 16
PREFIX_CACHE_BLOCKS = 1_000_000  # the cache forgets everything when full: simple, and bounded
_FINISH_REASONS = ("stop", "length")

# vLLM's bucket bounds (seconds).
_TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_ITL_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_E2E_BUCKETS_S = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0)


class _Histogram:
    """Cumulative-on-export bucket counts, a sum and a count; `observe` takes a multiplicity."""

    def __init__(self, bounds_s: tuple[float, ...]) -> None:
        self.bounds_s = bounds_s
        self.reset()

    def reset(self) -> None:
        self.counts = [0] * (len(self.bounds_s) + 1)  # the last one is +Inf
        self.sum_s = 0.0
        self.count = 0

    def observe(self, value_s: float, times: int = 1) -> None:
        if times <= 0:
            return
        self.counts[bisect.bisect_left(self.bounds_s, value_s)] += times
        self.sum_s += value_s * times
        self.count += times

    def family(self, name: str, documentation: str, model: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, documentation, labels=["model_name"])
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, self.bounds_s), "+Inf"), self.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([model], buckets, self.sum_s)
        return family


class VllmMetrics(Collector):
    """The mock's vLLM metrics and the counters behind them."""

    def __init__(self, stats: MockStats, model: str, ttft_s: float, itl_s: float) -> None:
        self._stats = stats
        self._model = model
        self._ttft_s = ttft_s
        self._itl_s = itl_s
        self._ttft = _Histogram(_TTFT_BUCKETS_S)
        self._itl = _Histogram(_ITL_BUCKETS_S)
        self._e2e = _Histogram(_E2E_BUCKETS_S)
        self._prefix_blocks: set[int] = set()
        self.kv_tokens_in_use = 0
        self.reset()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def reset(self) -> None:
        """Zero the counters and histograms; the KV-cache use of requests in flight stays."""
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.prefix_cache_queries = 0
        self.prefix_cache_hits = 0
        self.success = dict.fromkeys(_FINISH_REASONS, 0)
        for histogram in (self._ttft, self._itl, self._e2e):
            histogram.reset()

    @contextmanager
    def generating(self, request: GenerationRequest) -> Iterator[None]:
        """Around the work on one generation request: counts its prompt tokens and holds its tokens
        in the KV cache until it ends, however it ends."""
        self.prompt_tokens += request.prompt_tokens
        self._look_up_prefix(request)
        held = request.prompt_tokens + request.output_tokens
        self.kv_tokens_in_use += held
        try:
            yield
        finally:
            self.kv_tokens_in_use -= held

    def on_finished(self, request: GenerationRequest, elapsed_s: float) -> None:
        """A generation request about to be answered in full, `elapsed_s` after it arrived."""
        self.generation_tokens += request.output_tokens
        self.success[request.finish_reason] = self.success.get(request.finish_reason, 0) + 1
        self._ttft.observe(self._ttft_s)
        self._itl.observe(self._itl_s, request.output_tokens - 1)
        self._e2e.observe(elapsed_s)

    def truth(self) -> dict[str, Any]:
        """The counters as `/mock/stats` fields."""
        return {
            "prompt_tokens_total": self.prompt_tokens,
            "generation_tokens_total": self.generation_tokens,
            "prefix_cache_queries_total": self.prefix_cache_queries,
            "prefix_cache_hits_total": self.prefix_cache_hits,
            "requests_succeeded": sum(self.success.values()),
            "kv_tokens_in_use": self.kv_tokens_in_use,
        }

    def render(self) -> bytes:
        """The Prometheus text of every metric."""
        return generate_latest(self._registry)

    def collect(self) -> Iterator[Metric]:
        labels, model = ["model_name"], [self._model]

        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, documentation, labels=labels)
            family.add_metric(model, value)
            return family

        def counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, documentation, labels=labels)
            family.add_metric(model, value)
            return family

        yield gauge("vllm:num_requests_running", "Requests in flight.", self._stats.requests_in_flight)
        yield gauge("vllm:num_requests_waiting", "Requests waiting (never, in the mock).", 0)
        usage = min(1.0, self.kv_tokens_in_use / KV_CACHE_CAPACITY_TOKENS)
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache usage, 1 means 100 percent.", usage)
        yield counter("vllm:prompt_tokens", "Prefill tokens processed.", self.prompt_tokens)
        yield counter("vllm:generation_tokens", "Generation tokens processed.", self.generation_tokens)
        yield counter("vllm:num_preemptions", "Preemptions (never, in the mock).", 0)
        yield counter("vllm:prefix_cache_queries", "Prefix-cache queries, in tokens.", self.prefix_cache_queries)
        yield counter("vllm:prefix_cache_hits", "Prefix-cache hits, in tokens.", self.prefix_cache_hits)
        success = CounterMetricFamily(
            "vllm:request_success", "Requests finished.", labels=["finished_reason", "model_name"]
        )
        for reason, count in self.success.items():
            success.add_metric([reason, self._model], count)
        yield success
        yield self._ttft.family("vllm:time_to_first_token_seconds", "Time to first token.", self._model)
        yield self._itl.family("vllm:inter_token_latency_seconds", "Inter-token latency.", self._model)
        yield self._e2e.family("vllm:e2e_request_latency_seconds", "End-to-end request latency.", self._model)

    def _look_up_prefix(self, request: GenerationRequest) -> None:
        """Count the prompt's tokens as queried and its leading blocks seen before as hits, then
        remember its blocks. A block is known by the hash of the text up to its end."""
        self.prefix_cache_queries += request.prompt_tokens
        words = request.last_user_text.split()
        known, chained = 0, 0
        matching = True
        for start in range(0, len(words) - PREFIX_BLOCK_WORDS + 1, PREFIX_BLOCK_WORDS):
            chained = hash((chained, *words[start : start + PREFIX_BLOCK_WORDS]))
            if matching and chained in self._prefix_blocks:
                known += 1
            else:
                matching = False
                if len(self._prefix_blocks) >= PREFIX_CACHE_BLOCKS:
                    self._prefix_blocks.clear()
                self._prefix_blocks.add(chained)
        self.prefix_cache_hits += min(request.prompt_tokens, known * PREFIX_BLOCK_WORDS)
