"""P4Runtime server (``p4.v1.P4Runtime``) for the software switch, modelled on BMv2's PI."""

from .server import P4RuntimeServicer
from .service import BadAddress, ServeError, Server, serve

__all__ = ["BadAddress", "P4RuntimeServicer", "ServeError", "Server", "serve"]
