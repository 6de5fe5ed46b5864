"""`python -m bench`: see bench/harness/cli.py (and `python -m bench --help`).

`python -m bench footprint ...` runs bench/footprint.py (one sidecar's start-up and memory).
"""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["footprint"]:
    from bench.footprint import main as footprint

    sys.exit(footprint(sys.argv[2:]))

from bench.harness.cli import main

sys.exit(main())
