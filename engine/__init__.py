"""The engine: a worker that applies the event log to the identity graph, and its read API."""
