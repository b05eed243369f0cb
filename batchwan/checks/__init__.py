"""A row against its model: validation, media probes, URL checks, image fixing."""
