"""``kubestack mcp``: a Model Context Protocol server over the KubeStack API, for AI assistants and IDE agents.

It is a client of the API (``client.py``): every tool call is an API request with the caller's token, so roles,
tenant scoping, redaction and the audit are exactly the API's. ``server.py`` declares the tools and resources."""
