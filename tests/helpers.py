"""Helpers the test modules share, one copy each: reading an index, the store, uploads in-process."""

from __future__ import annotations

import base64
import datetime
import io
import ipaddress
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from wheels import upload_form

V1_JSON = "application/vnd.pypi.simple.v1+json"


def listed(server, project: str) -> dict[str, dict]:
    """filename -> the file's entry in /simple/<project>/ (JSON) right now; {} if the project
    is not there. Any other failure (a 401, a 500) fails the test."""
    resp = requests.get(f"{server.index_url}{project}/", headers={"Accept": V1_JSON}, timeout=10)
    if resp.status_code == 404:
        return {}
    resp.raise_for_status()
    return {f["filename"]: f for f in resp.json()["files"]}


def listed_hashes(server, project: str) -> dict[str, str]:
    """filename -> sha256 of what /simple/<project>/ lists right now."""
    return {name: f["hashes"]["sha256"] for name, f in listed(server, project).items()}


def rss_kb(server) -> int:
    """The live server process's resident memory (VmRSS), in KiB."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def store_files(server) -> set[str]:
    """Every file under the server's store, hidden ones (upload temp files) included."""
    return {str(p.relative_to(server.store)) for p in Path(server.store).rglob("*") if p.is_file()}


def installed(target: Path) -> set[str]:
    """The .dist-info folders pip or uv installed into target (--target)."""
    return {p.name for p in target.iterdir() if p.name.endswith(".dist-info")}


# -- in-process: an app's test client and runner (conftest's `client` and `runner`) ----------


def new_token(runner, name: str, *options: str) -> str:
    """`privindex token create NAME OPTIONS`: the secret."""
    result = runner.invoke("token", "create", name, *options)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def post_file(client, token: str, wheel):
    """A twine-shaped upload of the file at wheel to /legacy/ with an API token."""
    form, (filename, content) = upload_form(wheel)
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    return client.post(
        "/legacy/",
        data={**form, "content": (io.BytesIO(content), filename)},
        headers={"Authorization": f"Basic {auth}"},
    )


def files(client, project: str) -> dict[str, dict]:
    """filename -> the file's entry in /simple/<project>/ (JSON) through the test client."""
    resp = client.get(f"/simple/{project}/", headers={"Accept": V1_JSON})
    return {f["filename"]: f for f in resp.json["files"]} if resp.status_code == 200 else {}


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for localhost it signed (rustls, in uv, refuses a
    self-signed CA certificate used as the server's own). Returns (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)

    def make(subject: str, issuer_name, signing_key, key, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
        )
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        usage = dict.fromkeys(
            ("content_commitment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only"),
            False,
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    key_encipherment=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    **usage,
                ),
                True,
            )
        else:  # what strict verifiers (Python 3.13's default context, rustls) want of a server cert
            builder = (
                builder.add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        key_encipherment=True,
                        key_cert_sign=False,
                        crl_sign=False,
                        **usage,
                    ),
                    True,
                )
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), False
                )
                .add_extension(
                    x509.SubjectAlternativeName(
                        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                    ),
                    False,
                )
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privindex test CA")])
    ca = make("privindex test CA", ca_name, ca_key, ca_key, True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = make("localhost", ca_name, ca_key, key, False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths
