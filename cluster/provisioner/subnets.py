"""The pool of private subnets clusters are placed in: a DynamoDB table (partition key
`subnet_id`; `status` free|claimed, `project`). A claim is one conditional write (`status` must
still be free), so two concurrent claims can never get the same subnet."""

from __future__ import annotations

import random
from typing import Any

from cluster.provisioner import _aws
from cluster.provisioner.errors import ProvisionerError, SubnetPoolExhausted
from cluster.provisioner.records import utcnow

FREE, CLAIMED = "free", "claimed"


class SubnetPool:
    def __init__(self, client: Any, table: str):
        self._client = client
        self._table = table

    def add(self, *subnet_ids: str) -> None:
        """Put subnets into the pool (free); subnets already in it are left as they are."""
        from botocore.exceptions import ClientError

        for subnet_id in subnet_ids:
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={"subnet_id": {"S": subnet_id}, "status": {"S": FREE}},
                    ConditionExpression="attribute_not_exists(subnet_id)",
                )
            except ClientError as exc:
                if _aws.error_code(exc) != "ConditionalCheckFailedException":
                    with _aws.translated(f"adding {subnet_id} to the subnet pool"):
                        raise

    def held_by(self, project: str) -> str | None:
        for item in self._scan("#p = :p", {":p": {"S": project}}, {"#p": "project"}):
            if item["status"]["S"] == CLAIMED:
                return str(item["subnet_id"]["S"])
        return None

    def _holder(self, subnet_id: str) -> str | None:
        """The project holding `subnet_id` now (a strongly consistent read)."""
        with _aws.translated(f"reading the subnet pool {self._table}"):
            item = self._client.get_item(
                TableName=self._table, Key={"subnet_id": {"S": subnet_id}}, ConsistentRead=True
            ).get("Item")
        if item is None or item.get("status", {}).get("S") != CLAIMED:
            return None
        return str(item.get("project", {}).get("S")) or None

    def claim(self, project: str) -> str:
        """A free subnet, now the project's (the one it holds already, if any)."""
        from botocore.exceptions import ClientError

        held = self.held_by(project)
        if held is not None:
            return held
        free = [
            i["subnet_id"]["S"]
            for i in self._scan("#s = :free", {":free": {"S": FREE}}, {"#s": "status"})
        ]
        random.shuffle(free)  # concurrent claimers mostly try different subnets first
        for subnet_id in free:
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"subnet_id": {"S": subnet_id}},
                    UpdateExpression="SET #s = :claimed, #p = :project, claimed_at = :now",
                    ConditionExpression="#s = :free",
                    ExpressionAttributeNames={"#s": "status", "#p": "project"},
                    ExpressionAttributeValues={
                        ":claimed": {"S": CLAIMED},
                        ":free": {"S": FREE},
                        ":project": {"S": project},
                        ":now": {"S": utcnow().isoformat()},
                    },
                )
            except ClientError as exc:
                if _aws.error_code(exc) == "ConditionalCheckFailedException":
                    # another claim won this one, or ours did: an attempt whose answer was
                    # lost (a timeout) and that botocore sent again
                    if self._holder(subnet_id) == project:
                        return str(subnet_id)
                    continue
                with _aws.translated(f"claiming {subnet_id} for {project}"):
                    raise
            return str(subnet_id)
        raise SubnetPoolExhausted(
            f"no free subnet for {project}: every subnet of the pool {self._table} is claimed"
        )

    def release(self, project: str, subnet_id: str) -> None:
        """Free the subnet if `project` holds it; safe to repeat."""
        from botocore.exceptions import ClientError

        try:
            self._client.update_item(
                TableName=self._table,
                Key={"subnet_id": {"S": subnet_id}},
                UpdateExpression="SET #s = :free REMOVE #p, claimed_at",
                ConditionExpression="#s = :claimed AND #p = :project",
                ExpressionAttributeNames={"#s": "status", "#p": "project"},
                ExpressionAttributeValues={
                    ":claimed": {"S": CLAIMED},
                    ":free": {"S": FREE},
                    ":project": {"S": project},
                },
            )
        except ClientError as exc:
            if _aws.error_code(exc) == "ConditionalCheckFailedException":
                if self.held_by(project) == subnet_id:  # pragma: no cover - defensive
                    raise ProvisionerError(f"cannot release {subnet_id} of {project}") from exc
                return  # released already
            with _aws.translated(f"releasing {subnet_id} of {project}"):
                raise

    def _scan(
        self, condition: str, values: dict[str, Any], names: dict[str, str]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        with _aws.translated(f"reading the subnet pool {self._table}"):
            for page in self._client.get_paginator("scan").paginate(
                TableName=self._table,
                FilterExpression=condition,
                ExpressionAttributeValues=values,
                ExpressionAttributeNames=names,
                ConsistentRead=True,
            ):
                items += page["Items"]
        return items
