"""The user pool as a directory: who a user is now (exists, enabled, groups), through the admin APIs.

Deprovisioning and the admin CLI ask Cognito, not a token, what a person may still do: a
token's ``cognito:groups`` are frozen when it was minted, the pool's answer is current.
Calls: ``AdminGetUser`` and ``AdminListGroupsForUser`` (Cognito's "UserRead" quota category),
``ListUsers`` with an exact ``email``/``sub`` filter, ``AdminDisableUser``. Every AWS failure
other than "no such user" is a ``DependencyError`` (fail closed: the caller retries, it never
concludes the user is fine).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from functions.core.platform import aws
from functions.core.platform.aws import aws_call

USER_NOT_FOUND: Final = "UserNotFoundException"
# ListUsers filters on standard attributes only; these are the ones a person names a user by.
LOOKUP_ATTRIBUTES: Final = ("email", "sub")


@dataclass(frozen=True)
class DirectoryUser:
    """A user as the pool has them now: ``username`` (Cognito username), ``sub``, enabled, group names."""

    username: str
    sub: str
    enabled: bool
    groups: tuple[str, ...]
    email: str = ""


class CognitoDirectory:
    """Admin reads (and the one admin write, disable) on one user pool."""

    def __init__(self, user_pool_id: str, client: Any = None) -> None:
        self._pool, self._client = user_pool_id, client

    @property
    def _idp(self) -> Any:
        return self._client or aws.cognito_idp()

    def user(self, username: str) -> DirectoryUser | None:
        """The user named ``username`` (username or an alias), or None if the pool has no such user.

        Raises ``DependencyError`` when Cognito fails.
        """
        try:
            with _cognito_call("read user"):
                resp = self._idp.admin_get_user(UserPoolId=self._pool, Username=username)
                attributes = {a["Name"]: a["Value"] for a in resp.get("UserAttributes", [])}
                groups: list[str] = []
                request: dict[str, Any] = {"UserPoolId": self._pool, "Username": resp["Username"]}
                while True:
                    page = self._idp.admin_list_groups_for_user(**request)
                    groups.extend(g["GroupName"] for g in page.get("Groups", []))
                    if not page.get("NextToken"):
                        break
                    request["NextToken"] = page["NextToken"]
        except _NoSuchUser:
            return None
        return DirectoryUser(
            username=str(resp["Username"]),
            sub=str(attributes.get("sub", "")),
            enabled=bool(resp.get("Enabled", False)),  # absent reads as disabled (fail closed)
            groups=tuple(sorted(groups)),
            email=str(attributes.get("email", "")),
        )

    def find(self, name: str) -> DirectoryUser | None:
        """The user a person means by ``name``: a username or alias, else an exact ``email`` or ``sub``.

        None when nothing matches; raises ``LookupError`` when an email matches several users,
        ``DependencyError`` when Cognito fails.
        """
        found = self.user(name)
        if found is not None:
            return found
        if '"' in name or "\\" in name:
            return None  # ListUsers' filter grammar has no escape for a quote: match nothing
        for attribute in LOOKUP_ATTRIBUTES:
            with _cognito_call("list users"):
                resp = self._idp.list_users(UserPoolId=self._pool, Filter=f'{attribute} = "{name}"', Limit=2)
            users = resp.get("Users", [])
            if len(users) > 1:
                raise LookupError(f"{len(users)} users have {attribute} {name!r}; name one by username")
            if users:
                return self.user(str(users[0]["Username"]))
        return None

    def disable(self, username: str) -> bool:
        """``AdminDisableUser``: False if there is no such user. Raises ``DependencyError``."""
        try:
            with _cognito_call("disable user"):
                self._idp.admin_disable_user(UserPoolId=self._pool, Username=username)
        except _NoSuchUser:
            return False
        return True


class _NoSuchUser(Exception):
    """Cognito answered ``UserNotFoundException``."""


def _cognito_call(what: str) -> AbstractContextManager[None]:
    """No such user: ``_NoSuchUser``; any other Cognito failure: ``DependencyError`` (503)."""
    return aws_call(what, {USER_NOT_FOUND: _NoSuchUser})
