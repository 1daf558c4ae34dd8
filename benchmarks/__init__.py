"""Benchmarks of the provider against Airflow's HTTP and dbt Cloud providers.

``python -m benchmarks`` measures what a DAG parse pays to import the operators, what one sensor
poke costs, how many deferred waits one triggerer event loop keeps on schedule, and how long a
worker slot is held per hour of waiting in each sensor mode; it prints each figure as it goes and
writes ``docs/benchmarks.md`` and ``docs/benchmarks-triggerer.png``. Every part that imports
Airflow runs in a child interpreter of its own, with a private ``AIRFLOW_HOME``, so that one part's
imports and memory never colour another's figures.
"""
