"""Bring history from MLflow into a fitscribe store: readers of MLflow's stores and the import plan.

``mlflow_sql.py`` reads an MLflow SQL database (SQLite, PostgreSQL, MySQL) read-only; ``mlruns.py``
reads an MLflow file store folder. Both return the entities of ``source.py``. ``plan.py`` compares
them with the destination and applies what is new (through ``backends/sql/bulk_import.py``), so an
import can be re-run any number of times; ``verify.py`` builds the closing verification table.
Nothing here is imported by ``import fitscribe``.
"""
