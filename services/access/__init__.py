"""Who is calling: API keys, order access tokens, and the authenticator that resolves both."""
