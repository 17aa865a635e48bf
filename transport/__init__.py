"""HTTP and WebSocket edges of the gateway: GraphQL over HTTP, subscriptions, health."""
