"""Helpers the tests import (``from support.deploy import small_model``): not tests themselves.

``tests`` is on ``sys.path`` through pytest's ``pythonpath`` setting (the test modules are imported
with ``--import-mode=importlib``, so their own directories are not).
"""
