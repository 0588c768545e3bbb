"""Entra-compatible identity end to end: Stockade's token service reached through azure-identity
(managed identity and service principals, over HTTPS with a self-signed certificate), tokens of
an external issuer, role assignments, disabled local auth, network rules, failed-attempt limits
and the audit log. The openai SDK is the client throughout: against a real HTTPS server where
azure-identity, the certificate or the HTTP server itself take part, and otherwise in process on
the fake model, where a change through the CLI takes effect before the next call."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, DefaultAzureCredential, get_bearer_token_provider

from conftest import (
    API_VERSION,
    App,
    Server,
    free_port,
    in_process,
    run_cli,
    server_env,
    start_server,
    stop,
)
from fake_model import CHAT_MODEL
from jwt_helpers import SigningIssuer, serve_jwks

SCOPE = "https://cognitiveservices.azure.com/.default"
EXTERNAL_ISSUER = "https://sts.windows.net/test-tenant/"
MULTI_TENANT_ISSUER = "https://issuer.example.test/"  # trusted for any tenant, keys from a file
HELLO = [{"role": "user", "content": "Say hello."}]
FAILED_ATTEMPTS = 5
INVALID_TOKEN_BODY = {
    "statusCode": 401,
    "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired.",
}


@pytest.fixture(scope="module")
def external() -> Iterator[tuple[SigningIssuer, str, list[str]]]:
    issuer = SigningIssuer(EXTERNAL_ISSUER)
    with serve_jwks(issuer) as (url, fetches):
        yield issuer, url, fetches


@pytest.fixture(scope="module")
def multi_tenant() -> SigningIssuer:
    return SigningIssuer(MULTI_TENANT_ISSUER)


def keys_of(issuer: SigningIssuer, data_dir: Path) -> Path:
    """The issuer's JWKS in a file, as a closed network provides it."""
    keys_file = data_dir / "multi-tenant-keys.json"
    keys_file.write_text(json.dumps(issuer.jwks()))
    return keys_file


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, external, multi_tenant: SigningIssuer) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    issuer, jwks_url, _ = external
    data_dir = tmp_path_factory.mktemp("secure")
    keys_file = keys_of(multi_tenant, data_dir)
    config = data_dir / "stockade.toml"
    config.write_text(
        f'tls_self_signed = true\n[auth]\ntrusted_proxies = ["127.0.0.1"]\n'
        f"failed_attempts_per_minute = {FAILED_ATTEMPTS}\n"
        f'[[auth.issuers]]\nissuer = "{EXTERNAL_ISSUER}"\njwks_url = "{jwks_url}"\n'
        f'tenants = ["{issuer.tenant_id}"]\n'
        f'[[auth.issuers]]\nissuer = "{MULTI_TENANT_ISSUER}"\njwks_file = "{keys_file}"\n'
    )
    port = free_port()
    env = server_env(data_dir, STOCKADE_CONFIG=str(config), STOCKADE_PORT=str(port))
    for name, capacity in (("gpt-4o", "100"), ("other", "10")):
        run_cli(env, "deployments", "create", "--name", name, "--model", "smollm2-135m-instruct",
                "--capacity", capacity)
    key = json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]
    process = start_server(env, data_dir / "server.log", port, scheme="https")
    yield Server(f"https://localhost:{port}", key, data_dir, env, process)
    stop(process)


@pytest.fixture(scope="module")
def certificate(secure: Server) -> str:
    return str(secure.data_dir / "tls" / "cert.pem")


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch, certificate: str) -> str:
    """Clients in this process trust the self-signed certificate, as the docs tell users to."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate)
    monkeypatch.setenv("SSL_CERT_FILE", certificate)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                 "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return certificate


def client(server: Server, certificate: str, **credential: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=server.url + "/",
        api_version=API_VERSION,
        http_client=httpx.Client(verify=ssl.create_default_context(cafile=certificate)),
        max_retries=0,
        **credential,
    )


def token_client(server: Server, certificate: str, token: str) -> openai.AzureOpenAI:
    return client(server, certificate, azure_ad_token=token)


def key_client(server: Server, certificate: str) -> openai.AzureOpenAI:
    return client(server, certificate, api_key=server.key)


def chat(client: openai.AzureOpenAI, deployment: str = "gpt-4o") -> str:
    response = client.chat.completions.create(model=deployment, messages=HELLO, max_tokens=5)
    return response.choices[0].message.content or ""


def assert_permission_denied(call: Callable[[], object]) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        call()
    assert denied.value.code == "PermissionDenied"


def client_secret_credential(server: Server, principal: dict[str, Any]) -> ClientSecretCredential:
    return ClientSecretCredential(
        principal["tenant_id"], principal["client_id"], principal["client_secret"],
        authority=server.url, disable_instance_discovery=True,
    )


def create_identity(server: Server | App, group: str, name: str, role: str | None = "openai-user") -> dict[str, Any]:
    identity = server.cli_json(group, "create", "--name", name)
    assert isinstance(identity, dict)
    if role:
        server.cli("roles", "assign", "--identity", identity["id"], "--role", role)
    if isinstance(server, Server):
        server.settle()
    return identity


def https(server: Server, certificate: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, verify=ssl.create_default_context(cafile=certificate), headers=headers,
        timeout=60,
    )


# -- managed identity ---------------------------------------------------------------------------


def test_the_seed_guides_entra_code_runs_unchanged_with_a_managed_identity(
    secure: Server, certificate: str
) -> None:
    identity = create_identity(secure, "identities", "billing-app")
    program = (
        "from azure.identity import DefaultAzureCredential, get_bearer_token_provider\n"
        "from openai import AzureOpenAI\n"
        "token_provider = get_bearer_token_provider(\n"
        "DefaultAzureCredential(),\n"
        '"https://cognitiveservices.azure.com/.default"\n'
        ")\n"
        "client = AzureOpenAI(\n"
        f'azure_endpoint="{secure.url}/",\n'
        "azure_ad_token_provider=token_provider,\n"
        'api_version="2024-10-21"\n'
        ")\n"
        "response = client.chat.completions.create(\n"
        'model="gpt-4o",\n'
        'messages=[{"role": "user", "content": "Hello"}]\n'
        ")\n"
        "print(response.choices[0].message.content)\n"
    )
    env = {
        **{k: v for k, v in secure.env.items() if not k.startswith(("AZURE_", "MSI_"))},
        **identity["environment"],
        "REQUESTS_CA_BUNDLE": certificate,
        "SSL_CERT_FILE": certificate,
    }
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_identities_create_prints_the_two_environment_values(secure: Server) -> None:
    printed = secure.cli("identities", "create", "--name", "printed-app").stdout
    assert f"IDENTITY_ENDPOINT={secure.url}/msi/token" in printed
    assert "IDENTITY_HEADER=" in printed


def test_a_token_without_a_role_assignment_gets_permission_denied(
    secure: Server, trusting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = create_identity(secure, "identities", "no-role-app", role=None)
    for name, value in identity["environment"].items():
        monkeypatch.setenv(name, value)
    token = DefaultAzureCredential().get_token(SCOPE).token
    with pytest.raises(openai.AuthenticationError) as denied:
        chat(token_client(secure, trusting, token))
    assert denied.value.status_code == 401
    assert denied.value.code == "PermissionDenied"
    assert identity["object_id"] in str(denied.value.message)


# -- service principals -------------------------------------------------------------------------


def test_a_service_principal_gets_tokens_with_client_secret_credential(secure: Server, trusting: str) -> None:
    principal = create_identity(secure, "principals", "batch-job")
    credential = client_secret_credential(secure, principal)
    provider = get_bearer_token_provider(credential, SCOPE)
    assert chat(client(secure, trusting, azure_ad_token_provider=provider))


def test_default_azure_credential_uses_the_standard_environment_variables(
    secure: Server, trusting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal = create_identity(secure, "principals", "env-job")
    for name, value in principal["environment"].items():
        monkeypatch.setenv(name, value)
    credential = DefaultAzureCredential(disable_instance_discovery=True)
    provider = get_bearer_token_provider(credential, SCOPE)
    assert chat(client(secure, trusting, azure_ad_token_provider=provider))


def test_the_openid_configuration_names_this_services_endpoints(secure: Server, trusting: str) -> None:
    tenant = secure.cli_json("network", "show")["tenant_id"]  # type: ignore[index]
    with https(secure, trusting) as http:
        configuration = http.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
        keys = http.get(configuration["jwks_uri"]).json()["keys"]
    assert configuration["issuer"] == f"{secure.url}/{tenant}/v2.0"
    assert configuration["token_endpoint"] == f"{secure.url}/{tenant}/oauth2/v2.0/token"
    assert keys and all("d" not in key for key in keys)


def test_a_replayed_secret_is_refused_after_rotation(secure: Server, trusting: str) -> None:
    principal = create_identity(secure, "principals", "rotating-job")
    secure.cli("principals", "reset-secret", principal["id"])
    secure.settle()
    credential = client_secret_credential(secure, principal)
    with pytest.raises(ClientAuthenticationError, match="7000215"):
        credential.get_token(SCOPE)


# -- roles --------------------------------------------------------------------------------------


def test_a_deployment_scoped_role_reaches_only_that_deployment(secure: Server, trusting: str) -> None:
    principal = create_identity(secure, "principals", "scoped-job", role=None)
    secure.cli("roles", "assign", "--identity", principal["id"], "--role", "openai-user", "--deployment", "other")
    secure.settle()
    credential = client_secret_credential(secure, principal)
    scoped = token_client(secure, trusting, credential.get_token(SCOPE).token)
    assert chat(scoped, "other")
    assert_permission_denied(lambda: chat(scoped, "gpt-4o"))


def test_contributors_manage_deployments_but_cannot_call_models(secure: Server, trusting: str) -> None:
    principal = create_identity(secure, "principals", "ops-team", role="contributor")
    credential = client_secret_credential(secure, principal)
    token = credential.get_token(SCOPE).token
    with https(secure, trusting, authorization=f"Bearer {token}") as http:
        assert http.get("/management/deployments").status_code == 200
    assert_permission_denied(lambda: chat(token_client(secure, trusting, token)))


# -- network rules ------------------------------------------------------------------------------


def test_the_local_command_line_is_not_subject_to_network_rules(secure: Server) -> None:
    secure.cli("network", "default", "deny")
    try:
        assert secure.cli_json("network", "show")["network_acls"]["default_action"] == "Deny"  # type: ignore[index]
    finally:
        secure.cli("network", "default", "allow")


def test_an_invalid_ip_rule_is_a_clear_400(secure: Server) -> None:
    result = secure.cli("network", "allow", "10.0.0.300/8", check=False)
    assert result.returncode == 1 and "Not an IP address or CIDR range" in result.stderr


# -- what the HTTP server itself refuses --------------------------------------------------------


def test_an_oversized_header_is_refused_without_a_server_error(secure: Server, trusting: str) -> None:
    with https(secure, trusting, **{"x-forwarded-for": "198.51.100.250"}) as http:
        response = http.get("/openai/models", params={"api-version": API_VERSION},
                            headers={"api-key": "k" * 100_000})
    assert 400 <= response.status_code < 500


# -- the store ----------------------------------------------------------------------------------


def test_signing_keys_are_stored_encrypted(secure: Server) -> None:
    engine = sa.create_engine(f"sqlite:///{secure.data_dir / 'stockade.db'}")
    with engine.connect() as connection:
        stored = [row[0] for row in connection.execute(sa.text("SELECT private_key FROM signing_keys"))]
    engine.dispose()
    assert stored and all(pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") for pem in stored)



# -- in process: what needs no real client, certificate or HTTP server ---------------------------


@pytest.fixture(scope="module")
def entra(tmp_path_factory: pytest.TempPathFactory, external, multi_tenant: SigningIssuer) -> Iterator[App]:  # type: ignore[no-untyped-def]
    """The app in process with the secure server's issuers and proxies, on the fake model."""
    issuer, jwks_url, _ = external
    data_dir = tmp_path_factory.mktemp("entra")
    issuers = [
        {"issuer": EXTERNAL_ISSUER, "jwks_url": jwks_url, "tenants": [issuer.tenant_id]},
        {"issuer": MULTI_TENANT_ISSUER, "jwks_file": str(keys_of(multi_tenant, data_dir))},
    ]
    deployments = [("gpt-4o", CHAT_MODEL, 100), ("other", CHAT_MODEL, 10)]
    with in_process(data_dir, deployments, STOCKADE_AUTH__ISSUERS=json.dumps(issuers),
                    STOCKADE_AUTH__TRUSTED_PROXIES='["127.0.0.1"]',
                    STOCKADE_AUTH__FAILED_ATTEMPTS_PER_MINUTE=str(FAILED_ATTEMPTS)) as running:
        yield running


def issued_token(app: App, principal: dict[str, Any]) -> str:
    """A token from the app's own token service, by the client-credentials grant."""
    response = app.client.post(f"/{principal['tenant_id']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": principal["client_id"],
        "client_secret": principal["client_secret"], "scope": SCOPE})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_tokens_survive_one_signing_key_rotation_but_not_two(entra: App) -> None:
    token = issued_token(entra, create_identity(entra, "principals", "long-lived-job"))
    entra.cli("signing-keys", "rotate")
    assert chat(entra.sdk(azure_ad_token=token))
    entra.cli("signing-keys", "rotate")
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(entra.sdk(azure_ad_token=token))
    assert refused.value.body == INVALID_TOKEN_BODY


def test_an_external_issuers_token_is_accepted_once_its_principal_has_a_role(entra: App, external) -> None:  # type: ignore[no-untyped-def]
    issuer, _, _ = external
    object_id = "33333333-3333-3333-3333-333333333333"
    token = issuer.token(object_id=object_id)
    with pytest.raises(openai.AuthenticationError):
        chat(entra.sdk(azure_ad_token=token))
    entra.cli("roles", "assign", "--object-id", object_id, "--tenant-id", issuer.tenant_id, "--role", "openai-user")
    assert chat(entra.sdk(azure_ad_token=token))


def test_a_new_key_of_an_external_issuer_is_fetched_on_first_sight(
    entra: App, external, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    issuer, _, fetches = external
    object_id = "44444444-4444-4444-4444-444444444444"
    entra.cli("roles", "assign", "--object-id", object_id, "--tenant-id", issuer.tenant_id, "--role", "openai-user")
    assert chat(entra.sdk(azure_ad_token=issuer.token(object_id=object_id)))
    issuer.add_key("rotated")
    before = len(fetches)
    # An unknown kid is looked up at most every 10 s: the validator's clock is moved past that.
    later = types.SimpleNamespace(time=time.time, monotonic=lambda: time.monotonic() + 10.5)
    monkeypatch.setattr("stockade.access.tokens.time", later)
    assert chat(entra.sdk(azure_ad_token=issuer.token(kid="rotated", object_id=object_id)))
    assert len(fetches) == before + 1


def test_keys_from_a_file_serve_closed_networks(entra: App, multi_tenant: SigningIssuer) -> None:
    object_id = "77777777-7777-7777-7777-777777777777"
    entra.cli("roles", "assign", "--object-id", object_id, "--tenant-id", multi_tenant.tenant_id, "--role", "openai-user")
    assert chat(entra.sdk(azure_ad_token=multi_tenant.token(object_id=object_id)))


def test_no_other_issuer_may_speak_for_the_built_in_tenant(entra: App, multi_tenant: SigningIssuer) -> None:
    identity = create_identity(entra, "principals", "impersonated-job")
    forged = multi_tenant.token(tid=identity["tenant_id"], object_id=identity["object_id"])
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(entra.sdk(azure_ad_token=forged))
    assert refused.value.body == INVALID_TOKEN_BODY


def test_removing_a_role_assignment_takes_effect_at_once(entra: App) -> None:
    principal = create_identity(entra, "principals", "fired-job")
    token = issued_token(entra, principal)
    assert chat(entra.sdk(azure_ad_token=token))
    assignments = entra.cli_json("roles", "list")
    assignment = next(a for a in assignments if a["object_id"] == principal["object_id"])  # type: ignore[union-attr]
    entra.cli("roles", "remove", assignment["id"])
    assert_permission_denied(lambda: chat(entra.sdk(azure_ad_token=token)))


def test_roles_can_be_assigned_to_application_keys(entra: App) -> None:
    key = entra.cli_json("keys", "create", "--name", "reader", "--role", "openai-user", "--deployment", "other")
    assert_permission_denied(lambda: chat(entra.azure(key["key"]), "gpt-4o"))  # type: ignore[index]
    entra.cli("roles", "assign", "--key", key["id"], "--role", "openai-user", "--deployment", "gpt-4o")  # type: ignore[index]
    assert chat(entra.azure(key["key"]), "gpt-4o")  # type: ignore[index]


def test_with_local_auth_disabled_keys_are_refused_and_tokens_still_work(entra: App) -> None:
    token = issued_token(entra, create_identity(entra, "principals", "token-only-job"))
    entra.cli("local-auth", "disable")
    try:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            chat(entra.azure())
        assert refused.value.code == "AuthenticationTypeDisabled"
        assert chat(entra.sdk(azure_ad_token=token))
    finally:
        entra.cli("local-auth", "enable")


def test_a_denied_address_gets_azures_firewall_error(entra: App) -> None:
    def from_address(address: str) -> openai.AzureOpenAI:
        return entra.sdk(api_key=entra.key, default_headers={"x-forwarded-for": address})

    entra.cli("network", "allow", "10.0.0.0/8", "2001:db8::/32")
    entra.cli("network", "default", "deny")
    try:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            chat(from_address("192.0.2.1"))
        assert denied.value.body == {"code": "403", "message": "Access denied due to Virtual Network/Firewall rules."}
        assert chat(from_address("10.9.8.7"))
        assert chat(from_address("2001:db8::5"))
        with entra.http() as http:  # 127.0.0.1 itself is not allowed
            assert http.get("/openai/models", params={"api-version": API_VERSION}).status_code == 403
            assert http.get("/healthz").status_code == 200
    finally:
        entra.cli("network", "default", "allow")
        entra.cli("network", "remove", "10.0.0.0/8", "2001:db8::/32")


def test_the_managed_identity_endpoint_refuses_a_wrong_identity_header(entra: App) -> None:
    with entra.anonymous(**{"X-IDENTITY-HEADER": "not-a-secret", "x-forwarded-for": "198.51.100.1"}) as http:
        response = http.get("/msi/token", params={"api-version": "2019-08-01", "resource": SCOPE[:-9]})
    assert response.status_code == 403
    assert "access_token" not in response.text


def test_the_managed_identity_endpoint_needs_its_api_version(entra: App) -> None:
    identity = create_identity(entra, "identities", "versioned-app", role=None)
    secret = identity["environment"]["IDENTITY_HEADER"]
    with entra.anonymous(**{"X-IDENTITY-HEADER": secret}) as http:
        response = http.get("/msi/token", params={"resource": SCOPE[:-9]})
    assert response.status_code == 400
    assert "2019-08-01" in response.json()["message"]


def test_tokens_are_issued_only_for_accepted_resources(entra: App) -> None:
    identity = create_identity(entra, "identities", "resourceful-app", role=None)
    secret = identity["environment"]["IDENTITY_HEADER"]
    with entra.anonymous(**{"X-IDENTITY-HEADER": secret}) as http:
        response = http.get("/msi/token", params={"api-version": "2019-08-01", "resource": "https://management.azure.com"})
    assert response.status_code == 400


def test_the_token_endpoint_answers_oauth_errors(entra: App) -> None:
    tenant = entra.cli_json("network", "show")["tenant_id"]  # type: ignore[index]
    with entra.anonymous() as http:
        unknown = http.post(f"/{tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x", "scope": SCOPE})
        grant = http.post(f"/{tenant}/oauth2/v2.0/token", data={"grant_type": "password"})
        wrong_tenant = http.post("/not-this-tenant/oauth2/v2.0/token", data={})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unauthorized_client")
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    assert wrong_tenant.status_code == 400 and wrong_tenant.json()["error_codes"] == [90002]


def test_a_token_of_another_tenant_gets_azures_tenant_error(
    entra: App, external
) -> None:  # type: ignore[no-untyped-def]
    issuer, _, _ = external
    token = issuer.token(tid="55555555-5555-5555-5555-555555555555")
    with pytest.raises(openai.BadRequestError) as wrong:
        chat(entra.sdk(azure_ad_token=token))
    assert wrong.value.code == "Tenant provided in token does not match resource token"


def models_with(http, key: str) -> int:  # type: ignore[no-untyped-def]
    return int(http.get("/openai/models", params={"api-version": API_VERSION},
                        headers={"api-key": key}).status_code)


def test_repeated_wrong_keys_from_one_source_get_a_429_to_wait_out(entra: App) -> None:
    with entra.anonymous(**{"x-forwarded-for": "203.0.113.66"}) as http:
        answers = [models_with(http, "wrong") for _ in range(FAILED_ATTEMPTS + 2)]
        refused = http.get("/openai/models", params={"api-version": API_VERSION},
                           headers={"api-key": "wrong"})
    assert answers[:FAILED_ATTEMPTS] == [401] * FAILED_ATTEMPTS
    assert set(answers[FAILED_ATTEMPTS:]) == {429}
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60


@pytest.mark.parametrize("credential", ["api-key", "bearer key", "bearer token"])
def test_a_valid_credential_is_served_whatever_its_address_did(
    entra: App, external, credential: str
) -> None:  # type: ignore[no-untyped-def]
    """Behind a NAT or a proxy, an attacker's wrong guesses must not lock out the users who share
    its address: a right 128-bit secret is always served (docs/identity.md says why this is safe)."""
    source = {"x-forwarded-for": f"203.0.113.{70 + ['api-key', 'bearer key', 'bearer token'].index(credential)}"}
    with entra.anonymous(**source) as http:
        for _ in range(FAILED_ATTEMPTS + 3):
            models_with(http, "wrong")
        if credential == "api-key":
            headers = {"api-key": entra.key}
        elif credential == "bearer key":
            headers = {"authorization": f"Bearer {entra.key}"}
        else:
            headers = {"authorization": f"Bearer {external[0].token()}"}
        served = http.get("/openai/models", params={"api-version": API_VERSION}, headers=headers)
        still_refused = models_with(http, "wrong")
    assert served.status_code == 200
    assert still_refused == 429


def test_failed_authentications_are_counted_in_the_metrics(entra: App) -> None:
    with entra.anonymous(**{"x-forwarded-for": "203.0.113.80"}) as http:
        for _ in range(FAILED_ATTEMPTS + 1):
            models_with(http, "wrong")
        metrics = http.get("/metrics", headers={"api-key": entra.key}).text
    counted = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
               if line.startswith("stockade_authentication_failures_total{")}
    assert counted['stockade_authentication_failures_total{outcome="refused"}'] >= 1
    assert counted['stockade_authentication_failures_total{outcome="unauthorized"}'] >= FAILED_ATTEMPTS


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer a.b.c", "Bearer " + "x" * 20_000 + ".y.z", "Bearer eyJhbGciOiJub25lIn0.e30.",
     "Basic dXNlcjpwYXNz", "Bearer \u00e9t\u00e9.a.b"],
)
def test_malformed_credentials_get_a_clear_401(entra: App, authorization: str) -> None:
    source = {"x-forwarded-for": f"198.51.100.{abs(hash(authorization)) % 200 + 10}"}
    with entra.anonymous(**source) as http:
        response = http.get("/openai/models", params={"api-version": API_VERSION},
                            headers={"authorization": authorization.encode("utf-8")})
    assert response.status_code == 401


def test_management_actions_are_audited_with_who_and_where(entra: App) -> None:
    with entra.anonymous(**{"api-key": entra.key, "x-forwarded-for": "10.20.30.40"}) as http:
        assert http.post("/management/keys", json={"name": "audited", "role": "openai-user"}).status_code == 201
        assert http.post("/management/keys", json={"name": "audited", "role": "openai-user"}).status_code == 409
    entra.cli("roles", "assign", "--object-id", "66666666-6666-6666-6666-666666666666", "--role", "openai-user")
    events = entra.cli_json("audit", "list", "--limit", "10")
    assert isinstance(events, list)
    remote = [e for e in events if e["action"] == "keys.create" and e["source"] == "10.20.30.40"]
    assert sorted(e["status"] for e in remote) == [201, 409]
    assert {e["actor"] for e in remote} == {"key1"}
    assert {e["target"] for e in remote} == {"audited (openai-user)"}
    local = next(e for e in events if e["action"] == "roles.assign")
    assert local["source"].startswith("local:") and local["actor"] == "local operator"
    assert local["target"] == "openai-user to 66666666-6666-6666-6666-666666666666 (this tenant) at the resource"
    printed = entra.cli("audit", "list", "--action", "roles.").stdout
    assert "roles.assign" in printed and "keys.create" not in printed


@pytest.mark.parametrize(
    ("case", "source"),
    [("expired", "192.0.2.11"), ("wrong audience", "192.0.2.12"), ("unsigned", "192.0.2.13"),
     ("unknown issuer", "192.0.2.14")],
)
def test_bad_tokens_get_azures_401_body(entra: App, external, case: str, source: str) -> None:  # type: ignore[no-untyped-def]
    issuer, _, _ = external
    token = {
        "expired": lambda: issuer.token(lifetime=-3600),
        "wrong audience": lambda: issuer.token(aud="https://management.azure.com"),
        "unsigned": lambda: issuer.token(algorithm="none"),
        "unknown issuer": lambda: SigningIssuer("https://sts.windows.net/elsewhere/").token(),
    }[case]()
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(entra.sdk(azure_ad_token=token, default_headers={"x-forwarded-for": source}))
    assert refused.value.body == INVALID_TOKEN_BODY
