"""Where the ``kit:*`` context comes from: cdk.json, its per-stage entries, the command line.

Precedence, highest first:

1. a ``-c kit:key=value`` flag (of the CDK CLI, or of ``python app.py`` / ``make synth``);
2. the entry of ``kit:stages`` named by ``kit:stageName`` (``{"prod": {"kit:mfa": "required"}}``);
3. the top-level value in cdk.json, the default.

The CDK CLI hands the app one merged context (cdk.json's ``context`` plus its ``-c`` flags,
``CDK_CONTEXT_JSON``), so a flag is recognised by its value: it differs from cdk.json's, or it
is a string where cdk.json has a number, list or object (the CLI passes every ``-c`` value as a
string). A flag that repeats cdk.json's own value for a string key cannot be told from the
default, and the stage entry then applies. ``python app.py -c ...`` knows its flags exactly.

Nothing here calls AWS or git.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
CDK_JSON: Final = REPO_ROOT / "cdk.json"
PREFIX: Final = "kit:"
DOC_KEY: Final = PREFIX + "doc"
STAGES_KEY: Final = PREFIX + "stages"
STAGE_NAME_KEY: Final = PREFIX + "stageName"
# Keys that a stage entry may not set: they pick the entry, or are not settings.
NOT_PER_STAGE: Final = frozenset({DOC_KEY, STAGES_KEY, STAGE_NAME_KEY})


class ConfigError(ValueError):
    """A context value is missing or malformed; the message names the key."""


# kit:alarmEmail: a pragmatic check of one address (local@domain, dotted domain); SNS then
# asks the owner to confirm the subscription, which is the real proof.
_EMAIL_RE: Final = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def alarm_email(value: Any) -> str | None:
    """``kit:alarmEmail``: null (or "") for no subscription, else one e-mail address (``ConfigError``)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL_RE.match(value):
        raise ConfigError("kit:alarmEmail: null or one e-mail address such as ops@example.com")
    return value


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` block of cdk.json: the defaults the CDK CLI would pass."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: 'context' must be an object")
    return context


def parse_context_args(argv: Sequence[str]) -> dict[str, str]:
    """``-c key=value`` / ``--context key=value`` / ``--context=key=value``, as the CDK CLI reads them.

    Values stay strings, exactly as the CLI passes them to an app; :func:`decode_value` turns
    them into JSON values where the key expects one. Anything else is a ``ConfigError``.
    """
    out: dict[str, str] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-c", "--context"):
            if not args:
                raise ConfigError(f"{arg} needs a key=value argument")
            assignment = args.pop(0)
        elif arg.startswith("--context="):
            assignment = arg.removeprefix("--context=")
        else:
            raise ConfigError(f"unexpected argument {arg!r}: only -c key=value (or --context key=value) is accepted")
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"context argument {assignment!r} is not key=value")
        out[key] = value
    return out


def decode_value(value: Any, default: Any) -> Any:
    """A command-line string as the JSON value it spells, when cdk.json's default is not a string.

    ``-c kit:maxClients=500`` arrives as ``"500"`` and ``-c 'kit:identityProviders=["COGNITO"]'``
    as a string of JSON; keys whose default is a string keep the text as given, except that
    ``null`` means null (for keys that are null by default or may be).
    """
    if not isinstance(value, str):
        return value
    if value == "null":
        return None
    if isinstance(default, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # not JSON: the key's validation names what it expects


def _stage_entries(context: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    stages = decode_value(context.get(STAGES_KEY, defaults.get(STAGES_KEY, {})), {})
    if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
        raise ConfigError(f"{STAGES_KEY}: an object {{stage name: {{kit key: value, ...}}}}")
    for stage, entry in stages.items():
        for key in entry:
            if key in NOT_PER_STAGE or key not in defaults:
                raise ConfigError(
                    f"{STAGES_KEY}.{stage}: {key!r} cannot be set per stage"
                    if key in NOT_PER_STAGE
                    else f"{STAGES_KEY}.{stage}: unknown key {key!r} (every key needs a default in cdk.json)"
                )
    return stages


def stage_names(context: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[str, ...]:
    """The stages that ``kit:stages`` defines, in cdk.json order."""
    return tuple(_stage_entries(context, defaults))


def resolve(
    context: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    explicit: Set[str] = frozenset(),
    stage: str | None = None,
) -> dict[str, Any]:
    """The ``kit:*`` values after precedence: flag > stage entry > cdk.json default.

    ``context`` is what the app received (cdk.json merged with flags), ``defaults`` cdk.json's
    own context, ``explicit`` the keys known to come from flags; ``stage`` picks another stage
    than ``kit:stageName`` (to validate every stage at synth). A ``kit:*`` key that cdk.json
    does not define is a typo and refused; so is a stage name that ``kit:stages`` lacks.
    """
    unknown = sorted(k for k in context if k.startswith(PREFIX) and k not in defaults)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (the keys are documented under {DOC_KEY} in cdk.json)")
    keys = [k for k in defaults if k.startswith(PREFIX) and k not in (DOC_KEY, STAGES_KEY)]
    values = {k: decode_value(context.get(k, defaults[k]), defaults[k]) for k in keys}
    if stage is not None:
        values[STAGE_NAME_KEY] = stage
    stages = _stage_entries(context, defaults)
    name = values.get(STAGE_NAME_KEY)
    if stages and name not in stages:
        raise ConfigError(f"{STAGE_NAME_KEY}: {name!r} has no entry in {STAGES_KEY} (stages: {', '.join(stages)})")
    for key, value in stages.get(str(name), {}).items():
        given = context.get(key, defaults[key])
        default = defaults[key]
        from_flag = key in explicit or given != default or (isinstance(given, str) and not isinstance(default, str))
        if not from_flag:
            values[key] = value
    return values
