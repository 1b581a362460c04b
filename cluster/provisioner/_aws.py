"""boto3 clients (credentials, region and `AWS_ENDPOINT_URL` found the usual way) and the
translation of botocore's errors into ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cluster.provisioner.errors import AwsError


def client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """botocore errors -> AwsError naming the operation and AWS's code and message (AWS's
    messages never echo request values such as a secret's string)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = f"{operation}: {error.get('Code', 'error')}: {error.get('Message', '')}"
        raise AwsError(message.rstrip(": ")) from exc
    except BotoCoreError as exc:
        raise AwsError(f"{operation}: {type(exc).__name__}") from exc
