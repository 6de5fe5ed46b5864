"""`python -m echelon_sidecar.fake_provider`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
