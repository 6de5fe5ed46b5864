from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

CATALOG = """
models:
  m-openai: {provider: openai, model: gpt-4o, api_key_env: OPENAI_API_KEY}
  m-openai-mini: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
  m-claude: {provider: anthropic, model: claude-3-haiku-20240307, api_key_env: ANTHROPIC_API_KEY}
  m-gemini: {provider: gemini, model: gemini-1.5-pro, api_key_env: GEMINI_API_KEY}
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented YAML file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return _write
