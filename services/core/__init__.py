"""Shared machinery of the services: database, unit of work, durable jobs and their worker,
secrets at rest, progress reports, broker topics and migrations."""
