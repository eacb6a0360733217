"""boto3 clients, created once per container and reused across warm invocations.

Local mode needs no code here: botocore honours ``AWS_ENDPOINT_URL`` (the moto server).
Timeouts are short because a Lambda behind API Gateway has 30 s in all and a stuck
dependency must become a 503, not a hung request.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


@cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=_config())


@cache
def cognito_idp() -> CognitoIdentityProviderClient:
    import boto3

    return boto3.client("cognito-idp", config=_config())


@cache
def kms() -> KMSClient:
    import boto3

    return boto3.client("kms", config=_config())
