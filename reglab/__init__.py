"""reglab: run your own Docker image registry, stage by stage, and prove each step worked.

The public API, in the order the workshop uses it::

    engine = reglab.connect()                       # the Docker engine
    reglab.ensure_images(engine)                    # registry:2 and hello-world, offline if needed
    reg = reglab.Registry(reglab.RegistryConfig(stage="local", port=5000)).start()
    reglab.tag(engine, "hello-world", reg.ref("hello-world"))
    digest = reglab.push(engine, reg.ref("hello-world"))
    assert reg.client().manifest_digest("hello-world") == digest
"""

from .certs import CA, Certificate, install_ca_for_docker, uninstall_ca_for_docker
from .client import RegistryClient
from .engine import Problem, connect, preflight
from .errors import (
    AuthenticationRequired,
    CertificateError,
    ClientError,
    ConfigError,
    EngineError,
    HtpasswdError,
    ImageError,
    NotOwned,
    PortInUse,
    RegistryError,
    RegistryNotReady,
    ReglabError,
    TLSVerificationFailed,
)
from .htpasswd import DEFAULT_COST, Htpasswd
from .images import (
    Progress,
    ensure_images,
    exists,
    load_images,
    pull,
    push,
    remove,
    save_images,
    tag,
)
from .login import Credentials, login, logout
from .registry import Registry, RegistryConfig, Stage, Workdir

__version__ = "0.1.0"

__all__ = [
    "CA", "Certificate", "install_ca_for_docker", "uninstall_ca_for_docker",
    "RegistryClient", "Problem", "connect", "preflight",
    "AuthenticationRequired", "CertificateError", "ClientError", "ConfigError", "EngineError",
    "HtpasswdError", "ImageError", "NotOwned", "PortInUse", "ReglabError", "RegistryError",
    "RegistryNotReady", "TLSVerificationFailed",
    "DEFAULT_COST", "Htpasswd",
    "Progress", "ensure_images", "exists", "load_images", "pull", "push", "remove", "save_images",
    "tag",
    "Credentials", "login", "logout",
    "Registry", "RegistryConfig", "Stage", "Workdir",
]
