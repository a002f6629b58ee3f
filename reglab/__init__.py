"""reglab: run your own Docker image registry, stage by stage, and prove each step worked.

The public API of the core library, in the order the workshop uses it::

    engine = reglab.connect()                       # the Docker engine
    reglab.ensure_images(engine)                    # registry:2 and hello-world, offline if needed
    reg = reglab.Registry(reglab.RegistryConfig(stage="local", port=5000)).start()
    reglab.tag(engine, "hello-world", reg.ref("hello-world"))
    digest = reglab.push(engine, reg.ref("hello-world"))
    assert reg.client().manifest_digest("hello-world") == digest

The notebooks' layer (helper, checkpoints, exercises, widgets) is ``reglab.lab``; this package
never imports it.
"""

from reglab import swarm
from reglab.auth.certs import CA, Certificate
from reglab.auth.htpasswd import DEFAULT_COST, Htpasswd
from reglab.base.errors import (
    AuthenticationRequired,
    CertificateError,
    ClientError,
    ConfigError,
    EngineError,
    HtpasswdError,
    ImageError,
    NotOwned,
    PortInUse,
    Problem,
    RegistryError,
    RegistryNotReady,
    ReglabError,
    TLSVerificationFailed,
)
from reglab.base.progress import Progress
from reglab.base.settings import Settings
from reglab.engine.connection import EngineInfo, connect
from reglab.engine.transfer import exists, pull, push, remove, tag
from reglab.engine.trust import install_ca_for_docker, uninstall_ca_for_docker
from reglab.images.archive import load_images, save_images
from reglab.images.build import ensure_images
from reglab.registry.answers import ImageSummary
from reglab.registry.client import RegistryClient
from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import Registry, RegistryStatus, owned_registries
from reglab.registry.login import Credentials, login, logout
from reglab.registry.preflight import preflight
from reglab.registry.workdir import Workdir
from reglab.swarm import SwarmRegistry

__version__ = "0.1.0"

__all__ = [
    "CA", "Certificate", "install_ca_for_docker", "uninstall_ca_for_docker",
    "ImageSummary", "RegistryClient",
    "RegistryConfig", "Stage", "Registry", "RegistryStatus", "owned_registries", "Workdir",
    "EngineInfo", "connect", "preflight", "Settings",
    "AuthenticationRequired", "CertificateError", "ClientError", "ConfigError", "EngineError",
    "HtpasswdError", "ImageError", "NotOwned", "PortInUse", "Problem", "ReglabError",
    "RegistryError", "RegistryNotReady", "TLSVerificationFailed",
    "DEFAULT_COST", "Htpasswd",
    "Progress", "ensure_images", "exists", "load_images", "pull", "push", "remove",
    "save_images", "tag",
    "Credentials", "login", "logout",
    "SwarmRegistry", "swarm",
]  # fmt: skip
