"""stepwise: tool-using LLM agents whose every step can be inspected, replayed, searched and learned from."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stepwise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
