/*
 * fuzz-frame: whole Ethernet frames through the path a received channel
 * packet takes: pkt_udp_parse() (lib/packets), chan_wire_decode()
 * (lib/chan-wire) of the UDP payload with three keys, a chan_reasm fed with
 * every frame that authenticates, and the payload decoders on every message
 * the reassembler completes (xfer_msg_parse() for XFER; CHUNK payloads are
 * raw bytes).
 *
 * Input layout (see also gen-seeds.c):
 *
 *     byte 0    flags: FIX_CSUM, RESIGN, REQUIRE_CSUM, SMALL_REASM (below)
 *     byte 1    length of the "selected" key, 0..255 (its bytes are
 *               fuzz_frame_key())
 *     then      up to MAX_FRAMES frames, each a big-endian 16-bit length
 *               followed by that many bytes (the last one may be short)
 *
 * Every frame is decoded with the empty key, with FUZZ_FRAME_FIXED_KEY and
 * with the selected key.  Random bytes never authenticate, so two flags
 * let the fuzzer past the checksums and the HMAC and into the field checks
 * and the reassembler: FIX_CSUM rewrites the IPv4 and UDP lengths and
 * checksums, RESIGN recomputes the trailer with the selected key.
 *
 * Invariants checked besides memory safety:
 *   - a parsed frame rebuilds with pkt_udp_build() into a frame that parses
 *     to the same fields and payload;
 *   - a decoded channel frame re-encodes to exactly the same bytes;
 *   - a reassembled message, chunked again with chan_chunker, encoded,
 *     decoded and reassembled, gives back the same message;
 *   - a CHUNK (raw bytes) or XFER (an XFER message, xfer_msg_parse(); the
 *     fuzz-xfer target checks it in depth) is one frame.
 */
#include <config.h>
#include "fuzz.h"

#include "chan-wire.h"
#include "packets.h"
#include "xfer.h"

#define MAX_FRAMES 64
#define SMALL_REASM_LIMIT 4096

static void
put_csum(uint8_t *p, uint16_t csum)
{
    pkt_put_be16(p, csum);
}

/* FIX_CSUM: makes the IPv4 total length cover the rest of the frame, the
 * UDP length match it, and both checksums right, if the frame is long
 * enough to have those fields at all. */
static void
fix_frame(uint8_t *frame, size_t len)
{
    size_t l2 = ETH_HEADER_LEN;
    if (len >= ETH_HEADER_LEN + VLAN_HEADER_LEN
        && pkt_get_be16(frame + 12) == ETH_TYPE_VLAN) {
        l2 += VLAN_HEADER_LEN;
    }
    if (len < l2 + IP_HEADER_LEN || len - l2 > IP_MAX_LEN) {
        return;
    }
    uint8_t *ip = frame + l2;
    size_t ip_len = len - l2;
    pkt_put_be16(ip + 2, ip_len);
    put_csum(ip + 10, 0);
    put_csum(ip + 10, pkt_csum(ip, IP_HEADER_LEN));

    if (ip_len < IP_HEADER_LEN + UDP_HEADER_LEN) {
        return;
    }
    uint8_t *udp = ip + IP_HEADER_LEN;
    size_t udp_len = ip_len - IP_HEADER_LEN;
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = IP_PROTO_UDP;
    pkt_put_be16(pseudo + 10, udp_len);
    pkt_put_be16(udp + 4, udp_len);
    put_csum(udp + 6, 0);
    uint32_t sum = pkt_csum_add(0, pseudo, sizeof pseudo);
    sum = pkt_csum_add(sum, udp, udp_len);
    uint16_t csum = pkt_csum_finish(sum);
    put_csum(udp + 6, csum ? csum : 0xffff);
}

/* Checks that 'pkt', parsed from a frame, rebuilds into a frame that
 * parses back to the same thing. */
static void
check_rebuild(const struct pkt_udp *pkt)
{
    size_t size = pkt_udp_frame_len(pkt->payload_len, pkt->vlan);
    uint8_t *buf = fuzz_alloc(size);
    size_t len;

    FUZZ_CHECK(pkt_udp_build(pkt, buf, size, &len) == PKT_OK);
    FUZZ_CHECK(len == size);

    struct pkt_udp again;
    FUZZ_CHECK(pkt_udp_parse(buf, len, PKT_PARSE_REQUIRE_UDP_CSUM, &again)
               == PKT_OK);
    FUZZ_CHECK(eth_addr_equals(&again.eth_dst, &pkt->eth_dst));
    FUZZ_CHECK(eth_addr_equals(&again.eth_src, &pkt->eth_src));
    FUZZ_CHECK(again.vlan == pkt->vlan);
    FUZZ_CHECK(again.vid == pkt->vid && again.pcp == pkt->pcp);
    FUZZ_CHECK(again.ip_src == pkt->ip_src && again.ip_dst == pkt->ip_dst);
    FUZZ_CHECK(again.ttl == pkt->ttl && again.tos == pkt->tos);
    FUZZ_CHECK(again.udp_src == pkt->udp_src
               && again.udp_dst == pkt->udp_dst);
    FUZZ_CHECK(again.payload_len == pkt->payload_len);
    FUZZ_CHECK(!pkt->payload_len
               || !memcmp(again.payload, pkt->payload, pkt->payload_len));
    free(buf);
}

/* Decodes a completed message's payload as the daemons do. */
static void
decode_message(const struct chan_msg *msg)
{
    if (msg->type == CHAN_WIRE_CHUNK) {
        /* Raw bytes of one chunk: the transfer lane checks only the
         * length, against its engine (fuzz-xfer). */
        FUZZ_CHECK(msg->n_chunks == 1);
        FUZZ_CHECK(msg->len <= CHAN_WIRE_MAX_PAYLOAD);
    } else if (msg->type == CHAN_WIRE_XFER) {
        struct xfer_msg xmsg;
        if (!xfer_msg_parse(msg->data, msg->len, &xmsg)) {
            FUZZ_CHECK(xfer_digest_is_valid(xmsg.digest));
            FUZZ_CHECK(xmsg.op != XFER_OP_GET
                       || (xmsg.n_ranges >= 1
                           && xmsg.n_ranges <= XFER_MAX_RANGES));
        }
    } else if (msg->type == CHAN_WIRE_DATA) {
        struct chan_batch batch;
        chan_batch_init(&batch);
        if (!chan_batch_decode(msg->data, msg->len, NULL, &batch)) {
            FUZZ_CHECK(batch.n <= CHAN_WIRE_DEFAULT_MAX_RECORDS);
        }
        chan_batch_destroy(&batch);
    } else {
        json_t *obj;
        if (!chan_payload_decode_object(msg->data, msg->len, NULL, &obj)) {
            FUZZ_CHECK(json_is_object(obj));
        } else {
            FUZZ_CHECK(!obj);
        }
        json_decref(obj);
    }
}

/* Chunks 'msg' again, encodes and decodes every chunk with 'key', and
 * reassembles them: the result must be 'msg' again. */
static void
check_rechunk(const struct chan_msg *msg, const uint8_t *key, size_t key_len)
{
    struct chan_wire_header tmpl = {
        .type = msg->type,
        .flags = msg->flags,
        .vid = msg->vid,
        .epoch = msg->epoch,
        .seq = msg->first_seq,
        .ack = msg->ack,
    };
    struct chan_chunker c;

    /* The largest MTU needs at most as many chunks as the original took,
     * so the seq range must still fit. */
    FUZZ_CHECK(chan_chunker_init(&c, &tmpl, msg->data, msg->len,
                                 CHAN_WIRE_MAX_MTU) == CHAN_WIRE_OK);
    FUZZ_CHECK(chan_chunker_count(&c) <= msg->n_chunks);

    struct chan_reasm *r = chan_reasm_create(msg->len ? msg->len : 1);
    FUZZ_CHECK(r);
    static uint8_t frame[CHAN_WIRE_MAX_FRAME];
    struct chan_wire_header hdr;
    const uint8_t *p;
    size_t n;
    bool complete = false;
    struct chan_msg out;

    while (chan_chunker_next(&c, &hdr, &p, &n)) {
        size_t len;
        FUZZ_CHECK(!complete);
        FUZZ_CHECK(chan_wire_encode(&hdr, p, n, key, key_len, frame,
                                    CHAN_WIRE_MAX_FRAME, &len)
                   == CHAN_WIRE_OK);

        struct chan_wire_header dec;
        const uint8_t *payload;
        FUZZ_CHECK(chan_wire_decode(frame, len, key, key_len, &dec, &payload)
                   == CHAN_WIRE_OK);
        FUZZ_CHECK(chan_reasm_feed(r, &dec, payload, &out, &complete)
                   == CHAN_WIRE_OK);
    }
    FUZZ_CHECK(complete);
    FUZZ_CHECK(out.type == msg->type && out.vid == msg->vid);
    FUZZ_CHECK(out.epoch == msg->epoch && out.first_seq == msg->first_seq);
    FUZZ_CHECK(out.flags == msg->flags && out.ack == msg->ack);
    FUZZ_CHECK(out.len == msg->len);
    FUZZ_CHECK(!out.len || !memcmp(out.data, msg->data, out.len));
    chan_reasm_destroy(r);
}

/* Decodes the UDP payload 'udp' with 'key'.  Returns true and fills in
 * '*hdr' and '*payloadp' if it authenticates. */
static bool
decode_frame(const uint8_t *udp, size_t len, const uint8_t *key,
             size_t key_len, struct chan_wire_header *hdr,
             const uint8_t **payloadp)
{
    enum chan_wire_error error = chan_wire_decode(udp, len, key, key_len,
                                                  hdr, payloadp);
    if (error) {
        FUZZ_CHECK(error < CHAN_WIRE_N_ERRORS);
        FUZZ_CHECK(chan_wire_error_name(error) != NULL);
        return false;
    }

    FUZZ_CHECK(hdr->payload_len == len - CHAN_WIRE_OVERHEAD);
    FUZZ_CHECK(*payloadp == udp + CHAN_WIRE_HEADER_LEN);
    FUZZ_CHECK(chan_wire_check_header(hdr) == CHAN_WIRE_OK);

    /* Re-encoding gives the same bytes. */
    uint8_t *again = fuzz_alloc(len);
    size_t again_len;
    FUZZ_CHECK(chan_wire_encode(hdr, *payloadp, hdr->payload_len, key,
                                key_len, again, len, &again_len)
               == CHAN_WIRE_OK);
    FUZZ_CHECK(again_len == len && !memcmp(again, udp, len));
    free(again);
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t flags = fuzz_u8(&in);
    size_t key_len = fuzz_u8(&in);
    uint8_t key[256];
    fuzz_frame_key(key, key_len);

    struct chan_reasm *reasm = chan_reasm_create(
        flags & FUZZ_FRAME_SMALL_REASM ? SMALL_REASM_LIMIT : 0);
    FUZZ_CHECK(reasm);

    for (int i = 0; i < MAX_FRAMES && in.size; i++) {
        const uint8_t *p;
        size_t len = fuzz_take(&in, fuzz_be16(&in), &p);
        uint8_t *frame = fuzz_dup(p, len);

        if (flags & FUZZ_FRAME_FIX_CSUM) {
            fix_frame(frame, len);
        }

        struct pkt_udp pkt;
        enum pkt_error perr = pkt_udp_parse(
            frame, len, flags & FUZZ_FRAME_REQUIRE_CSUM
            ? PKT_PARSE_REQUIRE_UDP_CSUM : 0, &pkt);
        FUZZ_CHECK(perr < PKT_N_ERRORS);
        FUZZ_CHECK(pkt_error_name(perr) != NULL);
        if (perr) {
            free(frame);
            continue;
        }
        FUZZ_CHECK(pkt.payload >= frame
                   && pkt.payload + pkt.payload_len <= frame + len);
        check_rebuild(&pkt);

        /* The UDP payload in a buffer of its own, so that a read past it
         * is caught. */
        uint8_t *udp = fuzz_dup(pkt.payload, pkt.payload_len);
        size_t udp_len = pkt.payload_len;
        free(frame);

        if (flags & FUZZ_FRAME_RESIGN && udp_len >= CHAN_WIRE_OVERHEAD) {
            size_t signed_len = udp_len - CHAN_WIRE_TRAILER_LEN;
            chan_wire_mac(key, key_len, udp, signed_len, udp + signed_len);
        }

        struct chan_wire_header hdr;
        const uint8_t *payload;
        decode_frame(udp, udp_len, NULL, 0, &hdr, &payload);
        decode_frame(udp, udp_len, fuzz_frame_fixed_key,
                     sizeof fuzz_frame_fixed_key, &hdr, &payload);
        if (decode_frame(udp, udp_len, key, key_len, &hdr, &payload)) {
            struct chan_msg msg;
            bool complete;
            enum chan_wire_error error;

            error = chan_reasm_feed(reasm, &hdr, payload, &msg, &complete);
            if (error && hdr.chunk_index == 0) {
                /* A first chunk that interrupted a message starts over. */
                error = chan_reasm_feed(reasm, &hdr, payload, &msg,
                                        &complete);
            }
            FUZZ_CHECK(!error || !chan_reasm_in_progress(reasm));
            if (!error && complete) {
                FUZZ_CHECK(!chan_reasm_in_progress(reasm));
                FUZZ_CHECK(flags & FUZZ_FRAME_SMALL_REASM
                           ? msg.len <= SMALL_REASM_LIMIT
                           : msg.len <= CHAN_WIRE_DEFAULT_MAX_MSG);
                decode_message(&msg);
                check_rechunk(&msg, key, key_len);
            }
        }
        free(udp);
    }
    chan_reasm_destroy(reasm);
    return 0;
}
