"""`ecs`: the project's instance is an ECS task of the service image (`run_task`), the project
in its container's environment (overrides) and in its tags; found by `startedBy` and tag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cluster.instances.base import (
    PROJECT_TAG,
    PROJECTS_ENV,
    Instance,
    instance_arguments,
    instance_slug,
    projects_env,
)
from cluster.instances.errors import InstanceError, InstanceStartError


class EcsInstances:
    kind = "ecs"

    def __init__(
        self,
        client: Any,
        *,
        cluster: str,
        task_definition: str,
        container: str = "orchestrator",
        launch_type: str = "FARGATE",
        subnets: list[str] | None = None,
        security_groups: list[str] | None = None,
        port: int = 8000,
    ):
        self._ecs = client
        self._cluster = cluster
        self._task_definition = task_definition
        self._container = container
        self._launch_type = launch_type
        self._subnets = subnets or []
        self._security_groups = security_groups or []
        self._port = port

    def start(self, project: str, environment: Mapping[str, str] | None = None) -> Instance:
        found = self.find(project)
        if found is not None:
            return found
        variables = {**(environment or {}), PROJECTS_ENV: projects_env(project)}
        vlab, _, name = project.partition("/")
        request: dict[str, Any] = {
            "cluster": self._cluster,
            "taskDefinition": self._task_definition,
            "count": 1,
            "launchType": self._launch_type,
            "startedBy": instance_slug(project),
            "overrides": {
                "containerOverrides": [
                    {
                        "name": self._container,
                        "command": [
                            "orchestrator",
                            "serve",
                            *instance_arguments(project, "0.0.0.0", self._port),
                        ],
                        "environment": [
                            {"name": name, "value": value} for name, value in variables.items()
                        ],
                    }
                ]
            },
            "tags": [
                {"key": PROJECT_TAG, "value": project},
                {"key": "vlab", "value": vlab},
                {"key": "project", "value": name},
            ],
            "enableECSManagedTags": True,
        }
        if self._subnets:  # awsvpc: a private subnet, no public IP
            request["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": self._subnets,
                    "securityGroups": self._security_groups,
                    "assignPublicIp": "DISABLED",
                }
            }
        answer = self._call("run_task", **request)
        if answer.get("failures") or not answer.get("tasks"):
            reasons = "; ".join(str(f.get("reason")) for f in answer.get("failures", []))
            raise InstanceStartError(f"ECS could not start the instance of {project}: {reasons}")
        return self._instance(project, answer["tasks"][0])

    def find(self, project: str) -> Instance | None:
        tasks = self._tasks(project)
        return self._instance(project, tasks[0]) if tasks else None

    def stop(self, project: str) -> bool:
        tasks = self._tasks(project)
        for task in tasks:
            self._call(
                "stop_task",
                cluster=self._cluster,
                task=task["taskArn"],
                reason=f"orchestrator instance of {project} stopped",
            )
        return bool(tasks)

    def _tasks(self, project: str) -> list[dict[str, Any]]:
        arns = self._call(
            "list_tasks",
            cluster=self._cluster,
            startedBy=instance_slug(project),
            desiredStatus="RUNNING",
        )["taskArns"]
        if not arns:
            return []
        tasks = self._call("describe_tasks", cluster=self._cluster, tasks=arns, include=["TAGS"])
        return [
            task
            for task in tasks["tasks"]
            if task.get("desiredStatus", "RUNNING") == "RUNNING"  # not being stopped
            and {"key": PROJECT_TAG, "value": project} in task.get("tags", [])
        ]

    def _instance(self, project: str, task: dict[str, Any]) -> Instance:
        address = None
        for attachment in task.get("attachments", []):
            for detail in attachment.get("details", []):
                if detail.get("name") == "privateIPv4Address":
                    address = f"http://{detail['value']}:{self._port}"
        state = str(task.get("lastStatus", "PENDING")).lower()
        return Instance(project, self.kind, str(task["taskArn"]), state, address)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._ecs, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise InstanceError(f"ECS {operation} failed: {exc}") from exc
