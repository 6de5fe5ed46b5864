"""API keys from env vars or files (Kubernetes Secrets mount as either). Never logged."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import ModelEntry
from ..errors import EchelonError

__all__ = ["CredentialError", "Credentials"]


class CredentialError(EchelonError):
    """The credential of a model cannot be read; the message never contains the secret."""


@dataclass
class _FileKey:
    mtime_ns: int
    value: str


class Credentials:
    """Reads each model's API key on demand; files are re-read when they change."""

    def __init__(self) -> None:
        self._files: dict[str, _FileKey] = {}

    def key_for(self, model_id: str, entry: ModelEntry) -> str | None:
        """The key, None when the model needs none (e.g. a local OpenAI-compatible server)."""
        if entry.api_key_env:
            value = os.environ.get(entry.api_key_env)
            if value is None:
                raise CredentialError(
                    f"model {model_id}: env var {entry.api_key_env} is not set"
                )
            return value.strip()
        if entry.api_key_file:
            return self._read_file(model_id, entry.api_key_file)
        if entry.api_key_secret:
            raise CredentialError(
                f"model {model_id}: api_key_secret is only resolved in Kubernetes (the operator "
                "turns it into an env var); outside Kubernetes use api_key_env or api_key_file"
            )
        return None

    def _read_file(self, model_id: str, path: str) -> str:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError as exc:
            raise CredentialError(f"model {model_id}: cannot read api_key_file {path}: "
                                  f"{exc.strerror}") from None
        cached = self._files.get(path)
        if cached is not None and cached.mtime_ns == mtime:
            return cached.value
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.read().strip()
        except OSError as exc:
            raise CredentialError(f"model {model_id}: cannot read api_key_file {path}: "
                                  f"{exc.strerror}") from None
        self._files[path] = _FileKey(mtime, value)
        return value
