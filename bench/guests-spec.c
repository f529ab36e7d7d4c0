/* Copyright (c) 2026 The chand authors.  See guests-spec.h. */

#include <config.h>
#include "guests-spec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "packets.h"

static int
spec_error(char *error, size_t size, const char *fmt, ...)
{
    va_list args;

    if (size) {
        va_start(args, fmt);
        vsnprintf(error, size, fmt, args);
        va_end(args);
    }
    return -1;
}

static bool
is_sep(char c, char sep)
{
    return sep ? c == sep : c == ' ' || c == '\t';
}

int
guests_spec_parse(const char *line, char sep, struct guests_spec *spec,
                  char *error, size_t error_size)
{
    static const char *const names[] = {
        "VM", "CHAN_ID", "VID", "IFACE", "KEYFILE",
    };
    char fields[5][GUESTS_PATH_MAX];
    size_t n = 0;
    const char *p = line;
    size_t end = strcspn(line, "#\n\r");

    /* Split: with a separator, empty fields count; without, runs of blanks
     * separate. */
    while ((size_t) (p - line) < end) {
        if (!sep) {
            while ((size_t) (p - line) < end && is_sep(*p, 0)) {
                p++;
            }
            if ((size_t) (p - line) >= end) {
                break;
            }
        }
        size_t len = 0;
        while ((size_t) (p - line) + len < end && !is_sep(p[len], sep)) {
            len++;
        }
        if (n == 5) {
            return spec_error(error, error_size, "more than 5 fields "
                              "(VM CHAN_ID VID IFACE [KEYFILE])");
        }
        if (len >= sizeof fields[n]) {
            return spec_error(error, error_size, "%s is too long",
                              names[n]);
        }
        memcpy(fields[n], p, len);
        fields[n][len] = '\0';
        n++;
        p += len;
        if (sep && (size_t) (p - line) < end) {
            p++;                /* The separator. */
            if ((size_t) (p - line) == end) {
                /* A trailing separator leaves an empty last field. */
                if (n == 5) {
                    return spec_error(error, error_size, "more than 5 "
                                      "fields (VM CHAN_ID VID IFACE "
                                      "[KEYFILE])");
                }
                fields[n++][0] = '\0';
            }
        }
    }
    if (n == 0) {
        return 0;
    }
    if (n < 4) {
        return spec_error(error, error_size, "missing %s (VM CHAN_ID VID "
                          "IFACE [KEYFILE])", names[n]);
    }

    memset(spec, 0, sizeof *spec);
    if (!chan_vm_name_is_valid(fields[0])) {
        return spec_error(error, error_size, "invalid VM name \"%s\" (1..%d "
                          "characters from A-Z a-z 0-9 . _ -)", fields[0],
                          CHAN_VM_NAME_MAX);
    }
    strcpy(spec->vm, fields[0]);

    enum chan_ep_error e = chan_parse_id(fields[1], &spec->chan_id);
    if (!e) {
        e = chan_parse_vid(fields[2], &spec->vid);
    }
    if (e) {
        return spec_error(error, error_size, "%s", chan_ep_strerror(e));
    }

    size_t ilen = strlen(fields[3]);
    if (!ilen || ilen > GUESTS_IFNAME_MAX || strpbrk(fields[3], "/:")) {
        return spec_error(error, error_size, "invalid interface name \"%s\" "
                          "(1..%d bytes, no '/' or ':')", fields[3],
                          GUESTS_IFNAME_MAX);
    }
    strcpy(spec->iface, fields[3]);

    if (n == 5 && strcmp(fields[4], "-")) {
        if (!fields[4][0]) {
            return spec_error(error, error_size, "empty KEYFILE (\"-\" for "
                              "none)");
        }
        strcpy(spec->keyfile, fields[4]);
    }
    return 1;
}

const char *
guests_drop_name(enum guests_drop d)
{
    switch (d) {
    case GUESTS_OK: return "ok";
    case GUESTS_DROP_PARSE: return "parse";
    case GUESTS_DROP_UNTAGGED: return "untagged";
    case GUESTS_DROP_VID: return "vid";
    case GUESTS_DROP_ADDRESS: return "address";
    case GUESTS_N_DROPS: break;
    }
    return "?";
}

bool
guests_frame_retag(const uint8_t *in, size_t len, bool tagged, uint16_t tci,
                   uint8_t *out, size_t size, size_t *lenp)
{
    size_t need = len + (tagged ? 4 : 0);

    if (len < 12 || need > size) {
        return false;
    }
    if (!tagged) {
        memcpy(out, in, len);
    } else {
        memcpy(out, in, 12);
        pkt_put_be16(out + 12, 0x8100);
        pkt_put_be16(out + 14, tci);
        memcpy(out + 16, in + 12, len - 12);
    }
    *lenp = need;
    return true;
}

enum guests_drop
guests_frame_accept(const struct chan_config *cfg, const uint8_t *frame,
                    size_t len, const uint8_t **payloadp,
                    size_t *payload_lenp, uint32_t *src_ipp,
                    uint16_t *src_portp)
{
    struct pkt_udp pkt;

    if (pkt_udp_parse(frame, len, 0, &pkt)) {
        return GUESTS_DROP_PARSE;
    }
    if (!pkt.vlan) {
        return GUESTS_DROP_UNTAGGED;
    }
    if (pkt.vid != cfg->vid) {
        return GUESTS_DROP_VID;
    }
    if (!eth_addr_equals(&pkt.eth_src, &cfg->host.mac)
        || pkt.ip_src != cfg->host.ip
        || !eth_addr_equals(&pkt.eth_dst, &cfg->guest.mac)
        || pkt.ip_dst != cfg->guest.ip
        || pkt.udp_dst != cfg->guest.port) {
        return GUESTS_DROP_ADDRESS;
    }
    *payloadp = pkt.payload;
    *payload_lenp = pkt.payload_len;
    *src_ipp = pkt.ip_src;
    *src_portp = pkt.udp_src;
    return GUESTS_OK;
}

int
guests_frame_build(const struct chan_config *cfg, const uint8_t *payload,
                   size_t len, uint8_t *buf, size_t size, size_t *lenp)
{
    struct pkt_udp pkt = {
        .eth_dst = cfg->host.mac,
        .eth_src = cfg->guest.mac,
        .vlan = true,
        .vid = cfg->vid,
        .ip_src = cfg->guest.ip,
        .ip_dst = cfg->host.ip,
        .ttl = 64,
        .udp_src = cfg->guest.port,
        .udp_dst = cfg->host.port,
        .payload = payload,
        .payload_len = len,
    };

    return pkt_udp_build(&pkt, buf, size, lenp);
}

int
guests_watch_key_check(const char *key, const char *const *watched,
                       size_t n_watched, char *error, size_t error_size)
{
    size_t len = strlen(key);

    if (!len || len > GUESTS_WATCH_KEY_MAX) {
        return spec_error(error, error_size, "a key has 1..%d bytes",
                          GUESTS_WATCH_KEY_MAX);
    }
    for (const char *p = key; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            return spec_error(error, error_size, "control character in "
                              "the key");
        }
    }
    for (size_t i = 0; i < n_watched; i++) {
        if (!strcmp(watched[i], key)) {
            return spec_error(error, error_size, "key given twice");
        }
    }
    if (n_watched >= GUESTS_WATCH_MAX) {
        return spec_error(error, error_size, "at most %d keys",
                          GUESTS_WATCH_MAX);
    }
    return 0;
}

long long
guests_percentile(const long long *sorted, size_t n, double p)
{
    if (!n) {
        return -1;
    }
    double rank = p * (double) n / 100.0;
    size_t k;
    if (rank <= 1) {
        k = 1;
    } else if (rank >= (double) n) {
        k = n;
    } else {
        k = (size_t) rank;
        if ((double) k < rank) {
            k++;                /* Rounded up. */
        }
    }
    return sorted[k - 1];
}
