"""`aiperf-hpc serve` end to end: the real service in a subprocess, real local runs against the real
mock server, real HTTP over loopback, and its SQLite file across restarts."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiperf_hpc.rest.local_runs import process_alive
from tests.integration.harness import CLI, mock_server, new_tag, processes_tagged, wait_for
from tests.integration.service_harness import API, Service, running_service

pytestmark = pytest.mark.integration

SECRET = "sk-do-not-show-me"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for the tests that only read, or are refused: starting one costs seconds."""
    with running_service(tmp_path_factory.mktemp("shared") / "state", tag=new_tag()) as shared:
        yield shared


def long_run(url: str) -> dict[str, Any]:
    """Options of a run that lasts far longer than any test waits (it is always stopped)."""
    return {"model": "mock-model", "url": url, "benchmark_duration": 300, "concurrency": 2}


def wait_requests(service: Service, group_id: str, at_least: int) -> None:
    def done() -> bool:
        progress = service.group(group_id)["progress"]
        return progress is not None and progress["requests_done"] >= at_least

    wait_for(done, 30, f"{at_least} requests of client group {group_id}", interval_s=0.2)


def test_a_local_client_group_runs_to_completion(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server() as server, running_service(tmp_path / "state", tag=tag) as service:
        options = {"model": "mock-model", "url": server.url, "request_count": 20, "concurrency": 2}
        created = service.create({**options, "api_key": SECRET, "header": {"X-Team": "secret-team"}}, name="first")
        assert created["status"] == "running" and created["name"] == "first"
        group = service.wait_status(created["id"], ("completed",))
        listed = service.call("GET", API).body["client_groups"]
        results = service.call("GET", f"{API}/{created['id']}/results")
        stats = server.stats()
    assert stats["requests_total"] == 20
    assert group["exit_code"] == 0 and group["error"] is None
    assert group["progress"] == {"requests_done": 20, "requests_expected": 20, "source": "records"}
    assert group["summary"]["request_count"] == 20 and group["summary"]["error_count"] == 0
    assert group["summary"]["status"] == "completed"
    assert results.status == 200 and results.body["run"]["request_count"] == 20
    assert [item["id"] for item in listed] == [created["id"]] and listed[0]["status"] == "completed"
    assert group["options"]["api_key"] == "***" and group["options"]["header"] == {"X-Team": "***"}
    assert SECRET not in str(listed) and "secret-team" not in str(listed)
    assert SECRET.encode() not in (tmp_path / "state" / "service.sqlite3").read_bytes()
    assert processes_tagged(tag) == []


def test_delete_stops_a_run_which_ends_cancelled_with_partial_results(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server("--ttft-ms", "5") as server, running_service(tmp_path / "state", tag=tag) as service:
        group_id = service.create(long_run(server.url))["id"]
        wait_requests(service, group_id, 10)
        deleted = service.call("DELETE", f"{API}/{group_id}")
        group = service.wait_status(group_id, ("cancelled",))
        again = service.call("DELETE", f"{API}/{group_id}")
        results = service.call("GET", f"{API}/{group_id}/results")
        unknown = service.call("DELETE", f"{API}/no-such-id")
    assert deleted.status == 202
    assert group["exit_code"] == 143 and group["error"] == "stopped by DELETE"
    assert group["summary"]["status"] == "interrupted" and group["summary"]["request_count"] >= 10
    assert results.status == 200 and results.body["metadata"]["status"] == "interrupted"
    assert again.status == 409 and "already ended" in again.body["detail"][0]["msg"]
    assert unknown.status == 404 and unknown.body["detail"][0]["loc"] == ["path", "id"]
    assert processes_tagged(tag) == []


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"launcher": "local", "options": {"model": "m", "bogus": 1}}, ["body", "options", "bogus"], "Unknown option"),
        (
            {"launcher": "local", "options": {"model": "m", "concurrency": 0}},
            ["body", "options", "concurrency"],
            "positive",
        ),
        ({"launcher": "local", "options": {"request_count": 5}}, ["body", "options", "model"], "--model"),
        ({"launcher": "cloud", "options": {"model": "m"}}, ["body", "launcher"], "'local' or 'slurm'"),
        ({"launcher": "local"}, ["body", "options"], "required"),
        (
            {"launcher": "local", "options": {"model": "m", "artifact-dir": "/tmp/x"}},
            ["body", "options", "artifact-dir"],
            "set by the service",
        ),
        (
            {"launcher": "local", "options": {"model": "m", "concurrency": [1, 2]}},
            ["body", "options", "concurrency"],
            "one run",
        ),
        ({"launcher": "slurm", "options": {"model": "m"}}, ["body"], "needs a 'slurm' object"),
        (
            {
                "launcher": "slurm",
                "options": {"model": "m", "url": "http://h:1"},
                "slurm": {"nodes": 1, "workers_per_node": 1, "time": "5"},
            },
            ["body", "slurm", "time"],
            "HH:MM:SS",
        ),
    ],
)
def test_a_bad_body_gets_422_naming_the_field(
    service: Service, body: dict[str, Any], loc: list[str], message: str
) -> None:
    before = service.call("GET", API).body["client_groups"]
    reply = service.call("POST", API, body)
    assert reply.status == 422, reply.body
    assert reply.body["detail"][0]["loc"] == loc
    assert message in reply.body["detail"][0]["msg"]
    assert service.call("GET", API).body["client_groups"] == before


def test_a_body_that_is_not_json_gets_422(service: Service) -> None:
    reply = service.call("POST", API, raw=b"{not json")
    assert reply.status == 422 and reply.body["detail"][0]["loc"] == ["body"]


def test_with_a_token_every_api_route_needs_it(tmp_path: Path) -> None:
    with running_service(tmp_path / "state", tag=new_tag(), token="s3cret-token") as service:
        missing = service.call("GET", API, token="")
        wrong = service.call("POST", API, {"launcher": "local", "options": {}}, token="s3cret-tokem")
        right = service.call("GET", API)
        health = service.call("GET", "/health", token="")
    assert missing.status == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.body["detail"][0]["loc"] == ["header", "Authorization"]
    assert wrong.status == 401
    assert right.status == 200 and right.body == {"client_groups": []}
    assert health.status == 200 and health.body["status"] == "ok"


def test_listening_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "AIPERF_HPC_SERVICE_TOKEN"}
    done = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in done.stderr


def test_a_second_service_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    with running_service(tmp_path / "state", tag=new_tag()):
        done = subprocess.run(
            [*CLI, "serve", "--port", "0", "--state-dir", str(tmp_path / "state")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2 and "another aiperf-hpc service uses" in done.stderr


def test_stopping_the_service_ends_its_runs_which_write_partial_results(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server("--ttft-ms", "5") as server:
        with running_service(tmp_path / "state", tag=tag) as service:
            group_id = service.create(long_run(server.url))["id"]
            wait_requests(service, group_id, 5)
            assert service.stop(signal.SIGINT) == 0
        assert processes_tagged(tag) == []
        with running_service(tmp_path / "state", tag=tag) as service:
            group = service.group(group_id)
    assert group["status"] == "cancelled" and group["error"] == "the service stopped"
    assert group["exit_code"] == 143 and group["summary"]["status"] == "interrupted"
    assert (Path(group["artifact_dir"]) / "profile_export.json").is_file()


def test_the_list_survives_a_restart_and_a_run_that_died_meanwhile_shows_failed(tmp_path: Path) -> None:
    tag = new_tag()
    state = tmp_path / "state"
    with mock_server("--ttft-ms", "5") as server:
        with running_service(state, tag=tag) as service:
            done_id = service.create({"model": "mock-model", "url": server.url, "request_count": 5})["id"]
            service.wait_status(done_id, ("completed",))
            long_id = service.create(long_run(server.url))["id"]
            wait_requests(service, long_id, 5)
            before = service.group(long_id)
            with contextlib.closing(sqlite3.connect(state / "service.sqlite3")) as db:  # the pid is not in the API
                row = db.execute("SELECT pid, pid_start_ticks FROM client_groups WHERE id = ?", [long_id]).fetchone()
            service.stop(signal.SIGKILL)  # the service dies at once: nothing marks the run
            with contextlib.suppress(ProcessLookupError):  # it may have ended on the service's death already
                os.kill(row[0], signal.SIGKILL)  # the run is killed while no service runs
            wait_for(lambda: processes_tagged(tag) == [], 30, "every process of the run to end")
        assert not process_alive(*row)
        with running_service(state, tag=tag) as service:
            listed = {item["id"]: item for item in service.call("GET", API).body["client_groups"]}
    assert before["status"] == "running"
    assert listed[done_id]["status"] == "completed" and listed[done_id]["summary"]["request_count"] == 5
    assert listed[long_id]["status"] == "failed"
    assert "while the service was down" in listed[long_id]["error"]


def test_the_docs_load_nothing_from_outside(service: Service) -> None:
    page = service.call("GET", "/docs")
    document = service.call("GET", "/openapi.json").body
    assets = re.findall(r"(?:src|href)='([^']+)'", page.body)
    fetched = {asset: service.call("GET", asset).status for asset in assets}
    assert page.status == 200 and "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert assets and all(asset.startswith("/docs/assets/") for asset in assets)
    assert set(fetched.values()) == {200}
    assert document["openapi"] == "3.0.3"
    assert {"/health", API, f"{API}/{{id}}", f"{API}/{{id}}/metrics", f"{API}/{{id}}/results"} <= set(document["paths"])
    assert "ClientGroupCreate" in document["components"]["schemas"]


def test_metrics_of_a_run_that_is_not_running_is_409(service: Service) -> None:
    with mock_server() as server:
        group_id = service.create({"model": "mock-model", "url": server.url, "request_count": 3})["id"]
        service.wait_status(group_id, ("completed",))
        reply = service.call("GET", f"{API}/{group_id}/metrics")
    assert reply.status == 409 and reply.body["detail"][0]["loc"] == ["path", "id"]


def test_a_running_local_run_serves_its_live_metrics_through_the_service(tmp_path: Path) -> None:
    tag = new_tag()
    with mock_server("--ttft-ms", "5") as server, running_service(tmp_path / "state", tag=tag) as service:
        group_id = service.create(long_run(server.url))["id"]
        wait_requests(service, group_id, 5)

        def scraped() -> bool:
            return service.call("GET", f"{API}/{group_id}/metrics").status == 200

        wait_for(scraped, 30, "the run's live metrics")
        metrics = service.call("GET", f"{API}/{group_id}/metrics")
        service.call("DELETE", f"{API}/{group_id}")
        service.wait_status(group_id, ("cancelled",))
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE" in metrics.body


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_docs_render_every_operation_in_a_browser_without_a_console_message(
    service: Service, tmp_path: Path
) -> None:
    """Swagger UI, served by the service, fetches /openapi.json and lists the operations; its
    Content-Security-Policy would turn any fetch from elsewhere into a console message."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    command += ["--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}"]
    command += ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", f"{service.url}/docs"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    operations = set(re.findall(r'href="#/default/(\w+)"', done.stdout))
    assert operations == {
        "health",
        "createClientGroup",
        "listClientGroups",
        "getClientGroup",
        "cancelClientGroup",
        "getClientGroupMetrics",
        "getClientGroupResults",
    }
    assert [line for line in done.stderr.splitlines() if ":CONSOLE" in line] == []
