"""The REST API and web console: a read model fed from the bus, people's decisions published back to it.

    config.py        ApiSettings: address, tokens (hashes only), Slack signing secret, console, agent config
    auth.py          bearer tokens, roles (viewer < operator < admin) and tenant scopes
    errors.py        the API's errors, each with its HTTP status
    readmodel.py     SQLite: latest incidents, RCA reports, proposals and their state, predictions, health, audit
    queries.py       the read model as response views, scoped to a tenant
    views.py         response and request models (the OpenAPI schema)
    feed.py          the Kafka consumer that keeps the read model current (dead-letters what it cannot read)
    publisher.py     the Kafka producer for decisions and audit entries
    context.py       what routes share (ApiContext) and the auth dependencies, refusals audited
    decisions.py     approve / reject: one path for the REST API and Slack buttons
    slack.py         Slack request signatures and block_actions payloads
    targets.py       the agent config's targets and their health checks run on demand
    metrics.py       Prometheus metrics of the API
    app.py           the FastAPI application; routes_*.py its routes; console/ the static web console
"""
