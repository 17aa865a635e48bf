"""Orders: drafted and screened, placed with their reservation, moved through their states."""
