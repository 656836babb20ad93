"""The web dashboard: NiceGUI pages that are a client of one peer's local API only.

It runs as its own process (``peeros dashboard``, or started by ``peeros peer --web-ui``
and ``peeros up``) and reaches the peer through :class:`peeros.AsyncClient`, exactly as
the CLI does: no back door into the peer. Files it keeps in its data directory:

==================  =====  ==================================================
``dashboard.token``  0600   the token in the login URL (``/?token=...``)
``dashboard.json``          where the running dashboard listens (no secret)
``dashboard.log``           its log, when ``peeros up`` or a test started it
==================  =====  ==================================================

Modules: :mod:`.auth` (token, cookie, the ASGI gate), :mod:`.backend` (the one
client), :mod:`.server` (socket, uvicorn, lifecycle), :mod:`.layout` (the frame and
error handling every page shares), and one module per page.
"""
