"""`python -m echelon_tools.fake_provider`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
