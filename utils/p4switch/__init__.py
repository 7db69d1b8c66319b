"""A P4Runtime software switch that runs p4c's BMv2 JSON with BMv2's v1model semantics."""
