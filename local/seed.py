"""Seed moto with what the CDK stack creates in AWS: user pool, resource server, gateway
client, groups, demo users, DynamoDB tables and the KMS key. Plain boto3 against moto.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

import boto3

from functions.core.oauth import scopes
from functions.core.platform import kit_app
from functions.core.platform.routes import CALLBACK_PATH
from functions.core.platform.topology import TableSpec, all_tables, group_description
from local.config import GATEWAY_CLIENT_NAME, POOL_NAME, REGION, LocalConfig, demo_users, table_name


@dataclass(frozen=True)
class Seeded:
    user_pool_id: str
    gateway_client_id: str
    gateway_client_secret: str
    kms_key_id: str
    passwords: dict[str, str]


def generate_password() -> str:
    """Meets Cognito's default policy: upper, lower, digit, symbol, length >= 8."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(14))
    return core + "Aa1!"


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    keys = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    return keys + ([{"AttributeName": sort_key, "KeyType": "RANGE"}] if sort_key else [])


def _table(ddb: Any, spec: TableSpec) -> None:
    """Create the table ``spec`` describes, as infra.data does in AWS (string keys, TTL, indexes)."""
    name = table_name(spec)
    indexes = [
        {
            "IndexName": i.name,
            "KeySchema": _key_schema(i.partition_key, i.sort_key),
            "Projection": (
                {"ProjectionType": "ALL"}
                if i.non_key_attributes is None
                else {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(i.non_key_attributes)}
            ),
        }
        for i in spec.indexes
    ]
    keys = {spec.partition_key, spec.sort_key, *(k for i in spec.indexes for k in (i.partition_key, i.sort_key))}
    ddb.create_table(
        TableName=name,
        KeySchema=_key_schema(spec.partition_key, spec.sort_key),
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in sorted(k for k in keys if k)],
        BillingMode="PAY_PER_REQUEST",
        **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
    )
    if spec.ttl_attribute:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )


def seed(cfg: LocalConfig, password: str | None = None) -> Seeded:
    idp = boto3.client("cognito-idp", region_name=REGION, endpoint_url=cfg.moto_url)
    ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=cfg.moto_url)
    kms = boto3.client("kms", region_name=REGION, endpoint_url=cfg.moto_url)

    pool_id = idp.create_user_pool(
        PoolName=POOL_NAME,
        AutoVerifiedAttributes=["email"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]["Id"]
    resource_server_id = cfg.base_url + "/mcp"
    idp.create_resource_server(
        UserPoolId=pool_id,
        Identifier=resource_server_id,
        Name="mcp",
        Scopes=[{"ScopeName": s.name, "ScopeDescription": s.description} for s in scopes.catalogue()],
    )
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=GATEWAY_CLIENT_NAME,
        GenerateSecret=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthScopes=[
            *scopes.GATEWAY_OIDC_SCOPES,
            *(scopes.cognito_scope(resource_server_id, s) for s in scopes.scope_names()),
        ],
        CallbackURLs=[cfg.base_url + CALLBACK_PATH],
        LogoutURLs=[cfg.base_url + "/"],
        SupportedIdentityProviders=["COGNITO"],
        # Code flow only, as in AWS (the emulator checks passwords through moto's admin API).
        ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    users = demo_users()
    for group in dict.fromkeys(g for user in users for g in user.groups):
        idp.create_group(UserPoolId=pool_id, GroupName=group, Description=group_description(group))

    passwords: dict[str, str] = {}
    for user in users:
        pw = password or generate_password()
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=user.email,
            UserAttributes=[{"Name": "email", "Value": user.email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=user.email, Password=pw, Permanent=True)
        for group in user.groups:
            idp.admin_add_user_to_group(UserPoolId=pool_id, Username=user.email, GroupName=group)
        passwords[user.email] = pw

    for spec in all_tables(kit_app.current()):
        _table(ddb, spec)
    key_id = kms.create_key(Description="mcp-cognito-kit upstream token encryption (local)")["KeyMetadata"]["KeyId"]

    return Seeded(
        user_pool_id=pool_id,
        gateway_client_id=client["ClientId"],
        gateway_client_secret=client["ClientSecret"],
        kms_key_id=key_id,
        passwords=passwords,
    )
