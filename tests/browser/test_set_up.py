"""The browser tests cannot be skipped silently in CI: a missing Chromium or Playwright fails there."""

from __future__ import annotations

import pytest

from .test_host_page_chromium import _missing


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_browser_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed; CI must run the browser tests"):
        _missing("chromium is not installed")


def test_a_missing_browser_skips_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        _missing("chromium is not installed")
