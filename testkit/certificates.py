"""Certificates for DICOM TLS tests, made as a practice would make them (docs/deployment.md):
a practice CA, and certificates it signs for the PACS, the gateway and a modality; besides,
an expired one and one from another CA. PEM files, RSA keys unencrypted (RSA: what DCMTK's
TLS, in Orthanc and storescu, is surest to take)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the practice CA's certificate
    other_ca: Path  # a CA nobody here trusts
    pacs: Pair  # for 127.0.0.1 and localhost, signed by the practice CA
    gateway: Pair  # the gateway: server (its SCP) and client (towards the PACS)
    modality: Pair  # a sender's client certificate
    expired: Pair  # for 127.0.0.1, signed by the practice CA, expired yesterday
    stranger: Pair  # for 127.0.0.1, signed by the other CA


def make_certificates(folder: Path) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca = _ca("Practice test CA", now)
    other_key, other = _ca("Somebody else's CA", now)
    valid = (now - dt.timedelta(days=1), now + dt.timedelta(days=30))

    def issue(name: str, by: tuple, when: tuple, *, server: bool = True) -> Pair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuer_key, issuer = by
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + (
            [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(when[0])
            .not_valid_after(when[1])
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        return _write(folder, name, cert, key)

    ca_path = folder / "practice-ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    other_path = folder / "other-ca.pem"
    other_path.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    practice = (ca_key, ca)
    return Certificates(
        ca=ca_path,
        other_ca=other_path,
        pacs=issue("pacs", practice, valid),
        gateway=issue("gateway", practice, valid),
        modality=issue("modality", practice, valid, server=False),
        expired=issue(
            "expired", practice, (now - dt.timedelta(days=60), now - dt.timedelta(days=1))
        ),
        stranger=issue("stranger", (other_key, other), valid),
    )


def _ca(name: str, now: dt.datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _write(folder: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> Pair:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return Pair(cert_path, key_path)
