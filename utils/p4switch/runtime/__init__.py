"""P4Runtime server (``p4.v1.P4Runtime``) for the software switch, modelled on BMv2's PI."""

from .server import BadAddress, P4RuntimeServicer, ServeError, serve

__all__ = ["BadAddress", "P4RuntimeServicer", "ServeError", "serve"]
