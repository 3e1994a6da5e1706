"""Options given as data (recipes, REST bodies) become the same `profile` arguments as the shell's."""

from __future__ import annotations

import pytest

from aiperf_hpc.api_key import API_KEY_ENV, move_api_key_to_env
from aiperf_hpc.errors import UsageError
from aiperf_hpc.options import options_to_argv, parse_profile_argv


def test_values_map_to_arguments() -> None:
    argv = options_to_argv(
        {
            "model": "m",
            "streaming": True,
            "no_usage_example": False,
            "request_rate": [10, 20],
            "header": ["X-A:1", "X-B:2"],
            "extra-inputs": {"ignore_eos": True, "top_k": 5, "stop": "x"},
            "tokenizer": None,
            "osl": 16,
        }
    )
    assert argv == [
        "--model", "m",
        "--streaming",
        "--no-no-usage-example",
        "--request-rate", "10,20",
        "--header", "X-A:1", "--header", "X-B:2",
        "--extra-inputs", "ignore_eos:true", "--extra-inputs", "top_k:5", "--extra-inputs", "stop:x",
        "--osl", "16",
    ]  # fmt: skip


def test_a_sweep_parses_to_one_config_per_point() -> None:
    runs = parse_profile_argv(options_to_argv({"model": "m", "concurrency": [1, 4], "request-count": 8}))
    assert [(label, config.load.concurrency) for label, config in runs] == [("concurrency1", 1), ("concurrency4", 4)]
    assert all(config.load.request_count == 8 for _, config in runs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "m", "concurrency": 0}, "--concurrency"),
        ({"model": "m", "no-such-option": 1}, "no-such-option"),
        ({"model": "m", "osl": {"nested": [1]}}, "--osl"),
        ({"concurrency": 2}, "--model"),
        ({"model": "m", "osl": [[1]]}, "--osl"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_profile_argv(options_to_argv(options))


def test_the_live_options_reach_every_point_of_a_sweep() -> None:
    argv = ["--model", "m", "--concurrency", "1,2", "--ui", "none", "--metrics-port", "0", "--metrics-host", "::1"]
    runs = parse_profile_argv(argv)
    assert [config.live.model_dump() for _, config in runs] == [
        {"ui": "none", "metrics_port": 0, "metrics_host": "::1"}
    ] * 2
    default = parse_profile_argv(["--model", "m"])[0][1].live
    assert (default.ui, default.metrics_port, default.metrics_host) == ("auto", None, "127.0.0.1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ui", "fancy"], "--ui"),
        (["--metrics-port", "65536"], "invalid --metrics-port"),
        (["--metrics-port", "-1"], "invalid --metrics-port"),
        (["--metrics-host", "a b"], "invalid --metrics-host"),
    ],
)
def test_bad_live_options_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_profile_argv(["--model", "m", *argv])


def test_the_api_key_moves_from_the_command_line_to_the_environment() -> None:
    argv = ["--model", "m", "--api-key", "sk-1", "--streaming", "--api-key=sk-2"]
    assert move_api_key_to_env(argv) == (["--model", "m", "--streaming"], {API_KEY_ENV: "sk-2"})
    assert move_api_key_to_env(["--model", "m"]) == (["--model", "m"], {})


def test_profile_takes_the_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "sk-from-env")
    [(_, config)] = parse_profile_argv(["--model", "m"])
    assert config.endpoint.api_key == "sk-from-env"
    [(_, config)] = parse_profile_argv(["--model", "m", "--api-key", "sk-given"])
    assert config.endpoint.api_key == "sk-given"
