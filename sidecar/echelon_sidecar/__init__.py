"""Echelon's data plane: config model, routing engine, providers and the localhost sidecar."""

__version__ = "0.1.0"

__all__ = ["__version__"]
