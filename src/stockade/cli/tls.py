"""A self-signed certificate for `stockade serve --tls-self-signed`, made once per data directory.

It names localhost, this host's name and its loopback addresses, and is its own trust anchor:
clients trust it by pointing ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` (or their own setting) at
the certificate file. Production should use a certificate from the organisation's CA instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stockade.private import private_directory

VALID_DAYS = 825  # the longest validity browsers and most TLS stacks still accept


def self_signed_certificate(directory: Path, hosts: list[str] | None = None) -> tuple[Path, Path]:
    """The certificate and key files in ``directory``, created if missing."""
    certificate_path, key_path = directory / "cert.pem", directory / "key.pem"
    if certificate_path.exists() and key_path.exists():
        return certificate_path, key_path
    names = hosts or ["localhost", socket.gethostname(), socket.getfqdn(), "127.0.0.1", "::1"]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stockade (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    alternative_names: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative_names.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # It must be its own trust anchor, so it is a CA; the constraint keeps its key from
        # vouching for any other name should it leak.
        .add_extension(
            x509.NameConstraints(permitted_subtrees=[_subtree(n) for n in alternative_names],
                                 excluded_subtrees=None),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    private_directory(directory)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path


def _subtree(name: x509.GeneralName) -> x509.GeneralName:
    if isinstance(name, x509.IPAddress) and isinstance(
        address := name.value, ipaddress.IPv4Address | ipaddress.IPv6Address
    ):
        return x509.IPAddress(ipaddress.ip_network((address, address.max_prefixlen)))
    return name
