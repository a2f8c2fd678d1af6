"""The runbook knowledge base: runbooks written by this project (each plugin's ``runbooks/*.md``) and the memory
of resolved incidents, indexed with llama-index in a faiss store and searched by hybrid retrieval.

    build(folder, embedder="hashed")            index.py: (re)build <folder>/index
    KnowledgeBase.open(folder).search(q, middleware=..., k=5, mode="hybrid")    retrieve.py
    remember(folder, incident, rca, signals=..., resolution=...)                 memory.py

``folder`` is ``Settings().home / "knowledge"`` for the CLI (``kubestack knowledge ingest | search``).
"""
