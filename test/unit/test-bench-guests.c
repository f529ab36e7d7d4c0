/* Unit tests for bench/guests-spec: the guest simulator's channel list and
 * the frames it reads and writes on a simulated VM's veth. */

#include <config.h>
#include "unit.h"
#include "guests-spec.h"

#include <stdio.h>
#include <string.h>

#include "packets.h"

static void
test_spec_lines(void)
{
    struct guests_spec s;
    char error[GUESTS_ERROR_LEN];

    CU_ASSERT_EQUAL(guests_spec_parse("sim1 1 4094 sim1-eth /k/sim1.key\n",
                                      0, &s, error, sizeof error), 1);
    CU_ASSERT_STRING_EQUAL(s.vm, "sim1");
    CU_ASSERT_EQUAL(s.chan_id, 1);
    CU_ASSERT_EQUAL(s.vid, 4094);
    CU_ASSERT_STRING_EQUAL(s.iface, "sim1-eth");
    CU_ASSERT_STRING_EQUAL(s.keyfile, "/k/sim1.key");

    /* Blanks, tabs, a trailing comment; no key file. */
    CU_ASSERT_EQUAL(guests_spec_parse("  vm.a_b-c\t4294967295  1 e0 # x",
                                      0, &s, error, sizeof error), 1);
    CU_ASSERT_STRING_EQUAL(s.vm, "vm.a_b-c");
    CU_ASSERT_EQUAL(s.chan_id, 4294967295u);
    CU_ASSERT_EQUAL(s.vid, 1);
    CU_ASSERT_STRING_EQUAL(s.keyfile, "");

    /* "-": no key file. */
    CU_ASSERT_EQUAL(guests_spec_parse("v 2 3 e -", 0, &s, error,
                                      sizeof error), 1);
    CU_ASSERT_STRING_EQUAL(s.keyfile, "");

    /* Nothing. */
    CU_ASSERT_EQUAL(guests_spec_parse("", 0, &s, error, sizeof error), 0);
    CU_ASSERT_EQUAL(guests_spec_parse("   \t\n", 0, &s, error,
                                      sizeof error), 0);
    CU_ASSERT_EQUAL(guests_spec_parse("# VM CHAN_ID VID IFACE KEYFILE\n",
                                      0, &s, error, sizeof error), 0);
}

static void
test_spec_commas(void)
{
    struct guests_spec s;
    char error[GUESTS_ERROR_LEN];

    CU_ASSERT_EQUAL(guests_spec_parse("sim7,7,100,sim7-eth,/k", ',', &s,
                                      error, sizeof error), 1);
    CU_ASSERT_STRING_EQUAL(s.vm, "sim7");
    CU_ASSERT_EQUAL(s.chan_id, 7);
    CU_ASSERT_EQUAL(s.vid, 100);
    CU_ASSERT_STRING_EQUAL(s.iface, "sim7-eth");
    CU_ASSERT_STRING_EQUAL(s.keyfile, "/k");
    CU_ASSERT_EQUAL(guests_spec_parse("a,1,2,b", ',', &s, error,
                                      sizeof error), 1);
    CU_ASSERT_STRING_EQUAL(s.keyfile, "");

    /* A path with spaces is one field with commas. */
    CU_ASSERT_EQUAL(guests_spec_parse("a,1,2,b,/my keys/a", ',', &s, error,
                                      sizeof error), 1);
    CU_ASSERT_STRING_EQUAL(s.keyfile, "/my keys/a");

    /* Empty fields are errors, not skipped. */
    CU_ASSERT_EQUAL(guests_spec_parse("a,,2,b", ',', &s, error,
                                      sizeof error), -1);
    CU_ASSERT_EQUAL(guests_spec_parse("a,1,2,b,", ',', &s, error,
                                      sizeof error), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(error, "KEYFILE"));
    CU_ASSERT_EQUAL(guests_spec_parse(",1,2,b", ',', &s, error,
                                      sizeof error), -1);
}

static void
test_spec_errors(void)
{
    static const struct {
        const char *line;
        const char *error;      /* A part of the message. */
    } cases[] = {
        { "vm1", "missing CHAN_ID" },
        { "vm1 1", "missing VID" },
        { "vm1 1 4094", "missing IFACE" },
        { "vm1 1 4094 e k extra", "more than 5 fields" },
        { "vm/1 1 4094 e", "invalid VM name" },
        { "vm1 0 4094 e", "chand-id" },
        { "vm1 01 4094 e", "chand-id" },
        { "vm1 -1 4094 e", "chand-id" },
        { "vm1 4294967296 4094 e", "chand-id" },
        { "vm1 1 4095 e", "chand-vid" },
        { "vm1 1 0 e", "chand-vid" },
        { "vm1 1 x e", "chand-vid" },
        { "vm1 1 1 0123456789abcdef", "interface" },
        { "vm1 1 1 a/b", "interface" },
        { "vm1 1 1 a:b", "interface" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct guests_spec s;
        char error[GUESTS_ERROR_LEN] = "";
        int r = guests_spec_parse(cases[i].line, 0, &s, error, sizeof error);

        if (r != -1 || !strstr(error, cases[i].error)) {
            fprintf(stderr, "\"%s\": got %d \"%s\", want -1 \"%s\"\n",
                    cases[i].line, r, error, cases[i].error);
        }
        CU_ASSERT_EQUAL(r, -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(error, cases[i].error));
    }

    /* A 64-character name is the longest. */
    char line[200], name[70];
    memset(name, 'v', 64);
    name[64] = '\0';
    struct guests_spec s;
    char error[GUESTS_ERROR_LEN];
    snprintf(line, sizeof line, "%s 1 1 e", name);
    CU_ASSERT_EQUAL(guests_spec_parse(line, 0, &s, error, sizeof error), 1);
    snprintf(line, sizeof line, "%sv 1 1 e", name);
    CU_ASSERT_EQUAL(guests_spec_parse(line, 0, &s, error, sizeof error), -1);
}

/* Builds a host-to-guest frame for 'cfg' as the host bridge puts it on the
 * vNIC, tagged with 'vid' (0: untagged). */
static size_t
host_frame(const struct chan_config *cfg, uint16_t vid, uint8_t *buf,
           size_t size, const char *payload)
{
    struct pkt_udp pkt = {
        .eth_dst = cfg->guest.mac,
        .eth_src = cfg->host.mac,
        .vlan = vid != 0,
        .vid = vid,
        .ip_src = cfg->host.ip,
        .ip_dst = cfg->guest.ip,
        .ttl = 64,
        .udp_src = cfg->host.port,
        .udp_dst = cfg->guest.port,
        .payload = (const uint8_t *) payload,
        .payload_len = strlen(payload),
    };
    size_t len = 0;

    CU_ASSERT_EQUAL(pkt_udp_build(&pkt, buf, size, &len), 0);
    return len;
}

static void
test_frame_accept(void)
{
    struct chan_config cfg;
    uint8_t buf[256], out[260];
    const uint8_t *payload;
    size_t len, plen, olen;
    uint32_t ip;
    uint16_t port;

    chan_config_default(300, &cfg);
    cfg.vid = 77;

    /* Tagged on the wire. */
    len = host_frame(&cfg, 77, buf, sizeof buf, "hello");
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, len, &payload, &plen,
                                        &ip, &port), GUESTS_OK);
    CU_ASSERT_EQUAL(plen, 5);
    CU_ASSERT_EQUAL(memcmp(payload, "hello", 5), 0);
    CU_ASSERT_EQUAL(ip, CHAN_HOST_IP);
    CU_ASSERT_EQUAL(port, CHAN_UDP_PORT);

    /* As AF_PACKET shows it: untagged, the tag in metadata; put back. */
    uint8_t untagged[256];
    size_t ulen = host_frame(&cfg, 0, untagged, sizeof untagged, "hello");
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, untagged, ulen, &payload,
                                        &plen, &ip, &port),
                    GUESTS_DROP_UNTAGGED);
    CU_ASSERT_TRUE(guests_frame_retag(untagged, ulen, true, 77, out,
                                      sizeof out, &olen));
    CU_ASSERT_EQUAL(olen, len);
    CU_ASSERT_EQUAL(memcmp(out, buf, len), 0);
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, out, olen, &payload, &plen,
                                        &ip, &port), GUESTS_OK);
    /* A priority in the TCI is kept; the vid is what counts. */
    CU_ASSERT_TRUE(guests_frame_retag(untagged, ulen, true, 0xa000 | 77,
                                      out, sizeof out, &olen));
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, out, olen, &payload, &plen,
                                        &ip, &port), GUESTS_OK);
    /* Not tagged: a copy. */
    CU_ASSERT_TRUE(guests_frame_retag(untagged, ulen, false, 0, out,
                                      sizeof out, &olen));
    CU_ASSERT_EQUAL(olen, ulen);
    CU_ASSERT_EQUAL(memcmp(out, untagged, ulen), 0);
    /* Too short, or no room. */
    CU_ASSERT_FALSE(guests_frame_retag(untagged, 11, true, 77, out,
                                       sizeof out, &olen));
    CU_ASSERT_FALSE(guests_frame_retag(untagged, ulen, true, 77, out,
                                       ulen + 3, &olen));

    /* Another vid. */
    len = host_frame(&cfg, 78, buf, sizeof buf, "x");
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, len, &payload, &plen,
                                        &ip, &port), GUESTS_DROP_VID);

    /* Another channel's endpoint. */
    struct chan_config other;
    chan_config_default(301, &other);
    other.vid = 77;
    len = host_frame(&other, 77, buf, sizeof buf, "x");
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, len, &payload, &plen,
                                        &ip, &port), GUESTS_DROP_ADDRESS);

    /* Not from the host endpoint. */
    struct chan_config spoof = cfg;
    spoof.host.ip = 0xa9fe0002;
    len = host_frame(&spoof, 77, buf, sizeof buf, "x");
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, len, &payload, &plen,
                                        &ip, &port), GUESTS_DROP_ADDRESS);
    spoof = cfg;
    spoof.host.mac.ea[5] = 1;
    len = host_frame(&spoof, 77, buf, sizeof buf, "x");
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, len, &payload, &plen,
                                        &ip, &port), GUESTS_DROP_ADDRESS);

    /* Not IPv4/UDP: an ARP request, a runt. */
    memset(buf, 0, 60);
    memset(buf, 0xff, 6);
    buf[12] = 0x08;
    buf[13] = 0x06;
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, 60, &payload, &plen,
                                        &ip, &port), GUESTS_DROP_PARSE);
    CU_ASSERT_EQUAL(guests_frame_accept(&cfg, buf, 10, &payload, &plen,
                                        &ip, &port), GUESTS_DROP_PARSE);

    CU_ASSERT_STRING_EQUAL(guests_drop_name(GUESTS_OK), "ok");
    CU_ASSERT_STRING_EQUAL(guests_drop_name(GUESTS_DROP_VID), "vid");
    CU_ASSERT_STRING_EQUAL(guests_drop_name(GUESTS_N_DROPS), "?");
}

/* What the simulator sends is what flows/host.flows accepts from a vNIC:
 * tagged with the vid, exactly from the guest endpoint to the host's. */
static void
test_frame_build(void)
{
    struct chan_config cfg;
    uint8_t buf[256];
    size_t len;
    struct pkt_udp pkt;

    chan_config_default(70000, &cfg);
    cfg.vid = 4094;
    CU_ASSERT_EQUAL(guests_frame_build(&cfg, (const uint8_t *) "ack", 3, buf,
                                       sizeof buf, &len), 0);
    CU_ASSERT_EQUAL(len, pkt_udp_frame_len(3, true));
    CU_ASSERT_EQUAL(pkt_udp_parse(buf, len, PKT_PARSE_REQUIRE_UDP_CSUM,
                                  &pkt), 0);
    CU_ASSERT_TRUE(pkt.vlan);
    CU_ASSERT_EQUAL(pkt.vid, 4094);
    CU_ASSERT_EQUAL(pkt.pcp, 0);
    CU_ASSERT_TRUE(eth_addr_equals(&pkt.eth_src, &cfg.guest.mac));
    CU_ASSERT_TRUE(eth_addr_equals(&pkt.eth_dst, &cfg.host.mac));
    CU_ASSERT_EQUAL(pkt.ip_src, chan_endpoint_guest_ip(70000));
    CU_ASSERT_EQUAL(pkt.ip_dst, CHAN_HOST_IP);
    CU_ASSERT_EQUAL(pkt.udp_src, CHAN_UDP_PORT);
    CU_ASSERT_EQUAL(pkt.udp_dst, CHAN_UDP_PORT);
    CU_ASSERT_EQUAL(pkt.payload_len, 3);
    CU_ASSERT_EQUAL(memcmp(pkt.payload, "ack", 3), 0);

    /* No room. */
    CU_ASSERT_NOT_EQUAL(guests_frame_build(&cfg, (const uint8_t *) "ack", 3,
                                           buf, 20, &len), 0);
}

static void
test_watch_keys(void)
{
    const char *watched[GUESTS_WATCH_MAX] = { NULL };
    char error[GUESTS_ERROR_LEN];
    char long_key[GUESTS_WATCH_KEY_MAX + 2];
    size_t n = 0;

    CU_ASSERT_EQUAL(guests_watch_key_check("scale/all", watched, n, error,
                                           sizeof error), 0);
    watched[n++] = "scale/all";
    CU_ASSERT_EQUAL(guests_watch_key_check("scale/one", watched, n, error,
                                           sizeof error), 0);
    watched[n++] = "scale/one";

    /* A repeat, nothing, a control character. */
    CU_ASSERT_EQUAL(guests_watch_key_check("scale/all", watched, n, error,
                                           sizeof error), -1);
    CU_ASSERT_STRING_EQUAL(error, "key given twice");
    CU_ASSERT_EQUAL(guests_watch_key_check("", watched, n, error,
                                           sizeof error), -1);
    CU_ASSERT_EQUAL(guests_watch_key_check("a\tb", watched, n, error,
                                           sizeof error), -1);

    /* The longest key, and one byte more. */
    memset(long_key, 'k', GUESTS_WATCH_KEY_MAX);
    long_key[GUESTS_WATCH_KEY_MAX] = '\0';
    CU_ASSERT_EQUAL(guests_watch_key_check(long_key, watched, n, error,
                                           sizeof error), 0);
    long_key[GUESTS_WATCH_KEY_MAX] = 'k';
    long_key[GUESTS_WATCH_KEY_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(guests_watch_key_check(long_key, watched, n, error,
                                           sizeof error), -1);

    /* At most GUESTS_WATCH_MAX keys. */
    static const char *const more[] = { "k2", "k3", "k4", "k5", "k6", "k7" };
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        CU_ASSERT_EQUAL(guests_watch_key_check(more[i], watched, n, error,
                                               sizeof error), 0);
        watched[n++] = more[i];
    }
    CU_ASSERT_EQUAL(n, GUESTS_WATCH_MAX);
    CU_ASSERT_EQUAL(guests_watch_key_check("k8", watched, n, error,
                                           sizeof error), -1);
}

static void
test_percentile(void)
{
    long long v[100];

    for (int i = 0; i < 100; i++) {
        v[i] = 1000 + i;
    }
    CU_ASSERT_EQUAL(guests_percentile(v, 0, 50), -1);
    CU_ASSERT_EQUAL(guests_percentile(v, 1, 50), 1000);
    CU_ASSERT_EQUAL(guests_percentile(v, 1, 99), 1000);
    CU_ASSERT_EQUAL(guests_percentile(v, 100, 50), 1049);
    CU_ASSERT_EQUAL(guests_percentile(v, 100, 99), 1098);
    CU_ASSERT_EQUAL(guests_percentile(v, 100, 100), 1099);
    CU_ASSERT_EQUAL(guests_percentile(v, 3, 50), 1001);
    CU_ASSERT_EQUAL(guests_percentile(v, 10, 99), 1009);
    CU_ASSERT_EQUAL(guests_percentile(v, 10, 0.1), 1000);
}

static const struct unit_test tests[] = {
    { "channel list lines", test_spec_lines },
    { "--channel with commas", test_spec_commas },
    { "channel list errors", test_spec_errors },
    { "frames accepted and refused", test_frame_accept },
    { "frames built", test_frame_build },
    { "--watch-key arguments", test_watch_keys },
    { "nearest-rank percentiles", test_percentile },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("bench-guests", tests);
}
