"""The DuckDB/Polars data layer: sources, demo generator, ingest, validation, id maps and splits.

Plain functions on a DuckDB connection (no dagster); assets/ call them one stage at a time.
"""
