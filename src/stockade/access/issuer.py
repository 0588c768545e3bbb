"""The built-in token service: Entra-shaped access tokens for Stockade's own identities.

Two ways in, as Azure has them: the App Service managed-identity endpoint (the identity's secret
travels as ``X-IDENTITY-HEADER``) and OAuth 2.0 client credentials for service principals. Tokens
are JWTs signed with the store's current signing key; the API validates them like any other
issuer's.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from stockade.access.keys import digest
from stockade.access.signing import ALGORITHM
from stockade.access.tokens import audience_forms
from stockade.errors import ServiceError
from stockade.store import Identity, SigningKey

MANAGED = "managed"
SERVICE_PRINCIPAL = "service-principal"
MANAGED_IDENTITY_API_VERSION = "2019-08-01"
DEFAULT_SCOPE_SUFFIX = "/.default"


class ManagedIdentityError(ServiceError):
    """The managed-identity endpoint's errors, in App Service's ``statusCode``/``message`` shape."""

    status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.message, "correlationId": str(uuid.uuid4())}


class OAuthError(ServiceError):
    """The token endpoint's errors, in Entra's OAuth 2.0 shape, which MSAL reports verbatim."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.error_code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": self.message,
            "error_codes": [self.error_code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    client_id: str
    resource: str
    expires_on: int
    lifetime: int


Signer = tuple[SigningKey, rsa.RSAPrivateKey]  # the signing key and its decrypted private key


class TokenService:
    def __init__(self, base_url: str, audiences: list[str], lifetime_seconds: int) -> None:
        self.base_url = base_url
        self.audiences = set(audience_forms(audiences))
        self.lifetime = lifetime_seconds
        self.tenant_id = ""  # chosen in the store on first start (``Access.prepare``)
        self.jwks: dict[str, Any] = {"keys": []}
        self.signer: Signer | None = None
        self._by_secret: dict[str, Identity] = {}
        self._by_client_id: dict[str, Identity] = {}

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def load(
        self, identities: list[Identity], published: list[SigningKey], signer: Signer | None
    ) -> None:
        self.jwks = {"keys": [key.public_jwk for key in published]}
        self._by_secret = {identity.secret_hash: identity for identity in identities}
        self._by_client_id = {identity.client_id: identity for identity in identities}
        self.signer = signer

    def check_tenant(self, tenant: str) -> None:
        """Entra's answer for a tenant it does not know, in discovery and at the token endpoint."""
        if tenant != self.tenant_id:
            raise OAuthError(
                400, "invalid_tenant", 90002,
                f"Tenant '{tenant}' not found. This service's tenant is {self.tenant_id}.",
            )

    # -- the two ways in ------------------------------------------------------------------------

    def managed_identity_token(
        self, identity_header: str | None, api_version: str | None, resource: str | None,
        client_id: str | None = None,
    ) -> IssuedToken:
        if api_version != MANAGED_IDENTITY_API_VERSION:
            raise ManagedIdentityError(
                f"api-version must be {MANAGED_IDENTITY_API_VERSION}."
            )
        identity = self._by_secret.get(digest(identity_header)) if identity_header else None
        if identity is None or identity.kind != MANAGED or not hmac.compare_digest(
            identity.secret_hash, digest(identity_header or "")
        ):
            raise ManagedIdentityError(
                "X-IDENTITY-HEADER is missing or is not the IDENTITY_HEADER of a managed identity "
                "(`stockade identities list`).",
                status=403,
            )
        if client_id is not None and client_id != identity.client_id:
            raise ManagedIdentityError(
                f"Unable to load the proper Managed Identity: client_id {client_id} is not this "
                "caller's identity."
            )
        if not resource or resource not in self.audiences:
            raise ManagedIdentityError(
                f"resource {resource!r} is not one this service issues tokens for "
                f"({', '.join(sorted(self.audiences))})."
            )
        return self._issue(identity, resource)

    def client_credentials_token(
        self, tenant: str, form: dict[str, str]
    ) -> IssuedToken:
        self.check_tenant(tenant)
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", 70003,
                "The app requested an unsupported grant type; only client_credentials is supported.",
            )
        client_id, secret, scope = form.get("client_id"), form.get("client_secret"), form.get("scope")
        if not client_id or not secret or not scope:
            missing = next(n for n in ("client_id", "client_secret", "scope") if not form.get(n))
            raise OAuthError(
                400, "invalid_request", 900144,
                f"The request body must contain the following parameter: '{missing}'.",
            )
        identity = self._by_client_id.get(client_id)
        if identity is None or identity.kind != SERVICE_PRINCIPAL:
            raise OAuthError(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        if not hmac.compare_digest(identity.secret_hash, digest(secret)):
            raise OAuthError(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        resources = [s.removesuffix(DEFAULT_SCOPE_SUFFIX) for s in scope.split() if s.endswith(DEFAULT_SCOPE_SUFFIX)]
        if len(resources) != 1 or resources[0] not in self.audiences:
            raise OAuthError(
                400, "invalid_resource", 500011,
                f"The resource principal named {scope} was not found in the tenant. Ask for "
                f"one of: {', '.join(sorted(a + DEFAULT_SCOPE_SUFFIX for a in self.audiences))}.",
            )
        return self._issue(identity, resources[0])

    def _issue(self, identity: Identity, resource: str) -> IssuedToken:
        if self.signer is None:
            raise ServiceError(
                "The token service has no usable signing key: set the same auth.secret_key on "
                "every replica, or run `stockade signing-keys rotate`."
            )
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "tid": self.tenant_id,
            "oid": identity.object_id,
            "sub": identity.object_id,
            "appid": identity.client_id,
            "azp": identity.client_id,
            "idtyp": "app",
            "name": identity.name,
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(
            claims, self.signer[1], algorithm=ALGORITHM, headers={"kid": self.signer[0].kid}
        )
        return IssuedToken(token, identity.client_id, resource, now + self.lifetime, self.lifetime)

    # -- discovery --------------------------------------------------------------------------------

    def openid_configuration(self) -> dict[str, Any]:
        tenant_url = f"{self.base_url}/{self.tenant_id}"
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{tenant_url}/oauth2/v2.0/token",
            "authorization_endpoint": f"{tenant_url}/oauth2/v2.0/authorize",
            "jwks_uri": f"{tenant_url}/discovery/v2.0/keys",
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "tenant_region_scope": None,
            "cloud_instance_name": "stockade",
        }
