"""Command line: `python -m experiments list | all | NAME [--quick] [--seed S] [--out DIR]`."""

import sys

from experiments._cli import main

sys.exit(main())
