"""Pure rules of the business: no I/O, no database, no GraphQL."""
