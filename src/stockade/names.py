"""Names users give things (deployments, keys, identities): what Azure allows for deployment names."""

import re

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
