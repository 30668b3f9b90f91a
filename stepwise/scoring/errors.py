"""The one error scoring raises for input a user can fix; the CLI prints it as one line."""

from stepwise.errors import StepwiseError


class ScoringError(StepwiseError):
    """Unusable scoring input: a bad language code, unaligned lines, a missing COMET setup."""
