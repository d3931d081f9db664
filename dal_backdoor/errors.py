"""Exceptions that mean "the user asked for something invalid".

Library code raises these with a one-line message that names the bad value and what is allowed;
the CLI turns them into one red line and exit code 2, never a traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid option, hyper-parameter, name or combination of them."""


class DataNotFoundError(ConfigError):
    """A data set (or a file it needs) is not where we looked."""


class StoreError(ConfigError):
    """A results store that cannot be used (not a store, newer schema, corrupt)."""


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used (corrupt, truncated, from another config)."""
