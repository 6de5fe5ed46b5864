"""Echelon's control plane: kopf handlers, pure builders and the `echelon` CLI."""

__version__ = "0.1.0"

__all__ = ["__version__"]
