"""Request ids for requests that bring none, made without a system call.

``uuid.uuid4()`` reads ``os.urandom``, and CPython lets go of the GIL around that ``getrandom`` call. In a runner
worker, a guest thread waiting for the GIL takes it then, and the event loop's thread waits to get it back: in a
profile of one worker under load that wait made each id cost ~0.2 ms of the loop's time (docs/runner.md, "Guest
threads"). A request id only has to be unique, not secret, so it comes from a pseudo-random generator seeded
once from the operating system (and again in a forked child, so two processes never share a sequence).
"""

from __future__ import annotations

import os
import random
import uuid

__all__ = ["new_request_id"]

_IDS = random.Random()  # noqa: S311 - ids must be unique, not unguessable (see above); seeded from os.urandom
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_IDS.seed)


def new_request_id() -> str:
    """A version-4 UUID string (122 random bits) for a request that came without an id. Not for secrets."""
    return str(uuid.UUID(int=_IDS.getrandbits(128), version=4))
