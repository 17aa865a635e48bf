"""Sale events (预约抢购): schedules, registrations, the check placement makes, the warm-up."""
