"""AWS clients, created once per container and reused across warm invocations.

They are botocore clients (what ``boto3.client`` returns) made from one botocore session,
without importing boto3 itself: boto3 loads s3transfer and its resource layer, about 70 ms
of a cold start that no function needs.

Local mode needs no code here: botocore honours ``AWS_ENDPOINT_URL`` (the moto server).
Timeouts are short because a Lambda behind API Gateway has 30 s in all and a stuck
dependency must become a 503, not a hung request.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


@cache
def _session() -> Any:
    from botocore.session import get_session

    return get_session()


@cache
def dynamodb() -> DynamoDBClient:
    return cast("DynamoDBClient", _session().create_client("dynamodb", config=_config()))


@cache
def cognito_idp() -> CognitoIdentityProviderClient:
    return cast("CognitoIdentityProviderClient", _session().create_client("cognito-idp", config=_config()))


@cache
def kms() -> KMSClient:
    return cast("KMSClient", _session().create_client("kms", config=_config()))
