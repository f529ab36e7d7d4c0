/* Copyright (c) 2026 The chand authors.  See frame-desc.h. */

#include <config.h>
#include "frame-desc.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "packets.h"

#define ETH_TYPE_ARP 0x0806
#define ETH_TYPE_IPV6 0x86dd
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP 6
#define IP_PROTO_ICMPV6 58
#define IPV6_HEADER_LEN 40
#define MAX_TAGS 4

/* A bounds-checked view of the frame. */
struct cursor {
    const uint8_t *p;
    size_t len;
};

void
frame_desc_add(struct frame_desc *desc, const char *name, const char *value)
{
    if (desc->n < FRAME_DESC_MAX_FIELDS) {
        struct frame_field *f = &desc->fields[desc->n++];
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->value, sizeof f->value, "%s", value);
    }
}

static void __attribute__((format(printf, 3, 4)))
addf(struct frame_desc *desc, const char *name, const char *format, ...)
{
    char value[FRAME_DESC_VALUE_LEN];
    va_list args;

    va_start(args, format);
    vsnprintf(value, sizeof value, format, args);
    va_end(args);
    frame_desc_add(desc, name, value);
}

/* Appends to the one-line summary. */
static void __attribute__((format(printf, 2, 3)))
sum(struct frame_desc *desc, const char *format, ...)
{
    size_t used = strlen(desc->summary);
    va_list args;

    if (used + 1 < sizeof desc->summary) {
        va_start(args, format);
        vsnprintf(desc->summary + used, sizeof desc->summary - used, format,
                  args);
        va_end(args);
    }
}

const char *
frame_desc_get(const struct frame_desc *desc, const char *name)
{
    for (size_t i = 0; i < desc->n; i++) {
        if (!strcmp(desc->fields[i].name, name)) {
            return desc->fields[i].value;
        }
    }
    return NULL;
}

static char *
mac_str(const uint8_t *p, char buf[ETH_ADDR_STRLEN])
{
    struct eth_addr ea;
    memcpy(ea.ea, p, ETH_ADDR_LEN);
    return eth_addr_to_string(&ea, buf);
}

static char *
ip_str(const uint8_t *p, char buf[IP_STRLEN])
{
    return ip_to_string(pkt_get_be32(p), buf);
}

static char *
ip6_str(const uint8_t *p, char buf[INET6_ADDRSTRLEN])
{
    if (!inet_ntop(AF_INET6, p, buf, INET6_ADDRSTRLEN)) {
        snprintf(buf, INET6_ADDRSTRLEN, "?");
    }
    return buf;
}

/* Writes up to 'max' bytes of 'p' as printable text ('.' for others). */
static void
printable(const uint8_t *p, size_t len, size_t max, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && i < max && n + 5 < size; i++) {
        buf[n++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.';
    }
    if (len > max && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

static void
describe_chand(struct frame_desc *desc, const uint8_t *p, size_t len)
{
    if (len < CHAN_WIRE_HEADER_LEN || pkt_get_be16(p) != CHAN_WIRE_MAGIC) {
        addf(desc, "chand", "not a chand frame (%zu bytes)", len);
        sum(desc, " (not chand)");
        return;
    }
    unsigned int type = p[3];
    unsigned int flags = p[4];
    char payload[64];
    uint16_t payload_len = pkt_get_be16(p + 32);
    struct chan_wire_header hdr;
    enum chan_wire_error error;

    addf(desc, "chand.version", "%u", p[2]);
    addf(desc, "chand.type", "%s", chan_wire_type_name(type));
    addf(desc, "chand.flags", "0x%02x%s%s", flags,
         flags & CHAN_WIRE_F_ACK_VALID ? " ACK_VALID" : "",
         flags & CHAN_WIRE_F_SNAPSHOT ? " SNAPSHOT" : "");
    addf(desc, "chand.vid", "%u", pkt_get_be16(p + 6));
    addf(desc, "chand.epoch", "%u", pkt_get_be32(p + 8));
    addf(desc, "chand.seq", "%llu", (unsigned long long) pkt_get_be64(p + 12));
    addf(desc, "chand.ack", "%llu", (unsigned long long) pkt_get_be64(p + 20));
    addf(desc, "chand.chunk", "%u/%u", pkt_get_be16(p + 28),
         pkt_get_be16(p + 30));
    addf(desc, "chand.payload_len", "%u", payload_len);
    error = chan_wire_decode(p, len, NULL, 0, &hdr, NULL);
    addf(desc, "chand.check", "%s", error ? chan_wire_error_name(error)
                                          : "ok (empty key)");
    size_t avail = len - CHAN_WIRE_HEADER_LEN;
    printable(p + CHAN_WIRE_HEADER_LEN,
              payload_len < avail ? payload_len : avail, 48, payload,
              sizeof payload);
    addf(desc, "chand.payload", "%s", payload);

    sum(desc, " chand %s epoch=%u seq=%llu", chan_wire_type_name(type),
        pkt_get_be32(p + 8), (unsigned long long) pkt_get_be64(p + 12));
    if (flags & CHAN_WIRE_F_ACK_VALID) {
        sum(desc, " ack=%llu", (unsigned long long) pkt_get_be64(p + 20));
    }
    if (pkt_get_be16(p + 30) != 1) {
        sum(desc, " chunk=%u/%u", pkt_get_be16(p + 28), pkt_get_be16(p + 30));
    }
    sum(desc, " vid=%u", pkt_get_be16(p + 6));
    if (error) {
        sum(desc, " [%s]", chan_wire_error_name(error));
    }
}

/* Sum of an IPv4 or IPv6 pseudo-header for transport checksums. */
static uint32_t
pseudo_sum(const uint8_t *src, const uint8_t *dst, size_t addr_len,
           uint8_t proto, size_t l4_len)
{
    uint8_t tail[8] = { 0 };
    uint32_t s = pkt_csum_add(0, src, addr_len);
    s = pkt_csum_add(s, dst, addr_len);
    pkt_put_be32(tail, l4_len);
    tail[7] = proto;
    return pkt_csum_add(s, tail, 8);
}

static const char *
csum_state(uint32_t pseudo, const uint8_t *l4, size_t l4_len)
{
    return pkt_csum_finish(pkt_csum_add(pseudo, l4, l4_len)) ? "bad" : "ok";
}

/* Transport layer.  'pseudo' is the pseudo-header sum (0 and !has_pseudo
 * for ICMPv4). */
static void
describe_l4(struct frame_desc *desc, uint8_t proto, const uint8_t *p,
            size_t len, bool complete, uint32_t pseudo, bool v6)
{
    char buf[INET6_ADDRSTRLEN];

    switch (proto) {
    case IP_PROTO_UDP:
        if (len < UDP_HEADER_LEN) {
            addf(desc, "udp", "truncated (%zu bytes)", len);
            sum(desc, " UDP truncated");
            return;
        }
        addf(desc, "udp.src", "%u", pkt_get_be16(p));
        addf(desc, "udp.dst", "%u", pkt_get_be16(p + 2));
        addf(desc, "udp.len", "%u", pkt_get_be16(p + 4));
        if (!pkt_get_be16(p + 6) && !v6) {
            addf(desc, "udp.csum", "none");
        } else if (complete) {
            addf(desc, "udp.csum", "%s", csum_state(pseudo, p, len));
        }
        sum(desc, " UDP %u > %u", pkt_get_be16(p), pkt_get_be16(p + 2));
        if (pkt_get_be16(p) == CHAN_UDP_PORT
            || pkt_get_be16(p + 2) == CHAN_UDP_PORT) {
            describe_chand(desc, p + UDP_HEADER_LEN, len - UDP_HEADER_LEN);
        } else if (len > UDP_HEADER_LEN) {
            char text[64];
            printable(p + UDP_HEADER_LEN, len - UDP_HEADER_LEN, 48, text,
                      sizeof text);
            addf(desc, "udp.payload", "%s", text);
        }
        break;

    case IP_PROTO_TCP:
        if (len < 20) {
            addf(desc, "tcp", "truncated (%zu bytes)", len);
            sum(desc, " TCP truncated");
            return;
        }
        addf(desc, "tcp.src", "%u", pkt_get_be16(p));
        addf(desc, "tcp.dst", "%u", pkt_get_be16(p + 2));
        addf(desc, "tcp.seq", "%u", pkt_get_be32(p + 4));
        addf(desc, "tcp.flags", "0x%03x", pkt_get_be16(p + 12) & 0x1ff);
        if (complete) {
            addf(desc, "tcp.csum", "%s", csum_state(pseudo, p, len));
        }
        sum(desc, " TCP %u > %u flags=0x%03x", pkt_get_be16(p),
            pkt_get_be16(p + 2), pkt_get_be16(p + 12) & 0x1ff);
        break;

    case IP_PROTO_ICMP:
    case IP_PROTO_ICMPV6:
        if (len < 4) {
            addf(desc, "icmp", "truncated (%zu bytes)", len);
            sum(desc, " ICMP truncated");
            return;
        }
        addf(desc, "icmp.type", "%u", p[0]);
        addf(desc, "icmp.code", "%u", p[1]);
        if (complete) {
            addf(desc, "icmp.csum", "%s",
                 v6 ? csum_state(pseudo, p, len) : csum_state(0, p, len));
        }
        sum(desc, " %s type=%u code=%u", v6 ? "ICMPv6" : "ICMP", p[0], p[1]);
        if (v6 && (p[0] == 135 || p[0] == 136) && len >= 24) {
            addf(desc, "icmp6.target", "%s", ip6_str(p + 8, buf));
            sum(desc, " target %s", buf);
        }
        break;

    default:
        addf(desc, "l4", "protocol %u, %zu bytes", proto, len);
        break;
    }
}

static void
describe_ipv4(struct frame_desc *desc, const uint8_t *p, size_t len)
{
    char src[IP_STRLEN], dst[IP_STRLEN];

    if (len < IP_HEADER_LEN) {
        addf(desc, "ip", "truncated (%zu bytes)", len);
        sum(desc, " IPv4 truncated");
        return;
    }
    unsigned int version = p[0] >> 4, ihl = (p[0] & 0xf) * 4;
    uint16_t total = pkt_get_be16(p + 2);
    uint16_t frag = pkt_get_be16(p + 6);
    uint8_t proto = p[9];

    addf(desc, "ip.src", "%s", ip_str(p + 12, src));
    addf(desc, "ip.dst", "%s", ip_str(p + 16, dst));
    addf(desc, "ip.proto", "%u", proto);
    addf(desc, "ip.ttl", "%u", p[8]);
    addf(desc, "ip.tos", "0x%02x", p[1]);
    addf(desc, "ip.id", "%u", pkt_get_be16(p + 4));
    addf(desc, "ip.frag", "%s%s offset=%u", frag & IP_DF ? "DF" : "-",
         frag & IP_MF ? ",MF" : "", (frag & IP_FRAG_OFF_MASK) * 8);
    addf(desc, "ip.len", "%u", total);
    sum(desc, " IPv4 %s > %s", src, dst);
    if (version != 4 || ihl < IP_HEADER_LEN || ihl > len) {
        addf(desc, "ip.header", "version %u, header length %u", version,
             ihl);
        sum(desc, " bad header");
        return;
    }
    addf(desc, "ip.csum", "%s", pkt_csum(p, ihl) ? "bad" : "ok");
    if (ihl > IP_HEADER_LEN) {
        addf(desc, "ip.options", "%u bytes", ihl - IP_HEADER_LEN);
    }
    if (total < ihl || total > len) {
        sum(desc, " bad length %u", total);
        return;
    }
    if (total < len) {
        addf(desc, "eth.trailer", "%zu bytes", len - total);
    }
    if (frag & (IP_MF | IP_FRAG_OFF_MASK)) {
        sum(desc, " fragment");
        if (frag & IP_FRAG_OFF_MASK) {
            return;
        }
    }
    size_t l4_len = total - ihl;
    uint32_t pseudo = proto == IP_PROTO_ICMP
                      ? 0 : pseudo_sum(p + 12, p + 16, 4, proto, l4_len);
    describe_l4(desc, proto, p + ihl, l4_len,
                !(frag & IP_MF), pseudo, false);
}

static void
describe_ipv6(struct frame_desc *desc, const uint8_t *p, size_t len)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];

    if (len < IPV6_HEADER_LEN) {
        addf(desc, "ip6", "truncated (%zu bytes)", len);
        sum(desc, " IPv6 truncated");
        return;
    }
    uint16_t plen = pkt_get_be16(p + 4);
    uint8_t nxt = p[6];

    addf(desc, "ip6.src", "%s", ip6_str(p + 8, src));
    addf(desc, "ip6.dst", "%s", ip6_str(p + 24, dst));
    addf(desc, "ip6.nxt", "%u", nxt);
    addf(desc, "ip6.hlim", "%u", p[7]);
    addf(desc, "ip6.plen", "%u", plen);
    sum(desc, " IPv6 %s > %s", src, dst);
    if (plen > len - IPV6_HEADER_LEN) {
        sum(desc, " bad length %u", plen);
        return;
    }
    if (IPV6_HEADER_LEN + plen < len) {
        addf(desc, "eth.trailer", "%zu bytes", len - IPV6_HEADER_LEN - plen);
    }
    describe_l4(desc, nxt, p + IPV6_HEADER_LEN, plen, true,
                pseudo_sum(p + 8, p + 24, 16, nxt, plen), true);
}

static void
describe_arp(struct frame_desc *desc, const uint8_t *p, size_t len)
{
    char sha[ETH_ADDR_STRLEN], tha[ETH_ADDR_STRLEN];
    char spa[IP_STRLEN], tpa[IP_STRLEN];

    if (len < 28 || pkt_get_be16(p) != 1 || pkt_get_be16(p + 2) != ETH_TYPE_IP
        || p[4] != 6 || p[5] != 4) {
        addf(desc, "arp", "not Ethernet/IPv4 ARP or truncated (%zu bytes)",
             len);
        sum(desc, " ARP ?");
        return;
    }
    uint16_t op = pkt_get_be16(p + 6);
    addf(desc, "arp.op", "%s", op == 1 ? "request" : op == 2 ? "reply" : "?");
    addf(desc, "arp.sha", "%s", mac_str(p + 8, sha));
    addf(desc, "arp.spa", "%s", ip_str(p + 14, spa));
    addf(desc, "arp.tha", "%s", mac_str(p + 18, tha));
    addf(desc, "arp.tpa", "%s", ip_str(p + 24, tpa));
    if (op == 1) {
        sum(desc, " ARP who-has %s tell %s", tpa, spa);
    } else if (op == 2) {
        sum(desc, " ARP %s is-at %s (to %s)", spa, sha, tpa);
    } else {
        sum(desc, " ARP op %u", op);
    }
    if (len > 28) {
        addf(desc, "eth.trailer", "%zu bytes", len - 28);
    }
}

void
frame_desc_decode(const void *data, size_t len, struct frame_desc *desc)
{
    static const char *const tag_names[MAX_TAGS][4] = {
        { "vlan1.tpid", "vlan1.vid", "vlan1.pcp", "vlan1.dei" },
        { "vlan2.tpid", "vlan2.vid", "vlan2.pcp", "vlan2.dei" },
        { "vlan3.tpid", "vlan3.vid", "vlan3.pcp", "vlan3.dei" },
        { "vlan4.tpid", "vlan4.vid", "vlan4.pcp", "vlan4.dei" },
    };
    struct cursor c = { data, len };
    char dst[ETH_ADDR_STRLEN], src[ETH_ADDR_STRLEN];

    desc->n = 0;
    desc->summary[0] = '\0';
    addf(desc, "frame.len", "%zu", len);
    if (len < ETH_HEADER_LEN) {
        addf(desc, "eth", "truncated (%zu bytes)", len);
        sum(desc, "truncated Ethernet frame (%zu bytes)", len);
        return;
    }
    addf(desc, "eth.dst", "%s", mac_str(c.p, dst));
    addf(desc, "eth.src", "%s", mac_str(c.p + 6, src));
    sum(desc, "%s > %s", src, dst);

    uint16_t type = pkt_get_be16(c.p + 12);
    c.p += 14;
    c.len -= 14;
    int n_tags = 0;
    for (;;) {
        bool is_tag = type == ETH_TYPE_VLAN || type == ETH_TYPE_VLAN_8021AD
                      || type == ETH_TYPE_VLAN_QINQ;
        if (!is_tag) {
            break;
        }
        if (n_tags >= MAX_TAGS || c.len < VLAN_HEADER_LEN) {
            addf(desc, "vlan", "%s", n_tags >= MAX_TAGS ? "too many tags"
                                                       : "truncated tag");
            sum(desc, " bad VLAN tag");
            return;
        }
        uint16_t tci = pkt_get_be16(c.p);
        const char *const *names = tag_names[n_tags++];
        if (type != ETH_TYPE_VLAN) {
            addf(desc, names[0], "0x%04x", type);
        }
        addf(desc, names[1], "%u", tci & VLAN_VID_MASK);
        if (tci >> VLAN_PCP_SHIFT) {
            addf(desc, names[2], "%u", tci >> VLAN_PCP_SHIFT);
        }
        if (tci & VLAN_CFI) {
            addf(desc, names[3], "1");
        }
        sum(desc, " vlan %u", tci & VLAN_VID_MASK);
        if (type != ETH_TYPE_VLAN) {
            sum(desc, " (tpid 0x%04x)", type);
        }
        type = pkt_get_be16(c.p + 2);
        c.p += VLAN_HEADER_LEN;
        c.len -= VLAN_HEADER_LEN;
    }
    if (!n_tags) {
        addf(desc, "vlan1.vid", "none");
    }
    addf(desc, "eth.type", "0x%04x", type);

    switch (type) {
    case ETH_TYPE_IP:
        describe_ipv4(desc, c.p, c.len);
        break;
    case ETH_TYPE_IPV6:
        describe_ipv6(desc, c.p, c.len);
        break;
    case ETH_TYPE_ARP:
        describe_arp(desc, c.p, c.len);
        break;
    default:
        sum(desc, " ethertype 0x%04x, %zu bytes", type, c.len);
        break;
    }
    sum(desc, " (%zu bytes)", len);
}
