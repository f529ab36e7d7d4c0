/* Unit tests for lib/packets: Ethernet/802.1Q/IPv4/UDP build and parse. */

#include <config.h>
#include "unit.h"
#include "packets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_MAX 2048

/* A reference frame description used by most tests. */
static void
sample_pkt(struct pkt_udp *pkt, bool vlan, const uint8_t *payload,
           size_t payload_len)
{
    static const struct eth_addr dst = { { 0x0a, 0xc4, 0, 0, 0, 7 } };
    static const struct eth_addr src = { { 0x0a, 0xc4, 0, 0, 0, 0 } };

    memset(pkt, 0, sizeof *pkt);
    pkt->eth_dst = dst;
    pkt->eth_src = src;
    pkt->vlan = vlan;
    pkt->vid = vlan ? 4094 : 0;
    pkt->pcp = vlan ? 5 : 0;
    pkt->ip_src = 0xa9fe0001;
    pkt->ip_dst = 0xa9fe0107;
    pkt->ttl = 64;
    pkt->tos = 0x10;
    pkt->udp_src = 7433;
    pkt->udp_dst = 7433;
    pkt->payload = payload;
    pkt->payload_len = payload_len;
}

/* Builds the sample frame into 'buf'; returns its length. */
static size_t
build_sample(uint8_t *buf, bool vlan)
{
    static const uint8_t payload[] = "hello, channel";
    struct pkt_udp pkt;
    size_t len = 0;

    sample_pkt(&pkt, vlan, payload, sizeof payload - 1);
    CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, buf, FRAME_MAX, &len), PKT_OK);
    return len;
}

/* Parses 'len' bytes of 'buf' from an exactly sized heap copy, so that
 * AddressSanitizer catches any read past the end. */
static enum pkt_error
parse_copy(const uint8_t *buf, size_t len, unsigned int flags,
           struct pkt_udp *pkt)
{
    uint8_t *copy = malloc(len ? len : 1);
    enum pkt_error error;

    memcpy(copy, buf, len);
    error = pkt_udp_parse(copy, len, flags, pkt);
    if (!error) {
        /* Re-point the payload into the caller's buffer before freeing. */
        pkt->payload = buf + (pkt->payload - copy);
    }
    free(copy);
    return error;
}

static void
assert_pkt_equal(const struct pkt_udp *a, const struct pkt_udp *b)
{
    CU_ASSERT(eth_addr_equals(&a->eth_dst, &b->eth_dst));
    CU_ASSERT(eth_addr_equals(&a->eth_src, &b->eth_src));
    CU_ASSERT_EQUAL(a->vlan, b->vlan);
    if (a->vlan) {
        CU_ASSERT_EQUAL(a->vid, b->vid);
        CU_ASSERT_EQUAL(a->pcp, b->pcp);
    }
    CU_ASSERT_EQUAL(a->ip_src, b->ip_src);
    CU_ASSERT_EQUAL(a->ip_dst, b->ip_dst);
    CU_ASSERT_EQUAL(a->ttl, b->ttl);
    CU_ASSERT_EQUAL(a->tos, b->tos);
    CU_ASSERT_EQUAL(a->udp_src, b->udp_src);
    CU_ASSERT_EQUAL(a->udp_dst, b->udp_dst);
    CU_ASSERT_EQUAL_FATAL(a->payload_len, b->payload_len);
    if (a->payload_len) {
        CU_ASSERT(!memcmp(a->payload, b->payload, a->payload_len));
    }
}

/* Offsets in the sample frame. */
static size_t
ip_ofs(bool vlan)
{
    return ETH_HEADER_LEN + (vlan ? VLAN_HEADER_LEN : 0);
}

static size_t
udp_ofs(bool vlan)
{
    return ip_ofs(vlan) + IP_HEADER_LEN;
}

/* Recomputes the IPv4 header checksum of the frame in 'buf'. */
static void
fix_ip_csum(uint8_t *buf, bool vlan)
{
    uint8_t *ip = buf + ip_ofs(vlan);
    pkt_put_be16(ip + 10, 0);
    pkt_put_be16(ip + 10, pkt_csum(ip, IP_HEADER_LEN));
}

/* Recomputes the UDP checksum of the frame in 'buf' (UDP length taken from
 * the UDP header). */
static void
fix_udp_csum(uint8_t *buf, bool vlan)
{
    uint8_t *ip = buf + ip_ofs(vlan);
    uint8_t *udp = buf + udp_ofs(vlan);
    size_t udp_len = pkt_get_be16(udp + 4);
    uint8_t pseudo[12];
    uint16_t csum;

    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = IP_PROTO_UDP;
    pkt_put_be16(pseudo + 10, udp_len);
    pkt_put_be16(udp + 6, 0);
    csum = pkt_csum_finish(pkt_csum_add(pkt_csum_add(0, pseudo, 12),
                                        udp, udp_len));
    pkt_put_be16(udp + 6, csum ? csum : 0xffff);
}

/* Checksum helper. */

static void
test_csum_vectors(void)
{
    /* RFC 1071 section 3 example: one's complement sum 0xddf2. */
    static const uint8_t rfc1071[] = {
        0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7
    };
    CU_ASSERT_EQUAL(pkt_csum(rfc1071, sizeof rfc1071), 0x220d);

    /* A well-known IPv4 header whose checksum is 0xb861. */
    uint8_t ip[] = {
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
        0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7
    };
    CU_ASSERT_EQUAL(pkt_csum(ip, sizeof ip), 0xb861);
    pkt_put_be16(ip + 10, 0xb861);
    CU_ASSERT_EQUAL(pkt_csum(ip, sizeof ip), 0);

    /* Odd length: the last byte is padded with a zero. */
    static const uint8_t odd[] = { 0x12, 0x34, 0x56 };
    CU_ASSERT_EQUAL(pkt_csum(odd, 3), (uint16_t) ~(0x1234 + 0x5600));

    /* Empty buffer. */
    CU_ASSERT_EQUAL(pkt_csum(NULL, 0), 0xffff);

    /* Splitting at an even offset gives the same result. */
    uint8_t big[1001];
    uint64_t state = 1;
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = unit_random(&state);
    }
    uint16_t whole = pkt_csum(big, sizeof big);
    for (size_t split = 0; split <= sizeof big; split += 2) {
        uint32_t sum = pkt_csum_add(0, big, split);
        sum = pkt_csum_add(sum, big + split, sizeof big - split);
        CU_ASSERT_EQUAL(pkt_csum_finish(sum), whole);
    }

    /* A long buffer of 0xff bytes must not overflow the 32-bit sum. */
    size_t n = 1 << 20;
    uint8_t *ff = malloc(n);
    memset(ff, 0xff, n);
    CU_ASSERT_EQUAL(pkt_csum(ff, n), 0);
    free(ff);
}

/* Address helpers. */

static void
test_eth_addr_strings(void)
{
    struct eth_addr ea;
    char buf[ETH_ADDR_STRLEN];

    CU_ASSERT(eth_addr_from_string("0a:c4:00:00:00:07", &ea));
    CU_ASSERT_EQUAL(ea.ea[0], 0x0a);
    CU_ASSERT_EQUAL(ea.ea[1], 0xc4);
    CU_ASSERT_EQUAL(ea.ea[5], 0x07);
    CU_ASSERT_STRING_EQUAL(eth_addr_to_string(&ea, buf),
                           "0a:c4:00:00:00:07");

    CU_ASSERT(eth_addr_from_string("FF:fF:Ab:cD:00:9e", &ea));
    CU_ASSERT_STRING_EQUAL(eth_addr_to_string(&ea, buf),
                           "ff:ff:ab:cd:00:9e");
    CU_ASSERT(eth_addr_is_multicast(&ea));
    CU_ASSERT(eth_addr_is_local(&ea));

    static const char *const bad[] = {
        "", "0a", "0a:c4:00:00:00", "0a:c4:00:00:00:07:",
        "0a:c4:00:00:00:07:08",
        "0a-c4-00-00-00-07", "0a:c4:0:00:00:07", "0a:c4:000:00:00:07",
        "0g:c4:00:00:00:07", " 0a:c4:00:00:00:07", "0a:c4:00:00:00:07 ",
        "0a:c4::00:00:07", "0ac4.0000.0007", "0a:c4:00:00:00:7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (eth_addr_from_string(bad[i], &ea)) {
            CU_FAIL("bad MAC accepted");
            fprintf(stderr, "accepted MAC \"%s\"\n", bad[i]);
        }
    }

    memset(&ea, 0, sizeof ea);
    CU_ASSERT(eth_addr_is_zero(&ea));
    CU_ASSERT(!eth_addr_is_multicast(&ea));
    ea.ea[5] = 1;
    CU_ASSERT(!eth_addr_is_zero(&ea));
}

static void
test_ip_strings(void)
{
    char buf[IP_STRLEN];
    uint32_t ip;

    CU_ASSERT(ip_from_string("169.254.0.1", &ip));
    CU_ASSERT_EQUAL(ip, 0xa9fe0001);
    CU_ASSERT_STRING_EQUAL(ip_to_string(ip, buf), "169.254.0.1");
    CU_ASSERT(ip_from_string("0.0.0.0", &ip));
    CU_ASSERT_EQUAL(ip, 0);
    CU_ASSERT(ip_from_string("255.255.255.255", &ip));
    CU_ASSERT_EQUAL(ip, 0xffffffff);
    CU_ASSERT_STRING_EQUAL(ip_to_string(ip, buf), "255.255.255.255");
    CU_ASSERT(ip_from_string("10.0.100.200", &ip));
    CU_ASSERT_EQUAL(ip, 0x0a0064c8);

    static const char *const bad[] = {
        "", "1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.256",
        "01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "1..3.4",
        "a.b.c.d", "1.2.3.-4", "1.2.3.+4", "1.2.3.4/24", "1.2.3.", ".1.2.3",
        "0x1.2.3.4", "1000.1.1.1", "1.2.3.4.",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ip = 12345;
        if (ip_from_string(bad[i], &ip)) {
            CU_FAIL("bad IP accepted");
            fprintf(stderr, "accepted IP \"%s\"\n", bad[i]);
        }
        CU_ASSERT_EQUAL(ip, 12345);
    }

    /* Every formatted address parses back to itself. */
    uint64_t state = 7;
    for (int i = 0; i < 10000; i++) {
        uint32_t a = unit_random(&state), b = 0;
        CU_ASSERT(ip_from_string(ip_to_string(a, buf), &b));
        CU_ASSERT_EQUAL(a, b);
    }
}

static void
test_strerror(void)
{
    for (int i = 0; i < PKT_N_ERRORS; i++) {
        CU_ASSERT_PTR_NOT_NULL(pkt_strerror(i));
        CU_ASSERT_PTR_NOT_NULL(pkt_error_name(i));
        for (int j = 0; j < i; j++) {
            CU_ASSERT(strcmp(pkt_strerror(i), pkt_strerror(j)));
            CU_ASSERT(strcmp(pkt_error_name(i), pkt_error_name(j)));
        }
    }
    CU_ASSERT_STRING_EQUAL(pkt_strerror(PKT_OK), "success");
    CU_ASSERT_PTR_NOT_NULL(pkt_strerror(PKT_N_ERRORS));
    CU_ASSERT_PTR_NOT_NULL(pkt_strerror(-1));
}

/* Builder. */

static void
test_build_layout(void)
{
    uint8_t buf[FRAME_MAX];
    size_t len = build_sample(buf, true);

    CU_ASSERT_EQUAL(len, pkt_udp_frame_len(14, true));
    CU_ASSERT_EQUAL(len, 14 + 4 + 20 + 8 + 14);

    /* Ethernet + 802.1Q: PCP 5, VID 4094 -> TCI 0xaffe. */
    static const uint8_t eth[] = {
        0x0a, 0xc4, 0, 0, 0, 7, 0x0a, 0xc4, 0, 0, 0, 0,
        0x81, 0x00, 0xaf, 0xfe, 0x08, 0x00,
    };
    CU_ASSERT(!memcmp(buf, eth, sizeof eth));

    const uint8_t *ip = buf + 18;
    CU_ASSERT_EQUAL(ip[0], 0x45);
    CU_ASSERT_EQUAL(ip[1], 0x10);
    CU_ASSERT_EQUAL(pkt_get_be16(ip + 2), 20 + 8 + 14);
    CU_ASSERT_EQUAL(pkt_get_be16(ip + 4), 0);
    CU_ASSERT_EQUAL(pkt_get_be16(ip + 6), IP_DF);
    CU_ASSERT_EQUAL(ip[8], 64);
    CU_ASSERT_EQUAL(ip[9], IP_PROTO_UDP);
    CU_ASSERT_EQUAL(pkt_get_be32(ip + 12), 0xa9fe0001);
    CU_ASSERT_EQUAL(pkt_get_be32(ip + 16), 0xa9fe0107);
    CU_ASSERT_EQUAL(pkt_csum(ip, 20), 0);

    const uint8_t *udp = ip + 20;
    CU_ASSERT_EQUAL(pkt_get_be16(udp), 7433);
    CU_ASSERT_EQUAL(pkt_get_be16(udp + 2), 7433);
    CU_ASSERT_EQUAL(pkt_get_be16(udp + 4), 8 + 14);
    CU_ASSERT_NOT_EQUAL(pkt_get_be16(udp + 6), 0);
    CU_ASSERT(!memcmp(udp + 8, "hello, channel", 14));

    /* Untagged. */
    len = build_sample(buf, false);
    CU_ASSERT_EQUAL(len, 14 + 20 + 8 + 14);
    CU_ASSERT_EQUAL(pkt_get_be16(buf + 12), ETH_TYPE_IP);
    CU_ASSERT_EQUAL(buf[14], 0x45);
}

static void
test_build_nospace(void)
{
    uint8_t buf[FRAME_MAX];
    uint8_t payload[100];
    struct pkt_udp pkt;
    size_t len;

    memset(payload, 'x', sizeof payload);
    for (int vlan = 0; vlan < 2; vlan++) {
        sample_pkt(&pkt, vlan, payload, sizeof payload);
        size_t need = pkt_udp_frame_len(sizeof payload, vlan);
        for (size_t size = 0; size < need; size++) {
            uint8_t *exact = malloc(size ? size : 1);
            len = 12345;
            CU_ASSERT_EQUAL(pkt_udp_build(&pkt, exact, size, &len),
                            PKT_ERR_NOSPACE);
            CU_ASSERT_EQUAL(len, 12345);
            free(exact);
        }
        CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, need, &len), PKT_OK);
        CU_ASSERT_EQUAL(len, need);
    }
}

static void
test_build_invalid(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp pkt;
    size_t len;

    sample_pkt(&pkt, true, NULL, 0);
    pkt.vid = 4096;
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                    PKT_ERR_INVALID);
    pkt.vid = 4095;                   /* Legal 802.1Q, if unusual. */
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len), PKT_OK);
    pkt.vid = 1;
    pkt.pcp = 8;
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                    PKT_ERR_INVALID);

    /* vid/pcp are ignored without a tag. */
    pkt.vlan = false;
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len), PKT_OK);

    sample_pkt(&pkt, false, NULL, 5);
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                    PKT_ERR_INVALID);

    /* Largest payload one IPv4 packet can carry, and one byte more. */
    size_t max = PKT_MAX_UDP_PAYLOAD;
    uint8_t *payload = calloc(1, max + 1);
    uint8_t *big = malloc(pkt_udp_frame_len(max + 1, true));
    sample_pkt(&pkt, true, payload, max);
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, big, pkt_udp_frame_len(max, true),
                                  &len), PKT_OK);
    CU_ASSERT_EQUAL(pkt_get_be16(big + 18 + 2), 65535);
    struct pkt_udp out;
    CU_ASSERT_EQUAL(pkt_udp_parse(big, len, 0, &out), PKT_OK);
    CU_ASSERT_EQUAL(out.payload_len, max);
    pkt.payload_len = max + 1;
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, big,
                                  pkt_udp_frame_len(max + 1, true), &len),
                    PKT_ERR_INVALID);
    free(payload);
    free(big);
}

/* A payload whose UDP checksum computes to 0 is sent with 0xffff. */
static void
test_build_csum_ffff(void)
{
    uint8_t buf[FRAME_MAX];
    uint8_t payload[2];
    struct pkt_udp pkt, out;
    size_t len;
    bool found = false;

    for (unsigned int x = 0; x <= 0xffff && !found; x++) {
        pkt_put_be16(payload, x);
        sample_pkt(&pkt, true, payload, 2);
        CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                              PKT_OK);
        uint16_t csum = pkt_get_be16(buf + udp_ofs(true) + 6);
        CU_ASSERT_NOT_EQUAL_FATAL(csum, 0);
        if (csum == 0xffff) {
            found = true;
            CU_ASSERT_EQUAL(parse_copy(buf, len, PKT_PARSE_REQUIRE_UDP_CSUM,
                                       &out), PKT_OK);
            CU_ASSERT(out.udp_csum_present);
        }
    }
    CU_ASSERT(found);
}

/* Parser. */

static void
test_round_trip(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp pkt, out;
    size_t len;

    for (int vlan = 0; vlan < 2; vlan++) {
        len = build_sample(buf, vlan);
        sample_pkt(&pkt, vlan, (const uint8_t *) "hello, channel", 14);
        CU_ASSERT_EQUAL_FATAL(parse_copy(buf, len, 0, &out), PKT_OK);
        assert_pkt_equal(&pkt, &out);
        CU_ASSERT(out.udp_csum_present);
        CU_ASSERT(out.payload == buf + udp_ofs(vlan) + UDP_HEADER_LEN);
        CU_ASSERT_EQUAL(pkt_udp_parse(buf, len, PKT_PARSE_REQUIRE_UDP_CSUM,
                                      &out), PKT_OK);
    }

    /* Empty payload. */
    sample_pkt(&pkt, true, NULL, 0);
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len), PKT_OK);
    CU_ASSERT_EQUAL(len, 18 + 28);
    CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_OK);
    CU_ASSERT_EQUAL(out.payload_len, 0);

    /* VID 0 (priority tag) is parsed as a tag. */
    sample_pkt(&pkt, true, NULL, 0);
    pkt.vid = 0;
    pkt.pcp = 7;
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len), PKT_OK);
    CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_OK);
    CU_ASSERT(out.vlan);
    CU_ASSERT_EQUAL(out.vid, 0);
    CU_ASSERT_EQUAL(out.pcp, 7);
}

static void
test_padding_ignored(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (int vlan = 0; vlan < 2; vlan++) {
        size_t len = build_sample(buf, vlan);
        for (size_t pad = 1; pad <= 64; pad++) {
            memset(buf + len, pad & 1 ? 0 : 0xa5, pad);
            CU_ASSERT_EQUAL(parse_copy(buf, len + pad, 0, &out), PKT_OK);
            CU_ASSERT_EQUAL(out.payload_len, 14);
            CU_ASSERT(!memcmp(out.payload, "hello, channel", 14));
        }
    }

    /* A tiny frame padded to the 60-byte Ethernet minimum. */
    struct pkt_udp pkt;
    size_t len;
    sample_pkt(&pkt, false, (const uint8_t *) "x", 1);
    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, sizeof buf, &len), PKT_OK);
    CU_ASSERT_EQUAL(len, 43);
    memset(buf + len, 0, 60 - len);
    CU_ASSERT_EQUAL(parse_copy(buf, 60, 0, &out), PKT_OK);
    CU_ASSERT_EQUAL(out.payload_len, 1);
}

static void
test_reject_eth_trunc(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    build_sample(buf, false);
    for (size_t len = 0; len < ETH_HEADER_LEN; len++) {
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_ETH_TRUNC);
    }
}

static void
test_reject_vlan_trunc(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    build_sample(buf, true);
    for (size_t len = ETH_HEADER_LEN; len < ETH_HEADER_LEN + 4; len++) {
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_VLAN_TRUNC);
    }
}

static void
test_reject_eth_type(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;
    size_t len;

    /* Untagged IPv6, ARP, 802.1ad outer tag. */
    static const uint16_t types[] = { 0x86dd, 0x0806, 0x88a8, 0x0000,
                                      0xffff, 0x0801 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        len = build_sample(buf, false);
        pkt_put_be16(buf + 12, types[i]);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_ETH_TYPE);

        /* The same after a tag. */
        len = build_sample(buf, true);
        if (types[i] != ETH_TYPE_VLAN_8021AD) {
            pkt_put_be16(buf + 16, types[i]);
            CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_ETH_TYPE);
        }
    }

    /* A tag followed by the IPv4 ethertype and nothing else. */
    len = build_sample(buf, true);
    CU_ASSERT_EQUAL(parse_copy(buf, 18, 0, &out), PKT_ERR_IP_TRUNC);
}

static void
test_reject_vlan_double(void)
{
    static const uint16_t inner[] = { ETH_TYPE_VLAN, ETH_TYPE_VLAN_8021AD,
                                      ETH_TYPE_VLAN_QINQ };
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
        size_t len = build_sample(buf, true);
        pkt_put_be16(buf + 16, inner[i]);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_VLAN_DOUBLE);
    }

    /* A real QinQ frame: insert a second tag. */
    uint8_t qinq[FRAME_MAX];
    size_t len = build_sample(buf, true);
    memcpy(qinq, buf, 16);
    pkt_put_be16(qinq + 16, ETH_TYPE_VLAN);
    pkt_put_be16(qinq + 18, 100);
    memcpy(qinq + 20, buf + 16, len - 16);
    CU_ASSERT_EQUAL(parse_copy(qinq, len + 4, 0, &out), PKT_ERR_VLAN_DOUBLE);
}

static void
test_reject_ip_trunc(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (int vlan = 0; vlan < 2; vlan++) {
        build_sample(buf, vlan);
        size_t ofs = ip_ofs(vlan);
        for (size_t len = ofs; len < ofs + IP_HEADER_LEN; len++) {
            CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_TRUNC);
        }
    }
}

static void
test_reject_ip_version(void)
{
    static const uint8_t versions[] = { 0, 1, 5, 6, 15 };
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (size_t i = 0; i < sizeof versions; i++) {
        size_t len = build_sample(buf, true);
        buf[18] = versions[i] << 4 | 5;
        fix_ip_csum(buf, true);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_VERSION);
    }
}

static void
test_reject_ip_ihl(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (int ihl = 0; ihl < 5; ihl++) {
        size_t len = build_sample(buf, true);
        buf[18] = 0x40 | ihl;
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_IHL);
    }
}

static void
test_reject_ip_options(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (int ihl = 6; ihl < 16; ihl++) {
        size_t len = build_sample(buf, false);
        buf[14] = 0x40 | ihl;
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_OPTIONS);
    }

    /* A genuine header with a 4-byte option (NOP x3, EOL). */
    uint8_t opt[FRAME_MAX];
    size_t len = build_sample(buf, false);
    memcpy(opt, buf, 34);
    memset(opt + 34, 0, 4);
    opt[34] = opt[35] = opt[36] = 1;
    memcpy(opt + 38, buf + 34, len - 34);
    opt[14] = 0x46;
    pkt_put_be16(opt + 16, pkt_get_be16(buf + 16) + 4);
    pkt_put_be16(opt + 24, 0);
    pkt_put_be16(opt + 24, pkt_csum(opt + 14, 24));
    CU_ASSERT_EQUAL(parse_copy(opt, len + 4, 0, &out), PKT_ERR_IP_OPTIONS);
}

static void
test_reject_ip_len(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (int vlan = 0; vlan < 2; vlan++) {
        size_t len = build_sample(buf, vlan);
        uint8_t *ip = buf + ip_ofs(vlan);
        size_t ip_len = pkt_get_be16(ip + 2);

        /* Claims more than the frame holds. */
        static const size_t extra[] = { 1, 2, 100, 65535 };
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            size_t claim = ip_len + extra[i] > 65535 ? 65535
                           : ip_len + extra[i];
            pkt_put_be16(ip + 2, claim);
            fix_ip_csum(buf, vlan);
            CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_LEN);
        }

        /* Shorter than the IPv4 header itself. */
        for (size_t claim = 0; claim < IP_HEADER_LEN; claim++) {
            pkt_put_be16(ip + 2, claim);
            fix_ip_csum(buf, vlan);
            CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_LEN);
        }
    }
}

static void
test_reject_ip_csum(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    /* Every single-bit error in the checksum field, and in the addresses,
     * TTL and ID (fields no other check looks at). */
    for (int bit = 0; bit < 16; bit++) {
        size_t len = build_sample(buf, true);
        buf[18 + 10 + bit / 8] ^= 1 << (bit % 8);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_CSUM);
    }
    static const size_t fields[] = { 1, 4, 5, 8, 12, 13, 14, 15, 16, 19 };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        size_t len = build_sample(buf, true);
        buf[18 + fields[i]] ^= 0x01;
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_CSUM);
    }
}

static void
test_reject_ip_frag(void)
{
    static const uint16_t frags[] = {
        IP_MF, IP_MF | IP_DF, 1, 0x1fff, IP_DF | 185, IP_MF | 185,
    };
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++) {
        size_t len = build_sample(buf, true);
        pkt_put_be16(buf + 18 + 6, frags[i]);
        fix_ip_csum(buf, true);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_FRAG);
    }

    /* DF alone, no flags, and the reserved bit are not fragments. */
    static const uint16_t ok[] = { 0, IP_DF, 0x8000 };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len = build_sample(buf, true);
        pkt_put_be16(buf + 18 + 6, ok[i]);
        fix_ip_csum(buf, true);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_OK);
    }
}

static void
test_reject_ip_proto(void)
{
    static const uint8_t protos[] = { 0, 1, 6, 16, 18, 58, 132, 136, 255 };
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (size_t i = 0; i < sizeof protos; i++) {
        size_t len = build_sample(buf, true);
        buf[18 + 9] = protos[i];
        fix_ip_csum(buf, true);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_IP_PROTO);
    }
}

static void
test_reject_udp_trunc(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    /* The IPv4 total length leaves room for less than a UDP header; the
     * frame is cut at the same place. */
    for (size_t udp = 0; udp < UDP_HEADER_LEN; udp++) {
        build_sample(buf, true);
        pkt_put_be16(buf + 18 + 2, IP_HEADER_LEN + udp);
        fix_ip_csum(buf, true);
        CU_ASSERT_EQUAL(parse_copy(buf, 18 + 20 + udp, 0, &out),
                        PKT_ERR_UDP_TRUNC);
    }
}

static void
test_reject_udp_len(void)
{
    static const uint16_t lens[] = { 0, 7, 8, 8 + 13, 8 + 15, 8 + 100,
                                     65535 };
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = build_sample(buf, true);
        pkt_put_be16(buf + udp_ofs(true) + 4, lens[i]);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_UDP_LEN);
    }

    /* Consistent UDP length but trailing bytes inside the IP packet:
     * UDP length below IP payload. */
    size_t len = build_sample(buf, true);
    pkt_put_be16(buf + 18 + 2, pkt_get_be16(buf + 18 + 2) + 2);
    fix_ip_csum(buf, true);
    buf[len] = buf[len + 1] = 0;
    fix_udp_csum(buf, true);
    CU_ASSERT_EQUAL(parse_copy(buf, len + 2, 0, &out), PKT_ERR_UDP_LEN);
}

static void
test_reject_udp_csum(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    /* Any bit error in the UDP header or payload, and in the IP addresses
     * covered by the pseudo-header when the IP checksum is fixed up. */
    size_t len = build_sample(buf, true);
    for (size_t ofs = udp_ofs(true); ofs < len; ofs++) {
        if (ofs == udp_ofs(true) + 4 || ofs == udp_ofs(true) + 5) {
            continue;                 /* UDP length: UDP_LEN error. */
        }
        for (int bit = 0; bit < 8; bit++) {
            build_sample(buf, true);
            buf[ofs] ^= 1 << bit;
            /* (The sample's checksum has more than one bit set, so no
             * single flip turns it into "no checksum".) */
            CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_UDP_CSUM);
        }
    }
    for (size_t ofs = 12; ofs < 20; ofs++) {
        build_sample(buf, true);
        buf[18 + ofs] ^= 0x80;
        fix_ip_csum(buf, true);
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_ERR_UDP_CSUM);
    }
}

static void
test_zero_udp_csum(void)
{
    uint8_t buf[FRAME_MAX];
    struct pkt_udp out;

    size_t len = build_sample(buf, true);
    pkt_put_be16(buf + udp_ofs(true) + 6, 0);
    CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_OK);
    CU_ASSERT(!out.udp_csum_present);
    CU_ASSERT_EQUAL(out.payload_len, 14);
    CU_ASSERT_EQUAL(parse_copy(buf, len, PKT_PARSE_REQUIRE_UDP_CSUM, &out),
                    PKT_ERR_UDP_NO_CSUM);

    /* With no checksum, payload damage goes unnoticed (that is the point
     * of the option). */
    buf[len - 1] ^= 0xff;
    CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_OK);
}

/* A table of malformed frames, each built from the tagged sample by a list
 * of byte patches, with the expected error. */
struct patch {
    int ofs;                    /* -1 ends the list. */
    uint8_t value;
};

static void
test_malformed_table(void)
{
    static const struct {
        const char *name;
        size_t len;             /* 0: the sample's length. */
        bool fix_ip;
        bool fix_udp;
        struct patch patches[4];
        enum pkt_error error;
    } cases[] = {
        { "runt", 10, false, false, { { -1, 0 } }, PKT_ERR_ETH_TRUNC },
        { "tag only", 16, false, false, { { -1, 0 } }, PKT_ERR_VLAN_TRUNC },
        { "ipv6 after tag", 0, false, false,
          { { 16, 0x86 }, { 17, 0xdd }, { -1, 0 } }, PKT_ERR_ETH_TYPE },
        { "arp after tag", 0, false, false,
          { { 16, 0x08 }, { 17, 0x06 }, { -1, 0 } }, PKT_ERR_ETH_TYPE },
        { "s-tag outer", 0, false, false,
          { { 12, 0x88 }, { 13, 0xa8 }, { -1, 0 } }, PKT_ERR_ETH_TYPE },
        { "c-tag in c-tag", 0, false, false,
          { { 16, 0x81 }, { 17, 0x00 }, { -1, 0 } }, PKT_ERR_VLAN_DOUBLE },
        { "short ip", 30, false, false, { { -1, 0 } }, PKT_ERR_IP_TRUNC },
        { "ipv6 version", 0, true, false,
          { { 18, 0x65 }, { -1, 0 } }, PKT_ERR_IP_VERSION },
        { "ihl 4", 0, true, false,
          { { 18, 0x44 }, { -1, 0 } }, PKT_ERR_IP_IHL },
        { "ihl 15", 0, true, false,
          { { 18, 0x4f }, { -1, 0 } }, PKT_ERR_IP_OPTIONS },
        { "total length 0xffff", 0, true, false,
          { { 20, 0xff }, { 21, 0xff }, { -1, 0 } }, PKT_ERR_IP_LEN },
        { "bad ip csum", 0, false, false,
          { { 28, 0x00 }, { 29, 0x00 }, { -1, 0 } }, PKT_ERR_IP_CSUM },
        { "more fragments", 0, true, false,
          { { 24, 0x20 }, { -1, 0 } }, PKT_ERR_IP_FRAG },
        { "fragment offset", 0, true, false,
          { { 24, 0x40 }, { 25, 0x01 }, { -1, 0 } }, PKT_ERR_IP_FRAG },
        { "tcp", 0, true, false,
          { { 27, 6 }, { -1, 0 } }, PKT_ERR_IP_PROTO },
        { "udp len short", 0, false, true,
          { { 42, 0x00 }, { 43, 0x10 }, { -1, 0 } }, PKT_ERR_UDP_LEN },
        { "udp len long", 0, false, true,
          { { 42, 0x01 }, { 43, 0x00 }, { -1, 0 } }, PKT_ERR_UDP_LEN },
        { "payload damaged", 0, false, false,
          { { 46, 'H' }, { -1, 0 } }, PKT_ERR_UDP_CSUM },
        { "udp port changed", 0, false, false,
          { { 39, 0x0a }, { -1, 0 } }, PKT_ERR_UDP_CSUM },
        { "fixed-up port change", 0, false, true,
          { { 39, 0x0a }, { -1, 0 } }, PKT_OK },
        { "fixed-up ttl change", 0, true, false,
          { { 26, 1 }, { -1, 0 } }, PKT_OK },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[FRAME_MAX];
        struct pkt_udp out;
        size_t len = build_sample(buf, true);

        for (const struct patch *p = cases[i].patches; p->ofs >= 0; p++) {
            buf[p->ofs] = p->value;
        }
        if (cases[i].fix_ip) {
            fix_ip_csum(buf, true);
        }
        if (cases[i].fix_udp) {
            fix_udp_csum(buf, true);
        }
        enum pkt_error error = parse_copy(buf, cases[i].len ? cases[i].len
                                               : len, 0, &out);
        if (error != cases[i].error) {
            fprintf(stderr, "case \"%s\": got %s, expected %s\n",
                    cases[i].name, pkt_error_name(error),
                    pkt_error_name(cases[i].error));
            CU_FAIL("malformed frame case");
        }
    }
}

/* Fills 'pkt' with random valid parameters and 'payload' with random
 * bytes. */
static void
random_pkt(uint64_t *state, struct pkt_udp *pkt, uint8_t *payload,
           size_t max_payload)
{
    memset(pkt, 0, sizeof *pkt);
    for (int i = 0; i < ETH_ADDR_LEN; i++) {
        pkt->eth_dst.ea[i] = unit_random(state);
        pkt->eth_src.ea[i] = unit_random(state);
    }
    pkt->vlan = unit_random(state) & 1;
    if (pkt->vlan) {
        pkt->vid = unit_random(state) & VLAN_VID_MASK;
        pkt->pcp = unit_random(state) & 7;
    }
    pkt->ip_src = unit_random(state);
    pkt->ip_dst = unit_random(state);
    pkt->ttl = unit_random(state);
    pkt->tos = unit_random(state);
    pkt->udp_src = unit_random(state);
    pkt->udp_dst = unit_random(state);
    pkt->payload_len = unit_random(state) % (max_payload + 1);
    for (size_t i = 0; i < pkt->payload_len; i++) {
        payload[i] = unit_random(state);
    }
    pkt->payload = payload;
}

static void
test_random_round_trips(void)
{
    uint64_t state = 0x5eed;
    uint8_t payload[1500];
    uint8_t buf[FRAME_MAX];

    for (int i = 0; i < 5000; i++) {
        struct pkt_udp pkt, out;
        size_t len;

        random_pkt(&state, &pkt, payload, sizeof payload);
        CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                              PKT_OK);
        CU_ASSERT_EQUAL(len, pkt_udp_frame_len(pkt.payload_len, pkt.vlan));
        CU_ASSERT_NOT_EQUAL(pkt_get_be16(buf + len - pkt.payload_len - 2),
                            0);
        enum pkt_error error = parse_copy(buf, len,
                                          PKT_PARSE_REQUIRE_UDP_CSUM, &out);
        CU_ASSERT_EQUAL_FATAL(error, PKT_OK);
        assert_pkt_equal(&pkt, &out);
    }
}

/* Every valid frame cut at every shorter length is rejected, and never
 * read past its end (ASan). */
static void
test_truncated_everywhere(void)
{
    uint64_t state = 0x7a11;
    uint8_t payload[300];
    uint8_t buf[FRAME_MAX];

    for (int i = 0; i < 60; i++) {
        struct pkt_udp pkt, out;
        size_t len;

        random_pkt(&state, &pkt, payload, i < 4 ? 0 : sizeof payload);
        CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                              PKT_OK);
        for (size_t cut = 0; cut < len; cut++) {
            enum pkt_error error = parse_copy(buf, cut, 0, &out);
            CU_ASSERT_NOT_EQUAL(error, PKT_OK);
            CU_ASSERT(error > PKT_ERR_INVALID && error < PKT_N_ERRORS);
        }
        CU_ASSERT_EQUAL(parse_copy(buf, len, 0, &out), PKT_OK);
    }
}

/* Random garbage and random mutations never crash the parser; anything it
 * accepts is self-consistent. */
static void
test_random_garbage(void)
{
    uint64_t state = 0xbad;
    uint8_t buf[FRAME_MAX];
    uint8_t payload[200];

    for (int i = 0; i < 20000; i++) {
        struct pkt_udp pkt, out;
        size_t len;

        if (i % 2) {
            len = unit_random(&state) % 200;
            for (size_t j = 0; j < len; j++) {
                buf[j] = unit_random(&state);
            }
        } else {
            random_pkt(&state, &pkt, payload, sizeof payload);
            CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, buf, sizeof buf, &len),
                                  PKT_OK);
            int n = 1 + unit_random(&state) % 3;
            for (int j = 0; j < n; j++) {
                size_t pos = unit_random(&state) % len;
                buf[pos] = unit_random(&state);
            }
        }
        if (parse_copy(buf, len, 0, &out) == PKT_OK) {
            CU_ASSERT(out.payload >= buf && out.payload <= buf + len);
            CU_ASSERT(out.payload + out.payload_len <= buf + len);
        }
    }
}

static const struct unit_test tests[] = {
    { "checksum vectors", test_csum_vectors },
    { "eth_addr strings", test_eth_addr_strings },
    { "ip strings", test_ip_strings },
    { "strerror", test_strerror },
    { "build layout", test_build_layout },
    { "build no space", test_build_nospace },
    { "build invalid", test_build_invalid },
    { "build udp csum 0xffff", test_build_csum_ffff },
    { "round trip", test_round_trip },
    { "ethernet padding ignored", test_padding_ignored },
    { "reject truncated ethernet", test_reject_eth_trunc },
    { "reject truncated vlan", test_reject_vlan_trunc },
    { "reject ethertype", test_reject_eth_type },
    { "reject double tag", test_reject_vlan_double },
    { "reject truncated ipv4", test_reject_ip_trunc },
    { "reject ip version", test_reject_ip_version },
    { "reject ihl < 5", test_reject_ip_ihl },
    { "reject ip options", test_reject_ip_options },
    { "reject ip total length", test_reject_ip_len },
    { "reject ip checksum", test_reject_ip_csum },
    { "reject fragments", test_reject_ip_frag },
    { "reject non-udp", test_reject_ip_proto },
    { "reject truncated udp", test_reject_udp_trunc },
    { "reject udp length", test_reject_udp_len },
    { "reject udp checksum", test_reject_udp_csum },
    { "zero udp checksum", test_zero_udp_csum },
    { "malformed table", test_malformed_table },
    { "random round trips", test_random_round_trips },
    { "truncated at every length", test_truncated_everywhere },
    { "random garbage", test_random_garbage },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("packets", tests);
}
