"""The sbatch script of `aiperf-hpc submit` (core.sbatch) and its submission (launch.submit).

The script is checked as text, by `bash -n`, by shlex, and by running it under bash with fake Slurm
commands and a fake interpreter placed in a temporary directory (no Slurm needed).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aiperf_hpc.artifacts import SBATCH_SCRIPT_FILE as SCRIPT_NAME
from aiperf_hpc.core.sbatch import SubmitOptions, check_submit, sbatch_script
from aiperf_hpc.errors import RunError, UsageError
from aiperf_hpc.launch.submit import parse_job_id, sbatch_environment, submit

pytestmark = pytest.mark.timeout(30)

SUBMIT_DIR = Path("/home/user/project")
HOSTILE = ["a'; rm -rf / #", "$(id)", "`id`", 'x" y', "back\\slash", "new\nline", "* ?", "~root", "-"]
ONE_LINE_HOSTILE = [h for h in HOSTILE if "\n" not in h]
PLAIN_ARGS = ["-m", "llama", "--url", "http://vllm-host:8000", "--streaming", "--concurrency", "64"]
PROFILE_ARGS = ["-m", "llama", "--streaming", "--concurrency", "64"]


def plain(**changes: object) -> SubmitOptions:
    options = SubmitOptions(
        nodes=3,
        workers_per_node=4,
        time="01:30:00",
        artifact_dir=Path("artifacts/run1"),
        partition="cpu",
        account="p200001",
        python="/opt/aiperf/bin/python",
    )
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def with_server(**changes: object) -> SubmitOptions:
    server: dict[str, object] = {
        "server_command": "apptainer exec --nv vllm.sif vllm serve llama --port 8000",
        "partition": "gpu",
        "qos": "default",
        "extra_sbatch": ["--gres=gpu:4"],
        "setup": ["module load Apptainer"],
    }
    return plain(**{**server, **changes})


def lines_of(script: str) -> list[str]:
    return script.splitlines()


def directives(script: str) -> list[str]:
    return [line for line in lines_of(script) if line.startswith("#SBATCH ")]


def command_tokens(script: str, first_word: str) -> list[str]:
    """The tokens of the (backslash-continued) command that starts with `first_word`, as bash splits them."""
    text = script[script.index(f"\n{first_word}") + 1 :]
    command: list[str] = []
    for line in text.split("\n"):
        command.append(line)
        if not line.endswith("\\"):
            break
    return shlex.split("\n".join(command).replace("\\\n", " "))


def bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "check.sbatch"
    path.write_text(script)
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr


# --- the script text ---------------------------------------------------------------------------------


def test_plain_job_directives_and_command(tmp_path: Path) -> None:
    script = sbatch_script(plain(), PLAIN_ARGS, submit_dir=SUBMIT_DIR)
    assert lines_of(script)[0] == "#!/bin/bash"
    assert directives(script) == [
        "#SBATCH --job-name=aiperf-hpc",
        "#SBATCH --nodes=3",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --time=01:30:00",
        "#SBATCH --partition=cpu",
        "#SBATCH --account=p200001",
        "#SBATCH --output=/home/user/project/artifacts/run1/slurm-%j.out",
        "#SBATCH --error=/home/user/project/artifacts/run1/slurm-%j.err",
    ]
    # sbatch stops reading directives at the first command: every one comes before it.
    first_command = next(i for i, line in enumerate(lines_of(script)) if line and not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(lines_of(script)) if line.startswith("#SBATCH"))
    body = lines_of(script)[first_command:]
    assert body[:5] == [
        "set -euo pipefail",
        "",
        "cd /home/user/project",
        "python=/opt/aiperf/bin/python",
        "artifact_dir=/home/user/project/artifacts/run1",
    ]
    head = 'exec "$python" -m aiperf_hpc.cli profile --launcher slurm \\\n'
    assert head + "  -m llama \\\n  --url http://vllm-host:8000 \\\n" in script
    assert script.endswith('  --nodes 3 --workers-per-node 4 --artifact-dir "$artifact_dir"\n')
    for absent in ("srun", "AIPERF_HPC_NODELIST", "trap", "--qos"):
        assert absent not in script
    bash_syntax_ok(script, tmp_path)


def test_server_job_splits_the_nodes_and_waits_for_health(tmp_path: Path) -> None:
    script = sbatch_script(with_server(server_nodes=2, server_port=8123), PROFILE_ARGS, submit_dir=SUBMIT_DIR)
    assert directives(script) == [
        "#SBATCH --job-name=aiperf-hpc",
        "#SBATCH --nodes=5",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --time=01:30:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=p200001",
        "#SBATCH --qos=default",
        "#SBATCH --output=/home/user/project/artifacts/run1/slurm-%j.out",
        "#SBATCH --error=/home/user/project/artifacts/run1/slurm-%j.err",
        "#SBATCH --gres=gpu:4",
    ]
    lines = lines_of(script)
    for line in [
        "set +u",
        "module load Apptainer",
        "set -u",
        "server_port=8123",
        "server_health_timeout_s=900",
        'job_nodes="$(scontrol show hostnames "$SLURM_JOB_NODELIST")"',
        'server_nodes=("${nodes[@]:0:2}")',
        'load_nodes=("${nodes[@]:2:3}")',
        'server_url="http://${server_nodes[0]}:${server_port}"',
        'AIPERF_HPC_NODELIST="$(IFS=,; echo "${load_nodes[*]}")"',
        "server_pid=$!",
        "trap stop_server EXIT",
        '  tail -n 50 "$server_log" >&2 || true',
        'exit "$status"',
    ]:
        assert line in lines, line
    order = ["set -euo pipefail", "set +u", "module load Apptainer", "set -u", "cd /home/user/project"]
    assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)
    srun = command_tokens(script, "srun")
    assert srun[:5] == ["srun", "--job-name=aiperf-hpc-server", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1"]
    assert "--overlap" in srun
    assert srun[-7:-4] == ["bash", "-c", "apptainer exec --nv vllm.sif vllm serve llama --port 8000"]
    profile = command_tokens(script, '"$python"')
    assert profile == [
        "$python",
        "-m",
        "aiperf_hpc.cli",
        "profile",
        "--launcher",
        "slurm",
        "--url",
        "$server_url",
        *PROFILE_ARGS,
        "--nodes",
        "3",
        "--workers-per-node",
        "4",
        "--artifact-dir",
        "$artifact_dir",
        "||",
        "status=$?",
    ]
    bash_syntax_ok(script, tmp_path)


def test_the_server_is_stopped_after_the_profile_starts_and_the_exit_trap_is_set_before_waiting() -> None:
    lines = lines_of(sbatch_script(with_server(), PROFILE_ARGS, submit_dir=SUBMIT_DIR))
    started = next(i for i, line in enumerate(lines) if line.startswith("srun "))
    trapped = lines.index("trap stop_server EXIT")
    waiting = next(i for i, line in enumerate(lines) if line.startswith("until server_ready"))
    profile = next(i for i, line in enumerate(lines) if line.startswith('"$python" -m aiperf_hpc.cli profile'))
    assert started < trapped < waiting < profile


def test_health_timeout_rounds_up_to_whole_seconds() -> None:
    script = sbatch_script(with_server(server_health_timeout_s=0.2), PROFILE_ARGS, submit_dir=SUBMIT_DIR)
    assert "server_health_timeout_s=1" in lines_of(script)


def test_relative_and_absolute_artifact_dirs() -> None:
    absolute = sbatch_script(plain(artifact_dir=Path("/scratch/x")), PLAIN_ARGS, submit_dir=SUBMIT_DIR)
    assert "#SBATCH --output=/scratch/x/slurm-%j.out" in lines_of(absolute)
    assert "artifact_dir=/scratch/x" in lines_of(absolute)


def test_percent_in_the_artifact_dir_is_literal_in_slurm_file_patterns() -> None:
    script = sbatch_script(plain(artifact_dir=Path("/scratch/100%")), PLAIN_ARGS, submit_dir=SUBMIT_DIR)
    assert "#SBATCH --output=/scratch/100%%/slurm-%j.out" in lines_of(script)
    assert "artifact_dir=/scratch/100%" in lines_of(script)


# --- quoting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", ONE_LINE_HOSTILE)
def test_hostile_strings_reach_the_profile_and_the_server_literally(hostile: str, tmp_path: Path) -> None:
    options = with_server(server_command=f"vllm serve {hostile}", python=f"/opt/{hostile}/python")
    script = sbatch_script(options, ["-m", hostile, "--extra-inputs", hostile], submit_dir=SUBMIT_DIR)
    bash_syntax_ok(script, tmp_path)
    assert command_tokens(script, "srun")[-7:-4] == ["bash", "-c", f"vllm serve {hostile}"]
    profile = command_tokens(script, '"$python"')
    assert profile[8:12] == ["-m", hostile, "--extra-inputs", hostile]
    assert shlex.split(next(line for line in lines_of(script) if line.startswith("python=")))[0] == (
        f"python=/opt/{hostile}/python"
    )


@pytest.mark.parametrize("hostile", [h for h in HOSTILE if "\\" not in h and "\n" not in h])
def test_hostile_strings_in_sbatch_directives_are_single_words(hostile: str, tmp_path: Path) -> None:
    options = plain(job_name=hostile, artifact_dir=Path(f"/scratch/{hostile}"))
    script = sbatch_script(options, PLAIN_ARGS, submit_dir=SUBMIT_DIR)
    bash_syntax_ok(script, tmp_path)
    parsed = {line: shlex.split(line.removeprefix("#SBATCH ")) for line in directives(script)}
    assert [f"--job-name={hostile}"] in parsed.values()
    assert [f"--output=/scratch/{hostile}/slurm-%j.out"] in parsed.values()
    assert shlex.split(next(line for line in lines_of(script) if line.startswith("artifact_dir=")))[0] == (
        f"artifact_dir=/scratch/{hostile}"
    )


@pytest.mark.parametrize("bad", ["back\\slash", "new\nline"])
def test_directive_values_sbatch_cannot_read_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="backslash or a line break"):
        sbatch_script(plain(job_name=bad), PLAIN_ARGS, submit_dir=SUBMIT_DIR)
    with pytest.raises(UsageError, match="backslash or a line break"):
        sbatch_script(plain(artifact_dir=Path(f"/x/{bad}")), PLAIN_ARGS, submit_dir=SUBMIT_DIR)


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nodes": 0}, "--nodes must be at least 1, got 0"),
        ({"workers_per_node": 0}, "--workers-per-node must be at least 1, got 0"),
        ({"server_nodes": 0}, "--server-nodes must be at least 1, got 0"),
        ({"server_nodes": 2}, "--server-nodes needs --server-command"),
        ({"time": "90"}, "--time must be HH:MM:SS or D-HH:MM:SS, got '90'"),
        ({"time": "1:60:00"}, "--time must be HH:MM:SS"),
        ({"time": "1-24:00:00"}, "hours must be 0..23"),
        ({"time": "00:00:00"}, "more than 00:00:00"),
        ({"time": "01:00:00 "}, "--time must be"),
        ({"partition": "cpu gpu"}, "--partition must be a name without whitespace, got 'cpu gpu'"),
        ({"account": "p200\t1"}, "--account must be a name without whitespace"),
        ({"account": ""}, "--account must be a name without whitespace"),
        ({"qos": "a\nb"}, "--qos must be a name without whitespace"),
        ({"job_name": ""}, "--job-name must not be empty"),
        ({"python": ""}, "interpreter path must not be empty"),
        ({"extra_sbatch": ["gres=gpu:4"]}, "takes sbatch options such as --gres=gpu:4"),
        ({"extra_sbatch": ["--gres=gpu:4\nrm -rf /"]}, "must be one line"),
        ({"extra_sbatch": ["--constraint='a"]}, "No closing quotation"),
        ({"extra_sbatch": ["--nodes=9"]}, "submit writes --nodes itself"),
        ({"extra_sbatch": ["--exclusive --part=big"]}, "submit writes --partition itself"),
        ({"extra_sbatch": ["-N", "2"]}, "submit writes --nodes itself"),
        ({"extra_sbatch": ["-o x.out"]}, "submit writes --output itself"),
        ({"extra_sbatch": ["--ntasks-per-node=2"]}, "submit writes --ntasks-per-node itself"),
    ],
)
def test_invalid_options_are_usage_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        check_submit(plain(**changes), PLAIN_ARGS)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"server_command": "  "}, "--server-command must not be empty"),
        ({"server_port": 0}, "--server-port must be 1..65535, got 0"),
        ({"server_health_timeout_s": 0.0}, "--server-health-timeout must be more than 0 s"),
        ({"server_health_timeout_s": float("nan")}, "--server-health-timeout must be more than 0 s"),
    ],
)
def test_invalid_server_options_are_usage_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_submit(with_server(**changes), PROFILE_ARGS)


@pytest.mark.parametrize("url", [["--url", "http://x:1"], ["-u", "http://x:1"], ["--url=http://x:1"]])
def test_url_and_server_command_exclude_each_other(url: list[str]) -> None:
    with pytest.raises(UsageError, match="--url cannot be given with --server-command"):
        check_submit(with_server(), [*PROFILE_ARGS, *url])


def test_a_job_without_server_needs_a_url() -> None:
    with pytest.raises(UsageError, match="give --url"):
        check_submit(plain(), PROFILE_ARGS)


@pytest.mark.parametrize(
    "args", [["--launcher", "local"], ["--nodes", "2"], ["--workers-per-node=2"], ["--artifact-dir", "x"]]
)
def test_options_submit_sets_itself_are_refused_in_the_profile_args(args: list[str]) -> None:
    with pytest.raises(UsageError, match=f"{args[0].split('=')[0]} is set by submit itself"):
        check_submit(plain(), [*PLAIN_ARGS, *args])


def test_extra_sbatch_options_that_only_resemble_reserved_ones_pass() -> None:
    check_submit(
        plain(extra_sbatch=["--exclusive", "--gres=gpu:4 --mem=0", "--nodelist=n1", "--time-min=10"]), PLAIN_ARGS
    )


@pytest.mark.parametrize("time", ["00:00:01", "72:00:00", "1-00:00:00", "2-23:59:59", "0-01:00:00"])
def test_valid_times(time: str) -> None:
    check_submit(plain(time=time), PLAIN_ARGS)


# --- running the script under bash with fake Slurm commands ------------------------------------------


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    """A bin dir with scontrol, srun, squeue and scancel fakes, and a fake interpreter `python` that
    records the profile's argv (NUL-separated) and AIPERF_HPC_NODELIST, then exits with FAKE_PROFILE_EXIT.
    Its `-c` (the health probe) succeeds when FAKE_HEALTHY=1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_executable(
        bin_dir / "scontrol", '#!/bin/bash\n[[ "$*" == "show hostnames n[1-3]" ]] && printf "n1\\nn2\\nn3\\n"\n'
    )
    write_executable(
        bin_dir / "srun",
        f'#!/bin/bash\nprintf "%s\\0" "$@" > {tmp_path}/srun.args\necho $$ > {tmp_path}/srun.pid\n'
        'while [[ "$1" == --* ]]; do shift; done\nexec "$@"\n',
    )
    write_executable(bin_dir / "squeue", '#!/bin/bash\necho "99.batch batch"\necho "99.0 aiperf-hpc-server"\n')
    write_executable(
        bin_dir / "scancel",
        f'#!/bin/bash\necho "$*" >> {tmp_path}/scancel.args\nkill -TERM "$(cat {tmp_path}/srun.pid)"\n',
    )
    write_executable(
        bin_dir / "python",
        "#!/bin/bash\n"
        '[[ "$1" == -c ]] && exit $(( 1 - ${FAKE_HEALTHY:-1} ))\n'
        f'printf "%s\\0" "$@" > {tmp_path}/profile.args\n'
        f'echo "$AIPERF_HPC_NODELIST" > {tmp_path}/nodelist\n'
        'exit "${FAKE_PROFILE_EXIT:-0}"\n',
    )
    return bin_dir


def run_script(script: str, tmp_path: Path, fakes: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / SCRIPT_NAME
    path.write_text(script)
    environ = {"PATH": f"{fakes}:{os.environ['PATH']}", "SLURM_JOB_ID": "99", "SLURM_JOB_NODELIST": "n[1-3]", **env}
    return subprocess.run(["bash", str(path)], capture_output=True, text=True, env=environ, timeout=20, cwd=tmp_path)


def nul_list(path: Path) -> list[str]:
    return path.read_text().split("\0")[:-1]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_plain_script_hands_hostile_strings_to_the_profile_literally(
    hostile: str, tmp_path: Path, fakes: Path
) -> None:
    python = tmp_path / "interpreters" / hostile / "python"
    python.parent.mkdir(parents=True)
    python.write_bytes((fakes / "python").read_bytes())
    python.chmod(0o755)
    args = ["-m", hostile, "--extra-inputs", hostile, "--url", "http://h:1"]
    script = sbatch_script(plain(python=str(python), nodes=2), args, submit_dir=tmp_path)
    done = run_script(script, tmp_path, fakes, FAKE_PROFILE_EXIT="4")
    assert done.returncode == 4, done.stderr
    assert nul_list(tmp_path / "profile.args") == [
        "-m",
        "aiperf_hpc.cli",
        "profile",
        "--launcher",
        "slurm",
        *args,
        "--nodes",
        "2",
        "--workers-per-node",
        "4",
        "--artifact-dir",
        str(tmp_path / "artifacts/run1"),
    ]


@pytest.mark.parametrize("hostile", ONE_LINE_HOSTILE)
def test_the_server_script_runs_the_profile_against_the_server_and_stops_it(
    hostile: str, tmp_path: Path, fakes: Path
) -> None:
    server_command = f"exec sleep 60 # {hostile}"
    options = with_server(python=str(fakes / "python"), nodes=2, server_command=server_command, setup=[])
    (tmp_path / "artifacts/run1").mkdir(parents=True)
    script = sbatch_script(options, ["-m", hostile], submit_dir=tmp_path)
    done = run_script(script, tmp_path, fakes, FAKE_PROFILE_EXIT="3")
    assert done.returncode == 3, done.stderr
    assert nul_list(tmp_path / "profile.args")[5:9] == ["--url", "http://n1:8000", "-m", hostile]
    assert (tmp_path / "nodelist").read_text() == "n2,n3\n"
    srun = nul_list(tmp_path / "srun.args")
    assert "--nodelist=n1" in srun
    assert srun[-3:] == ["bash", "-c", server_command]
    assert (tmp_path / "scancel.args").read_text() == "--quiet --signal=TERM 99.0\n"
    assert "stopping the server step" in done.stderr


def test_the_server_script_fails_fast_when_the_server_dies(tmp_path: Path, fakes: Path) -> None:
    options = with_server(python=str(fakes / "python"), nodes=2, server_command="echo cannot load; exit 5", setup=[])
    (tmp_path / "artifacts/run1").mkdir(parents=True)
    done = run_script(sbatch_script(options, ["-m", "x"], submit_dir=tmp_path), tmp_path, fakes, FAKE_HEALTHY="0")
    assert done.returncode == 1
    assert "the server step ended before http://n1:8000/health answered" in done.stderr
    assert "cannot load" in done.stderr
    assert not (tmp_path / "profile.args").exists()


def test_the_server_script_gives_up_after_the_health_timeout(tmp_path: Path, fakes: Path) -> None:
    options = with_server(
        python=str(fakes / "python"),
        nodes=2,
        server_command="echo loading; exec sleep 60",
        server_health_timeout_s=1,
        setup=[],
    )
    (tmp_path / "artifacts/run1").mkdir(parents=True)
    done = run_script(sbatch_script(options, ["-m", "x"], submit_dir=tmp_path), tmp_path, fakes, FAKE_HEALTHY="0")
    assert done.returncode == 1
    assert "http://n1:8000/health did not answer within 1s" in done.stderr
    assert "loading" in done.stderr
    assert "stopping the server step" in done.stderr
    assert not (tmp_path / "profile.args").exists()


def test_the_server_script_refuses_an_allocation_with_too_few_nodes(tmp_path: Path, fakes: Path) -> None:
    # The setup line reads an unset variable: it runs with `set -u` off.
    options = with_server(python=str(fakes / "python"), nodes=3, setup=['echo "setup${NOT_SET_ANYWHERE} ran"'])
    done = run_script(sbatch_script(options, ["-m", "x"], submit_dir=tmp_path), tmp_path, fakes)
    assert done.returncode == 1
    assert done.stdout.startswith("setup ran\n")
    assert "the job has 3 nodes; 4 needed (1 server + 3 load)" in done.stderr
    assert not (tmp_path / "srun.args").exists()


# --- submitting ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`sbatch` first on PATH: records its argv and environment, prints FAKE_SBATCH_OUT, exits with FAKE_SBATCH_RC."""
    bin_dir = tmp_path / "sbatch-bin"
    bin_dir.mkdir()
    write_executable(
        bin_dir / "sbatch",
        f'#!/bin/bash\nprintf "%s\\n" "$@" > {tmp_path}/sbatch.args\nenv > {tmp_path}/sbatch.env\n'
        'echo "${FAKE_SBATCH_ERR:-}" >&2\nprintf "${FAKE_SBATCH_OUT:-12345;cluster\\n}"\nexit "${FAKE_SBATCH_RC:-0}"\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    return bin_dir


def test_submit_writes_the_script_and_returns_the_job_id(
    tmp_path: Path, fake_sbatch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    job_id = submit(plain(), PLAIN_ARGS, dry_run=False)
    assert job_id == "12345"
    script_path = tmp_path / "artifacts/run1" / SCRIPT_NAME
    assert (tmp_path / "sbatch.args").read_text().splitlines() == ["--parsable", str(script_path)]
    assert script_path.read_text() == sbatch_script(plain(), PLAIN_ARGS, submit_dir=tmp_path)
    sbatch_env = (tmp_path / "sbatch.env").read_text().splitlines()
    assert "SLURM_CONF=/etc/slurm/slurm.conf" in sbatch_env
    assert not any(line.startswith("SLURM_JOB_ID=") for line in sbatch_env)


def test_dry_run_returns_the_script_and_neither_writes_nor_submits(tmp_path: Path, fake_sbatch: Path) -> None:
    text = submit(with_server(), PROFILE_ARGS, dry_run=True)
    assert text == sbatch_script(with_server(), PROFILE_ARGS, submit_dir=tmp_path)
    assert not (tmp_path / "artifacts").exists()
    assert not (tmp_path / "sbatch.args").exists()


def test_dry_run_validates(fake_sbatch: Path) -> None:
    with pytest.raises(UsageError, match="--nodes must be at least 1"):
        submit(plain(nodes=0), PLAIN_ARGS, dry_run=True)


def test_sbatch_failure_is_a_run_error_with_its_message(fake_sbatch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SBATCH_RC", "1")
    monkeypatch.setenv("FAKE_SBATCH_OUT", "")
    monkeypatch.setenv("FAKE_SBATCH_ERR", "sbatch: error: Batch job submission failed: Invalid account")
    with pytest.raises(RunError) as caught:
        submit(plain(), PLAIN_ARGS, dry_run=False)
    assert str(caught.value) == "sbatch failed (exit 1): sbatch: error: Batch job submission failed: Invalid account"


def test_sbatch_output_without_a_job_id_is_a_run_error(fake_sbatch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SBATCH_OUT", "Submitted later\\n")
    with pytest.raises(RunError, match="sbatch printed no job id: Submitted later"):
        submit(plain(), PLAIN_ARGS, dry_run=False)


def test_missing_sbatch_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        submit(plain(), PLAIN_ARGS, dry_run=False)
    assert str(caught.value) == "sbatch not found: submit needs a Slurm login node"
    assert not (tmp_path / "artifacts").exists()


def test_an_unwritable_artifact_dir_is_a_run_error(tmp_path: Path, fake_sbatch: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="cannot write"):
        submit(plain(artifact_dir=Path("file/run")), PLAIN_ARGS, dry_run=False)


@pytest.mark.parametrize(("output", "job_id"), [("12345\n", "12345"), ("12345;cluster\n", "12345"), ("7;c\nmore", "7")])
def test_parse_job_id(output: str, job_id: str) -> None:
    assert parse_job_id(output) == job_id


def test_sbatch_environment_drops_the_callers_allocation() -> None:
    env = sbatch_environment({"SLURM_NTASKS": "4", "SLURM_CONF": "/c", "SBATCH_ACCOUNT": "p1", "HOME": "/h"})
    assert env == {"SLURM_CONF": "/c", "SBATCH_ACCOUNT": "p1", "HOME": "/h"}


def test_the_default_interpreter_is_the_current_one() -> None:
    assert SubmitOptions(nodes=1, workers_per_node=1, time="00:01:00", artifact_dir=Path("a")).python == sys.executable
