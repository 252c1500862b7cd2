"""Credentials for a private Git repository holding a fleet's desired state."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class GitCredentials(Block):
    """A user name and token (or password) for an https:// Git repository; the token never leaves this block
    except as the HTTP authorization of a fetch."""

    _block_type_name = "fleetflow Git Credentials"
    _block_type_slug = "fleetflow-git-credentials"
    _description = "User name and access token for the fleet's private GitOps repository."

    username: str = Field("git", description="User name; many hosts accept any name with a token.")
    token: SecretStr = Field(description="Personal access token or password.")
