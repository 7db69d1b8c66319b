"""Ports (AF_PACKET rings) and pcap files: the switch's I/O shell."""
