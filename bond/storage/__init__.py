"""Storage behind small interfaces; SQLite in WAL mode is the embedded default."""
