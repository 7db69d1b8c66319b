"""The live load balancer behind ``./lbctl.py``: read s1's state, change it hitlessly.

* ``buckets``  bucket assignment with the fewest flows moved (pure, no I/O)
* ``state``    the load balancer as read back from the switch (pure decode)
* ``plan``     the ordered, make-before-break writes for a change (pure)
* ``control``  the thin P4Runtime shell: read, write phases, sample counters
* ``view``     status lines, the live bars and the chart
* ``traffic``  paced real-shaped traffic and per-flow receivers (raw sockets)
"""
