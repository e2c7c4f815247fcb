"""Old name of ``minitorch_alexnet.checks``, where the argument checks now live (both
``functional`` and ``cuda.host`` import them from there).

This module replaces itself by that one in ``sys.modules``, so
``import minitorch_alexnet.functional._checks`` gives the very same module object: code (or a
test) that patches a name here, e.g. ``device_of``, patches what the checks really call.
New code should import ``minitorch_alexnet.checks``.
"""
import sys

from .. import checks

sys.modules[__name__] = checks
