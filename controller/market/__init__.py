"""Market data and dispatch clients (Modo imbalance data, Axle Energy schedules)."""
