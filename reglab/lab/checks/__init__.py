"""Checkpoints: each verifies one workshop step against the real registry or engine.

A check prints one line starting with ``✔`` when the step worked, and raises
:class:`CheckFailed` (one line: what is wrong and the fix) when it did not. The notebooks'
checkpoint cells call these (``checks.NAME(...)``), and the tests prove each one fails when its
step is broken. They live by stage:

- :mod:`~reglab.lab.checks.day_one`: 00 to 04, and the general ones (``same``, ...);
- :mod:`~reglab.lab.checks.day_two`: 05 to 08;
- :mod:`~reglab.lab.checks.replicated`: 09;
- :mod:`~reglab.lab.checks.nodes`: 11;
- :mod:`~reglab.lab.checks.supply`: 12.
"""

from reglab.lab.checks.day_one import (
    container_says,
    file_exists,
    htpasswd_matches,
    image_absent,
    image_present,
    push_refused,
    refused,
    registry_answers,
    registry_serves,
    same,
    tls_verified,
)
from reglab.lab.checks.day_two import (
    access_as_written,
    blobs_gone,
    events_exactly_once,
    images_intact,
    mirror_serves,
    reclaimed,
    refused_for,
)
from reglab.lab.checks.failed import CheckFailed
from reglab.lab.checks.nodes import node_holds
from reglab.lab.checks.replicated import (
    bucket_grew,
    no_failed_requests,
    replicas_agree,
    upload_committed,
)
from reglab.lab.checks.supply import attached, collected, pulled_through

__all__ = [
    "CheckFailed", "access_as_written", "attached", "blobs_gone", "bucket_grew", "collected",
    "container_says",
    "events_exactly_once", "file_exists", "htpasswd_matches", "image_absent", "image_present",
    "images_intact", "mirror_serves", "no_failed_requests", "node_holds", "pulled_through",
    "push_refused", "reclaimed",
    "refused", "refused_for", "registry_answers", "registry_serves", "replicas_agree", "same",
    "tls_verified", "upload_committed",
]  # fmt: skip
