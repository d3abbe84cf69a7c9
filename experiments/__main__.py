"""Command line: `python -m optdyn.experiments list | all | NAME [--quick] [--seed S] [--out DIR]`."""

import sys

from ._cli import main

sys.exit(main())
