"""The taxonomy demo pipeline: skills from job postings, cleaned, merged and classified.

Kept import-light on purpose: the script actors under ``scripts/`` run as
``python -m turing_pg.actors.taxonomy.scripts.<name>`` once per ticket, and importing this
package must not pull in psycopg. The loader lives in ``loader.py``.
"""
