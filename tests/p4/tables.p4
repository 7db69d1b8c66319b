/* Engine test program: every match kind, priorities, const entries,
 * action selectors, direct and indirect counters, meters and registers.
 *
 * Frame: ethernet / ipv4 / udp.  The result of each table lands in a
 * 'report' header appended after udp, so tests read it off the wire.
 */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
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

header udp_t {
    bit<16> srcPort;
    bit<16> dstPort;
    bit<16> length;
    bit<16> checksum;
}

header report_t {
    bit<8>  acl;        /* ternary/range/optional table result */
    bit<8>  route;      /* exact+lpm table result */
    bit<8>  konst;      /* const-entries table result */
    bit<8>  member;     /* action selector result */
    bit<8>  color;      /* meter colour */
    bit<32> seen;       /* register: packets seen from this source port */
}

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
    udp_t      udp;
    report_t   report;
}

struct metadata { }

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
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
    direct_counter(CounterType.packets_and_bytes) acl_hits;
    counter(16, CounterType.packets_and_bytes) port_packets;
    meter(16, MeterType.packets) port_meter;
    register<bit<32>>(1024) seen_by_source;
    action_selector(HashAlgorithm.crc16, 32w64, 32w16) spread;

    action mark_acl(bit<8> value) {
        hdr.report.acl = value;
        acl_hits.count();
    }
    action acl_miss() {
        hdr.report.acl = 0xEE;
        acl_hits.count();
    }
    table acl {
        key = {
            hdr.ipv4.srcAddr: ternary;
            hdr.udp.dstPort:  range;
            hdr.ipv4.protocol: optional;
        }
        actions = { mark_acl; acl_miss; }
        default_action = acl_miss();
        counters = acl_hits;
        size = 64;
    }

    action set_route(bit<8> value, bit<9> port) {
        hdr.report.route = value;
        standard_metadata.egress_spec = port;
    }
    action no_route() {
        hdr.report.route = 0xEE;
        mark_to_drop(standard_metadata);
    }
    table route {
        key = {
            standard_metadata.ingress_port: exact;
            hdr.ipv4.dstAddr: lpm;
        }
        actions = { set_route; no_route; }
        default_action = no_route();
        size = 16;
    }

    action set_konst(bit<8> value) {
        hdr.report.konst = value;
    }
    table konst {
        key = { hdr.udp.srcPort: ternary; }
        actions = { set_konst; }
        const entries = {
            16w0x1000 &&& 16w0xF000: set_konst(1);
            16w0x1200 &&& 16w0xFF00: set_konst(2);
            _: set_konst(3);
        }
        default_action = set_konst(0xEE);
    }

    action pick(bit<8> value) {
        hdr.report.member = value;
    }
    table spread_table {
        key = {
            hdr.ipv4.dstAddr: exact;
            hdr.udp.srcPort: selector;
            hdr.udp.dstPort: selector;
        }
        actions = { pick; }
        implementation = spread;
        size = 16;
    }

    apply {
        if (hdr.udp.isValid()) {
            hdr.report.setValid();
            acl.apply();
            route.apply();
            konst.apply();
            spread_table.apply();
            bit<32> index = (bit<32>)standard_metadata.ingress_port;
            port_packets.count(index);
            port_meter.execute_meter(index, hdr.report.color);
            bit<32> seen;
            seen_by_source.read(seen, (bit<32>)hdr.udp.srcPort[9:0]);
            seen = seen + 1;
            seen_by_source.write((bit<32>)hdr.udp.srcPort[9:0], seen);
            hdr.report.seen = seen;
        }
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
        packet.emit(hdr.ipv4);
        packet.emit(hdr.udp);
        packet.emit(hdr.report);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(),
         MyComputeChecksum(), MyDeparser()) main;
