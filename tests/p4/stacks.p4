/* Engine test program: header stacks, varbit options, lookahead, verify,
 * parser value sets, header validity, exit and truncate.
 *
 * Frame: ethernet / [etherType 0x88B5: label stack, bos bit ends it] /
 *        ipv4 with options as varbit / udp.
 * Ingress pops or pushes labels by the 'op' table, marks parser errors in
 * the ethernet source MAC, and forwards to the port given by the table.
 */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header label_t {
    bit<20> label;
    bit<3>  tc;
    bit<1>  bos;
    bit<8>  ttl;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<16> identification;
    bit<3>  flags;
    bit<13> fragOffset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    bit<32> srcAddr;
    bit<32> dstAddr;
}

header ipv4_options_t {
    varbit<320> options;
}

header udp_t {
    bit<16> srcPort;
    bit<16> dstPort;
    bit<16> length;
    bit<16> checksum;
}

header peek_t {
    bit<8> first_option_byte;
}

error { IPv4BadHeaderLength }

struct headers {
    ethernet_t     ethernet;
    label_t[4]     labels;
    ipv4_t         ipv4;
    ipv4_options_t options;
    udp_t          udp;
    peek_t         peek;
}

struct metadata {
    bit<8>  option_peek;
    bit<32> last_label;
}

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    value_set<bit<16>>(4) tunnel_types;

    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x88B5: parse_label;
            tunnel_types: parse_label;
            0x0800: parse_ipv4;
            default: accept;
        }
    }

    state parse_label {
        packet.extract(hdr.labels.next);
        meta.last_label = hdr.labels.lastIndex;
        transition select(hdr.labels.last.bos) {
            1: parse_ipv4;
            default: parse_label;
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.ihl >= 5, error.IPv4BadHeaderLength);
        transition select(hdr.ipv4.ihl) {
            5: parse_l4;
            default: parse_options;
        }
    }

    state parse_options {
        meta.option_peek = packet.lookahead<bit<8>>();
        packet.extract(hdr.options, (bit<32>)(((bit<16>)hdr.ipv4.ihl - 5) * 32));
        transition parse_l4;
    }

    state parse_l4 {
        transition select(hdr.ipv4.protocol) {
            17: parse_udp;
            default: accept;
        }
    }

    state parse_udp {
        packet.extract(hdr.udp);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyIngress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    action forward(bit<9> port) {
        standard_metadata.egress_spec = port;
    }
    action pop_label(bit<9> port) {
        hdr.labels.pop_front(1);
        standard_metadata.egress_spec = port;
    }
    action push_label(bit<20> label, bit<9> port) {
        hdr.labels.push_front(1);
        hdr.labels[0].setValid();
        hdr.labels[0].label = label;
        hdr.labels[0].ttl = 64;
        hdr.labels[0].bos = hdr.labels[1].isValid() ? 1w0 : 1w1;
        standard_metadata.egress_spec = port;
    }
    action strip_options(bit<9> port) {
        hdr.options.setInvalid();
        hdr.ipv4.ihl = 5;
        standard_metadata.egress_spec = port;
    }
    action chop(bit<32> length, bit<9> port) {
        truncate(length);
        standard_metadata.egress_spec = port;
    }
    action stop_here(bit<9> port) {
        standard_metadata.egress_spec = port;
        exit;
    }

    table op {
        key = { hdr.ethernet.dstAddr: exact; }
        actions = { forward; pop_label; push_label; strip_options; chop; stop_here; }
        default_action = forward(1);
    }

    apply {
        op.apply();
        if (standard_metadata.parser_error == error.PacketTooShort) {
            hdr.ethernet.srcAddr = 1;
        } else if (standard_metadata.parser_error == error.StackOutOfBounds) {
            hdr.ethernet.srcAddr = 2;
        } else if (standard_metadata.parser_error == error.IPv4BadHeaderLength) {
            hdr.ethernet.srcAddr = 3;
        }
        if (hdr.options.isValid()) {
            hdr.peek.setValid();
            hdr.peek.first_option_byte = meta.option_peek;
        }
        hdr.ethernet.dstAddr[7:0] = (bit<8>)meta.last_label;
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
        packet.emit(hdr.labels);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.options);
        packet.emit(hdr.udp);
        packet.emit(hdr.peek);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(),
         MyComputeChecksum(), MyDeparser()) main;
