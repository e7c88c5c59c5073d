"""The ``rankbygene`` command line (typer). Thin: it builds configs and calls the library."""
