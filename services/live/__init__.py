"""Live feeds: available-to-sell pushed to subscribers as stock moves."""
