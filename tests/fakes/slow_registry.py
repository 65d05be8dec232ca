"""A registry whose built-in module takes a while to import (tests/test_jobs.py races it)."""

from voicereplay.registry import Registry

SLOW: Registry[object] = Registry("thing", builtins=("tests.fakes.slow_builtin",))
