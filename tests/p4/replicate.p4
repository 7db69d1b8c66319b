/* Engine and server test program: packet-in/out through the CPU port,
 * multicast with replication ids, I2E and E2E clones, resubmit,
 * recirculate, digests and log_msg.
 *
 * Test frames: ethernet (etherType 0x9999) / tag.  The tag records what
 * happened: instance type, egress rid, how many passes (resubmit or
 * recirculate) the packet went through.
 */
#include <core.p4>
#include <v1model.p4>

const bit<9> CPU_PORT = 64;

@controller_header("packet_in")
header packet_in_t {
    bit<9> ingress_port;
    bit<7> _pad;
}

@controller_header("packet_out")
header packet_out_t {
    bit<9> egress_port;
    bit<7> _pad;
}

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header tag_t {
    bit<8>  instance_type;
    bit<16> rid;
    bit<8>  passes;
    bit<8>  mark;
}

struct headers {
    packet_in_t  packet_in;
    packet_out_t packet_out;
    ethernet_t   ethernet;
    tag_t        tag;
}

struct learn_t {
    bit<48> srcAddr;
    bit<9>  ingress_port;
}

struct metadata {
    @field_list(1) bit<8> passes;
    @field_list(1) bit<8> mark;
    bit<1> recirculate_me;
    bit<1> clone_egress;
    bit<32> session;
}

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }
    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }
    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x9999: parse_tag;
            default: accept;
        }
    }
    state parse_tag {
        packet.extract(hdr.tag);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyIngress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    action to_port(bit<9> port) {
        standard_metadata.egress_spec = port;
    }
    action to_cpu() {
        standard_metadata.egress_spec = CPU_PORT;
    }
    action flood(bit<16> group) {
        standard_metadata.mcast_grp = group;
    }
    action clone_ingress(bit<32> session, bit<9> port) {
        meta.mark = 0x11;
        clone_preserving_field_list(CloneType.I2E, session, 1);
        standard_metadata.egress_spec = port;
    }
    action clone_egress(bit<32> session, bit<9> port) {
        meta.clone_egress = 1;
        meta.session = session;
        standard_metadata.egress_spec = port;
    }
    action resubmit_once(bit<9> port) {
        standard_metadata.egress_spec = port;
        meta.mark = 0x22;
        meta.passes = meta.passes + 1;
        resubmit_preserving_field_list(1);
    }
    action recirculate_once(bit<9> port) {
        standard_metadata.egress_spec = port;
        meta.recirculate_me = 1;
    }
    action learn(bit<9> port) {
        digest<learn_t>(1, { hdr.ethernet.srcAddr, standard_metadata.ingress_port });
        standard_metadata.egress_spec = port;
    }
    action drop() {
        mark_to_drop(standard_metadata);
    }

    table fwd {
        key = { hdr.ethernet.dstAddr: exact; }
        actions = { to_port; to_cpu; flood; clone_ingress; clone_egress; resubmit_once;
                    recirculate_once; learn; drop; }
        default_action = drop();
    }

    apply {
        if (hdr.packet_out.isValid()) {
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
            exit;
        }
        log_msg("ingress port {} dst {}", {standard_metadata.ingress_port, hdr.ethernet.dstAddr});
        if (meta.passes == 0) {
            fwd.apply();
        } else {
            standard_metadata.egress_spec = 2;
        }
        if (hdr.tag.isValid()) {
            hdr.tag.passes = meta.passes;
        }
    }
}

control MyEgress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (hdr.tag.isValid()) {
            hdr.tag.instance_type = (bit<8>)standard_metadata.instance_type;
            hdr.tag.rid = standard_metadata.egress_rid;
            hdr.tag.mark = meta.mark;
        }
        if (standard_metadata.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = standard_metadata.ingress_port;
        }
        if (meta.clone_egress == 1) {
            meta.mark = 0x33;
            clone_preserving_field_list(CloneType.E2E, meta.session, 1);
        }
        if (meta.recirculate_me == 1) {
            meta.passes = meta.passes + 1;
            meta.mark = 0x44;
            recirculate_preserving_field_list(1);
        }
    }
}

control MyComputeChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.tag);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(),
         MyComputeChecksum(), MyDeparser()) main;
