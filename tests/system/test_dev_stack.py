"""``scripts/run`` as a new user meets it: every command it prints works when pasted, every URL answers.

``scripts/run`` runs in the background on free ports with its own var directory (``EXT_DEV_DIR``), so the
developer's ``var/dev`` is left alone. The printed set-up lines and each printed command run in ``bash -c``
with a PATH that does not hold the virtualenv (the printed ``export PATH=…`` must bring ``extctl``), the tail
runs until it prints an event of an invoke, and the host page opens with the session the printed login makes.
Then the stack restarts on the same directory: the tokens printed are the same and the session still holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests._net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
READY = "Ctrl-C stops everything."
START_TIMEOUT_S = 420  # a cold machine builds the samples and precompiles the JS component first
# What a login shell has, without the project's virtualenv: extctl must come from the printed export.
BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Guide:
    setup: list[str]
    commands: list[str]
    urls: list[str]
    login_body: dict[str, str]
    admin_token: str
    user_token: str


class Stack:
    """``scripts/run`` in its own process group, its output in files under ``tmp``."""

    def __init__(self, tmp: Path, var_dir: Path, runner_port: int, gateway_port: int) -> None:
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("EXTCTL_", "RUNNER_", "GATEWAY_", "EXT_DEV", "DEV_"))}
        self.env.update(RUNNER_PORT=str(runner_port), GATEWAY_PORT=str(gateway_port), EXT_DEV_DIR=str(var_dir))
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> str:
        """Start and wait for the printed guide; returns what was printed on stdout."""
        self.runs += 1
        out = self.tmp / f"run{self.runs}.out"
        with out.open("wb") as stdout, (self.tmp / f"run{self.runs}.err").open("wb") as stderr:
            self.proc = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=self.env, stdout=stdout,
                                         stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY not in (text := out.read_text(errors="replace")):
            if self.proc.poll() is not None:
                pytest.fail(f"scripts/run exited with {self.proc.returncode}:\n{text[-3000:]}\n"
                            f"{(self.tmp / f'run{self.runs}.err').read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"scripts/run printed no guide in {START_TIMEOUT_S} s:\n{text[-3000:]}")
            time.sleep(0.5)
        return text

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Whatever is left in the group (a child that outlived dev_stack.py) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


def parse_guide(text: str) -> Guide:
    """The printed guide: the set-up lines, the commands under "Try:", the URLs, the login body and tokens."""
    guide = text[text.index("==> ext-runtime is running"):]
    sections: dict[str, list[str]] = {}
    current = ""
    for line in guide.splitlines():
        if line and not line.startswith(" "):
            current = line.split(" (")[0].rstrip(":")
            sections.setdefault(current, [])
        elif line.startswith("  ") and not line.startswith("   "):
            sections.setdefault(current, []).append(line[2:])
    login = re.search(r"body: '(\{.*\})'", guide)
    assert login is not None, guide
    admin = re.search(r"gateway admin token \(.*\)\s+(\S+)", guide)
    user = re.search(r"dev admin user token \(.*\)\s+(\S+)", guide)
    assert admin is not None, guide
    assert user is not None, guide
    urls = sections["Host page"] + re.findall(r"open (http://[^\s,]+)", guide)
    return Guide(sections["Set up this shell"], sections["Try"], urls, json.loads(login.group(1)),
                 admin.group(1), user.group(1))


def shell(setup: list[str], command: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``command`` pasted into a fresh bash after the set-up lines, with a PATH without the virtualenv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTCTL_") and "proxy" not in k.lower()}
    env["PATH"] = BARE_PATH
    script = "\n".join([*setup, command])
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


def check_output(command: str, result: subprocess.CompletedProcess[str]) -> None:
    """Exit 0, and an answer that is not a refusal (curl -s exits 0 on a 4xx: the body says it)."""
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    out = result.stdout.strip()
    if "/log?" in command:
        assert out == ""  # 204 No Content
        return
    assert out, command
    if "grep runner_invocations" in command:
        assert 'runner_invocations_total{outcome="ok"}' in out
        return
    body = json.loads(out)
    assert isinstance(body, dict), (command, out)
    assert body.get("error") is None, (command, out)
    if "/v1/execute" in command:
        assert body["status"] == 200, out
    if "/secrets?" in command:
        assert body == {"key": "api_key", "value": "dev-secret"}
    if "/storage" in command:
        assert body["value"] == "dark"
    if "/installs" in command:
        # The sample, and examples/hello-js (docs/authoring.md): both signed with the dev key and verified.
        assert sorted(i["extension_id"] for i in body["installs"]) == ["hello-js", "kitchen-sink"]
        assert {i["signature_status"] for i in body["installs"]} == {"signed_verified"}
    if command.endswith(" /context"):
        assert body["tenantId"] == "dev"


def test_every_printed_command_and_url_works(tmp_path: Path) -> None:
    stack = Stack(tmp_path, tmp_path / "var-dev", free_port(), free_port())
    try:
        guide = parse_guide(stack.start())
        assert any(line.startswith("export PATH=") for line in guide.setup), guide.setup
        assert len(guide.commands) >= 8, guide.commands
        for command in guide.commands:
            assert "\\" not in command, command  # one line each: nothing to break when pasted
        tail_commands = [c for c in guide.commands if c.startswith("extctl tail ")]
        assert len(tail_commands) == 1, guide.commands  # redis-server is installed here (scripts/test does it)

        for command in guide.commands:
            if command not in tail_commands:
                check_output(command, shell(guide.setup, command))

        # The tail prints the events of an invoke (the printed /log one) while it runs.
        (tail_command,) = tail_commands
        (log_command,) = [c for c in guide.commands if "/log?" in c]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXTCTL_")}
        env["PATH"] = BARE_PATH
        tail_out = tmp_path / "tail.out"
        with tail_out.open("wb") as out:
            tail = subprocess.Popen(["bash", "-c", "\n".join([*guide.setup, "exec " + tail_command])], env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            check_output(log_command, shell(guide.setup, log_command))
            deadline = time.monotonic() + 60
            while " hello" not in tail_out.read_text(errors="replace"):
                assert tail.poll() is None, tail_out.read_text()
                assert time.monotonic() < deadline, f"no event tailed: {tail_out.read_text()!r}"
                time.sleep(0.2)
        finally:
            os.killpg(tail.pid, signal.SIGTERM)
            tail.wait(timeout=10)
        assert re.search(r"INFO\s+log\s+\S+ hello", tail_out.read_text()), tail_out.read_text()

        # The URLs: the page to log in from, and the host page with the session the printed login makes.
        gateway = guide.urls[-1].rsplit("/", 1)[0]
        login = httpx.post(f"{gateway}/api/session", json=guide.login_body, timeout=30)
        assert login.status_code == 200, login.text
        cookies = dict(login.cookies)
        (host_page,) = [u for u in guide.urls if u.endswith("/msp/extensions/kitchen-sink")]
        (hello_page,) = [u for u in guide.urls if u.endswith("/msp/extensions/hello-js")]
        with httpx.Client(timeout=30, cookies=cookies) as client:
            for url in guide.urls:
                page = client.get(url)
                assert page.status_code == 200, (url, page.text[:300])
            assert "kitchen-sink" in client.get(host_page).text
            assert "hello-js" in client.get(hello_page).text

        # Restarted on the same directory: the same tokens, and the browser session still holds.
        stack.stop()
        again = parse_guide(stack.start())
        assert (again.admin_token, again.user_token) == (guide.admin_token, guide.user_token)
        with httpx.Client(timeout=30, cookies=cookies) as client:
            page = client.get(host_page)
            assert page.status_code == 200, page.text[:300]
        # Without the session it is refused: the cookie is what carried it.
        assert httpx.get(host_page, timeout=30).status_code == 401
    finally:
        stack.stop()
