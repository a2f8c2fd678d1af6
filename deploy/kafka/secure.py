"""TLS and SASL/SCRAM for the local cluster (``kubestack kafka up --secure``), made as a managed cluster has them.

Under the cluster's folder: ``tls/ca.pem`` (a CA made here, the file clients trust: ``kafka.ssl_cafile``),
``tls/broker.pem`` (the brokers' key and certificate for the host, signed by it; a PEM keystore, so no keytool),
``credentials.json`` (SCRAM-SHA-512 users and passwords, created in the metadata log when storage is formatted) and
``client.yaml`` (the ``kafka:`` settings that reach the cluster with them). Clients and brokers speak SASL_SSL to
each other with SCRAM-SHA-512; the controllers' listener SASL_SSL with PLAIN and the brokers' user only (KRaft
controllers do not take SCRAM).

Users: ``BROKER_USER`` (the brokers between themselves, a super user), ``SHARED_USER`` (the shared identity: the CLI
and every client without its own) and one per component (``kafka.components``: agent, worker, api), each allowed
to write only its own topics of the contract (``acls.py``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import get_args

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubestack.deploy.kafka import acls
from kubestack.settings import KafkaComponent, KafkaCredentials, KafkaSettings

MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"
BROKER_USER = "kubestack-broker"
SHARED_USER = "kubestack"
CERT_DAYS = 825

PROPERTIES = Template("""
# TLS and SASL/SCRAM-SHA-512 for clients and between brokers (kubestack kafka up --secure)
sasl.enabled.mechanisms=${mechanism}
sasl.mechanism.inter.broker.protocol=${mechanism}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \\
  required username="${broker_user}" password="${broker_password}";
# KRaft controllers take no SCRAM: they speak SASL_SSL with PLAIN, the brokers' user alone (a super user, which
# the authorizer lets through before it has loaded the ACLs)
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\
  required username="${broker_user}" password="${broker_password}" user_${broker_user}="${broker_password}";
ssl.keystore.type=PEM
ssl.keystore.location=${keystore}
ssl.truststore.type=PEM
ssl.truststore.location=${truststore}
super.users=User:${broker_user}
""")


def component_user(component: KafkaComponent) -> str:
    return f"{SHARED_USER}-{component}"


@dataclass(frozen=True)
class SecureMaterial:
    """The CA, the brokers' certificate and the users of one secure local cluster."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "tls" / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "tls" / "broker.pem"

    @property
    def credentials_file(self) -> Path:
        return self.folder / "credentials.json"

    @property
    def client_file(self) -> Path:
        return self.folder / "client.yaml"

    def ensure(self, host: str) -> None:
        """Make what is missing: the CA and certificate (for ``host``), the users and their passwords."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.ca.exists() and self.keystore.exists()):
            _write_tls(self.ca, self.keystore, host)
        if not self.credentials_file.exists():
            users = [BROKER_USER, SHARED_USER, *(component_user(c) for c in get_args(KafkaComponent))]
            _write_private(self.credentials_file, json.dumps({u: secrets.token_urlsafe(24) for u in users}, indent=2))

    def passwords(self) -> dict[str, str]:
        return json.loads(self.credentials_file.read_text())

    def scram_arguments(self) -> list[str]:
        """``kafka.tools.StorageTool format`` arguments that create every user in the new metadata log."""
        return [arg for user, password in self.passwords().items()
                for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={password}]")]

    def properties(self) -> str:
        return PROPERTIES.substitute(mechanism=MECHANISM, broker_user=BROKER_USER,
                                     broker_password=self.passwords()[BROKER_USER], keystore=self.keystore,
                                     truststore=self.ca) + acls.PROPERTIES

    def client_settings(self, kafka: KafkaSettings, user: str = SHARED_USER) -> KafkaSettings:
        """``kafka`` reaching this cluster: SASL_SSL, the CA, ``user`` as the shared identity, each component's own."""
        passwords = self.passwords()
        components = {c: KafkaCredentials(username=component_user(c), password=passwords[component_user(c)])
                      for c in get_args(KafkaComponent)}
        return KafkaSettings.model_validate(kafka.model_dump() | {
            "security_protocol": LISTENER, "sasl_mechanism": MECHANISM, "sasl_username": user,
            "sasl_password": passwords[user], "ssl_cafile": self.ca, "components": components,
        })

    def write_client_file(self, kafka: KafkaSettings) -> Path:
        """The settings a user adds to theirs (or points ``--config`` at) to reach the cluster; 0600 (passwords)."""
        fields = ("bootstrap", "security_protocol", "sasl_mechanism", "sasl_username", "ssl_cafile",
                  "replication_factor", "min_insync_replicas")
        section = {name: getattr(kafka, name) for name in fields}
        section["ssl_cafile"] = str(kafka.ssl_cafile)
        section["sasl_password"] = kafka.sasl_password.get_secret_value()
        section["components"] = {c: {"username": cred.username, "password": cred.password.get_secret_value()}
                                 for c, cred in kafka.components.items()}
        _write_private(self.client_file, yaml.safe_dump({"kafka": section}, sort_keys=False))
        return self.client_file


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _write_tls(ca_path: Path, keystore: Path, host: str) -> None:
    """A CA and, signed by it, the brokers' certificate for ``host`` (and localhost): clients check the name."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KubeStack local Kafka CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write_private(ca_path, ca_cert.public_bytes(pem).decode())
    ca_path.chmod(0o644)  # a CA certificate is public: every client reads it
    _write_private(keystore, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
                   .decode() + cert.public_bytes(pem).decode() + ca_cert.public_bytes(pem).decode())
