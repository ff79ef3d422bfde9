"""Real-time Discord alerts: rules evaluated by the worker, an outbox, and a sender."""
