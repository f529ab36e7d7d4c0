/* Unit tests for lib/ofp13-flow: the flow syntax parser against Open
 * vSwitch's own (every rule of flows/host.flows and flows/guest.flows,
 * rendered, must encode to what `ovs-ofctl -O OpenFlow13 parse-flows`
 * makes of the same text), the parser's errors, and the bundle, meter and
 * multipart codecs. */

#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan-endpoint.h"
#include "chan-flows.h"
#include "flow-template.h"
#include "ofp13-flow.h"
#include "packets.h"
#include "unit.h"
#include "util.h"

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

/* Renders every section of the template at 'path' for two channels (one
 * with the chand port, one with OpenFlow injection) into 'flows'. */
static void
render_template(const char *path, bool host, struct flow_template_flows *flows)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    struct flow_template *ft;
    CU_ASSERT_EQUAL_FATAL(flow_template_parse(text, len, &ft, NULL), 0);
    free(text);

    for (int inject = 0; inject < 2; inject++) {
        struct chan_config cfg;
        struct chan_flows_vars v;
        chan_config_default(7 + inject, &cfg);
        cfg.vid = 100 + inject;
        if (host) {
            chan_flows_host_vars(&cfg, 3, inject ? 9 : 0, &v);
        } else {
            chan_flows_guest_vars(&cfg, 1, 2, &v);
        }
        for (int s = 0; s < FLOW_TEMPLATE_N_SECTIONS; s++) {
            uint32_t chan_id = s == FLOW_TEMPLATE_CHANNEL ? cfg.chan_id : 0;
            if (!host && s != FLOW_TEMPLATE_CHANNEL && inject) {
                continue;       /* Shared guest rules: once. */
            }
            if (host && s != FLOW_TEMPLATE_CHANNEL
                && s != FLOW_TEMPLATE_VID && s != FLOW_TEMPLATE_PORT
                && inject) {
                continue;
            }
            if (s == FLOW_TEMPLATE_PORT && !inject) {
                continue;
            }
            CU_ASSERT_EQUAL(flow_template_render(ft, s, chan_id, v.vars, v.n,
                                                 flows, NULL), 0);
        }
    }
    flow_template_destroy(ft);
}

/* Runs 'command' and returns its output's FLOW_MOD lines, each without
 * its "(xid=...)", as one malloc'd string. */
static char *
flow_mod_lines(const char *command)
{
    FILE *p = popen(command, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    size_t cap = 65536, len = 0;
    char *out = xmalloc(cap);
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        char *body = strstr(line, "): ");
        if (strncmp(line, "OFPT_FLOW_MOD", 13) || !body) {
            continue;
        }
        size_t n = strlen(body + 3);
        if (len + n + 1 >= cap) {
            cap = 2 * (len + n + 1);
            out = xrealloc(out, cap);
        }
        memcpy(out + len, body + 3, n);
        len += n;
    }
    out[len] = '\0';
    CU_ASSERT_EQUAL(pclose(p), 0);
    return out;
}

/* Encodes the 'n' rules in 'texts' with lib/ofp13-flow and checks that
 * `ovs-ofctl ofp-parse` decodes them to exactly what `ovs-ofctl -O
 * OpenFlow13 parse-flows` makes of the same texts.  'lines' (may be NULL)
 * gives each rule's template line for error messages. */
static void
compare_with_ovs_ofctl(const char *const *texts, const unsigned int *lines,
                       size_t n)
{
    char dir[] = "/tmp/chand-ofp13-flow.XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char txt[600], bin[600], cmd[1400];
    snprintf(txt, sizeof txt, "%s/flows.txt", dir);
    snprintf(bin, sizeof bin, "%s/flows.bin", dir);
    FILE *ft = fopen(txt, "w"), *fb = fopen(bin, "wb");
    CU_ASSERT_FATAL(ft && fb);
    for (size_t i = 0; i < n; i++) {
        struct ofp13_flow flow;
        char err[128];
        uint8_t buf[2048];
        size_t len;
        int error = ofp13_flow_parse(texts[i], &flow, err, sizeof err);
        if (error) {
            fprintf(stderr, "line %u: %s\n", lines ? lines[i] : 0, err);
        }
        CU_ASSERT_EQUAL(error, 0);
        CU_ASSERT_EQUAL(ofp13_encode_flow_add(buf, sizeof buf, &len, i + 1, 0,
                                              &flow), 0);
        fwrite(buf, 1, len, fb);
        fprintf(ft, "%s\n", texts[i]);
    }
    fclose(ft);
    fclose(fb);

    snprintf(cmd, sizeof cmd, "ovs-ofctl -O OpenFlow13 parse-flows %s", txt);
    char *theirs = flow_mod_lines(cmd);
    snprintf(cmd, sizeof cmd, "ovs-ofctl ofp-parse %s", bin);
    char *ours = flow_mod_lines(cmd);
    CU_ASSERT(strlen(ours) > 100);
    CU_ASSERT_STRING_EQUAL(ours, theirs);
    if (strcmp(ours, theirs)) {
        fprintf(stderr, "ovs-ofctl:\n%s\nchand:\n%s\n", theirs, ours);
    }
    free(ours);
    free(theirs);
    unlink(txt);
    unlink(bin);
    rmdir(dir);
}

/* Every rule of a template: what chand encodes is what ovs-ofctl encodes. */
static void
check_template(const char *name, bool host)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FLOWS_DIR, name);
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    render_template(path, host, &flows);
    CU_ASSERT_FATAL(flows.n > 5);

    const char **texts = xmalloc(flows.n * sizeof *texts);
    unsigned int *lines = xmalloc(flows.n * sizeof *lines);
    for (size_t i = 0; i < flows.n; i++) {
        texts[i] = flows.flows[i].text;
        lines[i] = flows.flows[i].line;
    }
    compare_with_ovs_ofctl(texts, lines, flows.n);
    free(texts);
    free(lines);
    flow_template_flows_destroy(&flows);
}

static void
test_host_template(void)
{
    check_template("host.flows", true);
}

static void
test_guest_template(void)
{
    check_template("guest.flows", false);
}

/* Rules beyond the templates, each also checked against ovs-ofctl. */
static void
test_more_syntax(void)
{
    static const char *const rules[] = {
        "priority=5,tcp,tp_src=80,actions=NORMAL",
        "priority=6,icmp,icmp_type=8,actions=LOCAL",
        "priority=7,ip,nw_src=10.0.0.0/255.0.0.0,actions=FLOOD",
        "priority=8,arp,arp_sha=0a:00:00:00:00:01,actions=ALL",
        "priority=9,dl_type=0x0800,nw_proto=17,udp_dst=53,actions=drop",
        "priority=10,pkt_mark=0x10/0xf0,actions=set_field:1->pkt_mark",
        "priority=11,vlan_tci=0x1005/0x1fff,actions=strip_vlan,output:1",
        "priority=12,ip,ip_frag=later,actions=drop",
        "priority=13,in_port=LOCAL,actions=push_vlan:0x8100,output:2",
        "actions=controller(max_len=128,id=9)",
    };
    compare_with_ovs_ofctl(rules, NULL, N_ELEMS(rules));
}

/* What the parser refuses, and that it says which word. */
static void
test_errors(void)
{
    static const struct {
        const char *rule;
        const char *word;       /* Must appear in the message. */
    } cases[] = {
        { "priority=1,frobnicate=3,actions=drop", "frobnicate" },
        { "priority=1,actions=frob:3", "frob" },
        { "priority=1,nw_dst=10.0.0.1,actions=drop", "nw_dst" },
        { "priority=1,tp_dst=80,actions=drop", "tp_dst" },
        { "priority=1,arp,arp_spa=1.2.3,actions=drop", "arp_spa" },
        { "priority=1,dl_src=0a:00:00:00:00,actions=drop", "dl_src" },
        { "priority=1,in_port=7/3,actions=drop", "in_port" },
        { "priority=70000,actions=drop", "priority" },
        { "priority=1,dl_vlan=4096,actions=drop", "dl_vlan" },
        { "priority=1,vlan_tci=0x2000/0xe000,actions=drop", "vlan_tci" },
        { "priority=1,actions=drop,output:1", "drop" },
        { "priority=1,actions=meter:0", "meter" },
        { "priority=1,actions=meter:1,meter:2", "meter" },
        { "priority=1,actions=set_field:1->in_port", "in_port" },
        { "priority=1,actions=set_field:1", "set_field" },
        { "priority=1,actions=move:eth_src[]->arp_spa[]", "differ" },
        { "priority=1,actions=output:0", "output" },
        { "priority=1,actions=controller(id=x)", "controller" },
        { "priority=1,actions=CONTROLLER", "controller" },
        { "priority=1,udp,udp_dst=1,udp_dst=2,actions=drop", "udp_dst" },
        { "priority=1", "actions" },
        { "priority=1,ip_frag=maybe,ip,actions=drop", "ip_frag" },
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ofp13_flow flow;
        char err[128];
        int error = ofp13_flow_parse(cases[i].rule, &flow, err, sizeof err);
        CU_ASSERT_EQUAL(error, OFP13_E_BAD_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].word));
        if (!error || !strstr(err, cases[i].word)) {
            fprintf(stderr, "\"%s\": %s\n", cases[i].rule, err);
        }
    }
    /* A tiny error buffer still gets a terminated message. */
    struct ofp13_flow flow;
    char small[4];
    CU_ASSERT_EQUAL(ofp13_flow_parse("x=1,actions=drop", &flow, small,
                                     sizeof small), OFP13_E_BAD_ARG);
    CU_ASSERT_EQUAL(strlen(small), 3);
    CU_ASSERT_EQUAL(ofp13_flow_parse(NULL, &flow, NULL, 0), OFP13_E_BAD_ARG);
}

static void
test_bundle(void)
{
    uint8_t inner[256], buf[512];
    size_t inner_len, len;
    struct ofp13_flow flow;

    CU_ASSERT_EQUAL(ofp13_flow_parse("priority=3,actions=drop", &flow, NULL,
                                     0), 0);
    CU_ASSERT_EQUAL(ofp13_encode_flow_add(inner, sizeof inner, &inner_len,
                                          77, 0x4300000000000001ull, &flow),
                    0);
    CU_ASSERT_EQUAL(ofp13_encode_bundle_add(buf, sizeof buf, &len, 77, 5,
                                            OFP13_BF_ATOMIC, inner,
                                            inner_len), 0);
    CU_ASSERT_EQUAL(len, 24 + inner_len);
    CU_ASSERT_EQUAL(pkt_get_be32(buf + 8), OFP13_ONF_VENDOR_ID);
    CU_ASSERT_EQUAL(pkt_get_be32(buf + 12), OFP13_ONFT_BUNDLE_ADD_MESSAGE);
    CU_ASSERT_EQUAL(memcmp(buf + 24, inner, inner_len), 0);
    /* The inner message's xid must be the bundle message's. */
    CU_ASSERT_EQUAL(ofp13_encode_bundle_add(buf, sizeof buf, &len, 78, 5, 0,
                                            inner, inner_len),
                    OFP13_E_BAD_ARG);
    CU_ASSERT_EQUAL(len, 0);
    /* A buffer too small. */
    CU_ASSERT_EQUAL(ofp13_encode_bundle_add(buf, 30, &len, 77, 5, 0, inner,
                                            inner_len), OFP13_E_NO_SPACE);

    struct ofp13_bundle_ctrl bc;
    CU_ASSERT_EQUAL(ofp13_encode_bundle_ctrl(buf, sizeof buf, &len, 9, 5,
                                             OFP13_BCT_COMMIT_REPLY,
                                             OFP13_BF_ORDERED), 0);
    CU_ASSERT_EQUAL(len, 24);
    CU_ASSERT_EQUAL(ofp13_decode_bundle_ctrl(buf, len, &bc), 0);
    CU_ASSERT_EQUAL(bc.xid, 9);
    CU_ASSERT_EQUAL(bc.bundle_id, 5);
    CU_ASSERT_EQUAL(bc.type, OFP13_BCT_COMMIT_REPLY);
    CU_ASSERT_EQUAL(bc.flags, OFP13_BF_ORDERED);
    CU_ASSERT_EQUAL(ofp13_decode_bundle_ctrl(buf, len - 1, &bc),
                    OFP13_E_TOO_SHORT);
    buf[15]++;                  /* Another experimenter subtype. */
    CU_ASSERT_EQUAL(ofp13_decode_bundle_ctrl(buf, len, &bc),
                    OFP13_E_BAD_EXPERIMENTER);
}

/* Builds a MULTIPART_REPLY of 'type' around 'body' in 'buf'. */
static size_t
make_reply(uint8_t *buf, uint16_t type, bool more, const uint8_t *body,
           size_t body_len)
{
    memset(buf, 0, 16);
    buf[0] = OFP13_VERSION;
    buf[1] = OFP13_MULTIPART_REPLY;
    pkt_put_be16(buf + 2, 16 + body_len);
    pkt_put_be32(buf + 4, 42);
    pkt_put_be16(buf + 8, type);
    pkt_put_be16(buf + 10, more);
    memcpy(buf + 16, body, body_len);
    return 16 + body_len;
}

static void
test_multipart(void)
{
    uint8_t body[256] = { 0 }, buf[512];
    struct ofp13_multipart mp;
    size_t ofs = 0;

    /* Two flow stats entries of 56 bytes (an empty match, padded). */
    for (int i = 0; i < 2; i++) {
        uint8_t *e = body + 56 * i;
        pkt_put_be16(e, 56);
        e[2] = 0;
        pkt_put_be16(e + 12, 100 + i);
        pkt_put_be64(e + 24, 0x4300000000000000ull + i);
        pkt_put_be64(e + 32, 10 * (i + 1));
        pkt_put_be64(e + 40, 1000);
        pkt_put_be16(e + 48, 1);
        pkt_put_be16(e + 50, 4);
    }
    size_t len = make_reply(buf, OFP13_MP_FLOW, true, body, 112);
    CU_ASSERT_EQUAL(ofp13_decode_multipart_reply(buf, len, &mp), 0);
    CU_ASSERT(mp.more);
    CU_ASSERT_EQUAL(mp.xid, 42);
    struct ofp13_flow_stats fs;
    CU_ASSERT_EQUAL(ofp13_next_flow_stats(&mp, &ofs, &fs), 0);
    CU_ASSERT_EQUAL(fs.priority, 100);
    CU_ASSERT_EQUAL(fs.packets, 10);
    CU_ASSERT_EQUAL(ofp13_next_flow_stats(&mp, &ofs, &fs), 0);
    CU_ASSERT_EQUAL(fs.cookie, 0x4300000000000001ull);
    CU_ASSERT_EQUAL(fs.packets, 20);
    CU_ASSERT_EQUAL(ofp13_next_flow_stats(&mp, &ofs, &fs), -1);

    /* An entry whose length overruns the body. */
    pkt_put_be16(body + 56, 64);
    len = make_reply(buf, OFP13_MP_FLOW, false, body, 112);
    ofp13_decode_multipart_reply(buf, len, &mp);
    ofs = 0;
    CU_ASSERT_EQUAL(ofp13_next_flow_stats(&mp, &ofs, &fs), 0);
    CU_ASSERT_EQUAL(ofp13_next_flow_stats(&mp, &ofs, &fs),
                    OFP13_E_BAD_BODY_LEN);
    /* The wrong iterator for the reply's type. */
    struct ofp13_meter_stats ms;
    ofs = 0;
    CU_ASSERT_EQUAL(ofp13_next_meter_stats(&mp, &ofs, &ms),
                    OFP13_E_BAD_TYPE);

    /* Meter stats: one meter with two bands. */
    memset(body, 0, sizeof body);
    pkt_put_be32(body, 7);
    pkt_put_be16(body + 4, 72);
    pkt_put_be64(body + 16, 500);
    pkt_put_be64(body + 40, 3);
    pkt_put_be64(body + 56, 4);
    len = make_reply(buf, OFP13_MP_METER, false, body, 72);
    CU_ASSERT_EQUAL(ofp13_decode_multipart_reply(buf, len, &mp), 0);
    ofs = 0;
    CU_ASSERT_EQUAL(ofp13_next_meter_stats(&mp, &ofs, &ms), 0);
    CU_ASSERT_EQUAL(ms.meter_id, 7);
    CU_ASSERT_EQUAL(ms.packets_in, 500);
    CU_ASSERT_EQUAL(ms.band_packets, 7);
    CU_ASSERT_EQUAL(ofp13_next_meter_stats(&mp, &ofs, &ms), -1);
    pkt_put_be16(body + 4, 70);     /* Not a whole number of bands. */
    len = make_reply(buf, OFP13_MP_METER, false, body, 72);
    ofp13_decode_multipart_reply(buf, len, &mp);
    ofs = 0;
    CU_ASSERT_EQUAL(ofp13_next_meter_stats(&mp, &ofs, &ms),
                    OFP13_E_BAD_BODY_LEN);

    /* Meter config: what ofp13_encode_meter_mod() sets up. */
    uint8_t mod[64];
    CU_ASSERT_EQUAL(ofp13_encode_meter_mod(mod, sizeof mod, &len, 3,
                                           OFP13_MC_ADD, 7, 2000, 500), 0);
    CU_ASSERT_EQUAL(len, 32);
    memset(body, 0, sizeof body);
    pkt_put_be16(body, 24);
    memcpy(body + 2, mod + 10, 6);          /* flags, meter_id. */
    memcpy(body + 8, mod + 16, 16);         /* The band. */
    len = make_reply(buf, OFP13_MP_METER_CONFIG, false, body, 24);
    CU_ASSERT_EQUAL(ofp13_decode_multipart_reply(buf, len, &mp), 0);
    struct ofp13_meter_config mc;
    ofs = 0;
    CU_ASSERT_EQUAL(ofp13_next_meter_config(&mp, &ofs, &mc), 0);
    CU_ASSERT_EQUAL(mc.meter_id, 7);
    CU_ASSERT_EQUAL(mc.flags, OFP13_MF_PKTPS | OFP13_MF_BURST
                    | OFP13_MF_STATS);
    CU_ASSERT_EQUAL(mc.n_bands, 1);
    CU_ASSERT_EQUAL(mc.band_type, OFP13_MBT_DROP);
    CU_ASSERT_EQUAL(mc.rate, 2000);
    CU_ASSERT_EQUAL(mc.burst, 500);

    /* Truncated and mislabelled replies. */
    CU_ASSERT_EQUAL(ofp13_decode_multipart_reply(buf, len - 1, &mp),
                    OFP13_E_TOO_SHORT);
    buf[1] = OFP13_MULTIPART_REQUEST;
    CU_ASSERT_EQUAL(ofp13_decode_multipart_reply(buf, len, &mp),
                    OFP13_E_BAD_TYPE);
}

/* The requests, decoded by Open vSwitch itself. */
static void
test_requests_parse(void)
{
    char path[] = "/tmp/chand-ofp13-req.XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    uint8_t buf[256];
    size_t len;

    ofp13_encode_flow_delete(buf, sizeof buf, &len, 1,
                             0x4300000000000007ull, UINT64_MAX);
    fwrite(buf, 1, len, f);
    ofp13_encode_flow_stats_request(buf, sizeof buf, &len, 2,
                                    FLOW_TEMPLATE_COOKIE_TAG,
                                    FLOW_TEMPLATE_COOKIE_MASK);
    fwrite(buf, 1, len, f);
    /* ovs-ofctl does not print a stats request's cookie: check it here. */
    CU_ASSERT_EQUAL(len, 56);
    CU_ASSERT_EQUAL(buf[16], OFP13_TABLE_ALL);
    CU_ASSERT_EQUAL(pkt_get_be64(buf + 32), FLOW_TEMPLATE_COOKIE_TAG);
    CU_ASSERT_EQUAL(pkt_get_be64(buf + 40), FLOW_TEMPLATE_COOKIE_MASK);
    ofp13_encode_meter_mod(buf, sizeof buf, &len, 3, OFP13_MC_MODIFY, 9, 100,
                           20);
    fwrite(buf, 1, len, f);
    ofp13_encode_meter_request(buf, sizeof buf, &len, 4, OFP13_MP_METER,
                               OFP13_METER_ALL);
    fwrite(buf, 1, len, f);
    ofp13_encode_bundle_ctrl(buf, sizeof buf, &len, 5, 1,
                             OFP13_BCT_OPEN_REQUEST,
                             OFP13_BF_ATOMIC | OFP13_BF_ORDERED);
    fwrite(buf, 1, len, f);
    fclose(f);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "ovs-ofctl ofp-parse %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    unlink(path);

    CU_ASSERT_PTR_NULL(strstr(out, "error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DEL table:255 priority=0 "
                                       "cookie:0x4300000000000007"
                                       "/0xffffffffffffffff"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OFPST_FLOW request (OF1.3)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "MOD meter=9 pktps burst stats "
                                       "bands=\ntype=drop rate=100 "
                                       "burst_size=20"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OFPST_METER request (OF1.3)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OPEN_REQUEST flags=atomic ordered"));
    if (strstr(out, "error") || !strstr(out, "OPEN_REQUEST")) {
        fprintf(stderr, "%s\n", out);
    }
}

static const struct unit_test tests[] = {
    { "host template as ovs-ofctl encodes it", test_host_template },
    { "guest template as ovs-ofctl encodes it", test_guest_template },
    { "more syntax as ovs-ofctl encodes it", test_more_syntax },
    { "parse errors", test_errors },
    { "bundle", test_bundle },
    { "multipart replies", test_multipart },
    { "requests decoded by ovs-ofctl", test_requests_parse },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("ofp13-flow", tests);
}
