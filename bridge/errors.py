"""The typed failures of splade-bridge. Every error the library raises on purpose is a ``BridgeError``;
the CLI maps them to exit codes and one-line messages, the service to HTTP statuses (one table each).

Nothing here imports the rest of the package, so every layer can raise these.
"""
from __future__ import annotations


class BridgeError(Exception):
    """Base of every error splade-bridge raises on purpose; ``str(error)`` is a one-line message
    that never contains credentials, and names no command-line flag: ``hint`` names the API option that
    changes the outcome (``allow_model_mismatch``, ``create``...), which the CLI turns into its flag."""

    hint: str | None = None


def hinted(error: BridgeError, hint: str) -> BridgeError:
    """``error`` with ``hint``, the option (an API keyword) that would change the outcome."""
    error.hint = hint
    return error


class ConfigError(BridgeError, ValueError):
    """An option, a configuration value or an index stamp that cannot be used."""


class MissingExtra(BridgeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is missing: pip install 'splade-bridge[{extra}]'")
        self.module, self.extra = module, extra


class ClusterError(BridgeError):
    """Talking to the cluster failed."""


class ClusterUnreachable(ClusterError):
    """No node answered (refused, unresolvable, timed out) within the retry policy."""


class ClusterRefused(ClusterError):
    """The cluster answered with an error status (``status``) that retrying does not heal."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class AuthenticationFailed(ClusterRefused):
    """HTTP 401/403: the credentials are wrong or lack a permission."""


class IndexNotFound(ClusterError):
    """The index or alias does not exist."""


class IndexExists(ClusterRefused):
    """Creating an index that exists already (another worker may have just created it)."""


class IndexNotBridged(BridgeError, ValueError):
    """The index was not created by splade-bridge, or its vector field cannot hold SPLADE weights."""


class ModelMismatch(BridgeError, ValueError):
    """The index was built with another model (or pooling) than the encoder at hand."""


class QueryError(BridgeError, ValueError):
    """A query that cannot be searched: empty, expanding to no terms, or using a form the engine lacks."""


class ModelLoadError(BridgeError):
    """A model could not be fetched, verified or loaded."""


class IngestAborted(BridgeError):
    """The cluster stayed unreachable (or refused a whole request) past the retry policy. ``summary``
    holds what was acknowledged before; rerunning with ``--skip-unchanged`` continues from there."""

    def __init__(self, summary, cause: BaseException, message: str):
        super().__init__(message)
        self.summary, self.cause = summary, cause


class ReindexError(BridgeError):
    """A reindex could not complete; the alias was not moved."""


class NodeError(BridgeError):
    """A local development node could not be provisioned, started or stopped."""
