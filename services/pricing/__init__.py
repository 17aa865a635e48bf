"""Channel prices, price control (控价) and quantity tiers."""
