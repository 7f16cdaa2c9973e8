"""Where tables live: the DuckDB warehouse and the Parquet lake, one connection API."""
