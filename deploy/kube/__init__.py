"""The local Kubernetes control plane: built from source by ``build.sh``, run by ``launcher``."""
