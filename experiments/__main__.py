"""Command line: `python -m optdyn.experiments list | all | NAME [--quick] [--seed S]`."""

import sys

from ._cli import main

sys.exit(main())
