"""Certificates and keys for one local cluster: a CA, the apiserver serving certificate, the
service-account signing key pair and client certificates for each component.

ECDSA P-256 keys keep generation fast (a cluster needs several) and Kubernetes accepts them
everywhere, including for service-account token signing (ES256).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=3650)
# First address of the AKS default service CIDR (10.0.0.0/16): the in-cluster "kubernetes" Service.
SERVICE_IP = "10.0.0.1"


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate subject: user name and groups."""

    file_stem: str
    common_name: str
    organizations: tuple[str, ...] = ()


# The admin identity users get; components get their own names so audit trails stay readable.
ADMIN = ClientIdentity("admin", "clusterAdmin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager", ("system:masters",))
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")
KWOK = ClientIdentity("kwok", "system:kwok-controller", ("system:masters",))
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KWOK)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start so a key is never briefly world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


class ClusterPki:
    """The PKI files of one cluster, under ``<home>/pki``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def ca_cert(self) -> Path:
        """The cluster CA certificate (PEM)."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The cluster CA private key (0600)."""
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        """The apiserver serving certificate, valid for 127.0.0.1, localhost and the service IP."""
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        """The apiserver serving key (0600)."""
        return self.directory / "apiserver.key"

    @property
    def service_account_key(self) -> Path:
        """The private key signing service-account tokens (0600)."""
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        """The public key verifying service-account tokens."""
        return self.directory / "sa.pub"

    def client_cert(self, identity: ClientIdentity) -> Path:
        """Path of the client certificate for an identity."""
        return self.directory / f"{identity.file_stem}.crt"

    def client_key(self, identity: ClientIdentity) -> Path:
        """Path of the client key for an identity."""
        return self.directory / f"{identity.file_stem}.key"

    def exists(self) -> bool:
        """Whether every file has been generated."""
        paths = [self.ca_cert, self.ca_key, self.serving_cert, self.serving_key, self.service_account_key]
        paths += [self.client_cert(identity) for identity in CLIENTS]
        return all(path.is_file() for path in paths)

    def generate(self, cluster_name: str) -> None:
        """Generate the CA, serving certificate, service-account keys and client certificates."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew
        ca_key = _new_key()
        ca_name = _name(f"fleetflow-local-ca-{cluster_name}")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(self.ca_key, _key_pem(ca_key))
        self.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
        ]
        self._issue(
            ca_cert, ca_key, _name("kube-apiserver"), self.serving_cert, self.serving_key,
            usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans, not_before=now,
        )
        for identity in CLIENTS:
            self._issue(
                ca_cert, ca_key, _name(identity.common_name, identity.organizations),
                self.client_cert(identity), self.client_key(identity),
                usage=ExtendedKeyUsageOID.CLIENT_AUTH, sans=None, not_before=now,
            )

        sa_key = _new_key()
        _write_private(self.service_account_key, _key_pem(sa_key))
        self.service_account_public_key.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    @staticmethod
    def _issue(
        ca_cert: x509.Certificate,
        ca_key: ec.EllipticCurvePrivateKey,
        subject: x509.Name,
        cert_path: Path,
        key_path: Path,
        *,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None,
        not_before: dt.datetime,
    ) -> None:
        key = _new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_private(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
