"""The ``rankbygene`` command line (typer): argument parsing only; the library decides."""
