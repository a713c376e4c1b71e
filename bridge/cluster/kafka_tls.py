"""The local broker's secured listener (``kafka up --secure``): SASL_SSL with one SASL/PLAIN user and a random
password, a CA and a broker certificate for 127.0.0.1/localhost made with the JDK's ``keytool`` (no other
tool needed), the broker properties that enable them, and the properties a client needs, in librdkafka's names
(``security.protocol``, ``sasl.*``, ``ssl.ca.location``), for a file only its owner reads. The certificates and
secrets are made once per broker directory and kept (``tls/``, the secrets file readable by its owner only)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import NodeError

USER = "bridge"
MECHANISM = "PLAIN"


@dataclass(frozen=True)
class Secrets:
    password: str          # the SASL user's
    store_password: str    # the broker keystore's
    ca: str                # PEM of the CA that signed the broker's certificate
    keystore: str          # PKCS12: the broker's key and certificate chain


def load(broker_dir: Path) -> Secrets | None:
    """The certificates and secrets made for ``broker_dir`` (None: none yet)."""
    state = broker_dir / "tls" / "secrets.json"
    return Secrets(**json.loads(state.read_text())) if state.exists() else None


def ensure(broker_dir: Path, java_home: Path) -> Secrets:
    """The broker directory's certificates and secrets, made on first use."""
    if (made := load(broker_dir)) is not None:
        return made
    tls, state = broker_dir / "tls", broker_dir / "tls" / "secrets.json"
    tls.mkdir(parents=True, exist_ok=True)
    made = Secrets(password=secrets.token_urlsafe(24), store_password=secrets.token_urlsafe(24),
                   ca=str(tls / "ca.pem"), keystore=str(tls / "broker.p12"))
    store = made.store_password

    def keytool(*args: str) -> None:
        argv = [str(java_home / "bin" / "keytool"), *args, "-storetype", "PKCS12", "-storepass:env", "STOREPASS"]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tls,
                              env={**os.environ, "STOREPASS": store, "JAVA_HOME": str(java_home)})
        if proc.returncode != 0:
            raise NodeError(f"keytool {args[0]} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")

    for name in ("ca.p12", "broker.p12", "broker.csr", "broker.crt", "ca.pem"):
        (tls / name).unlink(missing_ok=True)
    keytool("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
            "-dname", "CN=splade-bridge local CA", "-ext", "bc:c", "-keystore", "ca.p12")
    keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", "ca.p12", "-file", "ca.pem")
    keytool("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
            "-dname", "CN=localhost", "-keystore", "broker.p12")
    keytool("-certreq", "-alias", "broker", "-keystore", "broker.p12", "-file", "broker.csr")
    keytool("-gencert", "-alias", "ca", "-keystore", "ca.p12", "-infile", "broker.csr", "-outfile", "broker.crt",
            "-rfc", "-validity", "3650", "-ext", "SAN=ip:127.0.0.1,dns:localhost")
    keytool("-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "broker.p12")
    keytool("-importcert", "-noprompt", "-alias", "broker", "-file", "broker.crt", "-keystore", "broker.p12")
    (tls / "ca.p12").unlink()  # the CA's key is not needed again: nothing else is ever signed
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(made), f)
    return made


def broker_properties(port: int, made: Secrets) -> list[str]:
    """Clients on SASL_SSL at ``port``, the controller at port + 1, the broker's own traffic at port + 2 (plain,
    on 127.0.0.1)."""
    jaas = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{made.password}";'
    return [
        f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1},INTERNAL://127.0.0.1:{port + 2}",
        f"advertised.listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{port + 2}",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=INTERNAL", f"sasl.enabled.mechanisms={MECHANISM}",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PKCS12", f"ssl.keystore.location={made.keystore}",
        f"ssl.keystore.password={made.store_password}", f"ssl.key.password={made.store_password}"]


def client_properties(bootstrap: str, made: Secrets) -> str:
    """What a client needs to reach the secured listener, in ``key=value`` lines (librdkafka's names)."""
    return "\n".join([f"bootstrap.servers={bootstrap}", "security.protocol=SASL_SSL", f"sasl.mechanism={MECHANISM}",
                      f"sasl.username={USER}", f"sasl.password={made.password}", f"ssl.ca.location={made.ca}", ""])
