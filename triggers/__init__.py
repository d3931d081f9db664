"""dal-backdoor's trigger library (top-level package ``triggers``)."""
