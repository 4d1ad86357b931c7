"""`python -m sealbox.cli`: what the `sealbox` console script runs."""

import sys

from sealbox.cli import main

sys.exit(main())
