"""``python -m minitorch_alexnet.bench layers|model|input [options]``."""
import sys

from .cli import main

sys.exit(main())
