"""Fault injectors: the fault proxy, the fault families and their common interface."""
