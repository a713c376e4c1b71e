"""Files from a Maven repository over plain HTTPS (Maven Central unless a mirror is configured), kept in the
local repository's layout (``~/.m2/repository``, so Maven and the bridge share one cache) and verified
against the checksum the repository publishes beside each file. No ``mvn`` needed."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, NodeError

log = logging.getLogger(__name__)

CENTRAL = "https://repo.maven.apache.org/maven2"
MIRROR_VARIABLE = "SPLADE_BRIDGE_MAVEN_MIRROR"
CHECKSUMS = ("sha512", "sha256", "sha1")  # strongest first; Central publishes sha1 for every file
CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    ext: str = "jar"

    @classmethod
    def parse(cls, coords: str) -> "Artifact":
        """``group:artifact:version`` or ``group:artifact:version:ext``."""
        parts = coords.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise ConfigError(f"Maven coordinates must look like group:artifact:version[:ext], got {coords!r}")
        return cls(*parts)

    @property
    def path(self) -> str:
        """The file's path inside a repository, e.g. ``org/opensearch/.../x-1.0.zip``."""
        return "/".join([*self.group.split("."), self.artifact, self.version,
                         f"{self.artifact}-{self.version}.{self.ext}"])

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.ext}"


def local_repository() -> Path:
    """``$MAVEN_REPO`` or ``~/.m2/repository`` (Maven's own default)."""
    return Path(os.environ.get("MAVEN_REPO") or Path.home() / ".m2" / "repository")


def mirror() -> str:
    """``$SPLADE_BRIDGE_MAVEN_MIRROR`` (a repository manager such as Nexus or Artifactory) or Maven Central."""
    url = (os.environ.get(MIRROR_VARIABLE) or CENTRAL).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{MIRROR_VARIABLE} must be an http(s):// URL, got {url!r}")
    return url


def fetch(artifact: Artifact, *, repository: Path | None = None, base_url: str | None = None,
          session=None, sha256: str | None = None) -> Path:
    """The artifact's local path, downloading and verifying it first when the cache lacks it: against ``sha256``
    when given (pinned in the code for files published without a checksum), else the published checksum."""
    path = (repository or local_repository()) / artifact.path
    if path.exists():
        return path
    base = (base_url or mirror()).rstrip("/")
    url = f"{base}/{artifact.path}"
    session = session or _session()
    algorithm, expected = ("sha256", sha256.lower()) if sha256 else _published_checksum(session, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    log.info("downloading %s", url)
    digest = hashlib.new(algorithm)
    try:
        with session.get(url, stream=True, timeout=60) as resp:
            _check(resp, url)
            with open(part, "wb") as out, _progress(resp, artifact) as bar:
                for chunk in resp.iter_content(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except NodeError:
        part.unlink(missing_ok=True)
        raise
    except Exception as exc:  # network errors: name the URL, not a traceback
        part.unlink(missing_ok=True)
        raise NodeError(f"downloading {url} failed: {exc}") from None
    if digest.hexdigest() != expected:
        part.unlink(missing_ok=True)
        source = "pinned" if sha256 else "published"
        raise NodeError(f"{url} does not match its {source} {algorithm} checksum (expected {expected}, got "
                        f"{digest.hexdigest()}): the download or the mirror is corrupt; nothing was kept")
    path.with_name(f"{path.name}.{algorithm}").write_text(expected + "\n")
    os.replace(part, path)
    return path


def _session():
    """requests with urllib3's retries: connection failures and 429/5xx answers are retried with backoff."""
    import requests  # opensearch-py's dependency; imported here so the cluster layer loads without it
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(total=4, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504), allowed_methods={"GET"},
                  raise_on_status=False)
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def _published_checksum(session, url: str) -> tuple[str, str]:
    for algorithm in CHECKSUMS:
        try:
            resp = session.get(f"{url}.{algorithm}", timeout=30)
        except Exception as exc:
            raise NodeError(f"cannot reach {url}.{algorithm}: {exc}") from None
        if resp.status_code == 404:
            continue
        _check(resp, f"{url}.{algorithm}")
        value = resp.text.split()[0].strip().lower() if resp.text.split() else ""
        if len(value) == hashlib.new(algorithm).digest_size * 2:
            return algorithm, value
    raise NodeError(f"{url} is not published (no {'/'.join(CHECKSUMS)} checksum beside it): check the version "
                    f"and {MIRROR_VARIABLE}")


def _check(resp, url: str) -> None:
    if resp.status_code == 404:
        raise NodeError(f"{url} not found (HTTP 404): check the version and {MIRROR_VARIABLE}")
    if resp.status_code >= 400:
        raise NodeError(f"{url} answered HTTP {resp.status_code}")


def _progress(resp, artifact: Artifact):
    from tqdm import tqdm

    size = int(resp.headers.get("content-length") or 0) or None
    # tqdm shows nothing when stderr is not a terminal (disable=None) or TQDM_DISABLE is set
    return tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=artifact.artifact, disable=None,
                leave=False)
