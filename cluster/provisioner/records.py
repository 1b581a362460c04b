"""Cluster records (one per project: the current cluster) and provisioning attempts (one per
create or delete, failures included), in DynamoDB or, for the local back end, a JSON file.

DynamoDB tables: `records_table` (partition key `project`), `attempts_table` (partition key
`project`, sort key `attempt`). Each item keeps the record as JSON in `data`, plus the
attributes conditions need (`state`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cluster.provisioner import _aws
from cluster.provisioner.base import ClusterState
from cluster.provisioner.errors import ProvisionerError


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ClusterRecord:
    project: str
    name: str
    kind: str
    tier: str
    state: ClusterState
    created_at: str
    updated_at: str
    no_lustre: bool = False
    cost_centre: str | None = None
    reason: str | None = None
    subnet_id: str | None = None
    key_name: str | None = None
    key_secret_arn: str | None = None  # only the ARN: the private key never leaves AWS
    # The head node's SSH host key: its private half in Secrets Manager (the ARN here), its
    # public half, the IAM policy that lets the head node read it, and once the head node's
    # address is known, the known_hosts line the service verifies the head node with.
    host_key_secret_arn: str | None = None
    host_public_key: str | None = None
    host_key_policy_arn: str | None = None
    known_hosts: str | None = None
    connection: dict[str, Any] | None = None
    fsx_file_system_id: str | None = None  # its FSx for Lustre, once ready (none: --no-lustre)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "state": self.state.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterRecord:
        return cls(**{**data, "state": ClusterState(data["state"])})

    def ssh_settings(self) -> dict[str, Any]:
        """The service's `cluster.ssh` settings for this cluster (fields of
        `cluster.settings.SSHSettings`); ProvisionerError unless it is ready to connect to."""
        connection = self.connection or {}
        if self.state is not ClusterState.READY or not connection.get("host"):
            state = self.state.value
            raise ProvisionerError(f"the cluster of {self.project} is {state}, not ready")
        if not connection.get("known_hosts"):
            raise ProvisionerError(f"the head node of {self.project} has no known host key yet")
        fields = ("host", "port", "username", "key_file", "key_secret_arn", "known_hosts")
        return {name: connection[name] for name in fields if connection.get(name) is not None}


@dataclass
class Attempt:
    project: str
    action: str  # create | delete | teardown
    started_at: str
    attempt: str = field(default="")
    tier: str | None = None
    outcome: str = "started"  # started | succeeded | failed
    reason: str | None = None
    finished_at: str | None = None

    def __post_init__(self) -> None:
        if not self.attempt:  # sorts by time; unique
            self.attempt = f"{self.started_at}#{uuid.uuid4().hex[:8]}"


class RecordStore(Protocol):
    def get(self, project: str) -> ClusterRecord | None: ...

    def begin(self, record: ClusterRecord) -> bool:
        """Write `record` only if the project has no record, or only a deleted one."""
        ...

    def put(self, record: ClusterRecord) -> None: ...

    def all(self) -> list[ClusterRecord]: ...

    def save_attempt(self, attempt: Attempt) -> None: ...

    def attempts(self, project: str) -> list[Attempt]: ...


class DynamoRecords:
    def __init__(self, client: Any, records_table: str, attempts_table: str):
        self._client = client
        self._records = records_table
        self._attempts = attempts_table

    def get(self, project: str) -> ClusterRecord | None:
        with _aws.translated(f"reading the cluster record of {project}"):
            item = self._client.get_item(
                TableName=self._records, Key={"project": {"S": project}}, ConsistentRead=True
            ).get("Item")
        return _record(item) if item else None

    def begin(self, record: ClusterRecord) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self._records,
                Item=self._item(record),
                ConditionExpression="attribute_not_exists(#p) OR #s = :deleted",
                ExpressionAttributeNames={"#p": "project", "#s": "state"},
                ExpressionAttributeValues={":deleted": {"S": ClusterState.DELETED.value}},
            )
        except ClientError as exc:
            if _aws.error_code(exc) == "ConditionalCheckFailedException":
                return False
            with _aws.translated(f"writing the cluster record of {record.project}"):
                raise
        return True

    def put(self, record: ClusterRecord) -> None:
        with _aws.translated(f"writing the cluster record of {record.project}"):
            self._client.put_item(TableName=self._records, Item=self._item(record))

    def all(self) -> list[ClusterRecord]:
        records: list[ClusterRecord] = []
        with _aws.translated("listing cluster records"):
            for page in self._client.get_paginator("scan").paginate(
                TableName=self._records, ConsistentRead=True
            ):
                records += [
                    ClusterRecord.from_dict(json.loads(i["data"]["S"])) for i in page["Items"]
                ]
        return records

    def save_attempt(self, attempt: Attempt) -> None:
        item = {
            "project": {"S": attempt.project},
            "attempt": {"S": attempt.attempt},
            "outcome": {"S": attempt.outcome},
            "data": {"S": json.dumps(dataclasses.asdict(attempt))},
        }
        with _aws.translated(f"recording a provisioning attempt of {attempt.project}"):
            self._client.put_item(TableName=self._attempts, Item=item)

    def attempts(self, project: str) -> list[Attempt]:
        with _aws.translated(f"reading the provisioning attempts of {project}"):
            pages = self._client.get_paginator("query").paginate(
                TableName=self._attempts,
                KeyConditionExpression="#p = :p",
                ExpressionAttributeNames={"#p": "project"},
                ExpressionAttributeValues={":p": {"S": project}},
                ConsistentRead=True,
            )
            return [Attempt(**json.loads(i["data"]["S"])) for page in pages for i in page["Items"]]

    @staticmethod
    def _item(record: ClusterRecord) -> dict[str, Any]:
        return {
            "project": {"S": record.project},
            "state": {"S": record.state.value},
            "data": {"S": json.dumps(record.to_dict())},
        }


class FileRecords:
    """One JSON file, locked (threads and processes) for every read-modify-write."""

    def __init__(self, path: Path):
        self._path = path
        self._lock = threading.Lock()

    def get(self, project: str) -> ClusterRecord | None:
        with self._data() as data:
            found = data["clusters"].get(project)
        return ClusterRecord.from_dict(found) if found else None

    def begin(self, record: ClusterRecord) -> bool:
        with self._data(write=True) as data:
            found = data["clusters"].get(record.project)
            if found and found["state"] != ClusterState.DELETED.value:
                return False
            data["clusters"][record.project] = record.to_dict()
        return True

    def put(self, record: ClusterRecord) -> None:
        with self._data(write=True) as data:
            data["clusters"][record.project] = record.to_dict()

    def all(self) -> list[ClusterRecord]:
        with self._data() as data:
            return [ClusterRecord.from_dict(r) for r in data["clusters"].values()]

    def save_attempt(self, attempt: Attempt) -> None:
        with self._data(write=True) as data:
            data["attempts"][attempt.attempt] = dataclasses.asdict(attempt)

    def attempts(self, project: str) -> list[Attempt]:
        with self._data() as data:
            found = [Attempt(**a) for a in data["attempts"].values() if a["project"] == project]
        return sorted(found, key=lambda a: a.attempt)

    @contextmanager
    def _data(self, write: bool = False) -> Iterator[dict[str, Any]]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = json.loads(self._path.read_text())
            except FileNotFoundError:
                data = {"clusters": {}, "attempts": {}}
            yield data
            if write:
                temporary = self._path.with_suffix(".tmp")
                temporary.write_text(json.dumps(data, indent=1))
                temporary.replace(self._path)


def _record(item: dict[str, Any]) -> ClusterRecord:
    return ClusterRecord.from_dict(json.loads(item["data"]["S"]))
