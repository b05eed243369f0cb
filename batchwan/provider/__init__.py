"""How batchwan talks to a video provider: requests, answers, errors, downloads."""
