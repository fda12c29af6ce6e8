"""Helpers shared by the test packages (no tests here)."""
