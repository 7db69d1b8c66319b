"""What the controller library and the switch share of P4Runtime's wire format.

* ``bytestrings``  ints <-> P4Runtime bytestrings (canonical out, padded or canonical in)
"""
