"""Errors of the knowledge base. They belong in ``kubestack/errors.py`` (under ``KubestackError``); they live here
until that shared module takes them, with the same names and meaning.

    KubestackError
    └── KnowledgeError              the knowledge base cannot be read or built
        ├── RunbookFormatError      a runbook's front matter or layout is wrong (names the file)
        └── IndexNotFoundError      no index on disk yet: run ``kubestack knowledge ingest``
"""

from __future__ import annotations

from kubestack.errors import KubestackError


class KnowledgeError(KubestackError):
    pass


class RunbookFormatError(KnowledgeError):
    pass


class IndexNotFoundError(KnowledgeError):
    pass
