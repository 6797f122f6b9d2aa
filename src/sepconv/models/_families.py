"""Imports every model family so that each registers itself."""
