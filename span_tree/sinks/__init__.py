"""Built-in sinks. Each module imports its own dependencies; import the one you need."""
