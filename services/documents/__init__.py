"""GraphQL documents kept by the gateway: automatic persisted queries and trusted documents."""
