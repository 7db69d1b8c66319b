"""P4Runtime server (``p4.v1.P4Runtime``) for the software switch, modelled on BMv2's PI."""

from .server import P4RuntimeServicer
from .service import BadAddress, Limits, ServeError, Server, StreamStats, serve

__all__ = ["BadAddress", "Limits", "P4RuntimeServicer", "ServeError", "Server", "StreamStats",
           "serve"]
