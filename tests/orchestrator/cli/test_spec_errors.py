"""The real `orchestrator` CLI on invalid specs: exit 2, the field path, no traceback, no
campaign stored; and a spec whose callables live in a module beside it is accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
EXIT_INVALID = 2

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Runs `orchestrator ARGS` in a subprocess on a store of its own under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(
        ORCHESTRATOR_DATA_DIR=str(tmp_path / "data"),
        ORCHESTRATOR_RESULTS_URL=str(tmp_path / "results"),
        ORCHESTRATOR_CONFIG=str(tmp_path / "no-such-config.toml"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
    )
    workdir = tmp_path / "cwd"  # not the spec's folder: imports must come from beside the spec
    workdir.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ORCHESTRATOR), *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def in_parallel(cli: Cli, *calls: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Several CLI calls at once (each one starts a Python interpreter: about a second)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: cli(*args), calls))


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def assert_store_empty(cli: Cli) -> None:
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"


BESIDE_MODULE = """
def simulate(x, y, factor):
    return (x + y) * factor


def summarise(simulate):
    return sum(simulate)


def broken_import():
    return 1
"""

INVALID_SPECS = {
    "bad-memory": (
        """
        name: bad-memory
        parameters: {x: [1, 2]}
        steps:
          simulate:
            command: "echo {{x}}"
            foreach: true
            resources: {memory: lots}
        """,
        ["steps.simulate.resources.memory", "'lots' is not a size"],
    ),
    "bad-walltime": (
        """
        name: bad-walltime
        steps:
          simulate:
            command: "true"
            resources: {walltime: "1:99:00"}
        """,
        ["steps.simulate.resources.walltime", "below 60"],
    ),
    "negative-retries": (
        """
        name: negative-retries
        steps:
          simulate: {command: "true", retries: -1}
        """,
        ["steps.simulate.retries"],
    ),
    "unknown-need": (
        """
        name: unknown-need
        steps:
          a: {command: "true"}
          b: {command: "true", needs: [a, nope]}
        """,
        ["steps.b.needs.1", "unknown step 'nope'"],
    ),
    "cycle": (
        """
        name: cycle
        steps:
          a: {command: "true", needs: [b]}
          b: {command: "true", needs: [a]}
        """,
        ["steps.a.needs", "cycle"],
    ),
    "missing-module": (
        """
        name: missing-module
        steps:
          s: {run: "no_such_module_for_cli_test:f"}
        """,
        ["steps.s.run", "no module named 'no_such_module_for_cli_test'"],
    ),
    "typo": (
        """
        name: typo
        steps:
          s: {command: "true", foreech: true}
        """,
        ["steps.s.foreech", "unknown field"],
    ),
    "zip": (
        """
        name: zipped
        sweep: zip
        parameters: {a: [1, 2, 3], b: [1, 2]}
        steps:
          s: {command: "true"}
        """,
        ["sweep", "equal length"],
    ),
    "placeholder": (
        """
        name: placeholder
        parameters: {x: [1]}
        steps:
          s: {command: "echo {{ y }}", foreach: true}
        """,
        ["steps.s.command", "unknown placeholder(s) y"],
    ),
    "name": (
        """
        name: has spaces
        steps:
          s: {command: "true"}
        """,
        ["name:"],
    ),
    "keyword-beside": (
        """
        name: keyword-beside
        parameters: {x: [1], y: [2]}
        steps:
          s:
            run: "beside_cli_module:simulate"
            foreach: true
            with: {factor: 2, unexpected: 1}
        """,
        ["steps.s.run", "does not accept unexpected"],
    ),
    "partition": (
        """
        name: partition
        steps:
          s:
            batch:
              script: "srun x"
              partition: "debug\\necho INJECTED\\n#SBATCH --array=0-999"
        """,
        ["steps.s.batch.partition", "not a SLURM partition name"],
    ),
    "overflow": (
        """
        name: overflow
        parameters: {x: {range: [0, 1.0e+400]}}
        steps:
          s: {command: "echo {{ x }}", foreach: true}
        """,
        ["parameters.x.range.1", "not a finite number"],
    ),
    "yaml": ("name: [unclosed\nsteps: {\n", ["is not valid YAML/JSON", "spec.yaml"]),
    "empty": ("# nothing here\n", ["spec.yaml is empty"]),
}


@pytest.mark.parametrize("case", sorted(INVALID_SPECS))
def test_invalid_spec_exits_2_naming_the_field(cli: Cli, spec_dir: Path, case: str) -> None:
    text, expected = INVALID_SPECS[case]
    write(spec_dir, "beside_cli_module.py", BESIDE_MODULE)
    spec = write(spec_dir, "spec.yaml", text)
    results = in_parallel(cli, ("run", str(spec)), ("submit", str(spec)))
    for command, result in zip(["run", "submit"], results, strict=True):
        assert result.returncode == EXIT_INVALID, (command, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr, command
        assert "invalid campaign spec" in result.stderr, command
        for fragment in expected:
            assert fragment in result.stderr, (command, fragment, result.stderr)
        assert result.stdout.strip() == "", command  # nothing that looks like an id
    assert_store_empty(cli)


def test_missing_spec_file(cli: Cli, tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.yaml")
    for result in in_parallel(cli, ("run", absent), ("submit", absent)):
        assert result.returncode == EXIT_INVALID, result.stderr
        assert "Traceback" not in result.stderr
        assert "cannot read" in result.stderr and "absent.yaml" in result.stderr
    assert_store_empty(cli)


def test_module_that_fails_to_import(cli: Cli, spec_dir: Path) -> None:
    write(spec_dir, "exploding_cli_module.py", "raise RuntimeError('boom at import')\n")
    spec = write(
        spec_dir,
        "spec.yaml",
        """
        name: explodes
        steps:
          s: {run: "exploding_cli_module:f"}
        """,
    )
    result = cli("submit", str(spec))
    assert result.returncode == EXIT_INVALID
    assert "Traceback" not in result.stderr
    assert "steps.s.run" in result.stderr
    # the module is read, never run: what it lacks is reported, not what running it raises
    assert "'exploding_cli_module' has no attribute 'f'" in result.stderr
    assert "boom at import" not in result.stderr
    assert_store_empty(cli)


def test_blank_timeout_exits_2(cli: Cli, spec_dir: Path) -> None:
    spec = write(
        spec_dir,
        "spec.yaml",
        """
        name: blank-timeout
        steps:
          s: {command: "true", timeout: ""}
        """,
    )
    # was a raw IndexError from dask.parse_timedelta(''): a traceback and exit 1
    result = cli("submit", str(spec))
    assert "Traceback" not in result.stderr
    assert result.returncode == EXIT_INVALID
    assert "steps.s.timeout" in result.stderr
    assert_store_empty(cli)


def test_sweep_too_large_to_count_exits_2(cli: Cli, spec_dir: Path) -> None:
    spec = write(
        spec_dir,
        "spec.yaml",
        """
        name: too-large
        parameters:
          a: {range: [0, 100000]}
          b: {range: [0, 100000]}
          c: {range: [0, 100000]}
          d: {range: [0, 100000]}
        steps:
          s: {command: "echo {{a}}", foreach: true}
        """,
    )
    result = cli("submit", str(spec))
    assert "Traceback" not in result.stderr
    assert result.returncode == EXIT_INVALID
    assert "parameters" in result.stderr or "sweep" in result.stderr
    assert_store_empty(cli)


def test_submit_imports_modules_beside_the_spec(cli: Cli, spec_dir: Path) -> None:
    write(spec_dir, "beside_cli_module.py", BESIDE_MODULE)
    spec = write(
        spec_dir,
        "campaign.yaml",
        """
        name: beside
        parameters:
          x: [1, 2, 3]
          y: {range: [0, 4]}
        steps:
          simulate:
            run: beside_cli_module:simulate
            foreach: true
            with: {factor: 2}
          summary:
            run: beside_cli_module:summarise
            needs: [simulate]
        """,
    )
    submitted = cli("submit", str(spec))
    assert submitted.returncode == 0, submitted.stderr
    assert "Traceback" not in submitted.stderr
    lines = submitted.stdout.splitlines()
    assert len(lines) == 1, submitted.stdout  # only the id
    campaign_id = lines[0].strip()
    assert campaign_id and " " not in campaign_id

    status = cli("status", campaign_id, "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout.strip().splitlines()[-1])
    assert body["id"] == campaign_id
    assert body["name"] == "beside"
    assert body["state"] == "accepted"
    assert body["points"] == 12
    assert body["steps"]["simulate"]["total"] == 12
    assert body["steps"]["summary"]["total"] == 1
    assert body["counts"]["pending"] == 13
    assert body["counts"]["succeeded"] == 0

    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [c["id"] for c in json.loads(listed.stdout)] == [campaign_id]
