"""The collector: Segment-spec ingest that durably appends to the event log, and nothing else."""
