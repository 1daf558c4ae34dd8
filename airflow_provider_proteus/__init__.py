"""Apache Airflow provider for Orbital Insight GO ("Proteus") geospatial analytics projects.

This module is imported whenever a DAG file imports any part of the provider, so it only
holds the version and imports nothing.
"""

from __future__ import annotations

__version__ = "0.1.0"
