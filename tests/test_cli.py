"""The `ecogen` command: help, validation, and bad configuration → one line, exit 2, nothing written."""

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def ecogen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ecogen.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    return tmp_path


def test_help_lists_every_command(project: Path) -> None:
    out = ecogen("--help", cwd=project)
    assert out.returncode == 0
    for command in ("run", "stage", "validate", "deploy", "report"):
        assert command in out.stdout
        help_text = ecogen(command, "--help", cwd=project)
        assert help_text.returncode == 0
        assert not re.search(r"<(str|bool|int|path|list)", help_text.stdout, re.I), help_text.stdout


def test_run_help_lists_the_projects_pipelines_and_profiles(project: Path) -> None:
    spec = yaml.safe_load((project / "pipelines.yaml").read_text())
    spec["pipelines"]["my-study"] = {"description": "A study of mine.", "stages": ["prepare"]}
    (project / "pipelines.yaml").write_text(yaml.safe_dump(spec))
    out = ecogen("run", "--help", cwd=project).stdout
    listed = out.split("Pipelines in pipelines.yaml:")[1]
    for name in spec["pipelines"]:
        assert re.search(rf"^  {re.escape(name)}\s", listed, re.M), (name, listed)
    assert "A study of mine." in listed
    assert "Profiles:" in listed and all(p in listed for p in spec["profiles"])


def test_a_stage_loads_plotting_and_dvc_only_when_it_uses_them() -> None:
    # matplotlib and DVC were ~0.6 s of every command's start before their first use
    code = (
        "import sys, ecogen.cli, ecogen.pipeline; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'dvc', 'dvc_data'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_validate_accepts_the_project_files(project: Path) -> None:
    out = ecogen("validate", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p["data"].update(colour="red"), "data.colour"),
        (lambda p: p["hfsl"].update(local_epochs="five"), "hfsl.local_epochs"),
        (lambda p: p["inference"].update(batch_size=0), "inference.batch_size"),
        (lambda p: p["peft"].update(batch_size=-3), "peft.batch_size"),
        (lambda p: p["data"].update(labelled_fraction=2), "data.labelled_fraction"),
    ],
)
def test_bad_params_one_line_exit_2_nothing_written(project: Path, edit, key: str) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(p.name for p in project.iterdir())
    for command in (["run", "quick"], ["stage", "prepare"], ["validate"]):
        out = ecogen(*command, cwd=project)
        assert out.returncode == 2, command
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and key in lines[0], out.stderr
        assert sorted(p.name for p in project.iterdir()) == before


def test_bad_set_and_unknown_pipeline_exit_2(project: Path) -> None:
    out = ecogen("run", "quick", "--set", "data.labelled_fraction=-1", cwd=project)
    assert out.returncode == 2 and "data.labelled_fraction" in out.stderr
    out = ecogen("run", "nosuch", cwd=project)
    assert out.returncode == 2 and "nosuch" in out.stderr
    out = ecogen("stage", "train", cwd=project)
    assert out.returncode == 2 and "train" in out.stderr


def test_unknown_or_reserved_profile_exit_2(project: Path) -> None:
    for args in (("run", "table3"), ("deploy", "table3"), ("report",)):
        out = ecogen(*args, "--profile", "nosuch", cwd=project)
        assert out.returncode == 2, (args, out.stderr)
        assert "unknown profile 'nosuch'" in out.stderr and "cpu" in out.stderr
    spec = yaml.safe_load((project / "pipelines.yaml").read_text())
    spec["profiles"]["none"] = {}
    (project / "pipelines.yaml").write_text(yaml.safe_dump(spec))
    out = ecogen("validate", cwd=project)
    assert out.returncode == 2 and "'none' is reserved" in out.stderr
    del spec["profiles"]["none"]
    spec["pipelines"]["dvc"] = {"stages": ["prepare"]}  # the tag of `dvc repro`'s runs
    (project / "pipelines.yaml").write_text(yaml.safe_dump(spec))
    out = ecogen("validate", cwd=project)
    assert out.returncode == 2 and "'dvc' is reserved" in out.stderr


def _fashion_mnist_copy(folder: Path) -> Path:
    """The four IDX files, linked from the system copy (the data the tests run on)."""
    from ecogen.data.sources.fashion_mnist import FILES, SYSTEM_ROOT

    folder.mkdir()
    for stem in FILES.values():
        (folder / f"{stem}.gz").symlink_to(SYSTEM_ROOT / f"{stem}.gz")
    return folder


@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_a_damaged_data_file_is_one_line_naming_it_exit_2(project: Path, damage: str) -> None:
    from ecogen.data.sources.fashion_mnist import SYSTEM_ROOT

    if not (SYSTEM_ROOT / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    data = _fashion_mnist_copy(project / "fm")
    bad = data / "train-labels-idx1-ubyte.gz"
    raw = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"plain text, not gzip\n")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["root"] = str(data)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    out = ecogen("stage", "prepare", cwd=project)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(bad) in lines[0] and "fetch it again" in lines[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "Traceback" in (project / "runs" / ".last-error.log").read_text()
    assert not (project / "data").exists()  # nothing half written


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns: nothing listens there


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("http://user:secret@127.0.0.1:{port}", "does not answer"),
        ("sqlite:////no/such/folder/mlflow.db", "/no/such/folder does not exist"),
    ],
)
def test_an_unreachable_tracking_store_is_one_line_before_any_work(
    project: Path, uri: str, said: str
) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tracking"]["uri"] = uri.format(port=_closed_port())
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(p.name for p in project.iterdir())
    for command in (["run", "quick"], ["stage", "prepare"], ["report"]):
        out = ecogen(*command, cwd=project)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and said in lines[0], (command, out.stderr[-2000:])
        assert "secret" not in out.stderr  # the password is not shown
        assert sorted(p.name for p in project.iterdir()) == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1.5 MiB tmpfs: room for the MLflow database, not for the prepared data."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_out_of_disk_space_is_one_line_naming_the_place(small_disk: Path) -> None:
    shutil.copy(ROOT / "params.yaml", small_disk / "params.yaml")
    out = ecogen("stage", "prepare", cwd=small_disk)
    lines = [line for line in out.stderr.splitlines() if "Traceback" in line or line.startswith("error:")]
    assert out.returncode == 1 and lines and lines[-1].startswith("error: out of disk space"), out.stderr[
        -3000:
    ]
    assert "Traceback" not in out.stderr and str(small_disk) in lines[-1]


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--place", "pretrain"], {}, "expected STAGE=POOL"),
        (["--place", "prepare=gpu"], {}, "prepare is not placed"),
        (["--place", "relay=gpu"], {}, "does not run"),
        (["--place", "trials=gpu"], {}, "has no trials"),
        (["--place", "pretrain=gpu"], {}, "set PREFECT_API_URL"),
        (["--place", "pretrain=gpu"], {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "share no disk"),
    ],
)
def test_a_placement_that_cannot_work_is_one_line_exit_2_nothing_written(
    project: Path, args: list[str], env: dict[str, str], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = ecogen("run", "quick", *args, cwd=project)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and words in out.stderr, out.stderr
    assert sorted(p.name for p in project.iterdir()) == ["params.yaml", "pipelines.yaml"]


def test_a_tensor_file_cut_off_by_a_full_disk_counts_as_out_of_space() -> None:
    from ecogen.cli import _disk_full

    cut = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 832 vs 726")
    try:
        try:
            raise cut
        except RuntimeError as err:
            raise ValueError("a stage failed") from err
    except ValueError as wrapped:
        assert _disk_full(wrapped) is cut
    assert _disk_full(RuntimeError("shapes do not match")) is None
