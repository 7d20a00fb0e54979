"""The one exception tree of paychaos.

Invalid input (the user's to fix, exit code 2) is kept apart from failures
(something broke while running, exit code 1)::

    PaychaosError
    ├── InvalidInput                 bad scenario, flag, fault parameter, config
    │   ├── InvalidScenario
    │   ├── InvalidFault
    │   ├── InvalidTarget            bad target file, unset secret variable
    │   └── Unsupported              the target lacks a capability that is needed
    ├── MissingDependency            a binary or package is not installed
    ├── StackError                   the system under test could not be run
    │   └── ComponentFailed          one component died or never became healthy
    ├── FaultInjectionFailed         a fault could not be applied
    ├── RollbackFailed               a fault could not be reverted
    └── ExpectationFailed            a check did not hold

Third-party exceptions are converted where they enter
(``raise StackError("...") from exc``) so that the CLI can print one clear
sentence instead of a traceback.
"""

from __future__ import annotations


class PaychaosError(Exception):
    """Root of every error paychaos raises on purpose."""

    exit_code = 1


class InvalidInput(PaychaosError):
    """The user gave something paychaos cannot use; nothing was changed."""

    exit_code = 2


class InvalidScenario(InvalidInput):
    """A scenario file is malformed; the message names the file, line and field."""


class InvalidFault(InvalidInput):
    """A fault name or parameter is unknown or out of range."""


class InvalidTarget(InvalidInput):
    """A target file or reference is malformed; the message names the place."""


class Unsupported(InvalidInput):
    """The target lacks a capability a fault or expectation needs; nothing was started.

    ``missing`` holds ``(what needs it, capability)`` pairs.
    """

    def __init__(self, message: str, missing: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class MissingDependency(PaychaosError):
    """A required binary or package is missing; the message says how to install it."""

    exit_code = 3


class StackError(PaychaosError):
    """The system under test could not be started, queried or stopped."""


class ComponentFailed(StackError):
    """A component of the stack died or did not become healthy in time."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component


class FaultInjectionFailed(PaychaosError):
    """A fault could not be applied; whatever part was applied has been reverted."""


class RollbackFailed(PaychaosError):
    """A fault could not be reverted; its TTL is the last line of defence."""


class ExpectationFailed(PaychaosError):
    """An expected signal did not appear (or a forbidden one did)."""
