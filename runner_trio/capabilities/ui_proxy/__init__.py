"""The ui-proxy capability: ``alga:extension/ui-proxy``, an extension calling its host app's routes
behind ``cap:ui.proxy``.

One folder holds the whole unit: ``_client.py`` (:class:`UiProxyClient`, the route checks and the upstream
call), ``_capability.py`` (the WIT glue and the :class:`UiProxyBackend` protocol) and ``_configure.py``
(:func:`configure`, reading ``UI_PROXY_*`` once). Its guest-visible errors are :class:`HostCallError`
(``route-not-found``, ``denied``, ``bad-request``, ``internal``); an unconfigured proxy answers
``route-not-found``, and a call carries the install's ``api_key`` secret as ``x-api-key``.
"""

from __future__ import annotations

from ._capability import API_KEY_SECRET, PROXY_ERRORS, UiProxyBackend, UiProxyCapability
from ._client import DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_UI_PROXY_TIMEOUT, UiProxyClient
from ._configure import UiProxySettings, configure, defaults

__all__ = [
    "API_KEY_SECRET",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_UI_PROXY_TIMEOUT",
    "PROXY_ERRORS",
    "UiProxyBackend",
    "UiProxyCapability",
    "UiProxyClient",
    "UiProxySettings",
    "configure",
    "defaults",
]
