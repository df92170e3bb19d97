"""ingestion assets."""
