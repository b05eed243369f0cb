"""The run's durable record: claim, record the answer, settle, snapshot, lock."""
