"""Background work: the Dramatiq broker, actors and the in-process worker."""
