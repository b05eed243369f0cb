"""The simulated provider: a peer served over HTTP, never imported by a run."""
