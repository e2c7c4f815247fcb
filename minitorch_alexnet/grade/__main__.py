"""``python -m minitorch_alexnet.grade PATH``: see the package docstring."""
import sys

from .cli import main

sys.exit(main())
