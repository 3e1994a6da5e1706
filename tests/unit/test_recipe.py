"""Recipe files: the examples parse; every mistake is one line naming the file and the key (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiperf_hpc.cli import main
from aiperf_hpc.errors import UsageError
from aiperf_hpc.recipe import benchmark_runs, load_recipe, submit_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SLURM = """
slurm:
  time: "00:30:00"
  nodes: 2
  workers_per_node: 4
  partition: debug
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["mock-server.yaml", "vllm-single-node.yaml", "vllm-replicas.yaml"])
def test_the_examples_parse_into_profile_runs(name: str) -> None:
    path = EXAMPLES / name
    recipe = load_recipe(path)
    benchmarks = benchmark_runs(recipe, path)
    assert benchmarks and all(runs for _, runs in benchmarks)
    assert recipe.server is not None


def test_mock_example_profiles_its_own_server_as_a_sweep_under_the_artifact_dir() -> None:
    path = EXAMPLES / "mock-server.yaml"
    recipe = load_recipe(path)
    ((name, runs),) = benchmark_runs(recipe, path)
    assert name == ""
    assert [config.artifact_dir for _, config in runs] == [
        Path("artifacts/mock-server/concurrency1"),
        Path("artifacts/mock-server/concurrency4"),
    ]
    assert {config.endpoint.url for _, config in runs} == {"http://127.0.0.1:8011"}


def test_replicas_example_runs_one_benchmark_per_url_each_in_its_own_directory() -> None:
    path = EXAMPLES / "vllm-replicas.yaml"
    recipe = load_recipe(path)
    benchmarks = benchmark_runs(recipe, path)
    assert [(name, runs[0][1].endpoint.url, runs[0][1].artifact_dir) for name, runs in benchmarks] == [
        ("replica-0", "http://127.0.0.1:8000", Path("artifacts/vllm-replicas/replica-0")),
        ("replica-1", "http://127.0.0.1:8001", Path("artifacts/vllm-replicas/replica-1")),
    ]
    assert recipe.server is not None and len(recipe.server.health_urls) == 2


def test_unnamed_benchmarks_of_a_list_are_numbered(tmp_path: Path) -> None:
    path = write(tmp_path, "artifact_dir: out\nbenchmark:\n  - {model: m, url: 'http://h:1'}\n  - {model: m2}\n")
    names = [(name, runs[0][1].artifact_dir) for name, runs in benchmark_runs(load_recipe(path), path)]
    assert names == [("benchmark-1", Path("out/benchmark-1")), ("benchmark-2", Path("out/benchmark-2"))]


def test_single_node_example_becomes_a_job_with_an_apptainer_server_step() -> None:
    path = EXAMPLES / "vllm-single-node.yaml"
    options, argv = submit_plan(load_recipe(path), path)
    assert options.server_command is not None
    assert options.server_command.startswith("export HF_HUB_OFFLINE=1; apptainer exec --nv --bind ")
    assert (options.nodes, options.workers_per_node, options.server_nodes) == (1, 16, 1)
    assert (options.partition, options.account, options.time) == ("gpu", "p200XXX", "01:00:00")
    assert options.extra_sbatch == ["--gres=gpu:4"]
    assert options.job_name == "vllm-single-node"
    assert options.artifact_dir == Path("results/llama-8b-c64")
    assert options.server_health_timeout_s == 1800
    assert "--url" not in argv and argv[argv.index("--concurrency") + 1] == "16,64"


def test_a_command_list_is_quoted_for_the_job(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  command: [serve, a b, $X]\n  env: {A: 'x y'}\nbenchmark: {model: m}\n" + SLURM)
    options, _ = submit_plan(load_recipe(path), path)
    assert options.server_command == "export A='x y'; serve 'a b' '$X'"


def test_overrides_set_values_read_as_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "benchmark: {model: m, url: 'http://h:1', concurrency: 2}\n" + SLURM)
    recipe = load_recipe(path, ["benchmark.concurrency=[1, 8]", "slurm.nodes=3", "server.command=serve"])
    assert recipe.benchmark == [{"model": "m", "url": "http://h:1", "concurrency": [1, 8]}]
    assert recipe.slurm is not None and recipe.slurm.nodes == 3
    assert recipe.server is not None and recipe.server.command == "serve"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("benchmark: {model: m}\nserver: {comand: x}\n", "exp.yaml: server.comand: unknown key"),
        ("benchmark: {model: m}\nbenchmarks: {model: m}\n", "exp.yaml: benchmarks: unknown key"),
        ("server: {command: x}\n", "exp.yaml: benchmark: required"),
        ("benchmark: {model: m}\nserver: {command: x, port: '8000'}\n", "exp.yaml: server.port: Input should be"),
        ("benchmark: {model: m}\nserver: {command: x, port: 0}\n", "exp.yaml: server.port: Input should be greater"),
        ("benchmark: {model: m}\nserver: {command: 7}\n", "exp.yaml: server.command: expected a shell command"),
        ("benchmark: {model: m}\nserver: {env: {A: b}}\n", "server: give either command or apptainer"),
        (
            "benchmark: {model: m}\nserver: {command: x, apptainer: {image: i.sif, args: serve}}\n",
            "server: give either command or apptainer",
        ),
        ("benchmark: {model: m}\nserver: {apptainer: {image: i.sif}}\n", "server.apptainer.args: required"),
        ("benchmark: {model: m}\nserver: {command: x, env: {1A: b}}\n", "server.env: '1A' is not an environment"),
        ("benchmark: {model: m}\nserver: {command: x, health_url: [1]}\n", "server.health_url: expected"),
        ("benchmark: []\n", "exp.yaml: benchmark: give at least one benchmark"),
        ("benchmark: 3\n", "exp.yaml: benchmark: expected profile options"),
        ("benchmark: {model: m}\nslurm: {time: 1:00:00, nodes: 1, workers_per_node: 1}\n", "write the time in quotes"),
        ("- a\n", "exp.yaml: a recipe is a mapping"),
        ("benchmark: {model: m\n", "exp.yaml: line 2"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as raised:
        load_recipe(path)
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("benchmark: {model: m, concurency: 4}\n", "exp.yaml: benchmark: Unknown option"),
        ("benchmark: {model: m, concurrency: 0}\n", "exp.yaml: benchmark: --concurrency values must be positive"),
        ("benchmark: [{model: m}, {modl: m}]\n", "exp.yaml: benchmark.1: "),
        ("benchmark: {model: m, artifact-dir: x}\n", "benchmark: artifact-dir: set the recipe's artifact_dir"),
        ("benchmark: [{model: m, name: a}, {model: m, name: a}]\n", "benchmark.1.name: 'a' is used twice"),
        ("benchmark: {model: m, name: ../x}\n", "benchmark.name: a directory name"),
    ],
)
def test_bad_benchmark_options_name_the_benchmark(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as raised:
        benchmark_runs(load_recipe(path), path)
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("benchmark: {model: m, url: 'http://h:1'}\n", "exp.yaml: slurm: required for submit"),
        ("benchmark: [{model: m}, {model: m}]\n" + SLURM, "submit runs one benchmark per job"),
        ("server: {command: x}\nbenchmark: {model: m, url: 'http://h:1'}\n" + SLURM, "benchmark.url: the job"),
        ("server: {command: x, health_url: 'http://h/ok'}\nbenchmark: {model: m}\n" + SLURM, "server.health_url"),
        ("benchmark: {model: m}\n" + SLURM, "exp.yaml: give --url"),
        ("benchmark: {model: m, launcher: local, url: 'http://h:1'}\n" + SLURM, "--launcher is set by submit"),
    ],
)
def test_what_a_job_cannot_run_is_refused_before_submitting(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as raised:
        submit_plan(load_recipe(path), path)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("run", "benchmark: {model: m}\nserver: {comand: x}\n", "server.comand: unknown key"),
        ("run", "benchmark: {model: m, concurency: 4}\n", "benchmark: Unknown option"),
        ("run", "server: {command: x, port: 80.5}\n", "server.port"),
        ("submit", "benchmark: {model: m}\nslurm: {time: '1:00:00', nodes: one, workers_per_node: 1}\n", "slurm.nodes"),
    ],
)
def test_the_cli_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as exited:
        main([command, str(path), *(["--dry-run"] if command == "submit" else [])])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"aiperf-hpc: error: {path}: ") and message in err


def test_submit_with_a_recipe_refuses_other_submit_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "benchmark: {model: m, url: 'http://h:1'}\n" + SLURM)
    with pytest.raises(SystemExit) as exited:
        main(["submit", str(path), "--nodes", "3", "--dry-run"])
    assert exited.value.code == 2
    assert "put --nodes in its slurm or server section" in capsys.readouterr().err


def test_submit_with_a_recipe_prints_the_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "benchmark: {model: m, url: 'http://h:1'}\n" + SLURM)
    with pytest.raises(SystemExit) as exited:
        main(["submit", str(path), "--set", "benchmark.concurrency=8", "--dry-run"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "#SBATCH --nodes=2" in out and "#SBATCH --job-name=exp" in out and "--concurrency 8" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("benchmark", "--set takes KEY=VALUE"),
        ("benchmark.5.osl=4", "--set benchmark.5.osl: benchmark has no key '5'"),
        ("benchmark.0.model.x=4", "--set benchmark.0.model.x: benchmark.0.model has no key 'x'"),
        ("server.port=[1", "is not a YAML value"),
        ("server.prot=1", "exp.yaml: server.prot: unknown key"),
    ],
)
def test_bad_overrides_are_one_line(tmp_path: Path, override: str, message: str) -> None:
    path = write(tmp_path, "server: {command: x}\nbenchmark: [{model: m}]\n")
    with pytest.raises(UsageError) as raised:
        load_recipe(path, [override])
    assert message in str(raised.value)
