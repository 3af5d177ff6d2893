"""Chaos tests: many real backends at once against one invariant.

why a package: pytest's default import mode names a test module by its file name when its
folder has no __init__.py, so tests/chaos/test_runner.py would clash with tests/test_runner.py.
As a package its modules are chaos.test_*, and tests/conftest.py still provides the fixtures."""
