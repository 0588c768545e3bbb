"""The command line: ``stockade serve`` and the management commands."""
