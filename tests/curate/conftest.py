"""Fixtures shared by the curate tests (publish, report)."""

from tests.support.builds import build_dir  # noqa: F401  (a fixture)
