"""Joining a Ray cluster that uses token authentication (Ray ≥ 2.52), finding the token as Ray's CLI does.

``ray start --head`` turns token authentication on when the head machine has a token: ``RAY_AUTH_TOKEN``,
the file named by ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token`` (which any local ``ray.init()`` — a
local sweep, say — creates). ``ray.init(address=...)`` never turns it on by itself, so a driver joining such
a cluster is refused (``InvalidAuthToken``, retried for a minute) unless ``RAY_AUTH_MODE=token`` is set.

``join_with_token_auth(address)`` asks the cluster's GCS (Ray's own GCS client, without and then with the
token) whether it wants a token and whether ours is the right one, before ``ray.init`` runs, and leaves
token mode on for this process the way ``ray start`` does when it finds a token. Every way it can fail
is one line naming the variable or file to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from libs.errors import LabError

AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
TOKEN_VARIABLE = "RAY_AUTH_TOKEN"
TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN_PATH"
#: how the head's token is printed there, to copy to this machine
PRINT_TOKEN_COMMAND = "ray get-auth-token"


class ClusterAuthError(LabError, RuntimeError):
    """The cluster wants a token this process does not have (or has wrong); the message names the fix."""


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


@dataclass(frozen=True)
class Token:
    value: str
    #: where it was found, as the user would name it (``RAY_AUTH_TOKEN``, a file path)
    source: str


def find_token() -> Token | None:
    """The token Ray's loader would use: ``RAY_AUTH_TOKEN``, else ``RAY_AUTH_TOKEN_PATH``'s file, else
    ``~/.ray/auth_token``. A ``RAY_AUTH_TOKEN_PATH`` naming a missing or empty file is an error, as in Ray."""
    value = os.environ.get(TOKEN_VARIABLE, "").strip()
    if value:
        return Token(value, TOKEN_VARIABLE)
    named = os.environ.get(TOKEN_PATH_VARIABLE)
    if named:
        path = Path(named).expanduser()
        try:
            value = path.read_text().strip()
        except OSError as error:
            raise ClusterAuthError(
                f"{TOKEN_PATH_VARIABLE}={named} but that file cannot be read ({error.strerror}): copy the "
                f"head's token there (`{PRINT_TOKEN_COMMAND}` on the head prints it) or unset "
                f"{TOKEN_PATH_VARIABLE}"
            ) from None
        if not value:
            raise ClusterAuthError(
                f"{TOKEN_PATH_VARIABLE}={named} names an empty file: copy the head's token into it "
                f"(`{PRINT_TOKEN_COMMAND}` on the head prints it)"
            )
        return Token(value, f"{TOKEN_PATH_VARIABLE}={named}")
    path = default_token_path()
    if path.is_file() and (value := path.read_text().strip()):
        return Token(value, str(path))
    return None


def _missing_token_line(address: str) -> str:
    return (
        f"the Ray cluster at {address} requires token authentication and this machine has no token: "
        f"{TOKEN_VARIABLE} is unset, {TOKEN_PATH_VARIABLE} is unset and {default_token_path()} does not "
        "exist; "
        f"copy the head's token (`{PRINT_TOKEN_COMMAND}` on the head prints it) into {default_token_path()} "
        f"or export {TOKEN_VARIABLE}"
    )


def cluster_accepts(address: str, timeout_s: float = 15.0) -> bool | None:
    """Whether the cluster's GCS answers this process as its auth mode stands (token sent or not): True,
    False when it refuses for authentication, None when the question could not be asked (unreachable,
    Ray Client address, another Ray), so that ``ray.init`` finds out instead."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme == "ray" or parsed.hostname is None:  # Ray Client: a different server and protocol
        return None
    try:
        from ray._raylet import InnerGcsClient
    except ImportError:
        return None
    try:
        InnerGcsClient.standalone(f"{parsed.hostname}:{parsed.port or 6379}", None, int(timeout_s * 1000))
    except Exception as error:  # Ray raises its own status errors; only an auth refusal is an answer
        text = f"{type(error).__name__} {error}".lower()
        return False if "auth" in text or "unauthenticated" in text else None
    return True


def join_with_token_auth(address: str) -> str | None:
    """Make this process's ``ray.init(address=...)`` carry the cluster's token when it wants one.

    Returns where the token came from (None: the cluster takes no token, or ``RAY_AUTH_MODE`` says not
    to send one). Raises ``ClusterAuthError`` with one line when the token is missing or refused."""
    mode = os.environ.get(AUTH_MODE_VARIABLE, "").strip().lower()
    if mode and mode != "token":
        return None  # the user chose: Ray's own error says the rest
    token = find_token()
    if mode == "token" and token is None:
        raise ClusterAuthError(f"{AUTH_MODE_VARIABLE}=token is set but " + _missing_token_line(address))
    if mode != "token" and cluster_accepts(address) is not False:
        return None  # no token wanted (or the GCS could not be asked): ray.init as it is
    if token is None:
        raise ClusterAuthError(_missing_token_line(address))
    _set_token_mode(True)
    if cluster_accepts(address) is False:
        _set_token_mode(mode == "token")
        raise ClusterAuthError(
            f"the Ray cluster at {address} refused the token from {token.source}: it is not this cluster's "
            f"token; copy the head's (`{PRINT_TOKEN_COMMAND}` on the head prints it)"
        )
    return token.source


def _set_token_mode(on: bool) -> None:
    """What ``ray start`` does when it finds a token: token mode for this process and its children."""
    if on:
        os.environ[AUTH_MODE_VARIABLE] = "token"
    else:
        os.environ.pop(AUTH_MODE_VARIABLE, None)
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")  # Ray caches its config: re-read it so this process sees the mode too
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):
        pass
