"""CertificateAuthority: the stack's own CA in Vault's PKI engine, and the server certificates it issues."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_vault as vault


@dataclass
class CertificateAuthorityArgs:
    mount_path: str = "pgfleet-pki"
    """Where the PKI secrets engine is mounted in the stack's Vault."""
    common_name: str = "pgfleet"
    ca_ttl_s: int = 10 * 365 * 24 * 3600
    max_cert_ttl_s: int = 365 * 24 * 3600
    """The longest a server certificate may live (the issuing role's max_ttl)."""


@dataclass(frozen=True)
class ServerCertificate:
    """A certificate and its key (secret), issued for a server's host names."""

    certificate: pulumi.Output[str]
    private_key: pulumi.Output[str]
    serial_number: pulumi.Output[str]
    expiration: pulumi.Output[int]


class CertificateAuthority(pulumi.ComponentResource):
    """A root CA whose key never leaves Vault (the PKI engine generates it: `type=internal`),
    and a role that issues server certificates for named hosts only.

    Outputs: `ca_certificate` (PEM; public), `mount_path`. Give it a Vault provider through
    `opts` (`providers` or `provider`)."""

    ca_certificate: pulumi.Output[str]
    mount_path: pulumi.Output[str]

    def __init__(self, name: str, args: CertificateAuthorityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:tls:CertificateAuthority", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mount = vault.Mount(
            f"{name}-pki",
            path=args.mount_path,
            type="pki",
            description="pgfleet: the stack's certificate authority",
            max_lease_ttl_seconds=args.ca_ttl_s,
            opts=child,
        )
        root = vault.pkisecret.SecretBackendRootCert(
            f"{name}-root",
            backend=mount.path,
            type="internal",
            common_name=args.common_name,
            ttl=str(args.ca_ttl_s),
            key_type="ec",
            key_bits=256,
            issuer_name="root",
            opts=child,
        )
        self._role = vault.pkisecret.SecretBackendRole(
            f"{name}-server-role",
            backend=mount.path,
            name="server",
            # Servers only: any name the stack asks for (it names its own hosts), never a client
            # certificate, never a wildcard.
            allow_any_name=True,
            allow_bare_domains=True,
            allow_localhost=True,
            allow_ip_sans=True,
            allow_wildcard_certificates=False,
            enforce_hostnames=True,
            server_flag=True,
            client_flag=False,
            key_type="ec",
            key_bits=256,
            max_ttl=str(args.max_cert_ttl_s),
            no_store=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[root]),
        )
        self.mount_path = mount.path
        self.ca_certificate = root.certificate
        self.register_outputs({"ca_certificate": self.ca_certificate, "mount_path": self.mount_path})

    def issue(self, name: str, host_names: Sequence[str], ip_sans: Sequence[str], ttl_s: int, renew_before_s: int,
              rotation: str = "", opts: pulumi.ResourceOptions | None = None) -> ServerCertificate:
        """A server certificate for `host_names` (the first is its common name). `pulumi up`
        replaces it with a new one before fewer than `renew_before_s` seconds are left, and
        whenever `rotation` changes."""
        cert = vault.pkisecret.SecretBackendCert(
            name,
            backend=self.mount_path,
            name=self._role.name,
            common_name=host_names[0],
            alt_names=list(host_names[1:]),
            ip_sans=list(ip_sans),
            ttl=str(ttl_s),
            auto_renew=True,
            min_seconds_remaining=renew_before_s,
            revoke=True,
            # the CA's Vault provider, wherever the certificate is parented
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                provider=self.get_provider("vault:pkiSecret/secretBackendCert:SecretBackendCert"),
                additional_secret_outputs=["private_key"],
                replacement_trigger=renewal_period(ttl_s, renew_before_s, rotation),
            )),
        )
        return ServerCertificate(
            certificate=cert.certificate,
            private_key=pulumi.Output.secret(cert.private_key),
            serial_number=cert.serial_number,
            expiration=cert.expiration,
        )


def renewal_period(ttl_s: int, renew_before_s: int, rotation: str = "", now: float | None = None) -> str:
    """Which renewal period `now` falls in (and the rotation token); a new value replaces the
    certificate.

    Vault's own `auto_renew` only notices a certificate that is due on a refresh (the provider
    works it out when it reads the certificate), so the program counts instead: periods are
    `ttl - renew_before` long, and a certificate issued in one is replaced by the first `up` in
    the next, while at least `renew_before` of its life is left. The same period gives the same
    value, so previews stay quiet in between; a new `rotation` token renews at once."""
    now = time.time() if now is None else now
    period = max(1, ttl_s - renew_before_s)
    return f"{int(now) // period}/{rotation}" if rotation else str(int(now) // period)
