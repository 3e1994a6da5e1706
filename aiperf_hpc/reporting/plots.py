"""The report's figures as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot
global state, so it runs on a login node without X and in any thread).

Every function takes plain arrays or summary rows and returns the PNG, or None when there is
nothing to draw (the caller then leaves the figure out).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aiperf_hpc.reporting.series import FloatArray, RequestSeries, ServerSeries, in_flight, rate_per_s, time_bins

_DPI = 100
_HISTOGRAM_BINS = 60
_CDF_POINTS = 2000
_IN_FLIGHT_POINTS = 2000
# Histograms stop at this percentile when more values lie beyond it, so one straggler does not
# squeeze the whole distribution into a single bar.
_HISTOGRAM_CUT_PERCENTILE = 99.9
_MARKED_PERCENTILES = (50, 90, 99)


def distribution_png(values: FloatArray, *, title: str, unit: str) -> bytes | None:
    """Histogram and CDF of `values` side by side, with p50/p90/p99 marked."""
    if values.size == 0:
        return None
    figure = _figure(11.0, 3.8)
    histogram_axes, cdf_axes = figure.subplots(1, 2)
    marks = dict(zip(_MARKED_PERCENTILES, np.percentile(values, _MARKED_PERCENTILES), strict=True))

    histogram_range, beyond = _histogram_range(values)
    histogram_axes.hist(values, bins=_HISTOGRAM_BINS, range=histogram_range, color="#4c72b0")
    suffix = f" ({beyond:,} beyond p{_HISTOGRAM_CUT_PERCENTILE:g} not shown)" if beyond else ""
    histogram_axes.set_title(f"{title}: histogram{suffix}", fontsize=10)
    histogram_axes.set_xlabel(unit)
    histogram_axes.set_ylabel("requests")

    quantiles = np.linspace(0.0, 1.0, min(values.size, _CDF_POINTS))
    cdf_axes.plot(np.quantile(values, quantiles), quantiles, color="#4c72b0")
    cdf_axes.set_title(f"{title}: CDF (n={values.size:,})", fontsize=10)
    cdf_axes.set_xlabel(unit)
    cdf_axes.set_ylabel("fraction of requests")
    cdf_axes.set_ylim(0.0, 1.0)
    for axes in (histogram_axes, cdf_axes):
        _mark_percentiles(axes, marks, unit)
        axes.grid(alpha=0.3)
    histogram_axes.legend(fontsize=8)
    return _png(figure)


def throughput_png(series: RequestSeries) -> bytes | None:
    """Completed requests/s and output tokens/s over the run (and errors/s when any failed)."""
    if series.end_s.size == 0:
        return None
    edges_s = time_bins(series.duration_s)
    centers_s = (edges_s[:-1] + edges_s[1:]) / 2
    figure = _figure(11.0, 3.8, right=0.92)
    axes = figure.subplots()
    axes.step(centers_s, rate_per_s(series.success_end_s, edges_s), where="mid", label="requests/s", color="#4c72b0")
    if series.error_end_s.size:
        errors = rate_per_s(series.error_end_s, edges_s)
        axes.step(centers_s, errors, where="mid", label="errors/s", color="#c44e52")
    axes.set_xlabel(f"time since the first request (s), {np.diff(edges_s)[0]:.3g} s bins")
    axes.set_ylabel("requests/s")
    axes.grid(alpha=0.3)
    tokens_axes = axes.twinx()
    tokens = rate_per_s(series.success_end_s, edges_s, weights=series.success_output_tokens)
    tokens_axes.step(centers_s, tokens, where="mid", label="output tokens/s", color="#55a868", alpha=0.8)
    tokens_axes.set_ylabel("output tokens/s")
    axes.set_title("Throughput over time (by completion time)", fontsize=10)
    _legend(axes, tokens_axes)
    return _png(figure)


def in_flight_png(series: RequestSeries) -> bytes | None:
    """Requests in flight over the run, sampled at evenly spaced times."""
    if series.end_s.size == 0:
        return None
    at_s = np.linspace(0.0, series.duration_s, _IN_FLIGHT_POINTS)
    figure = _figure(11.0, 3.2)
    axes = figure.subplots()
    axes.step(at_s, in_flight(series.start_s, series.end_s, at_s), where="post", color="#8172b2")
    axes.set_title("Requests in flight", fontsize=10)
    axes.set_xlabel("time since the first request (s)")
    axes.set_ylabel("requests")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    return _png(figure)


def send_lag_png(series: RequestSeries) -> bytes | None:
    """Send lag (actual minus scheduled send time) over the run and as a histogram; None for
    closed-loop runs, which have no schedule."""
    if series.send_lag_ms.size == 0:
        return None
    figure = _figure(11.0, 3.8)
    time_axes, histogram_axes = figure.subplots(1, 2)
    marker_size = 2 if series.send_lag_ms.size > 1000 else 5
    time_axes.plot(series.send_lag_at_s, series.send_lag_ms, ".", markersize=marker_size, alpha=0.6, color="#dd8452")
    time_axes.set_title("Send lag over time", fontsize=10)
    time_axes.set_xlabel("time since the first request (s)")
    time_axes.set_ylabel("ms")
    histogram_axes.hist(series.send_lag_ms, bins=_HISTOGRAM_BINS, color="#dd8452")
    histogram_axes.set_title(f"Send lag: histogram (n={series.send_lag_ms.size:,})", fontsize=10)
    histogram_axes.set_xlabel("ms")
    histogram_axes.set_ylabel("requests")
    for axes in (time_axes, histogram_axes):
        axes.grid(alpha=0.3)
    return _png(figure)


def server_metrics_png(series: Sequence[ServerSeries]) -> bytes | None:
    """The server's queue (running and waiting requests) and KV-cache usage over the run, one line
    per scraped URL; None when no URL has an answered scrape."""
    series = [s for s in series if s.at_s.size]
    if not series:
        return None
    figure = _figure(11.0, 3.8)
    queue_axes, cache_axes = figure.subplots(1, 2)
    for each in series:
        name = f" ({each.url})" if len(series) > 1 else ""
        queue_axes.step(each.at_s, each.running, where="post", label=f"running{name}")
        queue_axes.step(each.at_s, each.waiting, where="post", linestyle="--", label=f"waiting{name}")
        cache_axes.step(each.at_s, each.kv_cache_usage_pct, where="post", label=each.url)
    queue_axes.set_title("Server queue: requests running and waiting", fontsize=10)
    queue_axes.set_ylabel("requests")
    cache_axes.set_title("Server KV-cache usage", fontsize=10)
    cache_axes.set_ylabel("% of the KV cache")
    for axes in (queue_axes, cache_axes):
        axes.set_xlabel("time since the first request (s)")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    queue_axes.legend(fontsize=8)
    if len(series) > 1:
        cache_axes.legend(fontsize=8)
    return _png(figure)


def sweep_curve_png(rows: Sequence[Mapping[str, object]]) -> bytes | None:
    """Throughput against latency across a sweep's points (rows of `sweep_summary.json`), each
    point labelled with its value: request latency, TTFT and ITL (p50 and p99) per panel."""
    panels = (
        ("request_throughput", "requests/s", "request_latency", "Request latency"),
        ("output_token_throughput", "output tokens/s", "time_to_first_token", "TTFT"),
        ("output_token_throughput", "output tokens/s", "inter_token_latency", "ITL"),
    )
    figure = _figure(15.0, 4.2)
    figure.subplots_adjust(left=0.05, wspace=0.3)
    drawn = False
    for axes, (x_key, x_label, metric, title) in zip(figure.subplots(1, 3), panels, strict=True):
        for stat, style in (("p50", "o-"), ("p99", "s--")):
            points = [(_float(r.get(x_key)), _float(r.get(f"{metric}_{stat}")), str(r.get("value"))) for r in rows]
            points = [(x, y, label) for x, y, label in points if x is not None and y is not None]
            if not points:
                continue
            drawn = True
            axes.plot([p[0] for p in points], [p[1] for p in points], style, label=stat)
            for x, y, label in points:
                axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        axes.margins(x=0.15, y=0.1)  # room for the point labels
        axes.set_title(f"{title} vs throughput", fontsize=10)
        axes.set_xlabel(x_label)
        axes.set_ylabel(f"{title} (ms)")
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return _png(figure) if drawn else None


def _histogram_range(values: FloatArray) -> tuple[tuple[float, float], int]:
    """The histogram's x range and how many values it leaves out: it stops at p99.9 only when the
    values beyond reach further than the whole range below it, i.e. when stragglers would squeeze
    the distribution into a few bars; a single value gets a small range around it."""
    low, high = float(values.min()), float(values.max())
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        return (low - pad, high + pad), 0
    cut = float(np.percentile(values, _HISTOGRAM_CUT_PERCENTILE))
    if high - cut > cut - low > 0:
        return (low, cut), int(np.count_nonzero(values > cut))
    return (low, high), 0


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _figure(width_in: float, height_in: float, *, right: float = 0.98) -> Figure:
    """A figure on its own Agg canvas. Margins are fixed rather than computed by a layout engine,
    which would triple the drawing time; `right` leaves room for a second y axis's labels."""
    figure = Figure(figsize=(width_in, height_in), dpi=_DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.06, right=right, bottom=0.15, top=0.9, wspace=0.22)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _mark_percentiles(axes: Axes, marks: Mapping[int, float], unit: str) -> None:
    for (percent, value), color in zip(marks.items(), ("#55a868", "#dd8452", "#c44e52"), strict=True):
        axes.axvline(value, color=color, linestyle="--", linewidth=1, label=f"p{percent} {value:,.3g} {unit}")


def _legend(*axes: Axes) -> None:
    handles, labels = [], []
    for each in axes:
        h, lab = each.get_legend_handles_labels()
        handles += h
        labels += lab
    axes[0].legend(handles, labels, fontsize=8, loc="upper left")
