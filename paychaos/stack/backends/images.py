"""The project's images, built locally on a base image (no registry needed).

Each image is built from a Dockerfile in ``stack/docker/`` with its base image as
the ``BASE_IMAGE`` build argument:

============================  ==============================  ==========================
image                         Dockerfile                      runs
============================  ==============================  ==========================
``paychaos/app:<version>``    ``app.Dockerfile``              api, gateway, collector,
                                                              fault proxy, Locust
``paychaos/postgres:<ver>``   ``postgres.Dockerfile``         Debian's PostgreSQL 15
``paychaos/prometheus:<ver>`` ``prometheus.Dockerfile``       Prometheus, Alertmanager
``paychaos/nestjs:<ver>``     ``nestjs.Dockerfile``           the seed's NestJS service
                              (on ``paychaos/base:trixie``)   (``--app nestjs`` only)
============================  ==============================  ==========================

The base images come from ``stack/docker/build-base.sh`` (debootstrap +
``docker import``): Debian 12 for the first three, Debian 13 for the NestJS
service (Node.js 20; Debian 12 has 18). The build context sent to the daemon
holds only what the Dockerfiles copy (never ``.venv``, ``.paychaos`` or a
host's ``node_modules``).

Each image carries the digest of what it was built from (label
``paychaos.context-digest``: the Dockerfile, the files its ``COPY`` lines name,
the base image's tag); :func:`build_all` rebuilds an image whose digest no
longer matches the checkout, so containers never run code older than the tree.

Example::

    client = docker.from_env()
    build_all(client, ImageSet.default())
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paychaos import __version__
from paychaos.contracts.errors import MissingDependency, StackError
from paychaos.contracts.layout import SOURCE_ROOT, STACK_DIR

REPO_ROOT = SOURCE_ROOT
DOCKER_DIR = STACK_DIR / "docker"
DEFAULT_BASE_IMAGE = "paychaos/base:bookworm"
#: The base of the NestJS image: Debian 13, whose nodejs package is Node.js 20.
NODE_BASE_IMAGE = "paychaos/base:trixie"

#: What the app image copies from the repository (the build context, nothing more).
CONTEXT_PATHS = ("pyproject.toml", "README.md", "paychaos", "locustfiles")
#: What the NestJS image copies: its sources and lock file (``npm ci`` runs in the build).
NESTJS_CONTEXT_PATHS = (
    "paychaos/stack/nestjs/package.json",
    "paychaos/stack/nestjs/package-lock.json",
    "paychaos/stack/nestjs/tsconfig.json",
    "paychaos/stack/nestjs/src",
    "paychaos/stack/docker/extra-ca",
)
#: The build context of a Dockerfile, when it is not :data:`CONTEXT_PATHS`.
CONTEXTS = {"nestjs.Dockerfile": NESTJS_CONTEXT_PATHS}
# node_modules and the Node builds' dist/ (make nestjs / make webapp): a host's build
# outputs, which no image runs (the NestJS image builds its own, the Docker backend mounts
# the checkout page's dist/), and which would make every host build rebuild the app image
_SKIP_PARTS = frozenset(
    {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules"}
)
_SKIP_DIRS = ("paychaos/stack/nestjs/dist", "paychaos/stack/webapp/dist")


def _skipped(rel: str) -> bool:
    """Whether the context leaves out ``rel`` (a path relative to the repository)."""
    return (
        bool(set(Path(rel).parts) & _SKIP_PARTS)
        or rel.endswith((".pyc", ".egg-info"))
        or any(rel == d or rel.startswith(d + "/") for d in _SKIP_DIRS)
    )


@dataclass(frozen=True)
class ImageSet:
    """Tags of the project's images and the base image they are built FROM."""

    base: str = DEFAULT_BASE_IMAGE
    app: str = f"paychaos/app:{__version__}"
    postgres: str = f"paychaos/postgres:{__version__}"
    prometheus: str = f"paychaos/prometheus:{__version__}"
    node_base: str = NODE_BASE_IMAGE
    nestjs: str = f"paychaos/nestjs:{__version__}"

    @classmethod
    def default(cls) -> ImageSet:
        return cls()

    def builds(self, *, nestjs: bool = False) -> list[tuple[str, str, str]]:
        """(tag, Dockerfile name, base image) of every image to build; the NestJS
        service's only with ``nestjs``."""
        found = [
            (self.app, "app.Dockerfile", self.base),
            (self.postgres, "postgres.Dockerfile", self.base),
            (self.prometheus, "prometheus.Dockerfile", self.base),
        ]
        if nestjs:
            found.append((self.nestjs, "nestjs.Dockerfile", self.node_base))
        return found


#: Where the host keeps locally added CA certificates (Debian's ``update-ca-certificates``).
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")


def build_context(
    dockerfile: str, root: Path = REPO_ROOT, *, extra_ca_dir: Path | None = HOST_CA_DIR
) -> io.BytesIO:
    """A tar of the build context of ``dockerfile`` (:data:`CONTEXTS`, else
    :data:`CONTEXT_PATHS`) plus ``dockerfile`` (as ``Dockerfile``).

    The ``*.crt`` files of ``extra_ca_dir`` (the host's local CAs: a network that
    intercepts TLS needs them for pip inside the build) go to ``stack/docker/extra-ca/``.
    """
    buffer = io.BytesIO()

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if _skipped(info.name):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in CONTEXTS.get(dockerfile, CONTEXT_PATHS):
            path = root / name
            if path.exists():
                tar.add(path, arcname=name, filter=keep)
        tar.add(DOCKER_DIR / dockerfile, arcname="Dockerfile", filter=keep)
        if extra_ca_dir is not None and extra_ca_dir.is_dir():
            for cert in sorted(extra_ca_dir.glob("*.crt")):
                tar.add(
                    cert, arcname=f"paychaos/stack/docker/extra-ca/host-{cert.name}", filter=keep
                )
    buffer.seek(0)
    return buffer


CONTEXT_LABEL = "paychaos.context-digest"


def _context_files(dockerfile_text: str, root: Path) -> list[Path]:
    """The files the ``COPY``/``ADD`` lines of a Dockerfile name, as the build context keeps them."""
    files: list[Path] = []
    for line in dockerfile_text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        for source in (w for w in words[1:-1] if not w.startswith("--")):
            path = root / source
            found = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
            for item in found:
                rel = item.relative_to(root)
                if _skipped(rel.as_posix()):
                    continue
                files.append(item)
    return files


def context_digest(
    dockerfile: str, base_image: str = DEFAULT_BASE_IMAGE, root: Path = REPO_ROOT
) -> str:
    """What an image is built from, hashed: the Dockerfile, the files it copies, its base."""
    text = (DOCKER_DIR / dockerfile).read_text()
    digest = hashlib.sha256(text.encode() + b"\0" + base_image.encode() + b"\0")
    for item in _context_files(text, root):
        digest.update(str(item.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(item.read_bytes()).digest())
    return digest.hexdigest()[:20]


def image_current(client: Any, tag: str, digest: str) -> bool:
    """True when ``tag`` exists and was built from the context whose digest is ``digest``."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return bool((image.labels or {}).get(CONTEXT_LABEL) == digest)


def image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_image(
    client: Any,
    tag: str,
    dockerfile: str,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    log: Callable[[str], None] | None = None,
) -> float:
    """Build one image with host networking (apt and PyPI from inside); returns seconds."""
    import docker.errors

    if not image_exists(client, base_image):
        raise MissingDependency(
            f"base image {base_image} is missing; build it with: "
            f"stack/docker/build-base.sh {base_image}"
        )
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=25)
    previous = client.images.get(tag).id if image_exists(client, tag) else None
    try:
        stream: Iterable[dict[str, Any]] = client.api.build(
            fileobj=build_context(dockerfile),
            custom_context=True,
            tag=tag,
            labels={CONTEXT_LABEL: context_digest(dockerfile, base_image)},
            buildargs={"BASE_IMAGE": base_image},
            network_mode="host",
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                output = "\n".join(tail)
                raise StackError(
                    f"building {tag} from {dockerfile}: {chunk['error'].strip()}\n{output}"
                )
            line = str(chunk.get("stream", "")).rstrip()
            if line:
                tail.append(line)
                if log is not None:
                    log(line)
    except docker.errors.APIError as exc:
        raise StackError(f"building {tag} from {dockerfile}: {exc}") from exc
    if previous is not None and previous != client.images.get(tag).id:
        # the image this one replaces, unless a container still uses it
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(previous)
    return time.monotonic() - started


def build_all(
    client: Any,
    images: ImageSet,
    *,
    rebuild: bool = False,
    nestjs: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Build every image that is missing or older than the checkout (all of them with
    ``rebuild``; the NestJS service's only with ``nestjs``); tag → seconds."""
    timings: dict[str, float] = {}
    for tag, dockerfile, base in images.builds(nestjs=nestjs):
        if rebuild or not image_current(client, tag, context_digest(dockerfile, base)):
            timings[tag] = build_image(client, tag, dockerfile, base_image=base, log=log)
    return timings


__all__ = [
    "CONTEXT_LABEL",
    "CONTEXT_PATHS",
    "DEFAULT_BASE_IMAGE",
    "DOCKER_DIR",
    "NESTJS_CONTEXT_PATHS",
    "NODE_BASE_IMAGE",
    "ImageSet",
    "build_all",
    "build_context",
    "build_image",
    "context_digest",
    "image_current",
    "image_exists",
]
