"""Turing: a Postgres-native engine that chains AI models, scripts and humans.

The import name is ``turing_pg`` (the source lives in ``runner/``); see the README.
"""

__version__ = "0.1.0"
