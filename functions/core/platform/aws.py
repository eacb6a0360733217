"""AWS clients, created once per container and reused across warm invocations.

They are botocore clients (what ``boto3.client`` returns) made from one botocore session,
without importing boto3 itself: boto3 loads s3transfer and its resource layer, about 70 ms
of a cold start that no function needs.

In a Lambda asset the session reads botocore data from :data:`DATA_DIR` beside this module
only: the models, endpoint rulesets and endpoint tables of :data:`SERVICES`, pruned at build
time from botocore's own data (``infra/aws_models.py``). botocore's default loader would
list all ~420 service directories of ``botocore/data`` and parse the 1.2 MB ``endpoints.json``
and a documented model first: 50-70 ms of every cold start. Where the directory is absent
(``make dev``, tests run from the repository), or the runtime's botocore is older than the
one the data came from (:func:`usable_data`), the session uses botocore's own data.

Local mode needs no code here: botocore honours ``AWS_ENDPOINT_URL`` (the moto server).
Timeouts are short because a Lambda behind API Gateway has 30 s in all and a stuck
dependency must become a 503, not a hung request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from functions.core.platform.errors import DependencyError

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

# botocore service names of the clients below: the data the assets carry (infra/aws_models.py).
SERVICES: Final = ("dynamodb", "kms", "cognito-idp")
DATA_DIR: Final = "botocore_data"
# In DATA_DIR: the version of the botocore the data came from (the build environment's).
DATA_VERSION_FILE: Final = "botocore-version"


@contextmanager
def aws_call(what: str, answers: Mapping[str, Callable[[str], Exception]] | None = None) -> Iterator[None]:
    """Map a failed AWS call, once for every client of the kit.

    An error code in ``answers`` (e.g. ``ConditionalCheckFailedException``) is an answer, not an
    outage: its exception is raised, built from ``what``. Any other ``ClientError`` or
    ``BotoCoreError`` is ``DependencyError`` naming ``what`` and the code: a 503 that is safe
    to retry, never a 500 and never an allow (fail closed).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        answer = (answers or {}).get(code)
        if answer is not None:
            raise answer(what) from exc
        raise DependencyError(f"{what} failed: {code}") from exc
    except BotoCoreError as exc:
        raise DependencyError(f"{what} failed: {exc.__class__.__name__}") from exc


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


def data_path() -> Path | None:
    """The pruned botocore data directory shipped in the asset, or ``None`` outside an asset."""
    path = Path(__file__).with_name(DATA_DIR)
    return path if path.is_dir() else None


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def usable_data(path: Path | None, botocore_version: str) -> bool:
    """Whether botocore ``botocore_version`` may read the shipped data at ``path``.

    Only when it is at least the botocore the data came from: a botocore reads models and
    rulesets of its own release or older (what ``AWS_DATA_PATH`` and ``~/.aws/models`` hold),
    while an older one can fail on a newer ruleset (an endpoint built-in it does not know
    raises at every call). Otherwise, or when the version file is missing, it is botocore's
    own data: slower, never broken.
    """
    if path is None:
        return False
    try:
        shipped = (path / DATA_VERSION_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return bool(_release(shipped)) and _release(botocore_version) >= _release(shipped)


@cache
def _session() -> Any:
    """One botocore session per container; in an asset its loader searches :func:`data_path` only
    (when :func:`usable_data` allows it)."""
    import botocore
    from botocore.session import get_session

    session = get_session()
    path = data_path()
    if path is not None and usable_data(path, botocore.__version__):
        from botocore.loaders import Loader

        # Not botocore/data, not ~/.aws/models: the pruned copy of botocore's data for SERVICES.
        session.register_component("data_loader", Loader([str(path)], include_default_search_paths=False))
    return session


@cache
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client (botocore ``UnknownServiceError``/``DataNotFoundError`` if its data is missing)."""
    return cast("DynamoDBClient", _session().create_client("dynamodb", config=_config()))


@cache
def cognito_idp() -> CognitoIdentityProviderClient:
    """The Cognito user pools client (``cognito-idp``)."""
    return cast("CognitoIdentityProviderClient", _session().create_client("cognito-idp", config=_config()))


@cache
def kms() -> KMSClient:
    """The KMS client."""
    return cast("KMSClient", _session().create_client("kms", config=_config()))
