"""Typed errors of the runtime. Each has a stable ``code`` and an exit status.

Messages say what was wrong, where it came from and what to do next; they never
carry a secret (values of secret keys are masked before they reach a message).
"""

from __future__ import annotations

from typing import ClassVar


class JaseciLikeError(Exception):
    """Base of every error the runtime raises on purpose."""

    code: ClassVar[str] = "error"
    #: Process exit status used by the command line for this kind of failure.
    exit_code: ClassVar[int] = 1

    @property
    def message(self) -> str:
        return str(self)


class IllegalTransition(JaseciLikeError):
    """A lifecycle move the state machine does not allow."""

    code = "illegal_transition"


class ConfigError(JaseciLikeError):
    """A configuration value, file or source that cannot be used.

    ``problems`` holds one line per problem, each naming the key, the (masked)
    value and the layer it came from.
    """

    code = "config_error"
    exit_code = 3

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            text = self.problems[0]
        else:
            text = f"{len(self.problems)} configuration problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(text)


class ServiceNotFound(JaseciLikeError, LookupError):
    """No builder is registered under the requested service name."""

    code = "service_not_found"
    exit_code = 4


class ContextNotFound(ServiceNotFound):
    """No context (``add_context``) is registered under the requested name."""

    code = "context_not_found"


class DuplicateService(JaseciLikeError):
    """A second builder for a service name that already has one."""

    code = "duplicate_service"
    exit_code = 4


class DependencyError(JaseciLikeError):
    """A dependency cycle, a dependency nobody provides, or one that is not running."""

    code = "dependency_error"
    # What reaches the command line is a registry error (a cycle, a dependency no
    # plugin provides); one not running at start is kept in the service's `error`
    # and surfaces as ServiceStartError (5).
    exit_code = 4


class PluginError(JaseciLikeError):
    """A plugin that could not be loaded, validated or called."""

    code = "plugin_error"
    exit_code = 4


class ServiceStartError(JaseciLikeError):
    """One or more enabled services did not reach RUNNING."""

    code = "service_start_failed"
    exit_code = 5


class GlobError(JaseciLikeError, ValueError):
    """A glob value that is not JSON, or a stored glob that cannot be read."""

    code = "glob_error"


class HealthCheckTimeout(JaseciLikeError):
    """A service's ``health()`` did not answer within its health timeout (its server
    accepts connections but does not reply, or a lock is held that long)."""

    code = "health_timeout"
    exit_code = 5


class WrongLoopError(JaseciLikeError, RuntimeError):
    """An async app of the runtime (an engine, a client) used from an event loop or
    thread it does not belong to: its connections live on the runtime's loop."""

    code = "wrong_event_loop"
