"""Versioned data files shipped with the package (operators.json)."""
