"""The tail of a big log file is read without reading the file: on a local results folder
(peak memory checked with tracemalloc), on S3 (moto's server over HTTP: a ranged GET), and
through a file system whose `cat_file` is not trusted with ranges (opened and seeked)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from orchestrator.results import ResultsLocation
from orchestrator.store import TaskRecord
from orchestrator.task_logs import task_logs
from tests.orchestrator.results.conftest import BUCKET, S3Server

MiB = 1 << 20
BIG = 64 * MiB
TAIL = 20_000
ENDING = b"".join(b"line %06d of the simulation's stdout\n" % i for i in range(2000))


def write_sparse_log(path: Path, size: int) -> None:
    """A `size`-byte file, mostly a hole, ending with ENDING (nothing of its size in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.seek(size - len(ENDING))
        handle.write(ENDING)


def test_logs_of_a_huge_local_log_read_only_its_tail(tmp_path: Path) -> None:
    location = ResultsLocation(str(tmp_path / "results"))
    write_sparse_log(tmp_path / "results" / "sim" / "000003" / "stdout.log", BIG)
    row = TaskRecord(step="sim", point=3, state="running", attempt=1)

    tracemalloc.start()
    try:
        text = task_logs("sim:3", row, [], location, TAIL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert text.endswith(ENDING[-TAIL:].decode().rstrip())
    assert "-- stdout.log" in text
    assert peak < 4 * MiB, f"reading a 20 kB tail of a 64 MiB log peaked at {peak} bytes"


def test_read_tail_local_short_file_and_missing(tmp_path: Path) -> None:
    location = ResultsLocation(str(tmp_path))
    (tmp_path / "small.log").write_bytes(b"only this")
    assert location.read_tail("small.log", TAIL) == b"only this"
    assert location.read_tail("small.log", 4) == b"this"
    assert location.read_tail("small.log", 0) == b""
    with pytest.raises(Exception, match="cannot read"):
        location.read_tail("absent.log", TAIL)


@pytest.mark.aws
@pytest.mark.timeout(120)
def test_read_tail_on_s3_is_a_ranged_read(s3: S3Server) -> None:
    data = bytes(BIG - len(ENDING)) + ENDING
    s3.client().put_object(Bucket=BUCKET, Key="logs/sim/000003/stdout.log", Body=data)
    s3.client().put_object(Bucket=BUCKET, Key="logs/short.log", Body=b"short")
    location = ResultsLocation(f"s3://{BUCKET}/logs")

    assert location.read_tail("sim/000003/stdout.log", TAIL) == ENDING[-TAIL:]
    assert location.read_tail("short.log", TAIL) == b"short"  # a suffix longer than the file
    row = TaskRecord(step="sim", point=3, state="succeeded", attempt=1)
    assert task_logs("sim:3", row, [], location, TAIL).endswith(ENDING[-TAIL:].decode().rstrip())


def test_read_tail_seeks_where_cat_file_ignores_ranges() -> None:
    """sshfs (the cluster's files over SFTP) reads a whole file in `cat_file`, whatever the
    range: such file systems are read by opening the file and seeking to its tail. fsspec's
    memory file system stands in for one here (its protocol is not one trusted with ranges)."""
    location = ResultsLocation("memory://tail-test")
    location.fs.pipe_file(location.path("x/stdout.log"), b"0123456789" * 1000)
    assert location.read_tail("x/stdout.log", 15) == b"567890123456789"
    assert location.read_tail("x/stdout.log", 50_000) == b"0123456789" * 1000
