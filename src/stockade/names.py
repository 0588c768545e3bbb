"""Names users give things (deployments, keys, identities): what Azure allows for deployment names."""

import re

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # always fullmatch: `$` would let "name\n" through

DEPLOYMENT_NAME_RULE = (
    "a deployment name has 1 to 64 letters, digits, '.', '_' or '-', and starts with a letter or "
    "digit (no '/', which would make it a different URL path)."
)
