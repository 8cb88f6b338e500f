"""Stage functions callable from the CLI, DVC and Prefect alike."""
