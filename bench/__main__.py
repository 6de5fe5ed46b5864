"""`python -m bench`: see bench/harness/cli.py (and `python -m bench --help`)."""

from __future__ import annotations

import sys

from bench.harness.cli import main

sys.exit(main())
