"""`report`, `runs list` and `compare` on run directories written by the real exporters."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from aiperf_hpc.cli import main
from aiperf_hpc.core.metrics import compute_metrics
from aiperf_hpc.errors import RunError, UsageError
from aiperf_hpc.exit_codes import ExitCode
from aiperf_hpc.reporting.compare import load_comparison, relative_delta_pct
from aiperf_hpc.reporting.plots import send_lag_png
from aiperf_hpc.reporting.report import render_run_page, write_report
from aiperf_hpc.reporting.run_dir import describe_load
from aiperf_hpc.reporting.series import in_flight, request_series
from aiperf_hpc.results.json_export import profile_export_document
from tests.unit.reporting_fixtures import (
    BASE_WALL_NS,
    ENDPOINT_URL,
    run_records,
    write_baseline_run,
    write_faster_run,
    write_sweep_dir,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASELINE_PLOTS = {"time_to_first_token", "inter_token_latency", "request_latency", "throughput", "in_flight"}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def assert_offline_page(page: str) -> None:
    """No script, no linked resource, no URL but the endpoint shown as text, and a CSP forbidding fetches."""
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert not re.search(r"https?://", page.replace(html.escape(ENDPOINT_URL), ""))
    assert "default-src 'none'; img-src data:" in page


# --- report -----------------------------------------------------------------------------------------


def test_report_is_one_offline_page_with_every_plot_embedded_and_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    write_baseline_run(run_dir)
    stale = run_dir / "plots" / "send_lag.png"  # left by an earlier report of a scheduled run
    stale.parent.mkdir()
    stale.write_bytes(PNG_MAGIC)

    code, out, _ = run_cli(["report", str(run_dir)], capsys)

    assert code == ExitCode.SUCCESS
    assert out.strip() == f"report: {run_dir / 'report.html'}"
    page = (run_dir / "report.html").read_text()
    assert_offline_page(page)
    pngs = {p.stem: p.read_bytes() for p in (run_dir / "plots").glob("*.png")}
    assert set(pngs) == BASELINE_PLOTS  # closed loop: no send lag figure, and the stale one is gone
    assert all(png.startswith(PNG_MAGIC) for png in pngs.values())
    assert page.count('src="data:image/png;base64,') == len(BASELINE_PLOTS)
    assert page.count("<img ") == len(BASELINE_PLOTS)
    assert "concurrency 4" in page
    assert "http_error:500" in page and "boom" in page
    # The by-node table lists both nodes: n0 had two successes and the error.
    assert re.search(r"<td>n0</td><td class=\"num\">1</td><td class=\"num\">3</td><td class=\"num\">2</td>", page)
    assert "<td>n1</td>" in page


def test_a_scheduled_run_gets_the_send_lag_figure() -> None:
    records = run_records(count=3, spacing_ms=100, latency_ms=200, ttft_step_ms=10, scheduled=True)
    png = send_lag_png(request_series(records))
    assert png is not None and png.startswith(PNG_MAGIC)
    assert send_lag_png(request_series(run_records(count=3, spacing_ms=100, latency_ms=200, ttft_step_ms=10))) is None


def test_report_page_escapes_text_from_the_run() -> None:
    records = run_records(count=2, spacing_ms=100, latency_ms=200, ttft_step_ms=10)
    records[-1]["error_message"] = "<script>alert(1)</script>"
    document = profile_export_document(compute_metrics(records), {"status": "<b>done</b>"})

    page = render_run_page(document, [], run_id="<run>")

    assert "<script>" not in page and "<b>" not in page and "<run>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;done&lt;/b&gt;" in page


def test_report_without_profile_export_recomputes_it_from_the_records(tmp_path: Path) -> None:
    write_baseline_run(tmp_path)
    (tmp_path / "profile_export.json").unlink()

    page = write_report(tmp_path).read_text()

    assert "profile_export.json was missing: recomputed" in page
    assert '<td>request_throughput</td><td class="num">8.00</td>' in page
    assert (tmp_path / "profile_export.json").is_file() and (tmp_path / "profile_export.csv").is_file()


def test_report_of_a_sweep_links_each_point_report_and_draws_the_curve(tmp_path: Path) -> None:
    write_sweep_dir(tmp_path)

    page = write_report(tmp_path).read_text()

    assert_offline_page(page)
    assert (tmp_path / "plots" / "sweep_curve.png").read_bytes().startswith(PNG_MAGIC)
    assert page.count('src="data:image/png;base64,') == 1
    for label in ("concurrency1", "concurrency4"):
        assert f'<a href="{label}/report.html">{label}</a>' in page
        assert (tmp_path / label / "report.html").is_file()
        assert (tmp_path / label / "plots" / "time_to_first_token.png").is_file()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no records.jsonl in"),
        (lambda d: (d / "records.jsonl").write_bytes(b""), "holds no records"),
        (lambda d: (d / "records.jsonl").write_bytes(b"{torn\n"), "holds no records"),
    ],
    ids=["missing", "empty", "only-torn-line"],
)
def test_report_without_records_fails_with_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: Callable[[Path], object], message: str
) -> None:
    setup(tmp_path)
    code, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert code == ExitCode.RUN_FAILED
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "report.html").exists()


def test_report_of_a_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "nope")], capsys)
    assert code == ExitCode.USAGE
    assert "is not a directory" in err


# --- the plotted series -----------------------------------------------------------------------------


def test_series_follow_the_metric_definitions_and_skip_warmup() -> None:
    series = request_series(run_records(count=4, spacing_ms=100, latency_ms=200, ttft_step_ms=10))

    np.testing.assert_allclose(series.ttft_ms, [10, 20, 30, 40])
    np.testing.assert_allclose(series.itl_ms, [19, 18, 17, 16])  # (200 - TTFT) / (11 - 1)
    np.testing.assert_allclose(series.latency_ms, [200] * 4)
    np.testing.assert_allclose(series.success_end_s, [0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(series.error_end_s, [0.06])
    assert series.duration_s == pytest.approx(0.5)
    assert series.send_lag_ms.size == 0
    # Starts 0, 0.05 (the error), 0.1, 0.2, 0.3; ends 0.06, 0.2 ... 0.5.
    np.testing.assert_allclose(
        in_flight(series.start_s, series.end_s, np.array([0.0, 0.055, 0.1, 0.35, 0.5])), [1, 2, 2, 2, 0]
    )


def test_series_send_lag_is_start_minus_schedule() -> None:
    series = request_series(run_records(count=3, spacing_ms=100, latency_ms=200, ttft_step_ms=10, scheduled=True))
    np.testing.assert_allclose(series.send_lag_ms, [0, 1, 2])
    np.testing.assert_allclose(series.send_lag_at_s, [0.0, 0.1, 0.2])


# --- runs list --------------------------------------------------------------------------------------


def runs_root(tmp_path: Path) -> Path:
    write_faster_run(tmp_path / "b")
    write_baseline_run(tmp_path / "a")
    return tmp_path


def test_runs_list_json_has_one_row_per_run_oldest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = runs_root(tmp_path)
    write_sweep_dir(root / "sweep")

    code, out, err = run_cli(["runs", "list", str(root), "--json"], capsys)

    assert code == ExitCode.SUCCESS, err
    rows = orjson.loads(out)
    assert [row["id"] for row in rows] == ["a", "sweep/concurrency1", "sweep/concurrency4", "b"]
    common = {"status": "completed", "model": "mock-model", "endpoint_url": ENDPOINT_URL, "endpoint_type": "chat"}
    assert rows[0] == common | {
        "id": "a",
        "date": "2026-01-01T00:00:00Z",
        "started_wall_ns": BASE_WALL_NS,
        "load": "concurrency 4",
        "request_throughput": 8.0,
        "time_to_first_token_p50_ms": 25.0,
        "inter_token_latency_p50_ms": 17.5,
        "request_latency_p99_ms": 200.0,
        "error_count": 1,
        "slurm_job_id": None,
    }
    assert rows[-1] == common | {
        "id": "b",
        "date": "2026-01-01T01:00:00Z",
        "started_wall_ns": BASE_WALL_NS + 3600 * 10**9,
        "load": "poisson 20 req/s",
        "request_throughput": 16.0,
        "time_to_first_token_p50_ms": 22.5,
        "inter_token_latency_p50_ms": 12.75,
        "request_latency_p99_ms": 150.0,
        "error_count": 0,
        "slurm_job_id": "4242",
    }


def test_runs_list_table_and_a_skipped_broken_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = runs_root(tmp_path)
    (root / "broken").mkdir()
    (root / "broken" / "profile_export.json").write_text("{not json")

    code, out, err = run_cli(["runs", "list", str(root)], capsys)

    assert code == ExitCode.SUCCESS
    lines = out.splitlines()
    row_a = next(line for line in lines if line.strip().startswith("a "))
    assert "concurrency 4" in row_a and f"{ENDPOINT_URL} (chat)" in row_a and "8.00" in row_a
    row_b = next(line for line in lines if line.strip().startswith("b "))
    assert "poisson 20 req/s" in row_b and "4242" in row_b and "2026-01-01T01:00:00Z" in row_b
    assert "broken" not in out
    assert "warning: skipped" in err and "broken" in err


def test_runs_list_of_an_empty_root_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["runs", "list", str(tmp_path), "--json"], capsys)[1].strip() == "[]"
    code, out, err = run_cli(["runs", "list", str(tmp_path)], capsys)
    assert (code, out) == (ExitCode.SUCCESS, "")
    assert "no runs under" in err


def test_runs_list_of_a_missing_root_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["runs", "list", str(tmp_path / "nope")], capsys)
    assert code == ExitCode.USAGE
    assert "is not a directory" in err


# --- compare ----------------------------------------------------------------------------------------


def test_compare_json_has_values_per_run_and_deltas_against_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = runs_root(tmp_path)

    code, out, err = run_cli(["compare", str(root / "a"), str(root / "b"), "--json"], capsys)

    assert code == ExitCode.SUCCESS, err
    document = orjson.loads(out)
    assert document["baseline"] == "a"
    assert document["runs"] == [{"id": "a", "path": str(root / "a")}, {"id": "b", "path": str(root / "b")}]
    rows = {row["metric"]: row for row in document["metrics"]}
    assert rows["request_throughput"] == {
        "metric": "request_throughput",
        "unit": "requests/s",
        "values": [8.0, 16.0],
        "deltas_pct": [None, 100.0],
    }
    assert rows["time_to_first_token_p50"]["values"] == [25.0, 22.5]
    assert rows["time_to_first_token_p50"]["deltas_pct"] == [None, pytest.approx(-10.0)]
    assert rows["request_latency_p99"]["deltas_pct"] == [None, pytest.approx(-25.0)]
    assert rows["error_count"]["values"] == [1, 0]
    assert rows["send_lag_p99"]["values"][0] is None  # the baseline is closed loop ...
    assert rows["send_lag_p99"]["deltas_pct"] == [None, None]  # ... so the delta is unknown
    assert "goodput" not in rows  # no run has one


def test_compare_table_shows_deltas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = runs_root(tmp_path)
    code, out, _ = run_cli(["compare", str(root / "a"), str(root / "b")], capsys)
    assert code == ExitCode.SUCCESS
    row = next(line for line in out.splitlines() if line.strip().startswith("request_throughput "))
    assert row.split()[-3:] == ["8.00", "16.00", "(+100.0%)"]
    assert "(baseline)" in out


def test_compare_labels_runs_by_path_when_directory_names_repeat(tmp_path: Path) -> None:
    write_baseline_run(tmp_path / "x" / "run")
    write_faster_run(tmp_path / "y" / "run")
    comparison = load_comparison([tmp_path / "x" / "run", tmp_path / "y" / "run"])
    assert comparison.runs == [str(tmp_path / "x" / "run"), str(tmp_path / "y" / "run")]


def test_compare_refuses_one_run_or_a_directory_without_export(tmp_path: Path) -> None:
    write_baseline_run(tmp_path / "a")
    with pytest.raises(UsageError, match="at least two"):
        load_comparison([tmp_path / "a"])
    with pytest.raises(UsageError, match=r"has no profile_export\.json"):
        load_comparison([tmp_path / "a", tmp_path])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "profile_export.json").write_text("[]")
    with pytest.raises(RunError, match="does not hold a JSON object"):
        load_comparison([tmp_path / "a", tmp_path / "bad"])


@pytest.mark.parametrize(
    ("baseline", "value", "expected"),
    [(8.0, 16.0, 100.0), (200, 150, -25.0), (-4.0, -2.0, 50.0), (0, 5, None), (None, 5, None), (5, None, None)],
)
def test_relative_delta(baseline: float | None, value: float | None, expected: float | None) -> None:
    assert relative_delta_pct(baseline, value) == expected


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ({"concurrency": 16, "request_rate": None}, "concurrency 16"),
        ({"concurrency": None, "request_rate": None}, "concurrency 1"),
        ({"concurrency": 4, "request_rate": 10.0, "request_rate_mode": "constant"}, "constant 10 req/s (cap 4)"),
        ({"fixed_schedule": True, "fixed_schedule_speedup": 2.0}, "fixed schedule x2"),
        ({}, "unknown"),
    ],
)
def test_describe_load(load: dict[str, object], expected: str) -> None:
    assert describe_load(load) == expected
