/*
 * fuzz-openflow: the OpenFlow 1.3 byte stream chand-host reads from a
 * bridge's service connection, through lib/ofp13: ofp13_frame() over the
 * whole input as a stream (version 0 until a HELLO offering 1.3 has been
 * seen, then 0x04, as a connection negotiates), and every decoder on every
 * framed message, each in a buffer of exactly the message's size.  The frame
 * carried by a PACKET_IN goes on through pkt_udp_parse() and
 * chan_wire_decode(), as chand-host hands it on.
 *
 * Invariants checked besides memory safety: the framer's answers for every
 * short prefix of a message; pointers returned by decoders stay inside the
 * message; a decoded HELLO/ECHO/ERROR/FEATURES_REPLY/async config/
 * controller id/PACKET_IN/bundle control, encoded again from its fields,
 * decodes to the same fields; the multipart reply iterators (flow, meter
 * and meter config statistics, as lib/ofctrl reads them) walk forward and
 * stay inside the body.
 */
#include <config.h>
#include "fuzz.h"

#include "chan-wire.h"
#include "ofp13.h"
#include "ofp13-flow.h"
#include "packets.h"

/* Bytes of output buffer for re-encoding. */
#define BUF_SIZE (OFP13_MAX_MSG_LEN + 64)

static uint8_t buf[BUF_SIZE];

static bool
inside(const uint8_t *p, size_t n, const uint8_t *msg, size_t len)
{
    return n ? p && p >= msg && p + n <= msg + len : p == NULL;
}

static void
check_framer_prefixes(const uint8_t *msg, size_t len)
{
    /* Every proper prefix is incomplete (or, below 4 bytes, at least
     * asks for a header). */
    size_t check[] = { 0, 1, 3, 4, 7, 8, len / 2, len - 1 };
    for (size_t i = 0; i < sizeof check / sizeof check[0]; i++) {
        size_t n = check[i], need;
        if (n >= len) {
            continue;
        }
        int error = ofp13_frame(msg, n, 0, &need);
        FUZZ_CHECK(error == OFP13_E_INCOMPLETE);
        FUZZ_CHECK(need == (n < 4 ? OFP13_HEADER_LEN : len));
    }
}

static void
fuzz_echo(const uint8_t *msg, size_t len)
{
    struct ofp13_echo echo, again;
    size_t n;

    if (ofp13_decode_echo(msg, len, &echo)) {
        return;
    }
    FUZZ_CHECK(inside(echo.data, echo.data_len, msg, len));
    FUZZ_CHECK(!ofp13_encode_echo_reply(buf, sizeof buf, &n, echo.xid,
                                        echo.data, echo.data_len));
    FUZZ_CHECK(!ofp13_decode_echo(buf, n, &again));
    FUZZ_CHECK(again.type == OFP13_ECHO_REPLY && again.xid == echo.xid);
    FUZZ_CHECK(again.data_len == echo.data_len);
    FUZZ_CHECK(!echo.data_len || !memcmp(again.data, echo.data,
                                         echo.data_len));
}

static void
fuzz_error(const uint8_t *msg, size_t len)
{
    struct ofp13_error_msg em, again;
    size_t n;

    if (ofp13_decode_error(msg, len, &em)) {
        return;
    }
    FUZZ_CHECK(inside(em.data, em.data_len, msg, len));
    FUZZ_CHECK(ofp13_error_string(em.type, em.code) != NULL);
    FUZZ_CHECK(em.type == OFP13_ET_EXPERIMENTER || !em.experimenter);

    /* chand-host peeks at the header of the failed request. */
    struct ofp13_header h;
    uint8_t *data = fuzz_dup(em.data, em.data_len);
    if (!ofp13_decode_header(data, em.data_len, &h)) {
        FUZZ_CHECK(h.length >= OFP13_HEADER_LEN);
    }
    free(data);

    if (!ofp13_encode_error(buf, sizeof buf, &n, em.xid, em.type, em.code,
                            em.experimenter, em.data, em.data_len)) {
        FUZZ_CHECK(!ofp13_decode_error(buf, n, &again));
        FUZZ_CHECK(again.xid == em.xid && again.type == em.type);
        FUZZ_CHECK(again.code == em.code);
        FUZZ_CHECK(again.experimenter == em.experimenter);
        FUZZ_CHECK(again.data_len == em.data_len);
        FUZZ_CHECK(!em.data_len || !memcmp(again.data, em.data,
                                           em.data_len));
    }
}

static void
fuzz_features(const uint8_t *msg, size_t len)
{
    struct ofp13_features f, g;
    uint32_t xid, xid2;
    size_t n;

    if (ofp13_decode_features_reply(msg, len, &xid, &f)) {
        return;
    }
    FUZZ_CHECK(!ofp13_encode_features_reply(buf, sizeof buf, &n, xid, &f));
    FUZZ_CHECK(!ofp13_decode_features_reply(buf, n, &xid2, &g));
    FUZZ_CHECK(xid2 == xid && g.datapath_id == f.datapath_id);
    FUZZ_CHECK(g.n_buffers == f.n_buffers && g.n_tables == f.n_tables);
    FUZZ_CHECK(g.auxiliary_id == f.auxiliary_id);
    FUZZ_CHECK(g.capabilities == f.capabilities);
}

static void
fuzz_async(const uint8_t *msg, size_t len)
{
    struct ofp13_async_config ac, again;
    uint8_t type, type2;
    uint32_t xid, xid2;
    size_t n;

    if (ofp13_decode_async_config(msg, len, &type, &xid, &ac)) {
        return;
    }
    FUZZ_CHECK(type == OFP13_SET_ASYNC || type == OFP13_GET_ASYNC_REPLY);
    FUZZ_CHECK(!ofp13_encode_set_async(buf, sizeof buf, &n, xid, &ac));
    FUZZ_CHECK(!ofp13_decode_async_config(buf, n, &type2, &xid2, &again));
    FUZZ_CHECK(type2 == OFP13_SET_ASYNC && xid2 == xid);
    FUZZ_CHECK(!memcmp(&ac, &again, sizeof ac));
}

static void
fuzz_experimenter(const uint8_t *msg, size_t len)
{
    uint32_t experimenter, subtype, xid, xid2;
    uint16_t id, id2;
    size_t n;

    ofp13_decode_experimenter(msg, len, &experimenter, &subtype);
    if (ofp13_decode_set_controller_id(msg, len, &xid, &id)) {
        return;
    }
    FUZZ_CHECK(!ofp13_encode_set_controller_id(buf, sizeof buf, &n, xid,
                                               id));
    FUZZ_CHECK(!ofp13_decode_set_controller_id(buf, n, &xid2, &id2));
    FUZZ_CHECK(xid2 == xid && id2 == id);
}

/* The frame of a PACKET_IN goes where chand-host sends it. */
static void
fuzz_packet_in_frame(const uint8_t *frame, size_t len)
{
    uint8_t *copy = fuzz_dup(frame, len);
    struct pkt_udp pkt;

    if (!pkt_udp_parse(copy, len, 0, &pkt)) {
        struct chan_wire_header hdr;
        const uint8_t *payload;
        FUZZ_CHECK(inside(pkt.payload, pkt.payload_len, copy, len)
                   || !pkt.payload_len);
        chan_wire_decode(pkt.payload, pkt.payload_len, NULL, 0, &hdr,
                         &payload);
    }
    free(copy);
}

static void
fuzz_packet_in(const uint8_t *msg, size_t len)
{
    struct ofp13_packet_in pi, again;
    size_t n;

    if (ofp13_decode_packet_in(msg, len, &pi)) {
        return;
    }
    FUZZ_CHECK(inside(pi.data, pi.data_len, msg, len));
    FUZZ_CHECK(pi.total_len >= pi.data_len);
    FUZZ_CHECK(pi.has_pkt_mark || !pi.pkt_mark);
    fuzz_packet_in_frame(pi.data, pi.data_len);

    /* What the encoder can express (unbuffered, the whole frame, in_port,
     * an exact nonzero pkt_mark or none) must come back unchanged. */
    if (pi.has_in_port && pi.buffer_id == OFP13_NO_BUFFER
        && pi.total_len == pi.data_len
        && (!pi.has_pkt_mark
            || (pi.pkt_mark && pi.pkt_mark_mask == UINT32_MAX))
        && !ofp13_encode_packet_in(buf, sizeof buf, &n, pi.xid, pi.reason,
                                   pi.table_id, pi.cookie, pi.in_port,
                                   pi.pkt_mark, pi.data, pi.data_len)) {
        FUZZ_CHECK(!ofp13_decode_packet_in(buf, n, &again));
        FUZZ_CHECK(again.xid == pi.xid && again.reason == pi.reason);
        FUZZ_CHECK(again.table_id == pi.table_id);
        FUZZ_CHECK(again.cookie == pi.cookie);
        FUZZ_CHECK(again.in_port == pi.in_port);
        FUZZ_CHECK(again.has_pkt_mark == pi.has_pkt_mark);
        FUZZ_CHECK(again.pkt_mark == pi.pkt_mark);
        FUZZ_CHECK(again.data_len == pi.data_len);
        FUZZ_CHECK(!pi.data_len || !memcmp(again.data, pi.data,
                                           pi.data_len));
    }
}

static void
fuzz_packet_out(const uint8_t *msg, size_t len)
{
    struct ofp13_packet_out po;

    if (!ofp13_decode_packet_out(msg, len, &po)) {
        FUZZ_CHECK(inside(po.data, po.data_len, msg, len));
    }
}

/* A multipart reply: each iterator walks the body forward and stays inside
 * it, and stops at the end or on an error. */
static void
fuzz_multipart(const uint8_t *msg, size_t len)
{
    struct ofp13_multipart mp;
    size_t ofs;
    int error;

    if (ofp13_decode_multipart_reply(msg, len, &mp)) {
        return;
    }
    FUZZ_CHECK(inside(mp.body, mp.body_len, msg, len) || !mp.body_len);
    struct ofp13_flow_stats fs;
    for (ofs = 0; !(error = ofp13_next_flow_stats(&mp, &ofs, &fs)); ) {
        FUZZ_CHECK(ofs <= mp.body_len);
    }
    FUZZ_CHECK(error == -1 ? ofs >= mp.body_len : error > 0);
    struct ofp13_meter_stats ms;
    for (ofs = 0; !(error = ofp13_next_meter_stats(&mp, &ofs, &ms)); ) {
        FUZZ_CHECK(ofs <= mp.body_len);
    }
    FUZZ_CHECK(error == -1 || error > 0);
    struct ofp13_meter_config mc;
    for (ofs = 0; !(error = ofp13_next_meter_config(&mp, &ofs, &mc)); ) {
        FUZZ_CHECK(ofs <= mp.body_len);
    }
    FUZZ_CHECK(error == -1 || error > 0);
}

/* A bundle control message: encoded again, it decodes the same. */
static void
fuzz_bundle_ctrl(const uint8_t *msg, size_t len)
{
    struct ofp13_bundle_ctrl bc, again;
    size_t n;

    if (ofp13_decode_bundle_ctrl(msg, len, &bc)) {
        return;
    }
    FUZZ_CHECK(!ofp13_encode_bundle_ctrl(buf, sizeof buf, &n, bc.xid,
                                         bc.bundle_id, bc.type, bc.flags));
    FUZZ_CHECK(!ofp13_decode_bundle_ctrl(buf, n, &again));
    FUZZ_CHECK(again.xid == bc.xid && again.bundle_id == bc.bundle_id
               && again.type == bc.type && again.flags == bc.flags);
}

/* Runs every decoder on the 'len'-byte message 'msg'.  Returns true if it
 * is a HELLO that offers OpenFlow 1.3. */
static bool
fuzz_message(const uint8_t *msg, size_t len)
{
    struct ofp13_header h;
    uint32_t xid, versions;
    bool hello13 = false;

    FUZZ_CHECK(!ofp13_decode_header(msg, len, &h));
    FUZZ_CHECK(h.length == len);
    FUZZ_CHECK(ofp13_strerror(ofp13_decode_simple(msg, len, h.type, &xid)));
    ofp13_decode_simple(msg, len, OFP13_BARRIER_REPLY, NULL);

    int error = ofp13_decode_hello(msg, len, &versions);
    if (!error) {
        FUZZ_CHECK(versions & (1u << OFP13_VERSION));
        hello13 = true;
    }

    fuzz_echo(msg, len);
    fuzz_error(msg, len);
    fuzz_features(msg, len);
    fuzz_async(msg, len);
    fuzz_experimenter(msg, len);
    fuzz_packet_in(msg, len);
    fuzz_packet_out(msg, len);
    fuzz_multipart(msg, len);
    fuzz_bundle_ctrl(msg, len);
    return hello13;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t version = 0;
    size_t ofs = 0;

    while (ofs < size) {
        size_t msg_len;
        int error = ofp13_frame(data + ofs, size - ofs, version, &msg_len);
        FUZZ_CHECK(ofp13_strerror(error) != NULL);
        if (error) {
            FUZZ_CHECK(error == OFP13_E_INCOMPLETE
                       ? msg_len > size - ofs : msg_len == 0);
            break;
        }
        FUZZ_CHECK(msg_len >= OFP13_HEADER_LEN && msg_len <= size - ofs);

        uint8_t *msg = fuzz_dup(data + ofs, msg_len);
        check_framer_prefixes(msg, msg_len);
        if (fuzz_message(msg, msg_len)) {
            version = OFP13_VERSION;
        }
        free(msg);
        ofs += msg_len;
    }
    return 0;
}
