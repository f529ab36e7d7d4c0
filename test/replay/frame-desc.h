/*
 * frame-desc: a readable description of an Ethernet frame, for the replay
 * tier's per-packet diffs and dumps.
 *
 * frame_desc_decode() walks a frame as far as it understands it -- Ethernet,
 * any number of 802.1Q/802.1ad tags, ARP, IPv4, IPv6, UDP, TCP, ICMP,
 * ICMPv6 and, on UDP port 7433, chand's channel header (lib/chan-wire.h,
 * authenticated with the empty key, the key in use until keys are
 * distributed) -- and records every header field as a named value
 * ("eth.dst" = "0a:c4:00:00:00:07", "vlan1.vid" = "4094", "chand.type" =
 * "ACK", ...), plus a one-line summary.  Two descriptions can then be
 * compared field by field, so a test failure says "vlan1.vid: 4094 -> 100"
 * rather than "bytes differ".
 *
 * Pure: no I/O, no allocation; every read is bounds checked, so any byte
 * string (truncated, garbage) is described without reading past its end.
 */
#ifndef FRAME_DESC_H
#define FRAME_DESC_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_DESC_MAX_FIELDS 64
#define FRAME_DESC_NAME_LEN 24
#define FRAME_DESC_VALUE_LEN 112
#define FRAME_DESC_SUMMARY_LEN 320

struct frame_field {
    char name[FRAME_DESC_NAME_LEN];
    char value[FRAME_DESC_VALUE_LEN];
};

struct frame_desc {
    struct frame_field fields[FRAME_DESC_MAX_FIELDS];
    size_t n;
    char summary[FRAME_DESC_SUMMARY_LEN];
};

/* Describes the 'len' bytes at 'data' into '*desc' (overwritten). */
void frame_desc_decode(const void *data, size_t len, struct frame_desc *desc);

/* Appends field 'name' = 'value' (both copied, truncated to fit) to
 * 'desc', if there is room.  For callers adding their own fields, e.g. a
 * PACKET_IN's pkt_mark. */
void frame_desc_add(struct frame_desc *desc, const char *name,
                    const char *value);

/* Returns the value of field 'name' in 'desc' (borrowed), or NULL. */
const char *frame_desc_get(const struct frame_desc *desc, const char *name);

#endif /* frame-desc.h */
