"""Recipe files: a whole experiment (an optional server, the benchmarks, the Slurm job) in one YAML file.

`load_recipe` reads and validates a recipe; every mistake is a UsageError of one line naming the file
and the key (`recipe.yaml: server.comand: unknown key`). The benchmarks are `profile` options as data,
parsed by `options.py` exactly as the command line parses them; `benchmark_runs` turns them into
`profile` arguments for `aiperf-hpc run`, `submit_plan` into the options and arguments of
`aiperf-hpc submit`. See docs/recipes.md for the format.

Where results go: a single benchmark writes into `artifact_dir` (default `artifacts/RECIPE_STEM`); a
benchmark with a `name`, and every benchmark of a list, writes into `artifact_dir/NAME` (unnamed ones
of a list are `benchmark-1`, `benchmark-2`, ...). `aiperf-hpc run` keeps the server's output in
`artifact_dir/server.log`.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiperf_hpc.config import RunConfig
from aiperf_hpc.core.sbatch import SubmitOptions, check_submit
from aiperf_hpc.errors import UsageError
from aiperf_hpc.options import options_to_argv, parse_profile_argv

RECIPE_SUFFIXES = (".yaml", ".yml")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Section(BaseModel):
    # strict: `port: "8000"` or `nv: "yes"` is a mistake to point out, not a value to guess at.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _command_or_args(value: Any) -> Any:
    """A shell command (a string) or an argument list (strings); checked here so that the error
    names the key rather than each member of a `str | list[str]` union."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty")
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    raise ValueError(f"expected a shell command (a string) or a non-empty list of strings, got {value!r}")


class Apptainer(_Section):
    """`apptainer exec [--nv] [--bind B]... IMAGE ARGS...`."""

    image: str = Field(min_length=1)
    args: str | list[str]
    binds: list[str] = []
    nv: bool = False

    _check_args = field_validator("args", mode="before")(_command_or_args)

    def argv(self) -> list[str]:
        args = shlex.split(self.args) if isinstance(self.args, str) else self.args
        binds = [arg for bind in self.binds for arg in ("--bind", bind)]
        return ["apptainer", "exec", *(["--nv"] if self.nv else []), *binds, self.image, *args]


class Resources(_Section):
    """What the server needs on a cluster (`submit` only; `run` uses the machine it runs on)."""

    nodes: int = Field(default=1, ge=1)
    gpus_per_node: int | None = Field(default=None, ge=1)


class Server(_Section):
    command: str | list[str] | None = None
    apptainer: Apptainer | None = None
    env: dict[str, str] = {}
    port: int = Field(default=8000, ge=1, le=65535)
    health_url: str | list[str] | None = None
    health_timeout_s: float = Field(default=900.0, gt=0, allow_inf_nan=False)
    resources: Resources = Field(default_factory=Resources)

    @field_validator("command", mode="before")
    @classmethod
    def _check_command(cls, value: Any) -> Any:
        return None if value is None else _command_or_args(value)

    @field_validator("health_url", mode="before")
    @classmethod
    def _check_health_url(cls, value: Any) -> Any:
        urls = value if isinstance(value, list) else [value]
        is_url = [isinstance(url, str) and url.startswith(("http://", "https://")) for url in urls]
        if value is None or (is_url and all(is_url)):
            return value
        raise ValueError(f"expected an http(s) URL or a list of them (all must answer), got {value!r}")

    @field_validator("env")
    @classmethod
    def _check_env(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return env

    @model_validator(mode="after")
    def _one_way_to_start(self) -> Server:
        if (self.command is None) == (self.apptainer is None):
            raise ValueError("give either command or apptainer (one way to start the server)")
        return self

    @property
    def url(self) -> str:
        """The server's base URL on this machine."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_urls(self) -> list[str]:
        """The URLs that must all answer 2xx before the benchmarks start (`aiperf-hpc run`)."""
        if self.health_url is None:
            return [f"{self.url}/health"]
        return [self.health_url] if isinstance(self.health_url, str) else self.health_url

    def argv(self) -> list[str]:
        """The command as a process's argument list (a shell command runs under bash)."""
        if self.apptainer is not None:
            return self.apptainer.argv()
        assert self.command is not None  # one of the two, checked above
        return ["bash", "-c", self.command] if isinstance(self.command, str) else self.command

    def shell_command(self) -> str:
        """The command as one line of shell code, its environment exported first (for sbatch)."""
        command = self.command if isinstance(self.command, str) else shlex.join(self.argv())
        exports = [f"export {name}={shlex.quote(value)}" for name, value in self.env.items()]
        return "; ".join([*exports, command])


def _slurm_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads 1:00:00 as the number 3600 (base 60).
        raise ValueError(f"write the time in quotes ('1:00:00'); YAML read it as the number {value}")
    return value


class Slurm(_Section):
    """The job of `aiperf-hpc submit`; the same meanings as its options."""

    time: str
    nodes: int = Field(ge=1)
    workers_per_node: int = Field(ge=1)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    job_name: str | None = None
    setup: list[str] = []
    extra_sbatch: list[str] = []
    python: str | None = None

    _check_time = field_validator("time", mode="before")(_slurm_time)


class Recipe(_Section):
    artifact_dir: str | None = None
    server: Server | None = None
    benchmark: list[dict[str, Any]]
    slurm: Slurm | None = None

    @field_validator("benchmark", mode="before")
    @classmethod
    def _one_or_a_list(cls, value: Any) -> Any:
        benchmarks = value if isinstance(value, list) else [value]
        if not benchmarks:
            raise ValueError("give at least one benchmark")
        for benchmark in benchmarks:
            if not isinstance(benchmark, dict):
                raise ValueError(f"expected profile options (a mapping) or a list of them, got {benchmark!r}")
        return benchmarks


def load_recipe(path: Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override (`--set KEY=VALUE`) and validate the recipe at `path`; UsageError naming the file
    and the key for anything wrong. Defaults that depend on the file: `artifact_dir` is
    `artifacts/STEM`, the Slurm job name is `STEM`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsageError(f"{path}:{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a recipe is a mapping with server, benchmark and slurm sections")
    for override in overrides or []:
        _apply_override(data, override)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{path}: {_describe(exc)}") from None
    update: dict[str, Any] = {"artifact_dir": recipe.artifact_dir or f"artifacts/{path.stem}"}
    if recipe.slurm is not None and recipe.slurm.job_name is None:
        update["slurm"] = recipe.slurm.model_copy(update={"job_name": path.stem})
    return recipe.model_copy(update=update)


def is_recipe_path(arg: str) -> bool:
    return arg.endswith(RECIPE_SUFFIXES)


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required"
    return f"{key}: {message}" if key else message


def _apply_override(data: dict[str, Any], override: str) -> None:
    """`benchmark.concurrency=8`: the value is read as YAML (`[1, 4]` is a list); a number in the
    path indexes a list (`benchmark.1.concurrency=8`)."""
    key, sep, text = override.partition("=")
    parts = key.split(".")
    if not sep or not all(parts):
        raise UsageError(f"--set takes KEY=VALUE with a dotted KEY (benchmark.concurrency=8), got {override!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UsageError(f"--set {key}: {text!r} is not a YAML value") from None
    node: Any = data
    for index, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            slot: Any = int(part)
        elif isinstance(node, dict):
            slot = part
        else:
            raise UsageError(f"--set {key}: {'.'.join(parts[:index]) or 'the recipe'} has no key {part!r}")
        if index == len(parts) - 1:
            node[slot] = value
        else:
            if isinstance(node, dict):
                node.setdefault(slot, {})  # `--set server.command=x` on a recipe without a server
            node = node[slot]


def _option_names(argv: list[str]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}


def _benchmarks(recipe: Recipe) -> list[tuple[str, list[str], Path]]:
    """`(label, profile arguments without the artifact dir, artifact dir)` per benchmark."""
    assert recipe.artifact_dir is not None  # load_recipe sets it
    root = Path(recipe.artifact_dir)
    several = len(recipe.benchmark) > 1
    planned: list[tuple[str, list[str], Path]] = []
    for index, options in enumerate(recipe.benchmark):
        key = f"benchmark.{index}" if several else "benchmark"
        options = dict(options)
        name = options.pop("name", None)
        if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
            raise UsageError(f"{key}.name: a directory name (letters, digits, . _ -), got {name!r}")
        if name is None and several:
            name = f"benchmark-{index + 1}"
        if any(label == name for label, _, _ in planned):
            raise UsageError(f"{key}.name: {name!r} is used twice")
        try:
            argv = options_to_argv(options)
        except UsageError as exc:
            raise UsageError(f"{key}: {exc}") from None
        if "--artifact-dir" in _option_names(argv):
            raise UsageError(f"{key}: artifact-dir: set the recipe's artifact_dir; results go under it")
        planned.append((name or "", argv, root / name if name else root))
    return planned


def benchmark_runs(recipe: Recipe, source: Path) -> list[tuple[str, list[tuple[str, RunConfig]]]]:
    """Each benchmark as `(name, runs)`, parsed and validated as `aiperf-hpc profile` would; the URL
    defaults to the server's. UsageError naming `source` and the benchmark otherwise."""
    planned = []
    for index, (name, argv, artifact_dir) in enumerate(_benchmarks(recipe)):
        if recipe.server is not None and "--url" not in _option_names(argv):
            argv = ["--url", recipe.server.url, *argv]
        key = f"benchmark.{index}" if len(recipe.benchmark) > 1 else "benchmark"
        try:
            runs = parse_profile_argv([*argv, "--artifact-dir", str(artifact_dir)])
        except UsageError as exc:
            raise UsageError(f"{source}: {key}: {exc}") from None
        planned.append((name, runs))
    return planned


def submit_plan(recipe: Recipe, source: Path) -> tuple[SubmitOptions, list[str]]:
    """`aiperf-hpc submit`'s options and profile arguments for the recipe (one benchmark, a sweep
    allowed). UsageError naming `source` for what a job cannot run."""
    if recipe.slurm is None:
        raise UsageError(f"{source}: slurm: required for submit (time, nodes, workers_per_node, ...)")
    if len(recipe.benchmark) > 1:
        raise UsageError(f"{source}: benchmark: submit runs one benchmark per job (a sweep is fine); got a list")
    ((_, argv, artifact_dir),) = _benchmarks(recipe)
    try:
        parse_profile_argv(argv)  # refuse now what the job would refuse after waiting in the queue
    except UsageError as exc:
        raise UsageError(f"{source}: benchmark: {exc}") from None
    slurm, server = recipe.slurm, recipe.server
    options: dict[str, Any] = {}
    extra_sbatch = list(slurm.extra_sbatch)
    if server is not None:
        if "--url" in _option_names(argv):
            raise UsageError(f"{source}: benchmark.url: the job profiles its own server; leave url out")
        if server.health_url is not None and server.health_urls != [f"{server.url}/health"]:
            raise UsageError(f"{source}: server.health_url: a job polls http://NODE:PORT/health; leave it out")
        options = {
            "server_command": server.shell_command(),
            "server_nodes": server.resources.nodes,
            "server_port": server.port,
            "server_health_timeout_s": server.health_timeout_s,
        }
        if server.resources.gpus_per_node is not None:
            extra_sbatch.append(f"--gres=gpu:{server.resources.gpus_per_node}")
    submit_options = SubmitOptions(
        nodes=slurm.nodes,
        workers_per_node=slurm.workers_per_node,
        partition=slurm.partition,
        account=slurm.account,
        time=slurm.time,
        qos=slurm.qos,
        job_name=slurm.job_name or "aiperf-hpc",
        artifact_dir=artifact_dir,
        extra_sbatch=extra_sbatch,
        setup=list(slurm.setup),
        python=slurm.python or sys.executable,
        **options,
    )
    try:
        check_submit(submit_options, argv)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from None
    return submit_options, argv
