"""GraphQL types only: what the API exposes and how a model becomes a type."""
