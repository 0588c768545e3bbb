"""The built-in token service: Entra-shaped tokens for Stockade's own identities."""

from stockade.identity.service import TokenService

__all__ = ["TokenService"]
