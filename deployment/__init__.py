"""A real Airflow deployment on one machine, for checking the provider with Airflow's own executors.

``python -m deployment local`` and ``python -m deployment celery`` run the checks and print what they
saw; the tests in ``tests/deployment`` run the same checks under pytest.
"""
