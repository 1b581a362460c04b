"""`ecs`: the project's instance is an ECS task of the service image (`run_task`), the project
in its container's environment (overrides) and in its tags; found by `startedBy` and tag.

The task gets what its task definition holds (the settings every instance shares, secrets by
`valueFrom`) plus exactly the environment it is given (the project's cluster: SSH host, host
key, the key's secret ARN) and its project: nothing of the calling process's own environment.
Overrides are readable by anyone allowed `ecs:DescribeTasks`, so a secret is refused there (a
password in a URL, or a variable named like one): pass a secret by its ARN instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cluster.instances.base import (
    PROJECT_TAG,
    PROJECTS_ENV,
    Instance,
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
        _refuse_secrets(project, variables)
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
        state = str(task.get("lastStatus", "PENDING")).lower()
        return Instance(project, self.kind, str(task["taskArn"]), state, task_url(task, self._port))

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._ecs, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise InstanceError(f"ECS {operation} failed: {exc}") from exc


def task_url(task: Mapping[str, Any], port: int) -> str | None:
    """Where a task (as `describe_tasks` tells it) is reached: its elastic network interface's
    private address (awsvpc: Fargate), once ECS has attached one; None before."""
    for attachment in task.get("attachments", []):
        if attachment.get("type", "ElasticNetworkInterface") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return f"http://{detail['value']}:{port}"
    return None


# A reference to a secret (`…_SECRET_ARN`, `…_SECRET_ID`) is fine; the secret itself is not.
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|CREDENTIAL")
_REFERENCE_NAME = re.compile(r"_(ARN|ID|NAME|FILE)$")


def _refuse_secrets(project: str, variables: Mapping[str, str]) -> None:
    """InstanceStartError (naming the variable, never its value) for a secret in overrides."""
    for name, value in variables.items():
        upper = name.upper()
        named = _SECRET_NAME.search(upper) and not _REFERENCE_NAME.search(upper)
        if named or _has_password(value):
            raise InstanceStartError(
                f"{name} of the instance of {project} looks like a secret: ECS task overrides "
                "are readable by anyone allowed ecs:DescribeTasks; give the task its secret by "
                "the task definition's `secrets` or a Secrets Manager ARN instead"
            )


def _has_password(value: str) -> bool:
    if "://" not in value:
        return False
    try:
        return urlsplit(value).password is not None
    except ValueError:
        return False
