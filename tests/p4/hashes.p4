/* Engine test program: every hash algorithm of v1model over the same
 * fields, checksum verification, and arithmetic corner cases (signed
 * values, saturating arithmetic, shifts, slices, concatenation).
 * Results are written into a 'result' header after the input header.
 */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header input_t {
    bit<32> a;
    bit<32> b;
    bit<16> c;
    bit<16> sum;      /* csum16 over a, b, c: verified by the parser */
    int<8>  s;
    bit<8>  u;
}

header result_t {
    bit<16> crc16;
    bit<32> crc32;
    bit<16> csum16;
    bit<16> identity;
    bit<16> xor16;
    bit<16> crc16_custom;
    bit<32> crc32_custom;
    bit<8>  checksum_error;
    int<8>  s_plus;       /* s + 100, wraps */
    bit<8>  u_sat;        /* u |+| 200 */
    int<8>  s_sat;        /* s |-| 100 */
    bit<8>  shifted;      /* (u << 3) >> 1 */
    bit<16> concat;       /* u ++ a[7:0] */
    bit<8>  neg;          /* ~u */
    bit<8>  cmp;          /* (s < 0) ? 1 : 0, signed comparison */
    bit<8>  sub;          /* u - 200, wraps */
}

struct headers {
    ethernet_t ethernet;
    input_t    input;
    result_t   result;
}

struct metadata { }

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x7777: parse_input;
            default: accept;
        }
    }
    state parse_input {
        packet.extract(hdr.input);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply {
        verify_checksum(hdr.input.isValid(),
                        { hdr.input.a, hdr.input.b, hdr.input.c },
                        hdr.input.sum, HashAlgorithm.csum16);
    }
}

control MyIngress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    apply {
        standard_metadata.egress_spec = 2;
        if (!hdr.input.isValid()) {
            return;
        }
        hdr.result.setValid();
        hash(hdr.result.crc16, HashAlgorithm.crc16, 16w0,
             { hdr.input.a, hdr.input.b, hdr.input.c }, 32w65536);
        hash(hdr.result.crc32, HashAlgorithm.crc32, 32w0,
             { hdr.input.a, hdr.input.b, hdr.input.c }, 64w4294967296);
        hash(hdr.result.csum16, HashAlgorithm.csum16, 16w0,
             { hdr.input.a, hdr.input.b, hdr.input.c }, 32w65536);
        hash(hdr.result.identity, HashAlgorithm.identity, 16w0,
             { hdr.input.c }, 32w65536);
        hash(hdr.result.xor16, HashAlgorithm.xor16, 16w0,
             { hdr.input.a, hdr.input.b, hdr.input.c }, 32w65536);
        hash(hdr.result.crc16_custom, HashAlgorithm.crc16_custom, 16w0,
             { hdr.input.a, hdr.input.b }, 32w65536);
        hash(hdr.result.crc32_custom, HashAlgorithm.crc32_custom, 32w0,
             { hdr.input.a, hdr.input.b }, 64w4294967296);
        hdr.result.checksum_error = (bit<8>)standard_metadata.checksum_error;
        hdr.result.s_plus = hdr.input.s + 100;
        hdr.result.u_sat = hdr.input.u |+| 200;
        hdr.result.s_sat = hdr.input.s |-| 100;
        hdr.result.shifted = (hdr.input.u << 3) >> 1;
        hdr.result.concat = hdr.input.u ++ hdr.input.a[7:0];
        hdr.result.neg = ~hdr.input.u;
        hdr.result.cmp = (hdr.input.s < 0) ? 8w1 : 8w0;
        hdr.result.sub = hdr.input.u - 200;
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
        packet.emit(hdr.input);
        packet.emit(hdr.result);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(),
         MyComputeChecksum(), MyDeparser()) main;
