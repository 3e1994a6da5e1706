"""What a run shows on stderr while it runs, chosen by `--ui`:

- `live`: a rich view redrawn every second: a progress bar (with ETA when the request count or the
  duration is known), requests done and in flight, errors, req/s and tokens/s over the last seconds,
  rolling TTFT/ITL/latency p50 and p99, workers alive (by node when there are several nodes);
- `simple`: the same figures as one plain line every `SIMPLE_EVERY` seconds, and a last line when
  the run ends: readable in a Slurm log;
- `none`: no progress output.

`auto` is `live` on a terminal and `simple` otherwise. In every mode events (a lost worker, a signal)
still print as lines of their own; errors and the results table are not the view's business.
The controller calls `note` and `update` on its event loop; `run_profile.py` calls `close` once the run is
over. Nothing here reads a clock or starts a thread: the live view redraws on `update`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from aiperf_hpc.config import RunConfig, UiMode
from aiperf_hpc.core.live_stats import LiveStatus

SIMPLE_EVERY = 5  # updates (one a second) between two lines of the simple view
PREFIX = "aiperf-hpc: "


@dataclass(frozen=True)
class RunPlan:
    """What bounds the profiling phase, for the progress bar: a request count, a duration, or neither
    (a trace replay, one pass over an input file)."""

    request_count: int | None
    duration_s: float | None
    warmup: bool

    @classmethod
    def of(cls, config: RunConfig) -> RunPlan:
        load = config.load
        count = None if config.dataset_pass else load.profiling_request_count
        return cls(count, load.benchmark_duration_s, bool(load.warmup_request_count or load.warmup_duration_s))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def done_text(status: LiveStatus, plan: RunPlan, *, percent: bool = True) -> str:
    """How far the run is: "120/1,000 requests (12%)", "30/60 s, 4,512 requests", or "warmup: 3 requests"."""
    stats = status.stats
    requests = 0 if stats is None else stats.requests
    if plan.warmup and requests == 0:
        return f"warmup: {0 if stats is None else stats.warmup_requests:,} requests"
    if plan.request_count is not None:
        share = f" ({100 * requests // plan.request_count}%)" if percent else ""
        return f"{requests:,}/{plan.request_count:,} requests{share}"
    if plan.duration_s is not None:
        elapsed_s = 0.0 if stats is None or stats.profiling_for_s is None else stats.profiling_for_s
        return f"{min(elapsed_s, plan.duration_s):.0f}/{plan.duration_s:g} s, {requests:,} requests"
    return f"{requests:,} requests"


def load_texts(status: LiveStatus) -> list[str]:
    """In flight (when known), errors, and the rates: ["4 in flight", "0 errors", "103.2 req/s", ...]."""
    stats = status.stats
    texts = [] if status.in_flight is None else [f"{status.in_flight:,} in flight"]
    texts.append(f"{0 if stats is None else stats.errors:,} errors")
    if stats is not None:
        texts += [f"{_rate(stats.request_rate_per_s)} req/s", f"{_rate(stats.output_token_rate_per_s)} tok/s"]
    return texts


def latency_texts(status: LiveStatus) -> list[str]:
    """The rolling p50/p99 the run has: ["TTFT p50/p99 20.1/25.3 ms", "ITL ...", "latency ..."]."""
    stats = status.stats
    if stats is None:
        return []
    figures = (
        ("TTFT", stats.ttft_p50_ms, stats.ttft_p99_ms),
        ("ITL", stats.itl_p50_ms, stats.itl_p99_ms),
        ("latency", stats.latency_p50_ms, stats.latency_p99_ms),
    )
    return [f"{name} p50/p99 {_ms(p50)}/{_ms(p99)} ms" for name, p50, p99 in figures if p50 is not None]


def workers_text(status: LiveStatus) -> str:
    """ "4 workers", or "8 workers (node-a 4, node-b 4)" across nodes."""
    alive = status.workers_alive if status.workers_alive is not None else sum(status.workers_by_node.values())
    text = f"{alive:,} workers"
    if len(status.workers_by_node) > 1:
        text += " (" + ", ".join(f"{node} {count}" for node, count in status.workers_by_node.items()) + ")"
    return text


def progress_line(status: LiveStatus, plan: RunPlan) -> str:
    """The simple view's line (without its prefix)."""
    return ", ".join([done_text(status, plan), *load_texts(status), *latency_texts(status), workers_text(status)])


class QuietView:
    """`--ui none`: events only."""

    def __init__(self, console: Console, plan: RunPlan) -> None:
        self._console = console
        self._plan = plan

    def note(self, line: str) -> None:
        self._console.print(PREFIX + line, markup=False, highlight=False)

    def update(self, status: LiveStatus) -> None:
        pass

    def close(self, status: LiveStatus | None) -> None:
        pass


class SimpleView(QuietView):
    """`--ui simple`: a progress line every `SIMPLE_EVERY` updates, and a last one at the end."""

    def __init__(self, console: Console, plan: RunPlan) -> None:
        super().__init__(console, plan)
        self._updates = 0

    def update(self, status: LiveStatus) -> None:
        self._updates += 1
        if self._updates % SIMPLE_EVERY == 0:
            self.note(progress_line(status, self._plan))

    def close(self, status: LiveStatus | None) -> None:
        if status is not None and status.stats is not None:
            # The last in-flight count is a second old and means nothing once the run is over.
            self.note("done: " + progress_line(replace(status, in_flight=None), self._plan))


class LiveView(QuietView):
    """`--ui live`: a progress bar and the figures under it, redrawn on each update. Started by the
    first update, so the lines printed before the run starts stay above it."""

    def __init__(self, console: Console, plan: RunPlan) -> None:
        super().__init__(console, plan)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[done]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=False,
        )
        total = plan.request_count if plan.request_count is not None else plan.duration_s
        # Started with the profiling phase, so its elapsed time and ETA leave out start-up and warmup.
        self._task = self._progress.add_task("profiling", total=total, done="", start=False)
        self._live: Live | None = None

    def update(self, status: LiveStatus) -> None:
        self._show(status)

    def close(self, status: LiveStatus | None) -> None:
        """Draw the final figures (even for a run too short for any update), then leave them on screen."""
        if status is not None and status.stats is not None:
            self._show(replace(status, in_flight=None))  # the last in-flight count is stale by now
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _show(self, status: LiveStatus) -> None:
        if self._live is None:
            self._live = Live(
                console=self._console,
                auto_refresh=False,  # redrawn by each update: no refresh thread
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        self._live.update(self._render(status), refresh=True)

    def _render(self, status: LiveStatus) -> Group:
        stats = status.stats
        requests = 0 if stats is None else stats.requests
        warming_up = self._plan.warmup and requests == 0
        if self._plan.request_count is not None:
            completed = float(requests)
        else:
            completed = 0.0 if stats is None or stats.profiling_for_s is None else stats.profiling_for_s
        if self._plan.duration_s is not None:
            completed = min(completed, self._plan.duration_s)
        if not warming_up and not self._progress.tasks[0].started:
            self._progress.start_task(self._task)
        self._progress.update(
            self._task,
            completed=0.0 if warming_up else completed,
            description="warmup" if warming_up else "profiling",
            done=done_text(status, self._plan, percent=False),
        )
        lines = [", ".join(load_texts(status)), ", ".join(latency_texts(status)), workers_text(status)]
        return Group(self._progress.get_renderable(), *(Text(line) for line in lines if line))


def make_view(mode: UiMode, plan: RunPlan, console: Console) -> QuietView:
    """The view for `--ui MODE` on `console` (stderr); `auto` looks at whether it is a terminal."""
    if mode == "auto":
        mode = "live" if console.is_terminal and not console.is_dumb_terminal else "simple"
    views: dict[str, type[QuietView]] = {"live": LiveView, "simple": SimpleView, "none": QuietView}
    return views[mode](console, plan)
