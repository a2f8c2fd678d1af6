"""Kubernetes: pods, workloads, nodes and events of a cluster watched through the API server, middleware found in it."""
