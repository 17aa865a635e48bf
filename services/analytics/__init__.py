"""Analytics: sales figures and the operators' dashboard."""
