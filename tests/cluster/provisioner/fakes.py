"""A fake of the `pcluster` library, at our own seam (`PclusterAdapter`): ParallelCluster
cannot run here (it needs real CloudFormation, EC2 instances and its own AMIs)."""

from __future__ import annotations

import threading
from typing import Any


class FakePcluster:
    """Clusters move through the states queued for them; each `describe` pops the next one
    (the last one stays). A deleted cluster reports DELETE_IN_PROGRESS `delete_polls` times,
    then is gone (describe returns None, as pcluster's NotFound)."""

    def __init__(self, *, create_states: list[str] | None = None, delete_polls: int = 1):
        self.create_states = create_states or ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
        self.delete_polls = delete_polls
        self.clusters: dict[str, list[dict[str, Any]]] = {}
        self.created: list[tuple[str, str]] = []  # (name, config YAML)
        self.fail_create: Exception | None = None
        self.lock = threading.Lock()

    def create(self, name: str, config_yaml: str, region: str) -> dict[str, Any]:
        if self.fail_create is not None:
            raise self.fail_create
        with self.lock:
            self.created.append((name, config_yaml))
            self.clusters[name] = [self._state(s) for s in self.create_states]
        return {"cluster": {"clusterName": name, "clusterStatus": self.create_states[0]}}

    def describe(self, name: str, region: str) -> dict[str, Any] | None:
        with self.lock:
            states = self.clusters.get(name)
            if not states:
                return None
            current = states.pop(0) if len(states) > 1 else states[0]
            if current.get("gone"):
                del self.clusters[name]
                return None
            return dict(current, clusterName=name)

    def delete(self, name: str, region: str) -> None:
        with self.lock:
            self.clusters[name] = [
                *([self._state("DELETE_IN_PROGRESS")] * self.delete_polls),
                {"gone": True},
            ]

    @staticmethod
    def _state(status: str) -> dict[str, Any]:
        state: dict[str, Any] = {"clusterStatus": status}
        if status == "CREATE_COMPLETE":
            state["headNode"] = {"privateIpAddress": "10.20.1.5"}
        if status == "CREATE_FAILED":
            state["failures"] = [
                {
                    "failureCode": "HeadNodeBootstrapFailure",
                    "failureReason": "Cluster creation timed out",
                }
            ]
        return state
