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
