"""The HTTP surface: translates requests into calls on the core and results into Azure's wire format."""

from stockade.api.app import create_app

__all__ = ["create_app"]
