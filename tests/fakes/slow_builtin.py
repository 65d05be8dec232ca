"""The slow built-in of tests.fakes.slow_registry: registers after a pause, as a heavy import
(a provider SDK, numpy) would."""

import time

from tests.fakes.slow_registry import SLOW

time.sleep(0.3)
SLOW.register("slow", lambda: "built-in")
