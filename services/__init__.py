"""The application layer: queries, commands and the only place that commits."""
