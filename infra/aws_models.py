"""The botocore data a function's clients read, pruned at build time from botocore's own data.

Creating a botocore client costs most of its time in data: the loader first lists every
service directory of ``botocore/data`` (~420 of them, a ``listdir`` and several ``stat`` each)
to check the service exists, then parses ``endpoints.json`` (1.2 MB, every service of every
partition) and the service model with its documentation (gzip, ~0.7 MB for DynamoDB). The
assets therefore carry, in :data:`functions.core.platform.aws.DATA_DIR`, exactly what the
kit's clients load (:data:`functions.core.platform.aws.SERVICES`), copied from the build
environment's botocore through botocore's own loader:

* the service model (``service-2``) without its ``documentation`` strings (only botocore's
  documentation generator reads them), its paginators and waiters, and its endpoint ruleset;
* ``endpoints.json`` reduced to those services in every partition, and ``partitions.json``,
  ``_retry.json`` and ``sdk-default-configuration.json`` as they are;

all as plain minified JSON (botocore's loader tries ``.json`` before ``.json.gz``), with the
version of the botocore they came from. The function's session searches only this directory
(``functions/core/platform/aws.py``) when the runtime's botocore is at least that version, and
botocore's own data otherwise; the same files are what botocore reads from ``AWS_DATA_PATH``
or ``~/.aws/models``, so nothing of botocore's code is replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import botocore
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

from functions.core.platform.aws import DATA_DIR, DATA_VERSION_FILE, SERVICES

# Data files at the root of botocore's data directory that client creation reads.
ROOT_FILES: Final = ("endpoints", "partitions", "_retry", "sdk-default-configuration")
# Per service and API version: what a client reads (the model when created, the others on use).
SERVICE_FILES: Final = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")
REQUIRED_FILES: Final = ("service-2", "endpoint-rule-set-1")  # a service may have no paginators or waiters
# Where the asset keeps the data, relative to its root (the functions package's parent).
ASSET_DATA_DIR: Final = Path("functions", "core", "platform", DATA_DIR)


def _builtin_loader() -> Loader:
    """botocore's loader on its own data only (not ``~/.aws/models``, not ``AWS_DATA_PATH``)."""
    return Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)


def _without_documentation(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_documentation(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_without_documentation(v) for v in node]
    return node


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def write_data(dest: Path, services: tuple[str, ...] = SERVICES) -> None:
    """Write the pruned data of ``services`` (botocore service names) under ``dest``.

    Raises ``botocore.exceptions.DataNotFoundError`` or ``UnknownServiceError`` when the build
    environment's botocore lacks a service or a file a client needs.
    """
    loader = _builtin_loader()
    prefixes = set()  # endpoints.json names services by their endpoint prefix
    for service in services:
        version = loader.determine_latest_version(service, "service-2")
        for name in SERVICE_FILES:
            try:
                data = loader.load_data(f"{service}/{version}/{name}")
            except DataNotFoundError:
                if name in REQUIRED_FILES:
                    raise
                continue
            if name == "service-2":
                prefixes.add(data["metadata"]["endpointPrefix"])
                data = _without_documentation(data)
            _write(dest / service / version / f"{name}.json", data)
    for name in ROOT_FILES:
        data = loader.load_data(name)
        if name == "endpoints":
            data = {
                **data,
                "partitions": [
                    {**p, "services": {k: v for k, v in p.get("services", {}).items() if k in prefixes}}
                    for p in data["partitions"]
                ],
            }
        _write(dest / f"{name}.json", data)
    (dest / DATA_VERSION_FILE).write_text(botocore.__version__, encoding="utf-8")
