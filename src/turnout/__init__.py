"""turnout: the Kubernetes Gateway API in Python.

Pipeline (see README): sources -> Snapshot -> graph -> (status, IR) -> data plane.
"""

__version__ = "0.1.0"

DEFAULT_CONTROLLER_NAME = "turnout.dev/gateway-controller"
