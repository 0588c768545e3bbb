"""Names users give things (deployments, keys, identities, policies): what Azure allows for
deployment names."""

import re

from stockade.errors import InvalidRequest, shown

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # always fullmatch: `$` would let "name\n" through

NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
DEPLOYMENT_NAME_RULE = (
    f"a deployment name has {NAME_RULE} (no '/', which would make it a different URL path)."
)


def check_name(name: str, what: str, *, rule: str | None = None, then: str = "") -> None:
    """Refuse ``name`` for a ``what`` unless it follows the naming rule; ``then`` says what to do."""
    if not NAME.fullmatch(name):
        explained = rule or f"a {what} name has {NAME_RULE}."
        raise InvalidRequest(f"{shown(name)!r} cannot name a {what}: {explained}{then}", param="name")
