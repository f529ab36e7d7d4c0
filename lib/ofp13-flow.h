/*
 * ofp13-flow: the OpenFlow 1.3 messages that program a bridge's flow table
 * and meters, and a parser for the part of ovs-ofctl's flow syntax that
 * chand's flow templates use.
 *
 * Parsing.  ofp13_flow_parse() turns one rendered template rule, e.g.
 *
 *     priority=40100,in_port=5,udp,dl_vlan=7,actions=pop_vlan,output:3
 *
 * into a priority, an OXM match and a list of instructions, encoded the
 * way ovs-ofctl -O OpenFlow13 encodes the same text, so that the flow
 * ovs-vswitchd installs is the one `ovs-ofctl add-flow` would install (the
 * replay tier compares the two with dump-flows).  What it accepts is listed
 * in flows/README.md ("Syntax"); anything else is an error naming the
 * offending word, so a template that uses more than the parser knows is
 * refused when it is rendered, not when the bridge is programmed.
 *
 * Messages.  FLOW_MOD (add, and delete by cookie), METER_MOD, the ONF
 * bundle extension for OpenFlow 1.3 (EXT-230: OPEN, ADD_MESSAGE, COMMIT)
 * and the flow, meter and meter-config multipart requests, with iterators
 * over their replies.
 *
 * Like lib/ofp13, the module does no I/O, allocates nothing and keeps no
 * state.  Encoders write into a caller buffer and store the length in
 * '*lenp'; decoders read a caller buffer holding one message and return
 * pointers into it.  Functions return 0 or a positive 'enum ofp13_err'.
 */
#ifndef OFP13_FLOW_H
#define OFP13_FLOW_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ofp13.h"

/* Message types used here, beyond those of ofp13.h. */
#define OFP13_MULTIPART_REQUEST 18
#define OFP13_MULTIPART_REPLY 19
#define OFP13_METER_MOD 29

/* Multipart types. */
#define OFP13_MP_FLOW 1
#define OFP13_MP_METER 9
#define OFP13_MP_METER_CONFIG 10

#define OFP13_TABLE_ALL 0xff
#define OFP13_METER_ALL 0xffffffffu

/* Limits of one parsed flow. */
#define OFP13_FLOW_MAX_MATCH 256        /* Bytes of OXM entries. */
#define OFP13_FLOW_MAX_INSTS 512        /* Bytes of instructions. */

/* One parsed flow rule: what a FLOW_MOD add needs besides the cookie. */
struct ofp13_flow {
    uint16_t priority;
    uint8_t table_id;
    uint8_t match[OFP13_FLOW_MAX_MATCH];    /* OXM entries, no header. */
    size_t match_len;
    uint8_t insts[OFP13_FLOW_MAX_INSTS];    /* Instructions. */
    size_t insts_len;
};

/* Parses the null-terminated rule 'text' into '*flow'.  Returns 0, or
 * OFP13_E_BAD_ARG with an English message (naming the offending word) in
 * 'err' ('errsize' bytes, always null-terminated). */
int ofp13_flow_parse(const char *text, struct ofp13_flow *flow,
                     char *err, size_t errsize);

/* FLOW_MOD. */
enum ofp13_flow_mod_command {
    OFP13_FC_ADD = 0,
    OFP13_FC_DELETE = 3,
};

/* Encodes a FLOW_MOD that adds 'flow' with 'cookie' (flags: none; no
 * timeouts). */
int ofp13_encode_flow_add(void *buf, size_t size, size_t *lenp, uint32_t xid,
                          uint64_t cookie, const struct ofp13_flow *flow);

/* Encodes a FLOW_MOD that deletes, in every table, each flow whose cookie
 * matches 'cookie' under 'cookie_mask'. */
int ofp13_encode_flow_delete(void *buf, size_t size, size_t *lenp,
                             uint32_t xid, uint64_t cookie,
                             uint64_t cookie_mask);

/* METER_MOD with one drop band: 'rate' packets per second (OFPMF_PKTPS),
 * 'burst' packets (OFPMF_BURST), with statistics (OFPMF_STATS).  DELETE
 * ignores 'rate' and 'burst'. */
enum ofp13_meter_mod_command {
    OFP13_MC_ADD = 0,
    OFP13_MC_MODIFY = 1,
    OFP13_MC_DELETE = 2,
};
int ofp13_encode_meter_mod(void *buf, size_t size, size_t *lenp, uint32_t xid,
                           enum ofp13_meter_mod_command, uint32_t meter_id,
                           uint32_t rate, uint32_t burst);

/* Bundles (ONF extension 230 in OpenFlow 1.3). */
#define OFP13_ONF_VENDOR_ID 0x4f4e4600u
#define OFP13_ONFT_BUNDLE_CONTROL 2300
#define OFP13_ONFT_BUNDLE_ADD_MESSAGE 2301

enum ofp13_bundle_ctrl_type {
    OFP13_BCT_OPEN_REQUEST = 0,
    OFP13_BCT_OPEN_REPLY = 1,
    OFP13_BCT_CLOSE_REQUEST = 2,
    OFP13_BCT_CLOSE_REPLY = 3,
    OFP13_BCT_COMMIT_REQUEST = 4,
    OFP13_BCT_COMMIT_REPLY = 5,
    OFP13_BCT_DISCARD_REQUEST = 6,
    OFP13_BCT_DISCARD_REPLY = 7,
};
#define OFP13_BF_ATOMIC 1
#define OFP13_BF_ORDERED 2

int ofp13_encode_bundle_ctrl(void *buf, size_t size, size_t *lenp,
                             uint32_t xid, uint32_t bundle_id,
                             enum ofp13_bundle_ctrl_type, uint16_t flags);

/* Decodes a BUNDLE_CONTROL message (experimenter ONF, subtype 2300). */
struct ofp13_bundle_ctrl {
    uint32_t xid;
    uint32_t bundle_id;
    uint16_t type;              /* enum ofp13_bundle_ctrl_type. */
    uint16_t flags;
};
int ofp13_decode_bundle_ctrl(const void *msg, size_t len,
                             struct ofp13_bundle_ctrl *);

/* Wraps the 'inner_len' bytes at 'inner' (one whole OpenFlow message,
 * whose xid must equal 'xid') in a BUNDLE_ADD_MESSAGE. */
int ofp13_encode_bundle_add(void *buf, size_t size, size_t *lenp,
                            uint32_t xid, uint32_t bundle_id, uint16_t flags,
                            const void *inner, size_t inner_len);

/* Multipart requests. */

/* Flow statistics of every flow, in every table, whose cookie matches
 * 'cookie' under 'cookie_mask'. */
int ofp13_encode_flow_stats_request(void *buf, size_t size, size_t *lenp,
                                    uint32_t xid, uint64_t cookie,
                                    uint64_t cookie_mask);

/* Meter statistics (OFP13_MP_METER) or configuration
 * (OFP13_MP_METER_CONFIG) of 'meter_id' (OFP13_METER_ALL: every meter). */
int ofp13_encode_meter_request(void *buf, size_t size, size_t *lenp,
                               uint32_t xid, uint16_t mp_type,
                               uint32_t meter_id);

/* A multipart reply: one message of a possibly longer series. */
struct ofp13_multipart {
    uint32_t xid;
    uint16_t type;              /* OFP13_MP_*. */
    bool more;                  /* More messages of the series follow. */
    const uint8_t *body;        /* Into the message. */
    size_t body_len;
};
int ofp13_decode_multipart_reply(const void *msg, size_t len,
                                 struct ofp13_multipart *);

/* Iterators over a reply's body.  Each takes the offset '*ofs' (start at
 * 0), decodes the entry there and advances '*ofs'.  Returns 0 with an
 * entry, -1 at the end of the body, or a positive error if the entry is
 * malformed (the rest of the body cannot be read then). */
struct ofp13_flow_stats {
    uint8_t table_id;
    uint16_t priority;
    uint64_t cookie;
    uint64_t packets;
    uint64_t bytes;
};
int ofp13_next_flow_stats(const struct ofp13_multipart *, size_t *ofs,
                          struct ofp13_flow_stats *);

struct ofp13_meter_stats {
    uint32_t meter_id;
    uint64_t packets_in;
    uint64_t band_packets;      /* Sum over the meter's bands. */
};
int ofp13_next_meter_stats(const struct ofp13_multipart *, size_t *ofs,
                           struct ofp13_meter_stats *);

struct ofp13_meter_config {
    uint32_t meter_id;
    uint16_t flags;
    uint16_t n_bands;
    uint16_t band_type;         /* Of the first band, 0 if none. */
    uint32_t rate;              /* Of the first band. */
    uint32_t burst;             /* Of the first band. */
};
int ofp13_next_meter_config(const struct ofp13_multipart *, size_t *ofs,
                            struct ofp13_meter_config *);

/* Meter flags and band type. */
#define OFP13_MF_KBPS 1
#define OFP13_MF_PKTPS 2
#define OFP13_MF_BURST 4
#define OFP13_MF_STATS 8
#define OFP13_MBT_DROP 1

#endif /* ofp13-flow.h */
