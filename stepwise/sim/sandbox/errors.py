"""Errors of the simulated sandbox world, each one line that names what is wrong."""

from __future__ import annotations

from stepwise.errors import StepwiseError


class WorldError(StepwiseError, ValueError):
    """A WORLD.json that cannot be used, or an operation naming an unknown agent, area or
    object. A ValueError too, so callers turning bad arguments into messages catch it."""


class WorldStoreError(StepwiseError):
    """A world file that cannot be opened or written, or a stored world that is damaged."""
