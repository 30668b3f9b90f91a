"""Errors a user can fix: the CLI prints their message as one line, never a traceback."""


class StepwiseError(Exception):
    """Base for every error caused by input, configuration or an outside service."""


class ModelURIError(StepwiseError):
    """A model URI that names no known backend, or a backend that cannot be built."""


class ModelBackendError(StepwiseError):
    """A model server that is down, times out or answers something unusable."""


class CassetteError(StepwiseError):
    """A cassette that is missing, corrupt, or holds no answer for a request."""


class ScenarioError(StepwiseError):
    """A scenario file that cannot be read or does not validate."""


class ConfigError(StepwiseError):
    """An agent configuration naming unknown tools, or a prompt file that cannot be used."""


def error_line(exc: BaseException) -> str:
    """An error as the one line a report keeps of a failed task: a ``StepwiseError``'s own
    message, anything else with its type name (its first line, at most 300 characters)."""
    text = str(exc).strip() if isinstance(exc, StepwiseError) else f"{type(exc).__name__}: {exc}"
    return (text.splitlines() or [type(exc).__name__])[0][:300]
