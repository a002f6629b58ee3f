"""Exercises that make the learner think: predict, then run; diagnose, then fix.

A check looks at the real registry, engine or files and prints ``✔ Correct: ...`` or
``✘ Not yet: ...`` with a hint, and returns True or False. It never raises, so a learner can
run it as often as they like. A prediction is checked against what the engine really does,
which the check runs and shows. The notebooks keep each solution in a collapsed markdown
block (never run by Run All); the learner's copy has no outputs, so no answer shows before the
learner asks for it.

The notebooks call ``exercises.NAME(...)``; the exercises live by stage:

- :mod:`~reglab.lab.exercises.local`: 01 (a local registry) and 02 (its storage);
- :mod:`~reglab.lab.exercises.security`: 03 (TLS), 04 (basic auth) and 08 (token auth);
- :mod:`~reglab.lab.exercises.operations`: 05 (garbage collection), 06 (a mirror), 07 (events);
- :mod:`~reglab.lab.exercises.events`: 07's terminal exercise and its diagnosis (an endpoint at
  127.0.0.1);
- :mod:`~reglab.lab.exercises.gc`: 05's diagnosis (a collection run on the live registry);
- :mod:`~reglab.lab.exercises.mirror`: 06's diagnosis (a mirror's stale upstream login);
- :mod:`~reglab.lab.exercises.tokens`: 08's new cases and its diagnosis (a rule order);
- :mod:`~reglab.lab.exercises.replicated`: 09 (replicas behind a front);
- :mod:`~reglab.lab.exercises.supply`: 12 (attachments, key rotation, an image the gate refuses).
"""

from reglab.lab.exercises.events import break_endpoint, events_delivered, scanner_fetch
from reglab.lab.exercises.gc import collect_while_live, image_whole, pull_fresh
from reglab.lab.exercises.local import leftover_volumes, pushed, why_refused
from reglab.lab.exercises.mirror import mirror_logs_in, rotate_password
from reglab.lab.exercises.operations import blobs_collected, pull_events, served_without_upstream
from reglab.lab.exercises.replicated import ODD_SECRET_CHOICES, odd_fixed, odd_secret
from reglab.lab.exercises.security import (
    break_certificate,
    gateway_in_certificate,
    md5_user,
    remove_user,
    shared_credentials,
    user_can_log_in,
)
from reglab.lab.exercises.supply import (
    REFERRERS_CHOICES,
    ROTATION_CHOICES,
    gate_serves,
    predicted_referrers,
    predicted_rotation,
    teammate_image,
)
from reglab.lab.exercises.tokens import (
    NEW_CASES,
    break_rule_order,
    predict_access,
    rule_order_fixed,
)

__all__ = [
    "NEW_CASES", "break_rule_order", "predict_access", "rule_order_fixed",
    "break_endpoint", "events_delivered", "scanner_fetch",
    "ODD_SECRET_CHOICES", "blobs_collected", "break_certificate",
    "collect_while_live", "image_whole", "pull_fresh",
    "gateway_in_certificate", "leftover_volumes", "md5_user", "odd_fixed", "odd_secret",
    "pull_events", "remove_user",
    "pushed", "served_without_upstream", "shared_credentials",
    "user_can_log_in", "why_refused",
    "mirror_logs_in", "rotate_password",
    "REFERRERS_CHOICES", "ROTATION_CHOICES", "gate_serves", "predicted_referrers",
    "predicted_rotation", "teammate_image",
]  # fmt: skip
