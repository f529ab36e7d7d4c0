/* ofp13-flow: OpenFlow 1.3 flow programming messages and flow syntax.  See
 * ofp13-flow.h. */

#include <config.h>
#include "ofp13-flow.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packets.h"

/* A bounded writer: appends to 'buf' until 'size' bytes; after an overflow
 * it only counts. */
struct writer {
    uint8_t *buf;
    size_t size;
    size_t len;
};

static uint8_t *
w_put(struct writer *w, size_t n)
{
    uint8_t *p = w->len + n <= w->size ? w->buf + w->len : NULL;
    if (p) {
        memset(p, 0, n);
    }
    w->len += n;
    return p;
}

static void
w_be16(struct writer *w, uint16_t v)
{
    uint8_t *p = w_put(w, 2);
    if (p) {
        pkt_put_be16(p, v);
    }
}

static void
w_be32(struct writer *w, uint32_t v)
{
    uint8_t *p = w_put(w, 4);
    if (p) {
        pkt_put_be32(p, v);
    }
}

static void
w_be64(struct writer *w, uint64_t v)
{
    uint8_t *p = w_put(w, 8);
    if (p) {
        pkt_put_be64(p, v);
    }
}

static void
w_bytes(struct writer *w, const void *data, size_t n)
{
    uint8_t *p = w_put(w, n);
    if (p && n) {
        memcpy(p, data, n);
    }
}

static void
w_pad8(struct writer *w, size_t start)
{
    size_t n = w->len - start;
    w_put(w, ((n + 7) & ~(size_t) 7) - n);
}

/* Patches the 16-bit length at offset 'at' with the bytes written since
 * 'start'. */
static void
w_patch_len(struct writer *w, size_t at, size_t start)
{
    if (at + 2 <= w->size && w->len <= w->size) {
        pkt_put_be16(w->buf + at, w->len - start);
    }
}

/* Starts a message of 'type': writes its header with a length patched by
 * w_finish(). */
static void
w_header(struct writer *w, uint8_t type, uint32_t xid)
{
    uint8_t *p = w_put(w, OFP13_HEADER_LEN);
    if (p) {
        p[0] = OFP13_VERSION;
        p[1] = type;
        pkt_put_be32(p + 4, xid);
    }
}

static int
w_finish(struct writer *w, size_t *lenp)
{
    if (lenp) {
        *lenp = 0;
    }
    if (w->len > OFP13_MAX_MSG_LEN) {
        return OFP13_E_TOO_BIG;
    } else if (!w->buf || w->len > w->size) {
        return OFP13_E_NO_SPACE;
    }
    w_patch_len(w, 2, 0);
    if (lenp) {
        *lenp = w->len;
    }
    return 0;
}

static struct writer
writer_init(void *buf, size_t size)
{
    return (struct writer) { .buf = buf, .size = buf ? size : 0 };
}

/* Flow syntax. */

#define OXM(CLASS, FIELD, LEN) \
    (((uint32_t) (CLASS) << 16) | ((uint32_t) (FIELD) << 9) | (LEN))
#define BASIC OFP13_OXM_CLASS_OPENFLOW_BASIC
#define NXM0 0x0000
#define NXM1 OFP13_OXM_CLASS_NXM1

#define ETH_TYPE_IP 0x0800
#define ETH_TYPE_ARP 0x0806
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define OFPVID_PRESENT 0x1000

/* Prerequisites of a match field. */
enum prereq {
    PRE_NONE,
    PRE_IP,                     /* eth_type=0x0800. */
    PRE_ARP,                    /* eth_type=0x0806. */
    PRE_TCP,                    /* ip, ip_proto=6. */
    PRE_UDP,                    /* ip, ip_proto=17. */
    PRE_ICMP,                   /* ip, ip_proto=1. */
};

/* How a field's value is written in the text. */
enum syntax {
    SYN_INT,                    /* Decimal or 0x hex, optional /mask. */
    SYN_PORT,                   /* Number or reserved port name. */
    SYN_MAC,                    /* xx:xx:xx:xx:xx:xx, optional /mask. */
    SYN_IPV4,                   /* a.b.c.d, optional /prefix or /mask. */
    SYN_FRAG,                   /* no, yes, first, later, not_later. */
};

/* A match field chand's templates may use, in the order its OXM entry is
 * emitted (prerequisites first, as ovs-vswitchd checks them in order). */
struct field {
    const char *name;           /* ovs-ofctl name. */
    const char *alias;          /* Other ovs-ofctl name, or NULL. */
    uint32_t oxm;               /* OXM header for OpenFlow 1.3, no mask. */
    uint32_t nxm;               /* NXM header (for move), or 0. */
    unsigned int n_bytes;
    bool maskable;
    enum syntax syntax;
    enum prereq prereq;
};

enum field_id {
    F_IN_PORT, F_PKT_MARK, F_ETH_DST, F_ETH_SRC, F_ETH_TYPE, F_VLAN_VID,
    F_IP_PROTO, F_IP_FRAG, F_IPV4_SRC, F_IPV4_DST, F_TCP_SRC, F_TCP_DST,
    F_UDP_SRC, F_UDP_DST, F_ICMP_TYPE, F_ICMP_CODE, F_ARP_OP, F_ARP_SPA,
    F_ARP_TPA, F_ARP_SHA, F_ARP_THA, N_FIELDS
};

static const struct field fields[N_FIELDS] = {
    [F_IN_PORT] = { "in_port", NULL, OXM(BASIC, 0, 4), 0, 4, false,
                    SYN_PORT, PRE_NONE },
    [F_PKT_MARK] = { "pkt_mark", NULL, OXM(NXM1, 33, 4), OXM(NXM1, 33, 4),
                     4, true, SYN_INT, PRE_NONE },
    [F_ETH_DST] = { "dl_dst", "eth_dst", OXM(BASIC, 3, 6), OXM(NXM0, 1, 6),
                    6, true, SYN_MAC, PRE_NONE },
    [F_ETH_SRC] = { "dl_src", "eth_src", OXM(BASIC, 4, 6), OXM(NXM0, 2, 6),
                    6, true, SYN_MAC, PRE_NONE },
    [F_ETH_TYPE] = { "dl_type", "eth_type", OXM(BASIC, 5, 2), 0, 2, false,
                     SYN_INT, PRE_NONE },
    [F_VLAN_VID] = { "vlan_vid", NULL, OXM(BASIC, 6, 2), 0, 2, true,
                     SYN_INT, PRE_NONE },
    [F_IP_PROTO] = { "nw_proto", "ip_proto", OXM(BASIC, 10, 1), 0, 1, false,
                     SYN_INT, PRE_IP },
    [F_IP_FRAG] = { "ip_frag", "nw_frag", OXM(NXM1, 26, 1), 0, 1, true,
                    SYN_FRAG, PRE_IP },
    [F_IPV4_SRC] = { "nw_src", "ip_src", OXM(BASIC, 11, 4), 0, 4, true,
                     SYN_IPV4, PRE_IP },
    [F_IPV4_DST] = { "nw_dst", "ip_dst", OXM(BASIC, 12, 4), 0, 4, true,
                     SYN_IPV4, PRE_IP },
    [F_TCP_SRC] = { "tcp_src", NULL, OXM(BASIC, 13, 2), 0, 2, false,
                    SYN_INT, PRE_TCP },
    [F_TCP_DST] = { "tcp_dst", NULL, OXM(BASIC, 14, 2), 0, 2, false,
                    SYN_INT, PRE_TCP },
    [F_UDP_SRC] = { "udp_src", NULL, OXM(BASIC, 15, 2), 0, 2, false,
                    SYN_INT, PRE_UDP },
    [F_UDP_DST] = { "udp_dst", NULL, OXM(BASIC, 16, 2), 0, 2, false,
                    SYN_INT, PRE_UDP },
    [F_ICMP_TYPE] = { "icmp_type", NULL, OXM(BASIC, 19, 1), 0, 1, false,
                      SYN_INT, PRE_ICMP },
    [F_ICMP_CODE] = { "icmp_code", NULL, OXM(BASIC, 20, 1), 0, 1, false,
                      SYN_INT, PRE_ICMP },
    [F_ARP_OP] = { "arp_op", NULL, OXM(BASIC, 21, 2), OXM(NXM0, 15, 2), 2,
                   false, SYN_INT, PRE_ARP },
    [F_ARP_SPA] = { "arp_spa", NULL, OXM(BASIC, 22, 4), OXM(NXM0, 16, 4), 4,
                    true, SYN_IPV4, PRE_ARP },
    [F_ARP_TPA] = { "arp_tpa", NULL, OXM(BASIC, 23, 4), OXM(NXM0, 17, 4), 4,
                    true, SYN_IPV4, PRE_ARP },
    [F_ARP_SHA] = { "arp_sha", NULL, OXM(BASIC, 24, 6), OXM(NXM1, 17, 6), 6,
                    true, SYN_MAC, PRE_ARP },
    [F_ARP_THA] = { "arp_tha", NULL, OXM(BASIC, 25, 6), OXM(NXM1, 18, 6), 6,
                    true, SYN_MAC, PRE_ARP },
};

/* A match being built: at most one value per field. */
struct match {
    bool set[N_FIELDS];
    uint8_t value[N_FIELDS][8];
    uint8_t mask[N_FIELDS][8];
};

/* Parse state: the match, the error buffer. */
struct parser {
    struct match m;
    char *err;
    size_t errsize;
};

static int
fail(struct parser *p, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct parser *p, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(p->err, p->errsize, format, args);
    va_end(args);
    return OFP13_E_BAD_ARG;
}

static const struct field *
find_field(const char *name, enum field_id *idp)
{
    for (int i = 0; i < N_FIELDS; i++) {
        if (!strcmp(name, fields[i].name)
            || (fields[i].alias && !strcmp(name, fields[i].alias))) {
            *idp = i;
            return &fields[i];
        }
    }
    return NULL;
}

/* Parses an unsigned integer (decimal or 0x hex) that fits in 'max'. */
static bool
parse_uint(const char *s, uint64_t max, uint64_t *v)
{
    char *end;
    if (!isdigit((unsigned char) *s)) {
        return false;
    }
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || *end || x > max) {
        return false;
    }
    *v = x;
    return true;
}

static bool
parse_mac(const char *s, uint8_t mac[6])
{
    unsigned int b[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
               &b[4], &b[5], &tail) != 6 || strlen(s) != 17) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = b[i];
    }
    return true;
}

static bool
parse_ipv4(const char *s, uint32_t *ip)
{
    unsigned int b[4];
    char tail;
    if (sscanf(s, "%3u.%3u.%3u.%3u%c", &b[0], &b[1], &b[2], &b[3], &tail)
        != 4 || b[0] > 255 || b[1] > 255 || b[2] > 255 || b[3] > 255) {
        return false;
    }
    *ip = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    return true;
}

/* Reserved port names, as ovs-ofctl writes them. */
static const struct {
    const char *name;
    uint32_t port;
} port_names[] = {
    { "IN_PORT", OFP13_PORT_IN_PORT }, { "TABLE", OFP13_PORT_TABLE },
    { "NORMAL", OFP13_PORT_NORMAL }, { "FLOOD", OFP13_PORT_FLOOD },
    { "ALL", OFP13_PORT_ALL }, { "CONTROLLER", OFP13_PORT_CONTROLLER },
    { "LOCAL", OFP13_PORT_LOCAL },
};

static bool
parse_port(const char *s, uint32_t *port)
{
    uint64_t v;
    for (size_t i = 0; i < sizeof port_names / sizeof port_names[0]; i++) {
        if (!strcmp(s, port_names[i].name)) {
            *port = port_names[i].port;
            return true;
        }
    }
    if (parse_uint(s, OFP13_PORT_MAX, &v) && v) {
        *port = v;
        return true;
    }
    return false;
}

static void
put_uint(uint8_t *p, unsigned int n_bytes, uint64_t v)
{
    for (int i = n_bytes - 1; i >= 0; i--) {
        p[i] = v;
        v >>= 8;
    }
}

/* Parses 'value' (with an optional "/mask") of field 'f' into 'val' and
 * 'mask' ('f->n_bytes' each). */
static int
parse_value(struct parser *p, const struct field *f, const char *value,
            uint8_t *val, uint8_t *mask)
{
    char buf[64];
    if (strlen(value) >= sizeof buf) {
        return fail(p, "%s: value too long", f->name);
    }
    strcpy(buf, value);
    char *slash = strchr(buf, '/');
    if (slash) {
        if (!f->maskable) {
            return fail(p, "%s: field cannot be masked", f->name);
        }
        *slash++ = '\0';
    }
    memset(mask, 0xff, f->n_bytes);

    uint64_t v, m;
    uint32_t ip, ipmask;
    switch (f->syntax) {
    case SYN_PORT:
        if (!parse_port(buf, &ip)) {
            return fail(p, "%s: bad port \"%s\"", f->name, buf);
        }
        put_uint(val, 4, ip);
        return 0;
    case SYN_INT: {
        uint64_t max = f->n_bytes == 8 ? UINT64_MAX
                       : (UINT64_C(1) << (8 * f->n_bytes)) - 1;
        if (!parse_uint(buf, max, &v)
            || (slash && !parse_uint(slash, max, &m))) {
            return fail(p, "%s: bad value \"%s\"", f->name, value);
        }
        put_uint(val, f->n_bytes, v);
        if (slash) {
            put_uint(mask, f->n_bytes, m);
        }
        return 0;
    }
    case SYN_MAC:
        if (!parse_mac(buf, val) || (slash && !parse_mac(slash, mask))) {
            return fail(p, "%s: bad MAC \"%s\"", f->name, value);
        }
        return 0;
    case SYN_IPV4:
        if (!parse_ipv4(buf, &ip)) {
            return fail(p, "%s: bad IPv4 address \"%s\"", f->name, value);
        }
        ipmask = UINT32_MAX;
        if (slash && parse_uint(slash, 32, &v)) {
            ipmask = v ? UINT32_MAX << (32 - v) : 0;
        } else if (slash && !parse_ipv4(slash, &ipmask)) {
            return fail(p, "%s: bad mask \"%s\"", f->name, value);
        }
        put_uint(val, 4, ip);
        put_uint(mask, 4, ipmask);
        return 0;
    case SYN_FRAG: {
        static const struct { const char *name; uint8_t v, m; } frags[] = {
            { "no", 0, 1 }, { "yes", 1, 1 }, { "first", 1, 3 },
            { "later", 3, 3 }, { "not_later", 0, 2 },
        };
        for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++) {
            if (!slash && !strcmp(buf, frags[i].name)) {
                val[0] = frags[i].v;
                mask[0] = frags[i].m;
                return 0;
            }
        }
        return fail(p, "%s: bad value \"%s\"", f->name, value);
    }
    }
    return fail(p, "%s: cannot parse", f->name);
}

/* Sets field 'id' of the match; a second, different setting is an
 * error. */
static int
set_field(struct parser *p, enum field_id id, const uint8_t *val,
          const uint8_t *mask)
{
    const struct field *f = &fields[id];
    uint8_t v[8];
    for (unsigned int i = 0; i < f->n_bytes; i++) {
        v[i] = val[i] & mask[i];
    }
    if (p->m.set[id] && (memcmp(p->m.value[id], v, f->n_bytes)
                         || memcmp(p->m.mask[id], mask, f->n_bytes))) {
        return fail(p, "%s: set twice with different values", f->name);
    }
    p->m.set[id] = true;
    memcpy(p->m.value[id], v, f->n_bytes);
    memcpy(p->m.mask[id], mask, f->n_bytes);
    return 0;
}

static int
set_exact(struct parser *p, enum field_id id, uint64_t v)
{
    uint8_t val[8], mask[8];
    put_uint(val, fields[id].n_bytes, v);
    memset(mask, 0xff, sizeof mask);
    return set_field(p, id, val, mask);
}

/* The protocol shorthands. */
static int
parse_shorthand(struct parser *p, const char *word, bool *found)
{
    static const struct { const char *name; uint16_t type; uint8_t proto; }
    protos[] = {
        { "ip", ETH_TYPE_IP, 0 }, { "arp", ETH_TYPE_ARP, 0 },
        { "tcp", ETH_TYPE_IP, IP_PROTO_TCP },
        { "udp", ETH_TYPE_IP, IP_PROTO_UDP },
        { "icmp", ETH_TYPE_IP, IP_PROTO_ICMP },
    };
    *found = false;
    for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) {
        if (!strcmp(word, protos[i].name)) {
            *found = true;
            int error = set_exact(p, F_ETH_TYPE, protos[i].type);
            if (!error && protos[i].proto) {
                error = set_exact(p, F_IP_PROTO, protos[i].proto);
            }
            return error;
        }
    }
    return 0;
}

/* dl_vlan=VID and vlan_tci=TCI[/MASK] (VID and CFI bits only), both as
 * OpenFlow 1.3's vlan_vid (CFI is OFPVID_PRESENT), as ovs-ofctl does. */
static int
parse_vlan(struct parser *p, const char *name, const char *value)
{
    uint64_t v, m = 0xffff;
    char buf[32];
    snprintf(buf, sizeof buf, "%s", value);
    char *slash = strchr(buf, '/');
    if (slash) {
        *slash++ = '\0';
    }
    if (!strcmp(name, "dl_vlan")) {
        if (slash || !parse_uint(buf, 4095, &v)) {
            return fail(p, "dl_vlan: bad VLAN id \"%s\"", value);
        }
        return set_exact(p, F_VLAN_VID, v | OFPVID_PRESENT);
    }
    if (!parse_uint(buf, 0xffff, &v) || (slash && !parse_uint(slash, 0xffff,
                                                               &m))) {
        return fail(p, "vlan_tci: bad value \"%s\"", value);
    }
    if (m & 0xe000) {
        return fail(p, "vlan_tci: only the VLAN id and CFI bits may be "
                    "matched (mask within 0x1fff)");
    }
    uint8_t val[2], mask[2];
    put_uint(val, 2, v & 0x1fff);
    put_uint(mask, 2, m == 0x1fff ? 0xffff : m);
    return set_field(p, F_VLAN_VID, val, mask);
}

static int
parse_match_word(struct parser *p, char *word, struct ofp13_flow *flow)
{
    char *eq = strchr(word, '=');
    bool found;
    int error = parse_shorthand(p, word, &found);
    if (error || found) {
        return error;
    }
    if (!eq) {
        return fail(p, "unknown match keyword \"%s\"", word);
    }
    *eq = '\0';
    const char *name = word, *value = eq + 1;
    uint64_t v;

    if (!strcmp(name, "priority")) {
        if (!parse_uint(value, UINT16_MAX, &v)) {
            return fail(p, "priority: bad value \"%s\"", value);
        }
        flow->priority = v;
        return 0;
    } else if (!strcmp(name, "table")) {
        if (!parse_uint(value, 254, &v)) {
            return fail(p, "table: bad value \"%s\"", value);
        }
        flow->table_id = v;
        return 0;
    } else if (!strcmp(name, "dl_vlan") || !strcmp(name, "vlan_tci")) {
        return parse_vlan(p, name, value);
    } else if (!strcmp(name, "tp_src") || !strcmp(name, "tp_dst")) {
        bool dst = name[3] == 'd';
        enum field_id id;
        if (p->m.set[F_IP_PROTO] && p->m.value[F_IP_PROTO][0] == IP_PROTO_TCP) {
            id = dst ? F_TCP_DST : F_TCP_SRC;
        } else if (p->m.set[F_IP_PROTO]
                   && p->m.value[F_IP_PROTO][0] == IP_PROTO_UDP) {
            id = dst ? F_UDP_DST : F_UDP_SRC;
        } else {
            return fail(p, "%s: needs tcp or udp before it", name);
        }
        if (!parse_uint(value, UINT16_MAX, &v)) {
            return fail(p, "%s: bad value \"%s\"", name, value);
        }
        return set_exact(p, id, v);
    }

    enum field_id id;
    const struct field *f = find_field(name, &id);
    if (!f) {
        return fail(p, "unknown match field \"%s\"", name);
    }
    uint8_t val[8], mask[8];
    error = parse_value(p, f, value, val, mask);
    return error ? error : set_field(p, id, val, mask);
}

/* Checks each set field's prerequisites. */
static int
check_prereqs(struct parser *p)
{
    const struct match *m = &p->m;
    uint16_t type = m->set[F_ETH_TYPE] ? pkt_get_be16(m->value[F_ETH_TYPE])
                                       : 0;
    int proto = m->set[F_IP_PROTO] ? m->value[F_IP_PROTO][0] : -1;

    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        bool ok;
        if (!m->set[i]) {
            continue;
        }
        switch (f->prereq) {
        case PRE_NONE: ok = true; break;
        case PRE_IP: ok = type == ETH_TYPE_IP; break;
        case PRE_ARP: ok = type == ETH_TYPE_ARP; break;
        case PRE_TCP: ok = type == ETH_TYPE_IP && proto == IP_PROTO_TCP;
            break;
        case PRE_UDP: ok = type == ETH_TYPE_IP && proto == IP_PROTO_UDP;
            break;
        case PRE_ICMP: ok = type == ETH_TYPE_IP && proto == IP_PROTO_ICMP;
            break;
        default: ok = false; break;
        }
        if (!ok) {
            return fail(p, "%s: prerequisite missing (e.g. ip, arp, udp "
                        "before it)", f->name);
        }
    }
    return 0;
}

static bool
all_ones(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0xff) {
            return false;
        }
    }
    return true;
}

static bool
all_zeros(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Writes the match's OXM entries in field order. */
static void
put_match(const struct match *m, struct writer *w)
{
    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        if (!m->set[i] || all_zeros(m->mask[i], f->n_bytes)) {
            continue;
        }
        bool masked = !all_ones(m->mask[i], f->n_bytes);
        w_be32(w, masked ? (f->oxm & ~UINT32_C(0xff)) | 0x100 | (2 * f->n_bytes)
                         : f->oxm);
        w_bytes(w, m->value[i], f->n_bytes);
        if (masked) {
            w_bytes(w, m->mask[i], f->n_bytes);
        }
    }
}

/* Actions. */

#define OFPAT_OUTPUT 0
#define OFPAT_PUSH_VLAN 17
#define OFPAT_POP_VLAN 18
#define OFPAT_SET_FIELD 25
#define OFPAT_EXPERIMENTER 0xffff
#define NXAST_REG_MOVE 6
#define NXAST_CONTROLLER 20
#define OFPIT_APPLY_ACTIONS 4
#define OFPIT_METER 6

static void
put_output(struct writer *w, uint32_t port)
{
    w_be16(w, OFPAT_OUTPUT);
    w_be16(w, 16);
    w_be32(w, port);
    w_be16(w, port == OFP13_PORT_CONTROLLER ? UINT16_MAX : 0);
    w_put(w, 6);
}

static void
put_set_field(struct writer *w, const struct field *f, const uint8_t *val)
{
    size_t start = w->len;
    w_be16(w, OFPAT_SET_FIELD);
    w_be16(w, 0);
    w_be32(w, f->oxm);
    w_bytes(w, val, f->n_bytes);
    w_pad8(w, start);
    w_patch_len(w, start + 2, start);
}

/* Writes a Nicira action header for 'subtype'; the caller writes the
 * rest, 'body_len' bytes, which with the header makes a multiple of 8. */
static void
put_nx_header(struct writer *w, uint16_t subtype, size_t body_len)
{
    w_be16(w, OFPAT_EXPERIMENTER);
    w_be16(w, 10 + body_len);
    w_be32(w, OFP13_NX_VENDOR_ID);
    w_be16(w, subtype);
}

/* set_field:VALUE->FIELD. */
static int
parse_set_field_action(struct parser *p, const char *arg, struct writer *w)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s", arg);
    char *arrow = strstr(buf, "->");
    if (!arrow) {
        return fail(p, "set_field: expected VALUE->FIELD, got \"%s\"", arg);
    }
    *arrow = '\0';
    const char *name = arrow + 2;
    enum field_id id;
    const struct field *f = find_field(name, &id);
    if (!f || id == F_IN_PORT || id == F_ETH_TYPE || id == F_IP_PROTO
        || id == F_IP_FRAG || id == F_VLAN_VID) {
        return fail(p, "set_field: field \"%s\" not supported", name);
    }
    uint8_t val[8], mask[8];
    int error = parse_value(p, f, buf, val, mask);
    if (error) {
        return error;
    }
    if (!all_ones(mask, f->n_bytes)) {
        return fail(p, "set_field: %s must be set whole (no mask)", name);
    }
    put_set_field(w, f, val);
    return 0;
}

/* move:SRC[]->DST[] (whole fields of the same size). */
static int
parse_move_action(struct parser *p, const char *arg, struct writer *w)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s", arg);
    char *arrow = strstr(buf, "->");
    size_t n;
    if (!arrow || (n = strlen(arrow + 2)) < 3 || strcmp(arrow + 2 + n - 2,
                                                        "[]")) {
        return fail(p, "move: expected SRC[]->DST[], got \"%s\"", arg);
    }
    *arrow = '\0';
    char *dst_name = arrow + 2;
    dst_name[n - 2] = '\0';
    size_t sn = strlen(buf);
    if (sn < 3 || strcmp(buf + sn - 2, "[]")) {
        return fail(p, "move: expected SRC[]->DST[], got \"%s\"", arg);
    }
    buf[sn - 2] = '\0';
    enum field_id sid, did;
    const struct field *src = find_field(buf, &sid);
    const struct field *dst = find_field(dst_name, &did);
    if (!src || !dst || !src->nxm || !dst->nxm) {
        return fail(p, "move: field \"%s\" not supported",
                    src && src->nxm ? dst_name : buf);
    }
    if (src->n_bytes != dst->n_bytes) {
        return fail(p, "move: %s and %s differ in size", src->name,
                    dst->name);
    }
    put_nx_header(w, NXAST_REG_MOVE, 14);
    w_be16(w, src->n_bytes * 8);
    w_be16(w, 0);
    w_be16(w, 0);
    w_be32(w, src->nxm);
    w_be32(w, dst->nxm);
    return 0;
}

/* controller(id=N) or controller(max_len=N,id=N,reason=action). */
static int
parse_controller_action(struct parser *p, const char *arg, struct writer *w)
{
    uint64_t id = 0, max_len = UINT16_MAX;
    char buf[96];
    snprintf(buf, sizeof buf, "%s", arg);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            return fail(p, "controller: bad argument \"%s\"", kv);
        }
        *eq++ = '\0';
        if (!strcmp(kv, "id") && parse_uint(eq, UINT16_MAX, &id)) {
            continue;
        } else if (!strcmp(kv, "max_len")
                   && parse_uint(eq, UINT16_MAX, &max_len)) {
            continue;
        } else if (!strcmp(kv, "reason") && !strcmp(eq, "action")) {
            continue;
        }
        return fail(p, "controller: bad argument \"%s=%s\"", kv, eq);
    }
    put_nx_header(w, NXAST_CONTROLLER, 6);
    w_be16(w, max_len);
    w_be16(w, id);
    uint8_t *reason = w_put(w, 2);
    if (reason) {
        reason[0] = 1;          /* OFPR_ACTION; then one byte of pad. */
    }
    return 0;
}

/* Parses one action into 'w' (apply-actions) or sets '*meter'. */
static int
parse_action(struct parser *p, char *act, bool has_vlan, struct writer *w,
             uint32_t *meter)
{
    char *arg = strchr(act, ':');
    char *paren = strchr(act, '(');
    uint64_t v;
    uint32_t port;

    if (paren && (!arg || paren < arg)) {
        size_t n = strlen(act);
        if (act[n - 1] != ')') {
            return fail(p, "unbalanced parentheses in \"%s\"", act);
        }
        act[n - 1] = '\0';
        *paren++ = '\0';
        if (!strcmp(act, "controller")) {
            return parse_controller_action(p, paren, w);
        }
        return fail(p, "unknown action \"%s\"", act);
    }
    if (arg) {
        *arg++ = '\0';
    }
    if (!strcmp(act, "output") && arg) {
        if (!parse_port(arg, &port)) {
            return fail(p, "output: bad port \"%s\"", arg);
        }
        put_output(w, port);
    } else if (!arg && parse_port(act, &port)) {
        if (port == OFP13_PORT_CONTROLLER) {
            return fail(p, "write controller(...) instead of CONTROLLER");
        }
        put_output(w, port);
    } else if ((!strcmp(act, "mod_vlan_vid") || !strcmp(act, "set_vlan_vid"))
               && arg) {
        if (!parse_uint(arg, 4095, &v)) {
            return fail(p, "%s: bad VLAN id \"%s\"", act, arg);
        }
        if (!has_vlan && act[0] == 'm') {
            w_be16(w, OFPAT_PUSH_VLAN);
            w_be16(w, 8);
            w_be16(w, 0x8100);
            w_put(w, 2);
        }
        uint8_t val[2];
        put_uint(val, 2, v | OFPVID_PRESENT);
        put_set_field(w, &fields[F_VLAN_VID], val);
    } else if ((!strcmp(act, "pop_vlan") || !strcmp(act, "strip_vlan"))
               && !arg) {
        w_be16(w, OFPAT_POP_VLAN);
        w_be16(w, 8);
        w_put(w, 4);
    } else if (!strcmp(act, "push_vlan") && arg) {
        if (!parse_uint(arg, UINT16_MAX, &v) || (v != 0x8100 && v != 0x88a8)) {
            return fail(p, "push_vlan: bad ethertype \"%s\"", arg);
        }
        w_be16(w, OFPAT_PUSH_VLAN);
        w_be16(w, 8);
        w_be16(w, v);
        w_put(w, 2);
    } else if (!strcmp(act, "set_field") && arg) {
        return parse_set_field_action(p, arg, w);
    } else if (!strcmp(act, "move") && arg) {
        return parse_move_action(p, arg, w);
    } else if (!strcmp(act, "meter") && arg) {
        if (!parse_uint(arg, UINT32_MAX, &v) || !v) {
            return fail(p, "meter: bad meter id \"%s\"", arg);
        }
        if (*meter) {
            return fail(p, "meter: only one meter per flow");
        }
        *meter = v;
    } else {
        return fail(p, "unknown action \"%s%s%s\"", act, arg ? ":" : "",
                    arg ? arg : "");
    }
    return 0;
}

/* Splits 's' at the next comma outside parentheses: returns the word and
 * advances '*sp' past the comma, or returns NULL at the end. */
static char *
next_word(char **sp)
{
    char *s = *sp;
    if (!s || !*s) {
        return NULL;
    }
    int depth = 0;
    char *c;
    for (c = s; *c; c++) {
        if (*c == '(') {
            depth++;
        } else if (*c == ')') {
            depth--;
        } else if (*c == ',' && !depth) {
            break;
        }
    }
    if (*c) {
        *c = '\0';
        *sp = c + 1;
    } else {
        *sp = c;
    }
    return s;
}

static int
parse_actions(struct parser *p, char *text, bool has_vlan,
              struct ofp13_flow *flow)
{
    uint8_t actions[OFP13_FLOW_MAX_INSTS];
    struct writer aw = writer_init(actions, sizeof actions);
    uint32_t meter = 0;
    bool drop = false;
    char *word;

    while ((word = next_word(&text)) != NULL) {
        if (!strcmp(word, "drop")) {
            drop = true;
            continue;
        }
        int error = parse_action(p, word, has_vlan, &aw, &meter);
        if (error) {
            return error;
        }
    }
    if (drop && (aw.len || meter)) {
        return fail(p, "drop must be the only action");
    }
    if (aw.len > aw.size) {
        return fail(p, "too many actions");
    }

    struct writer iw = writer_init(flow->insts, sizeof flow->insts);
    if (meter) {
        w_be16(&iw, OFPIT_METER);
        w_be16(&iw, 8);
        w_be32(&iw, meter);
    }
    if (aw.len) {
        w_be16(&iw, OFPIT_APPLY_ACTIONS);
        w_be16(&iw, 8 + aw.len);
        w_put(&iw, 4);
        w_bytes(&iw, actions, aw.len);
    }
    if (iw.len > iw.size) {
        return fail(p, "too many actions");
    }
    flow->insts_len = iw.len;
    return 0;
}

int
ofp13_flow_parse(const char *text, struct ofp13_flow *flow, char *err,
                 size_t errsize)
{
    char dummy[1];
    struct parser p = { .err = errsize ? err : dummy,
                        .errsize = errsize ? errsize : sizeof dummy };
    p.err[0] = '\0';
    memset(flow, 0, sizeof *flow);
    if (!text) {
        return fail(&p, "no flow");
    }

    char *copy = strdup(text);
    if (!copy) {
        return fail(&p, "out of memory");
    }
    char *actions = strstr(copy, "actions=");
    if (!actions || (actions != copy && actions[-1] != ',')) {
        free(copy);
        return fail(&p, "no actions=");
    }
    if (actions != copy) {
        actions[-1] = '\0';
    } else {
        *copy = '\0';
    }
    actions += strlen("actions=");

    int error = 0;
    bool have_priority = false;
    char *s = copy, *word;
    while (!error && (word = next_word(&s)) != NULL) {
        have_priority |= !strncmp(word, "priority=", 9);
        error = parse_match_word(&p, word, flow);
    }
    if (!error && !have_priority) {
        flow->priority = 32768;     /* ovs-ofctl's default. */
    }
    if (!error) {
        error = check_prereqs(&p);
    }
    bool has_vlan = p.m.set[F_VLAN_VID]
                    && (p.m.value[F_VLAN_VID][0] & (OFPVID_PRESENT >> 8))
                    && (p.m.mask[F_VLAN_VID][0] & (OFPVID_PRESENT >> 8));
    if (!error) {
        error = parse_actions(&p, actions, has_vlan, flow);
    }
    if (!error) {
        struct writer w = writer_init(flow->match, sizeof flow->match);
        put_match(&p.m, &w);
        if (w.len > w.size) {
            error = fail(&p, "match too long");
        }
        flow->match_len = w.len;
    }
    free(copy);
    return error;
}

/* Messages. */

/* Writes an OXM ofp_match holding the 'len' bytes of entries at 'oxm'. */
static void
put_ofp_match(struct writer *w, const uint8_t *oxm, size_t len)
{
    size_t start = w->len;
    w_be16(w, 1);               /* OFPMT_OXM. */
    w_be16(w, 4 + len);
    w_bytes(w, oxm, len);
    w_pad8(w, start);
}

static void
put_flow_mod(struct writer *w, uint32_t xid, uint64_t cookie,
             uint64_t cookie_mask, uint8_t table_id, uint8_t command,
             uint16_t priority)
{
    w_header(w, OFP13_FLOW_MOD, xid);
    w_be64(w, cookie);
    w_be64(w, cookie_mask);
    uint8_t *p = w_put(w, 2);
    if (p) {
        p[0] = table_id;
        p[1] = command;
    }
    w_be16(w, 0);               /* idle_timeout. */
    w_be16(w, 0);               /* hard_timeout. */
    w_be16(w, priority);
    w_be32(w, OFP13_NO_BUFFER);
    w_be32(w, OFP13_PORT_ANY);  /* out_port. */
    w_be32(w, UINT32_MAX);      /* out_group: OFPG_ANY. */
    w_be16(w, 0);               /* flags. */
    w_put(w, 2);
}

int
ofp13_encode_flow_add(void *buf, size_t size, size_t *lenp, uint32_t xid,
                      uint64_t cookie, const struct ofp13_flow *flow)
{
    struct writer w = writer_init(buf, size);
    if (!flow || flow->match_len > OFP13_FLOW_MAX_MATCH
        || flow->insts_len > OFP13_FLOW_MAX_INSTS) {
        if (lenp) {
            *lenp = 0;
        }
        return OFP13_E_BAD_ARG;
    }
    put_flow_mod(&w, xid, cookie, 0, flow->table_id, OFP13_FC_ADD,
                 flow->priority);
    put_ofp_match(&w, flow->match, flow->match_len);
    w_bytes(&w, flow->insts, flow->insts_len);
    return w_finish(&w, lenp);
}

int
ofp13_encode_flow_delete(void *buf, size_t size, size_t *lenp, uint32_t xid,
                         uint64_t cookie, uint64_t cookie_mask)
{
    struct writer w = writer_init(buf, size);
    put_flow_mod(&w, xid, cookie, cookie_mask, OFP13_TABLE_ALL,
                 OFP13_FC_DELETE, 0);
    put_ofp_match(&w, NULL, 0);
    return w_finish(&w, lenp);
}

int
ofp13_encode_meter_mod(void *buf, size_t size, size_t *lenp, uint32_t xid,
                       enum ofp13_meter_mod_command command,
                       uint32_t meter_id, uint32_t rate, uint32_t burst)
{
    struct writer w = writer_init(buf, size);
    w_header(&w, OFP13_METER_MOD, xid);
    w_be16(&w, command);
    if (command == OFP13_MC_DELETE) {
        w_be16(&w, 0);
        w_be32(&w, meter_id);
    } else {
        w_be16(&w, OFP13_MF_PKTPS | OFP13_MF_BURST | OFP13_MF_STATS);
        w_be32(&w, meter_id);
        w_be16(&w, OFP13_MBT_DROP);
        w_be16(&w, 16);
        w_be32(&w, rate);
        w_be32(&w, burst);
        w_put(&w, 4);
    }
    return w_finish(&w, lenp);
}

static void
put_onf_header(struct writer *w, uint32_t xid, uint32_t exp_type)
{
    w_header(w, OFP13_EXPERIMENTER, xid);
    w_be32(w, OFP13_ONF_VENDOR_ID);
    w_be32(w, exp_type);
}

int
ofp13_encode_bundle_ctrl(void *buf, size_t size, size_t *lenp, uint32_t xid,
                         uint32_t bundle_id, enum ofp13_bundle_ctrl_type type,
                         uint16_t flags)
{
    struct writer w = writer_init(buf, size);
    put_onf_header(&w, xid, OFP13_ONFT_BUNDLE_CONTROL);
    w_be32(&w, bundle_id);
    w_be16(&w, type);
    w_be16(&w, flags);
    return w_finish(&w, lenp);
}

int
ofp13_decode_bundle_ctrl(const void *msg, size_t len,
                         struct ofp13_bundle_ctrl *bc)
{
    const uint8_t *p = msg;
    struct ofp13_header h;
    int error = ofp13_decode_header(msg, len, &h);

    memset(bc, 0, sizeof *bc);
    if (error) {
        return error;
    } else if (h.type != OFP13_EXPERIMENTER) {
        return OFP13_E_BAD_TYPE;
    } else if (len != h.length) {
        return len < h.length ? OFP13_E_TOO_SHORT : OFP13_E_LENGTH_MISMATCH;
    } else if (len < 24) {
        return OFP13_E_BAD_BODY_LEN;
    } else if (pkt_get_be32(p + 8) != OFP13_ONF_VENDOR_ID
               || pkt_get_be32(p + 12) != OFP13_ONFT_BUNDLE_CONTROL) {
        return OFP13_E_BAD_EXPERIMENTER;
    }
    bc->xid = h.xid;
    bc->bundle_id = pkt_get_be32(p + 16);
    bc->type = pkt_get_be16(p + 20);
    bc->flags = pkt_get_be16(p + 22);
    return 0;
}

int
ofp13_encode_bundle_add(void *buf, size_t size, size_t *lenp, uint32_t xid,
                        uint32_t bundle_id, uint16_t flags,
                        const void *inner, size_t inner_len)
{
    struct ofp13_header h;
    struct writer w = writer_init(buf, size);
    if (!inner || ofp13_decode_header(inner, inner_len, &h)
        || h.length != inner_len || h.xid != xid) {
        if (lenp) {
            *lenp = 0;
        }
        return OFP13_E_BAD_ARG;
    }
    put_onf_header(&w, xid, OFP13_ONFT_BUNDLE_ADD_MESSAGE);
    w_be32(&w, bundle_id);
    w_be16(&w, 0);
    w_be16(&w, flags);
    w_bytes(&w, inner, inner_len);
    return w_finish(&w, lenp);
}

static void
put_multipart_header(struct writer *w, uint32_t xid, uint16_t type)
{
    w_header(w, OFP13_MULTIPART_REQUEST, xid);
    w_be16(w, type);
    w_be16(w, 0);               /* flags. */
    w_put(w, 4);
}

int
ofp13_encode_flow_stats_request(void *buf, size_t size, size_t *lenp,
                                uint32_t xid, uint64_t cookie,
                                uint64_t cookie_mask)
{
    struct writer w = writer_init(buf, size);
    put_multipart_header(&w, xid, OFP13_MP_FLOW);
    uint8_t *p = w_put(&w, 4);
    if (p) {
        p[0] = OFP13_TABLE_ALL;
    }
    w_be32(&w, OFP13_PORT_ANY);
    w_be32(&w, UINT32_MAX);     /* OFPG_ANY. */
    w_put(&w, 4);
    w_be64(&w, cookie);
    w_be64(&w, cookie_mask);
    put_ofp_match(&w, NULL, 0);
    return w_finish(&w, lenp);
}

int
ofp13_encode_meter_request(void *buf, size_t size, size_t *lenp,
                           uint32_t xid, uint16_t mp_type, uint32_t meter_id)
{
    struct writer w = writer_init(buf, size);
    if (mp_type != OFP13_MP_METER && mp_type != OFP13_MP_METER_CONFIG) {
        if (lenp) {
            *lenp = 0;
        }
        return OFP13_E_BAD_ARG;
    }
    put_multipart_header(&w, xid, mp_type);
    w_be32(&w, meter_id);
    w_put(&w, 4);
    return w_finish(&w, lenp);
}

int
ofp13_decode_multipart_reply(const void *msg, size_t len,
                             struct ofp13_multipart *mp)
{
    const uint8_t *p = msg;
    struct ofp13_header h;
    int error = ofp13_decode_header(msg, len, &h);

    memset(mp, 0, sizeof *mp);
    if (error) {
        return error;
    } else if (h.type != OFP13_MULTIPART_REPLY) {
        return OFP13_E_BAD_TYPE;
    } else if (len != h.length) {
        return len < h.length ? OFP13_E_TOO_SHORT : OFP13_E_LENGTH_MISMATCH;
    } else if (len < 16) {
        return OFP13_E_BAD_BODY_LEN;
    }
    mp->xid = h.xid;
    mp->type = pkt_get_be16(p + 8);
    mp->more = pkt_get_be16(p + 10) & 1;
    mp->body = p + 16;
    mp->body_len = len - 16;
    return 0;
}

int
ofp13_next_flow_stats(const struct ofp13_multipart *mp, size_t *ofs,
                      struct ofp13_flow_stats *fs)
{
    memset(fs, 0, sizeof *fs);
    if (mp->type != OFP13_MP_FLOW) {
        return OFP13_E_BAD_TYPE;
    } else if (*ofs >= mp->body_len) {
        return -1;
    }
    const uint8_t *p = mp->body + *ofs;
    size_t left = mp->body_len - *ofs;
    if (left < 56) {
        return OFP13_E_BAD_BODY_LEN;
    }
    size_t length = pkt_get_be16(p);
    if (length < 56 || length > left || length % 8) {
        return OFP13_E_BAD_BODY_LEN;
    }
    fs->table_id = p[2];
    fs->priority = pkt_get_be16(p + 12);
    fs->cookie = pkt_get_be64(p + 24);
    fs->packets = pkt_get_be64(p + 32);
    fs->bytes = pkt_get_be64(p + 40);
    *ofs += length;
    return 0;
}

int
ofp13_next_meter_stats(const struct ofp13_multipart *mp, size_t *ofs,
                       struct ofp13_meter_stats *ms)
{
    memset(ms, 0, sizeof *ms);
    if (mp->type != OFP13_MP_METER) {
        return OFP13_E_BAD_TYPE;
    } else if (*ofs >= mp->body_len) {
        return -1;
    }
    const uint8_t *p = mp->body + *ofs;
    size_t left = mp->body_len - *ofs;
    if (left < 40) {
        return OFP13_E_BAD_BODY_LEN;
    }
    size_t length = pkt_get_be16(p + 4);
    if (length < 40 || length > left || (length - 40) % 16) {
        return OFP13_E_BAD_BODY_LEN;
    }
    ms->meter_id = pkt_get_be32(p);
    ms->packets_in = pkt_get_be64(p + 16);
    for (size_t b = 40; b < length; b += 16) {
        ms->band_packets += pkt_get_be64(p + b);
    }
    *ofs += length;
    return 0;
}

int
ofp13_next_meter_config(const struct ofp13_multipart *mp, size_t *ofs,
                        struct ofp13_meter_config *mc)
{
    memset(mc, 0, sizeof *mc);
    if (mp->type != OFP13_MP_METER_CONFIG) {
        return OFP13_E_BAD_TYPE;
    } else if (*ofs >= mp->body_len) {
        return -1;
    }
    const uint8_t *p = mp->body + *ofs;
    size_t left = mp->body_len - *ofs;
    if (left < 8) {
        return OFP13_E_BAD_BODY_LEN;
    }
    size_t length = pkt_get_be16(p);
    if (length < 8 || length > left || (length - 8) % 16) {
        return OFP13_E_BAD_BODY_LEN;
    }
    mc->flags = pkt_get_be16(p + 2);
    mc->meter_id = pkt_get_be32(p + 4);
    mc->n_bands = (length - 8) / 16;
    if (mc->n_bands) {
        mc->band_type = pkt_get_be16(p + 8);
        mc->rate = pkt_get_be32(p + 12);
        mc->burst = pkt_get_be32(p + 16);
    }
    *ofs += length;
    return 0;
}
