"""``python -m kubestack``: the same as the ``kubestack`` command."""

from kubestack.cli.main import main

main()
