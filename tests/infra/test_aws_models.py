"""The pruned botocore data of the assets: what the kit's clients need, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore import xform_name
from botocore.loaders import Loader

from functions.core.platform import aws
from infra import aws_models

pytestmark = pytest.mark.infra

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1", "us-isob-east-1")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("botocore-data")
    aws_models.write_data(dest)
    return dest


def _clear() -> None:
    for cached in (aws._session, aws.dynamodb, aws.kms, aws.cognito_idp):
        cached.cache_clear()


@pytest.fixture
def clean_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    _clear()
    yield monkeypatch
    _clear()


def _kit_client(monkeypatch: pytest.MonkeyPatch, data: Path | None, service: str, region: str) -> Any:
    monkeypatch.setattr(aws, "data_path", lambda: data)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    _clear()
    return getattr(aws, service.replace("-", "_"))()


def _shapes(client: Any) -> dict[str, Any]:
    model = client.meta.service_model
    out = {}
    for name in model.operation_names:
        op = model.operation_model(name)
        out[name] = (
            op.http,
            sorted(op.input_shape.members) if op.input_shape else None,
            sorted(op.output_shape.members) if op.output_shape else None,
            sorted(e.name for e in op.error_shapes),
        )
    return out


def test_the_session_reads_only_the_shipped_data(clean_aws: pytest.MonkeyPatch, data: Path) -> None:
    clean_aws.setattr(aws, "data_path", lambda: data)
    assert aws._session().get_component("data_loader").search_paths == [str(data)]
    _clear()
    clean_aws.setattr(aws, "data_path", lambda: None)
    assert Loader.BUILTIN_DATA_PATH in aws._session().get_component("data_loader").search_paths


def test_data_path_is_the_directory_beside_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "aws.py"
    monkeypatch.setattr(aws, "__file__", str(module))
    assert aws.data_path() is None  # make dev, tests: botocore's own data
    (tmp_path / aws.DATA_DIR).mkdir()
    assert aws.data_path() == tmp_path / aws.DATA_DIR


@pytest.mark.parametrize("service", aws.SERVICES)
def test_pruned_data_makes_the_same_client(clean_aws: pytest.MonkeyPatch, data: Path, service: str) -> None:
    for region in REGIONS:
        pruned = _kit_client(clean_aws, data, service, region)
        full = botocore.session.get_session().create_client(service, region_name=region)
        assert pruned.meta.endpoint_url == full.meta.endpoint_url, region
        assert pruned.meta.partition == full.meta.partition
        assert pruned.meta.region_name == full.meta.region_name == region
    assert _shapes(pruned) == _shapes(full)
    assert pruned.meta.service_model.metadata == full.meta.service_model.metadata
    assert pruned.waiter_names == full.waiter_names
    methods = [xform_name(name) for name in full.meta.service_model.operation_names]
    assert [pruned.can_paginate(m) for m in methods] == [full.can_paginate(m) for m in methods]


def test_only_the_documentation_is_left_out(data: Path) -> None:
    loader = Loader([Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)
    shipped = Loader([str(data)], include_default_search_paths=False)
    for service in aws.SERVICES:
        version = loader.determine_latest_version(service, "service-2")
        ours = shipped.load_service_model(service, "service-2")
        assert aws_models._without_documentation(loader.load_service_model(service, "service-2", version)) == ours
        assert "documentation" not in str(ours.keys())
        assert shipped.load_data(f"{service}/{version}/endpoint-rule-set-1") == loader.load_data(
            f"{service}/{version}/endpoint-rule-set-1"
        )
    assert shipped.list_available_services("service-2") == sorted(aws.SERVICES)
    endpoints = shipped.load_data("endpoints")
    assert {s for p in endpoints["partitions"] for s in p["services"]} == {"dynamodb", "kms", "cognito-idp"}


def test_the_data_is_used_only_by_a_botocore_at_least_as_new(data: Path, tmp_path: Path) -> None:
    shipped = (data / aws.DATA_VERSION_FILE).read_text(encoding="utf-8")
    assert shipped == botocore.__version__
    major, minor, patch = (int(p) for p in shipped.split("."))
    assert aws.usable_data(data, shipped)
    assert aws.usable_data(data, f"{major}.{minor}.{patch + 1}")
    assert aws.usable_data(data, f"{major}.{minor + 1}.0")
    assert not aws.usable_data(data, f"{major}.{minor - 1}.{patch + 50}")  # an older botocore: its own data
    assert not aws.usable_data(data, f"{major - 1}.99.99")
    assert not aws.usable_data(None, shipped)
    assert not aws.usable_data(tmp_path, shipped)  # no version file


def test_an_older_botocore_gets_its_own_data(clean_aws: pytest.MonkeyPatch, data: Path) -> None:
    clean_aws.setattr(aws, "data_path", lambda: data)
    clean_aws.setattr(botocore, "__version__", "1.0.0")
    assert Loader.BUILTIN_DATA_PATH in aws._session().get_component("data_loader").search_paths
