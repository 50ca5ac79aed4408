"""Request ids made without a system call: version-4 UUIDs, unique, and not shared with a forked child."""

from __future__ import annotations

import os
import uuid

from servicekit import new_request_id


def test_ids_are_version_4_uuids_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:100]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave without running the parent's cleanup
        os.write(write, ",".join(new_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_request_id() for _ in range(3)}
    assert len(child) == 3
    assert not child & parent
