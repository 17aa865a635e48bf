"""Stock: code pools, counters, reservations, channel quotas, presale and code imports."""
