"""The package version: written once, here (pyproject.toml reads it; ``medagent.__version__`` re-exports it)."""

__version__ = "0.1.0"
