"""Property tests (hypothesis) of the parsers that read untrusted input: manifest, archive, ext-ui path.

Every property shares :data:`FUZZ`: a modest example count so the suite stays fast, no deadline (the machine is
shared and timing is not the property), no example database left in the work tree, and derandomized under CI
so that a run there is reproducible; locally each run explores new examples. A finding is fixed in the module
and pinned with ``@example`` next to the property that found it.
"""

from __future__ import annotations

import os
from typing import Final

from hypothesis import HealthCheck, settings

#: Examples per property; each property runs in well under a second or two at this count.
MAX_EXAMPLES: Final = 200

FUZZ: Final = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)
