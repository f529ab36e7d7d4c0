/* Copyright (c) 2026 The chand authors.
 *
 * replay-gen: builds a replay case's input pcaps from its readable scenario
 * file (test/replay/cases/NAME/scenario; the syntax is in doc/replay.md).
 *
 * Usage: replay-gen [-v] SCENARIO OUTDIR
 *
 * Each packet line names the port the frame enters on and describes the
 * frame layer by layer:
 *
 *   vnic1 eth 0a:c4:00:00:00:07>0a:c4:00:00:00:00 vlan 4094 \
 *       ip 169.254.1.7>169.254.0.1 udp 7433>7433 chand ack epoch=5 ack=3
 *   controller mark=7 eth ... ip ... udp ... chand data epoch=1 seq=1
 *   vnic3 eth 02:00:00:00:00:03>ff:ff:ff:ff:ff:ff \
 *       arp request 10.0.0.3>10.0.0.1
 *   uplink hex 0102030405060a0b0c0d0e0f88b5...
 *
 * Frames for port P are written to OUTDIR/in-P.pcap; frames injected as
 * OpenFlow PACKET_OUT (port "controller") with pkt_mark M to
 * OUTDIR/in-controller-M.pcap.  Timestamps carry the scenario's order
 * and timing across files: each packet line is 1 us after the previous one
 * ("x=N" after the port makes N copies with the same timestamp, which
 * replay-feed hands to the datapath as one batch), and "@wait MS" adds a
 * pause that replay-feed reproduces.  Lengths and checksums are
 * computed; chand frames are encoded with lib/chan-wire (so they are valid
 * frames unless raw bytes are used).  Lines starting with '@' are case
 * directives for test/replay/run and are only checked for syntax here.
 *
 * Exit status: 0 on success, 1 on an error in the scenario (reported as
 * FILE:LINE: message), 2 on bad usage.
 */

#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "frame-desc.h"
#include "packets.h"
#include "replay-pcap.h"
#include "util.h"

#define MAX_TOKENS 64
#define MAX_FRAME 9216
#define ETH_TYPE_ARP 0x0806
#define ETH_TYPE_IPV6 0x86dd

/* Where we are, for error messages. */
static const char *scenario_name;
static unsigned int line_number;

static void __attribute__((format(printf, 1, 2), noreturn))
fatal(const char *format, ...)
{
    va_list args;

    fprintf(stderr, "%s:%u: ", scenario_name, line_number);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

/* Tokenizer: whitespace separates tokens; single quotes group (and are
 * removed), so payload='{"a": 1}' is one token. */
static size_t
tokenize(char *line, char *tokens[], size_t max)
{
    size_t n = 0;
    char *p = line;

    for (;;) {
        while (isspace((unsigned char) *p)) {
            p++;
        }
        if (!*p) {
            break;
        }
        if (n >= max) {
            fatal("too many tokens (max %zu)", max);
        }
        char *out = p;
        tokens[n++] = out;
        bool quoted = false;
        while (*p && (quoted || !isspace((unsigned char) *p))) {
            if (*p == '\'') {
                quoted = !quoted;
                p++;
            } else {
                *out++ = *p++;
            }
        }
        if (quoted) {
            fatal("unterminated quote");
        }
        if (*p) {
            p++;
        }
        *out = '\0';
    }
    return n;
}

static unsigned long long
parse_uint(const char *s, unsigned long long max, const char *what)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-' || v > max) {
        fatal("%s: \"%s\" is not a number 0..%llu", what, s, max);
    }
    return v;
}

static void
parse_mac(const char *s, uint8_t mac[ETH_ADDR_LEN])
{
    struct eth_addr ea;

    if (!eth_addr_from_string(s, &ea)) {
        fatal("\"%s\" is not a MAC address xx:xx:xx:xx:xx:xx", s);
    }
    memcpy(mac, ea.ea, ETH_ADDR_LEN);
}

static void
parse_ip(const char *s, uint8_t ip[4])
{
    uint32_t a;

    if (!ip_from_string(s, &a)) {
        fatal("\"%s\" is not an IPv4 address", s);
    }
    pkt_put_be32(ip, a);
}

static void
parse_ip6(const char *s, uint8_t ip6[16])
{
    if (inet_pton(AF_INET6, s, ip6) != 1) {
        fatal("\"%s\" is not an IPv6 address", s);
    }
}

/* Splits "A>B" in place. */
static void
split_pair(char *s, char **a, char **b, const char *what)
{
    char *gt = s ? strchr(s, '>') : NULL;

    if (!gt || gt == s || !gt[1]) {
        fatal("%s needs SOURCE>DESTINATION, got \"%s\"", what, s ? s : "");
    }
    *gt = '\0';
    *a = s;
    *b = gt + 1;
}

/* The frame being built. */
struct frame {
    uint8_t buf[MAX_FRAME];
    size_t len;

    size_t type_off;            /* Pending ethertype field, or SIZE_MAX. */
    uint16_t explicit_type;     /* eth type=, 0 if none. */
    int last_vid;               /* Innermost VLAN id, -1 if untagged. */

    size_t ip_off, ip6_off, l4_off;   /* SIZE_MAX if absent. */
    uint8_t l4_proto;                 /* Of the layer at l4_off. */
    bool ip_proto_explicit, udp_zero_csum;
    long udp_forced_csum;             /* -1 or a value to write. */
    size_t proto_off;                 /* IPv4 proto / IPv6 next header. */
};

static uint8_t *
put(struct frame *f, size_t n)
{
    if (f->len + n > sizeof f->buf) {
        fatal("frame longer than %d bytes", MAX_FRAME);
    }
    uint8_t *p = f->buf + f->len;
    memset(p, 0, n);
    f->len += n;
    return p;
}

static void
put_hex(struct frame *f, const char *hex)
{
    size_t n = strlen(hex);

    if (n % 2) {
        fatal("odd number of hex digits in \"%s\"", hex);
    }
    for (size_t i = 0; i < n; i += 2) {
        unsigned int byte;
        if (!isxdigit((unsigned char) hex[i])
            || !isxdigit((unsigned char) hex[i + 1])
            || sscanf(hex + i, "%2x", &byte) != 1) {
            fatal("bad hex \"%s\"", hex);
        }
        *put(f, 1) = byte;
    }
}

/* Fills the pending ethertype with 'type'. */
static void
set_type(struct frame *f, uint16_t type, const char *layer)
{
    if (f->type_off == SIZE_MAX) {
        fatal("%s must follow eth or vlan", layer);
    }
    pkt_put_be16(f->buf + f->type_off, type);
    f->type_off = SIZE_MAX;
}

/* Options "key=value" of one layer. */
struct opts {
    char **tokens;
    size_t n;
    const char *layer;
};

static const char *
opt(const struct opts *o, const char *key)
{
    size_t klen = strlen(key);

    for (size_t i = 0; i < o->n; i++) {
        if (!strncmp(o->tokens[i], key, klen) && o->tokens[i][klen] == '=') {
            return o->tokens[i] + klen + 1;
        }
    }
    return NULL;
}

static unsigned long long
opt_uint(const struct opts *o, const char *key, unsigned long long dflt,
         unsigned long long max)
{
    const char *v = opt(o, key);
    return v ? parse_uint(v, max, key) : dflt;
}

/* Positional argument 'i' (tokens without '='), or NULL. */
static char *
arg(const struct opts *o, size_t i)
{
    for (size_t j = 0; j < o->n; j++) {
        if (!strchr(o->tokens[j], '=') && !i--) {
            return o->tokens[j];
        }
    }
    return NULL;
}

/* Rejects options not in the NULL-terminated 'known' list and more than
 * 'max_args' positional arguments. */
static void
check_opts(const struct opts *o, size_t max_args, const char *const known[])
{
    size_t n_args = 0;

    for (size_t i = 0; i < o->n; i++) {
        const char *eq = strchr(o->tokens[i], '=');
        if (!eq) {
            if (++n_args > max_args) {
                fatal("%s: unexpected argument \"%s\"", o->layer,
                      o->tokens[i]);
            }
            continue;
        }
        bool ok = false;
        for (size_t k = 0; known[k]; k++) {
            ok |= strlen(known[k]) == (size_t) (eq - o->tokens[i])
                  && !strncmp(o->tokens[i], known[k], eq - o->tokens[i]);
        }
        if (!ok) {
            fatal("%s: unknown option \"%s\"", o->layer, o->tokens[i]);
        }
    }
}

static void
layer_eth(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "type", NULL };
    char *src, *dst;

    check_opts(o, 1, known);
    if (f->len) {
        fatal("eth must be the first layer");
    }
    split_pair(arg(o, 0), &src, &dst, "eth");
    uint8_t *p = put(f, ETH_HEADER_LEN);
    parse_mac(dst, p);
    parse_mac(src, p + 6);
    f->type_off = 12;
    f->explicit_type = opt_uint(o, "type", 0, 0xffff);
}

static void
layer_vlan(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "pcp", "dei", "tpid", NULL };

    check_opts(o, 1, known);
    if (!arg(o, 0)) {
        fatal("vlan needs a VID");
    }
    unsigned int vid = parse_uint(arg(o, 0), 4095, "vid");
    unsigned int pcp = opt_uint(o, "pcp", 0, 7);
    unsigned int dei = opt_uint(o, "dei", 0, 1);
    set_type(f, opt_uint(o, "tpid", ETH_TYPE_VLAN, 0xffff), "vlan");
    uint8_t *p = put(f, VLAN_HEADER_LEN);
    pkt_put_be16(p, (pcp << VLAN_PCP_SHIFT) | (dei ? VLAN_CFI : 0) | vid);
    f->type_off = f->len - 2;
    f->last_vid = vid;
}

static void
layer_ip(struct frame *f, const struct opts *o)
{
    static const char *const known[] = {
        "ttl", "tos", "id", "df", "mf", "frag", "proto", NULL
    };
    char *src, *dst;

    check_opts(o, 1, known);
    if (f->ip_off != SIZE_MAX || f->ip6_off != SIZE_MAX) {
        fatal("only one ip/ip6 layer per frame");
    }
    set_type(f, ETH_TYPE_IP, "ip");
    split_pair(arg(o, 0), &src, &dst, "ip");
    f->ip_off = f->len;
    uint8_t *p = put(f, IP_HEADER_LEN);
    unsigned int frag = opt_uint(o, "frag", 0, 0xfff8);
    if (frag % 8) {
        fatal("ip frag= is a byte offset, a multiple of 8");
    }
    p[0] = 0x45;
    p[1] = opt_uint(o, "tos", 0, 255);
    pkt_put_be16(p + 4, opt_uint(o, "id", 0, 0xffff));
    pkt_put_be16(p + 6, (opt_uint(o, "df", 1, 1) ? IP_DF : 0)
                        | (opt_uint(o, "mf", 0, 1) ? IP_MF : 0)
                        | frag / 8);
    p[8] = opt_uint(o, "ttl", PKT_DEFAULT_TTL, 255);
    f->proto_off = f->ip_off + 9;
    if (opt(o, "proto")) {
        p[9] = opt_uint(o, "proto", 0, 255);
        f->ip_proto_explicit = true;
    }
    parse_ip(src, p + 12);
    parse_ip(dst, p + 16);
}

static void
layer_ip6(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "hlim", "nxt", NULL };
    char *src, *dst;

    check_opts(o, 1, known);
    if (f->ip_off != SIZE_MAX || f->ip6_off != SIZE_MAX) {
        fatal("only one ip/ip6 layer per frame");
    }
    set_type(f, ETH_TYPE_IPV6, "ip6");
    split_pair(arg(o, 0), &src, &dst, "ip6");
    f->ip6_off = f->len;
    uint8_t *p = put(f, 40);
    p[0] = 0x60;
    p[7] = opt_uint(o, "hlim", 64, 255);
    f->proto_off = f->ip6_off + 6;
    if (opt(o, "nxt")) {
        p[6] = opt_uint(o, "nxt", 0, 255);
        f->ip_proto_explicit = true;
    }
    parse_ip6(src, p + 8);
    parse_ip6(dst, p + 24);
}

static void
layer_arp(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "sha", "tha", NULL };
    char *spa, *tpa;

    check_opts(o, 2, known);
    const char *op = arg(o, 0);
    bool request = op && !strcmp(op, "request");
    if (!op || (!request && strcmp(op, "reply"))) {
        fatal("arp needs request or reply");
    }
    set_type(f, ETH_TYPE_ARP, "arp");
    split_pair(arg(o, 1), &spa, &tpa, "arp");
    uint8_t *p = put(f, 28);
    pkt_put_be16(p, 1);
    pkt_put_be16(p + 2, ETH_TYPE_IP);
    p[4] = 6;
    p[5] = 4;
    pkt_put_be16(p + 6, request ? 1 : 2);
    if (opt(o, "sha")) {
        parse_mac(opt(o, "sha"), p + 8);
    } else {
        memcpy(p + 8, f->buf + 6, ETH_ADDR_LEN);     /* Ethernet source. */
    }
    parse_ip(spa, p + 14);
    if (opt(o, "tha")) {
        parse_mac(opt(o, "tha"), p + 18);
    } else if (!request) {
        memcpy(p + 18, f->buf, ETH_ADDR_LEN);        /* Ethernet dest. */
    }
    parse_ip(tpa, p + 24);
}

/* Starts a transport layer of protocol 'proto'. */
static uint8_t *
begin_l4(struct frame *f, uint8_t proto, size_t hdr_len, const char *layer)
{
    if (f->proto_off == SIZE_MAX) {
        fatal("%s must follow ip or ip6", layer);
    }
    if (f->l4_off != SIZE_MAX) {
        fatal("only one transport layer per frame");
    }
    if (!f->ip_proto_explicit) {
        f->buf[f->proto_off] = proto;
    }
    f->l4_off = f->len;
    f->l4_proto = proto;
    return put(f, hdr_len);
}

static void
parse_ports(const struct opts *o, uint8_t *p)
{
    char *sport, *dport;

    split_pair(arg(o, 0), &sport, &dport, o->layer);
    pkt_put_be16(p, parse_uint(sport, 65535, "port"));
    pkt_put_be16(p + 2, parse_uint(dport, 65535, "port"));
}

static void
layer_udp(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "csum", NULL };

    check_opts(o, 1, known);
    uint8_t *p = begin_l4(f, IP_PROTO_UDP, UDP_HEADER_LEN, "udp");
    parse_ports(o, p);
    if (opt(o, "csum")) {
        f->udp_forced_csum = opt_uint(o, "csum", 0, 0xffff);
    }
}

static void
layer_tcp(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "flags", "seq", "ack", NULL };
    unsigned int flags = 0;

    check_opts(o, 1, known);
    uint8_t *p = begin_l4(f, 6, 20, "tcp");
    parse_ports(o, p);
    for (const char *s = opt(o, "flags") ? opt(o, "flags") : "S"; *s; s++) {
        const char *bits = "FSRPAU", *b = strchr(bits, *s);
        if (!b) {
            fatal("tcp flags: '%c' is not one of %s", *s, bits);
        }
        flags |= 1u << (b - bits);
    }
    pkt_put_be32(p + 4, opt_uint(o, "seq", 1, 0xffffffff));
    pkt_put_be32(p + 8, opt_uint(o, "ack", 0, 0xffffffff));
    pkt_put_be16(p + 12, (5 << 12) | flags);
    pkt_put_be16(p + 14, 65535);
}

static void
layer_icmp(struct frame *f, const struct opts *o, bool v6)
{
    static const char *const known[] = {
        "type", "code", "id", "seq", "target", "sll", "tll", NULL
    };
    const char *kind = arg(o, 0);
    unsigned int type;

    check_opts(o, 1, known);
    if (!kind) {
        type = opt_uint(o, "type", 0, 255);
    } else if (!strcmp(kind, "echo-request")) {
        type = v6 ? 128 : 8;
    } else if (!strcmp(kind, "echo-reply")) {
        type = v6 ? 129 : 0;
    } else if (v6 && !strcmp(kind, "ns")) {
        type = 135;
    } else if (v6 && !strcmp(kind, "na")) {
        type = 136;
    } else {
        fatal("%s: unknown message \"%s\"", o->layer, kind);
    }
    if (v6 != (f->ip6_off != SIZE_MAX)) {
        fatal("%s needs %s", o->layer, v6 ? "ip6" : "ip");
    }
    uint8_t *p = begin_l4(f, v6 ? 58 : 1, 8, o->layer);
    p[0] = type;
    p[1] = opt_uint(o, "code", 0, 255);
    if (type == 135 || type == 136) {
        uint8_t *t = put(f, 16);
        if (!opt(o, "target")) {
            fatal("%s %s needs target=", o->layer, kind);
        }
        parse_ip6(opt(o, "target"), t);
        if (type == 136) {
            f->buf[f->l4_off + 4] = 0x60;      /* Solicited, override. */
        }
        const char *ll = opt(o, type == 135 ? "sll" : "tll");
        if (ll) {
            uint8_t *opt_p = put(f, 8);
            opt_p[0] = type == 135 ? 1 : 2;
            opt_p[1] = 1;
            parse_mac(ll, opt_p + 2);
        }
    } else {
        pkt_put_be16(p + 4, opt_uint(o, "id", 0, 0xffff));
        pkt_put_be16(p + 6, opt_uint(o, "seq", 0, 0xffff));
    }
}

static void
layer_chand(struct frame *f, const struct opts *o)
{
    static const char *const known[] = {
        "epoch", "seq", "ack", "flags", "vid", "chunk", "key", "payload",
        "fill", NULL
    };
    static const struct {
        const char *name;
        enum chan_wire_type type;
    } types[] = {
        { "data", CHAN_WIRE_DATA }, { "ack", CHAN_WIRE_ACK },
        { "hello", CHAN_WIRE_HELLO }, { "sync", CHAN_WIRE_SYNC },
        { "heartbeat", CHAN_WIRE_HEARTBEAT },
    };
    struct chan_wire_header hdr;
    const char *kind = arg(o, 0);

    check_opts(o, 1, known);
    if (f->l4_proto != IP_PROTO_UDP || f->l4_off == SIZE_MAX) {
        fatal("chand must follow udp");
    }
    memset(&hdr, 0, sizeof hdr);
    hdr.type = 0;
    for (size_t i = 0; kind && i < sizeof types / sizeof *types; i++) {
        if (!strcmp(kind, types[i].name)) {
            hdr.type = types[i].type;
        }
    }
    if (!hdr.type) {
        fatal("chand needs a type: data, ack, hello, sync or heartbeat");
    }
    hdr.epoch = opt_uint(o, "epoch", 1, 0xffffffff);
    hdr.seq = opt_uint(o, "seq", hdr.type == CHAN_WIRE_DATA ? 1 : 0,
                       UINT64_MAX);
    if (opt(o, "ack")) {
        hdr.ack = opt_uint(o, "ack", 0, UINT64_MAX);
        hdr.flags |= CHAN_WIRE_F_ACK_VALID;
    }
    hdr.flags = opt_uint(o, "flags", hdr.flags, 0xff);
    hdr.vid = opt_uint(o, "vid", f->last_vid > 0 ? f->last_vid
                                                 : CHAN_VID_DEFAULT, 0xfff);
    hdr.chunk_index = 0;
    hdr.chunk_count = 1;
    if (opt(o, "chunk")) {
        char *copy = xstrdup(opt(o, "chunk")), *i_s, *n_s;
        char *slash = strchr(copy, '/');
        if (!slash) {
            fatal("chunk= is INDEX/COUNT");
        }
        *slash = '\0';
        i_s = copy;
        n_s = slash + 1;
        hdr.chunk_index = parse_uint(i_s, 0xffff, "chunk index");
        hdr.chunk_count = parse_uint(n_s, 0xffff, "chunk count");
        free(copy);
    }
    const char *payload = opt(o, "payload");
    char *filled = NULL;
    if (opt(o, "fill")) {
        /* A one-record batch whose value is padded with 'x' to make the
         * payload exactly N bytes long. */
        static const char head[] = "{\"records\":[{\"op\":\"put\","
                                   "\"key\":\"fill\",\"value\":\"";
        static const char tail[] = "\",\"version\":1}]}";
        size_t fixed = strlen(head) + strlen(tail);
        size_t total = opt_uint(o, "fill", 0, CHAN_WIRE_MAX_PAYLOAD);
        if (payload || total < fixed) {
            fatal("chand fill=N (N >= %zu) replaces payload=", fixed);
        }
        filled = xmalloc(total + 1);
        memset(filled, 'x', total);
        memcpy(filled, head, strlen(head));
        memcpy(filled + total - strlen(tail), tail, strlen(tail));
        filled[total] = '\0';
        payload = filled;
    }
    if (!payload) {
        payload = hdr.type == CHAN_WIRE_DATA ? "{\"records\":[]}" : "";
    }
    const char *key = opt(o, "key") ? opt(o, "key") : "";

    size_t len;
    enum chan_wire_error e = chan_wire_encode(
        &hdr, payload, strlen(payload), key, strlen(key), f->buf + f->len,
        sizeof f->buf - f->len, &len);
    if (e) {
        fatal("chand: cannot encode: %s (use udp ... payload HEX for "
              "invalid frames)", chan_wire_strerror(e));
    }
    f->len += len;
    free(filled);
}

static void
layer_payload(struct frame *f, const struct opts *o)
{
    static const char *const known[] = { "text", NULL };

    check_opts(o, 1, known);
    if (!f->len) {
        fatal("payload must follow eth");
    }
    if (arg(o, 0)) {
        put_hex(f, arg(o, 0));
    }
    if (opt(o, "text")) {
        const char *text = opt(o, "text");
        memcpy(put(f, strlen(text)), text, strlen(text));
    }
}

/* Fills in lengths and checksums. */
static void
finish(struct frame *f, size_t end)
{
    if (f->type_off != SIZE_MAX) {
        if (!f->explicit_type) {
            fatal("frame has no upper layer: give eth type=0xNNNN");
        }
        pkt_put_be16(f->buf + f->type_off, f->explicit_type);
    }
    if (f->ip_off != SIZE_MAX) {
        pkt_put_be16(f->buf + f->ip_off + 2, end - f->ip_off);
    }
    if (f->ip6_off != SIZE_MAX) {
        pkt_put_be16(f->buf + f->ip6_off + 4, end - f->ip6_off - 40);
    }
    if (f->l4_off != SIZE_MAX) {
        uint8_t *l4 = f->buf + f->l4_off;
        size_t l4_len = end - f->l4_off;
        size_t csum_off = f->l4_proto == IP_PROTO_UDP ? 6
                          : f->l4_proto == 6 ? 16 : 2;
        uint32_t s = 0;

        if (f->l4_proto == IP_PROTO_UDP) {
            pkt_put_be16(l4 + 4, l4_len);
        }
        if (f->l4_proto != 1) {     /* Pseudo-header for all but ICMPv4. */
            uint8_t tail[8] = { 0 };
            bool v4 = f->ip_off != SIZE_MAX;
            const uint8_t *ip = f->buf + (v4 ? f->ip_off : f->ip6_off);
            size_t alen = v4 ? 4 : 16;
            s = pkt_csum_add(s, ip + (v4 ? 12 : 8), alen);
            s = pkt_csum_add(s, ip + (v4 ? 16 : 24), alen);
            pkt_put_be32(tail, l4_len);
            tail[7] = f->l4_proto;
            s = pkt_csum_add(s, tail, 8);
        }
        uint16_t csum = pkt_csum_finish(pkt_csum_add(s, l4, l4_len));
        if (f->l4_proto == IP_PROTO_UDP && !csum) {
            csum = 0xffff;
        }
        if (f->l4_proto == IP_PROTO_UDP && f->udp_forced_csum >= 0) {
            csum = f->udp_forced_csum;
        }
        pkt_put_be16(l4 + csum_off, csum);
    }
    if (f->ip_off != SIZE_MAX) {
        uint8_t *ip = f->buf + f->ip_off;
        pkt_put_be16(ip + 10, 0);
        pkt_put_be16(ip + 10, pkt_csum(ip, IP_HEADER_LEN));
    }
}

static bool
is_layer(const char *token)
{
    static const char *const layers[] = {
        "eth", "vlan", "ip", "ip6", "arp", "udp", "tcp", "icmp", "icmp6",
        "chand", "payload", "pad", "hex", NULL
    };
    for (size_t i = 0; layers[i]; i++) {
        if (!strcmp(token, layers[i])) {
            return true;
        }
    }
    return false;
}

/* Builds the frame described by 'tokens' into 'f'. */
static void
build(struct frame *f, char *tokens[], size_t n)
{
    size_t pad_to = 0;

    memset(f, 0, sizeof *f);
    f->type_off = f->ip_off = f->ip6_off = f->l4_off = f->proto_off
        = SIZE_MAX;
    f->last_vid = -1;
    f->udp_forced_csum = -1;

    if (!n || !is_layer(tokens[0])) {
        fatal("expected a layer (eth, hex, ...) after the port");
    }
    for (size_t i = 0; i < n;) {
        struct opts o;
        size_t j = i + 1;

        while (j < n && !is_layer(tokens[j])) {
            j++;
        }
        o.layer = tokens[i];
        o.tokens = tokens + i + 1;
        o.n = j - i - 1;

        if (!strcmp(o.layer, "hex")) {
            static const char *const none[] = { NULL };
            check_opts(&o, 1, none);
            if (i || j != n || !arg(&o, 0)) {
                fatal("hex HEXBYTES must be the only layer");
            }
            put_hex(f, arg(&o, 0));
            return;
        } else if (!strcmp(o.layer, "eth")) {
            layer_eth(f, &o);
        } else if (!f->len) {
            fatal("the first layer must be eth or hex");
        } else if (!strcmp(o.layer, "vlan")) {
            layer_vlan(f, &o);
        } else if (!strcmp(o.layer, "ip")) {
            layer_ip(f, &o);
        } else if (!strcmp(o.layer, "ip6")) {
            layer_ip6(f, &o);
        } else if (!strcmp(o.layer, "arp")) {
            layer_arp(f, &o);
        } else if (!strcmp(o.layer, "udp")) {
            layer_udp(f, &o);
        } else if (!strcmp(o.layer, "tcp")) {
            layer_tcp(f, &o);
        } else if (!strcmp(o.layer, "icmp")) {
            layer_icmp(f, &o, false);
        } else if (!strcmp(o.layer, "icmp6")) {
            layer_icmp(f, &o, true);
        } else if (!strcmp(o.layer, "chand")) {
            layer_chand(f, &o);
        } else if (!strcmp(o.layer, "payload")) {
            layer_payload(f, &o);
        } else if (!strcmp(o.layer, "pad")) {
            static const char *const none[] = { NULL };
            check_opts(&o, 1, none);
            if (j != n || !arg(&o, 0)) {
                fatal("pad LENGTH must be the last layer");
            }
            pad_to = parse_uint(arg(&o, 0), MAX_FRAME, "pad");
        }
        i = j;
    }
    size_t end = f->len;
    finish(f, end);
    if (pad_to > f->len) {
        put(f, pad_to - f->len);
    }
}

/* One output file. */
struct out_file {
    char *name;                 /* "in-vnic1.pcap". */
    struct replay_pcap pcap;
};

static struct out_file *
get_file(struct out_file **files, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp((*files)[i].name, name)) {
            return &(*files)[i];
        }
    }
    *files = xrealloc(*files, (*n + 1) * sizeof **files);
    struct out_file *file = &(*files)[(*n)++];
    file->name = xstrdup(name);
    replay_pcap_init(&file->pcap);
    return file;
}

static bool
valid_port_name(const char *s)
{
    if (!*s || strlen(s) > 15 || !isalnum((unsigned char) *s)) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char) *s) && !strchr("_.-", *s)) {
            return false;
        }
    }
    return true;
}

static void
check_directive(char *tokens[], size_t n)
{
    uint32_t id;
    uint16_t vid;

    if (!strcmp(tokens[0], "@vid")) {
        if (n != 3 || chan_parse_id(tokens[1], &id)
            || chan_parse_vid(tokens[2], &vid)) {
            fatal("@vid CHAN_ID VID");
        }
    } else if (!strcmp(tokens[0], "@meter")) {
        if (n != 4 || chan_parse_id(tokens[1], &id)) {
            fatal("@meter CHAN_ID PACKETS_PER_SECOND BURST");
        }
        parse_uint(tokens[2], 1000000, "meter rate");
        parse_uint(tokens[3], 1000000, "meter burst");
    } else if (!strcmp(tokens[0], "@frags")) {
        if (n != 2 || (strcmp(tokens[1], "normal")
                       && strcmp(tokens[1], "drop")
                       && strcmp(tokens[1], "reassemble")
                       && strcmp(tokens[1], "nx-match"))) {
            fatal("@frags normal|drop|reassemble|nx-match");
        }
    } else if (!strcmp(tokens[0], "@vlan-limit")) {
        if (n != 2) {
            fatal("@vlan-limit N");
        }
        parse_uint(tokens[1], 2, "vlan-limit");
    } else if (!strcmp(tokens[0], "@unmarked")) {
        if (n != 2 || strcmp(tokens[1], "other-controllers")) {
            fatal("@unmarked other-controllers");
        }
    } else {
        fatal("unknown directive %s (known: @describe @vid @meter @frags "
              "@vlan-limit @unmarked @dpdk @wait)", tokens[0]);
    }
}

int
main(int argc, char *argv[])
{
    bool verbose = false;
    int argi = 1;

    if (argc > 1 && !strcmp(argv[1], "-v")) {
        verbose = true;
        argi++;
    }
    if (argc - argi != 2) {
        fprintf(stderr, "usage: replay-gen [-v] SCENARIO OUTDIR\n");
        return 2;
    }
    scenario_name = argv[argi];
    const char *outdir = argv[argi + 1];
    FILE *in = fopen(scenario_name, "r");
    if (!in) {
        fprintf(stderr, "replay-gen: %s: %s\n", scenario_name,
                strerror(errno));
        return 1;
    }

    struct out_file *files = NULL;
    size_t n_files = 0;
    unsigned int n_packets = 0;
    unsigned long long clock_us = 0;    /* Scenario time. */
    char *line = NULL, *joined = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned int phys_line = 0;

    while ((len = getline(&line, &cap, in)) >= 0) {
        phys_line++;
        while (len > 0 && isspace((unsigned char) line[len - 1])) {
            line[--len] = '\0';
        }
        /* Continuation lines. */
        char *prev = joined;
        joined = xasprintf("%s%s%s", prev ? prev : "",
                           prev ? " " : "", line);
        free(prev);
        if (len > 0 && line[len - 1] == '\\') {
            joined[strlen(joined) - 1] = ' ';
            if (!line_number) {
                line_number = phys_line;
            }
            continue;
        }
        if (!line_number) {
            line_number = phys_line;
        }

        char *tokens[MAX_TOKENS];
        const char *start = joined + strspn(joined, " \t");
        bool free_text = (*start == '#' || !strncmp(start, "@describe", 9)
                          || !strncmp(start, "@dpdk", 5));
        if (!strncmp(start, "@dpdk", 5)
            && (strncmp(start, "@dpdk skip ", 11)
                || !start[11 + strspn(start + 11, " \t")])) {
            fatal("@dpdk skip REASON");
        }
        size_t n = free_text ? 0 : tokenize(joined, tokens, MAX_TOKENS);
        if (n) {
            if (!strcmp(tokens[0], "@wait")) {
                if (n != 2) {
                    fatal("@wait MILLISECONDS");
                }
                clock_us += parse_uint(tokens[1], 60000, "@wait") * 1000;
            } else if (tokens[0][0] == '@') {
                check_directive(tokens, n);
            } else {
                const char *port = tokens[0];
                size_t first = 1;
                long long mark = -1;
                unsigned int copies = 1;
                char *name;

                if (n > first && !strncmp(tokens[first], "mark=", 5)) {
                    mark = parse_uint(tokens[first] + 5, 0xffffffff, "mark");
                    first++;
                }
                if (n > first && !strncmp(tokens[first], "x=", 2)) {
                    copies = parse_uint(tokens[first] + 2, 32, "x");
                    if (!copies || mark >= 0) {
                        fatal("x=N (1..32) is for ports, not controller");
                    }
                    first++;
                }
                if (!strcmp(port, "controller")) {
                    name = xasprintf("in-controller-%lld.pcap",
                                     mark < 0 ? 0 : mark);
                } else if (mark >= 0) {
                    fatal("mark= is only for port controller (PACKET_OUT)");
                } else if (!valid_port_name(port)) {
                    fatal("\"%s\" is not a port name", port);
                } else {
                    name = xasprintf("in-%s.pcap", port);
                }

                static struct frame frame;
                build(&frame, tokens + first, n - first);
                /* Packets are 1 us apart in scenario time, copies share
                 * their timestamp (replay-feed hands them to the datapath
                 * in one batch), @wait adds its delay. */
                clock_us++;
                struct timeval ts = { .tv_sec = clock_us / 1000000,
                                      .tv_usec = clock_us % 1000000 };
                struct out_file *file = get_file(&files, &n_files, name);
                for (unsigned int i = 0; i < copies; i++) {
                    replay_pcap_add(&file->pcap, frame.buf, frame.len, &ts,
                                    NULL);
                }
                n_packets += copies;
                if (verbose) {
                    struct frame_desc desc;
                    frame_desc_decode(frame.buf, frame.len, &desc);
                    char where[40];
                    if (mark >= 0) {
                        snprintf(where, sizeof where, "%s mark=%lld", port,
                                 mark);
                    } else {
                        snprintf(where, sizeof where, "%s", port);
                    }
                    if (copies > 1) {
                        size_t used = strlen(where);
                        snprintf(where + used, sizeof where - used, " x%u",
                                 copies);
                    }
                    printf("%3u %-19s %s\n", n_packets, where, desc.summary);
                }
                free(name);
            }
        }
        free(joined);
        joined = NULL;
        line_number = 0;
    }
    if (joined) {
        line_number = phys_line;
        fatal("continuation line at end of file");
    }
    free(line);
    fclose(in);

    int status = 0;
    for (size_t i = 0; i < n_files; i++) {
        char *path = xasprintf("%s/%s", outdir, files[i].name);
        char *err;
        if (replay_pcap_write(path, &files[i].pcap, false, &err)) {
            fprintf(stderr, "replay-gen: %s\n", err);
            free(err);
            status = 1;
        }
        free(path);
        replay_pcap_destroy(&files[i].pcap);
        free(files[i].name);
    }
    free(files);
    if (!n_packets) {
        fprintf(stderr, "replay-gen: %s: no packets\n", scenario_name);
        status = 1;
    }
    return status;
}
