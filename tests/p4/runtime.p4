/* P4Runtime server test program: what tables.p4 and replicate.p4 lack --
 * a direct meter, @tableonly / @defaultonly actions, a const default action
 * and a table with idle timeout.
 *
 * Frame: ethernet.  The meter colour of the 'metered' table lands in the
 * source MAC's last byte, so tests read it off the wire.
 */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

struct headers {
    ethernet_t ethernet;
}

struct metadata {
    bit<8> color;
}

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyIngress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    direct_meter<bit<8>>(MeterType.packets) metered_meter;

    action forward(bit<9> port) {
        standard_metadata.egress_spec = port;
        metered_meter.read(meta.color);
    }
    action forward_only_in_entries(bit<9> port) {
        standard_metadata.egress_spec = port;
        metered_meter.read(meta.color);
    }
    action miss() {
        mark_to_drop(standard_metadata);
        metered_meter.read(meta.color);
    }
    table metered {
        key = { hdr.ethernet.dstAddr: exact; }
        actions = { forward; @tableonly forward_only_in_entries; @defaultonly miss; }
        default_action = miss();
        meters = metered_meter;
        support_timeout = true;
        size = 8;
    }

    action to_port(bit<9> port) {
        standard_metadata.egress_spec = port;
    }
    action drop() {
        mark_to_drop(standard_metadata);
    }
    table fixed_default {
        key = { hdr.ethernet.srcAddr: lpm; }
        actions = { to_port; drop; }
        const default_action = drop();
        size = 4;
    }

    apply {
        if (!metered.apply().hit) {
            fixed_default.apply();
        }
        hdr.ethernet.srcAddr[7:0] = meta.color;
    }
}

control MyEgress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) {
    apply { }
}

control MyComputeChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(),
         MyComputeChecksum(), MyDeparser()) main;
