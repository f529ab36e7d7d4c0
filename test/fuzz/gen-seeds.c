/*
 * gen-seeds: writes seed inputs for the fuzz targets, built with chand's
 * real encoders, so that the fuzzers start from valid frames, messages and
 * requests rather than from nothing.
 *
 *     gen-seeds OUTDIR
 *
 * writes OUTDIR/<target>/<name> for every target.  test/fuzz/run runs it
 * on every run (so that the seeds follow the encoders), and its output at
 * the time of writing is also kept in test/fuzz/corpus/, next to inputs
 * captured from real Open vSwitch (see doc/fuzzing.md).
 */
#include <config.h>
#include "fuzz.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "ofp13.h"
#include "ofp13-flow.h"
#include "ovsdb-msg.h"
#include "packets.h"
#include "qga-proto.h"
#include "util.h"
#include "xfer.h"

static const char *outdir;

/* A growable byte buffer. */
struct buf {
    uint8_t *data;
    size_t len, allocated;
};

static void
buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->allocated) {
        b->allocated = 2 * (b->len + n) + 64;
        b->data = xrealloc(b->data, b->allocated);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
buf_put_u8(struct buf *b, uint8_t x)
{
    buf_put(b, &x, 1);
}

static void
buf_put_be16(struct buf *b, uint16_t x)
{
    uint8_t p[2];
    pkt_put_be16(p, x);
    buf_put(b, p, 2);
}

static void
buf_put_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void
buf_clear(struct buf *b)
{
    b->len = 0;
}

static void
make_dir(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "gen-seeds: mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void
write_seed(const char *target, const char *name, const void *data,
           size_t len)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/%s", outdir, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "gen-seeds: write %s failed\n", path);
        exit(1);
    }
}

static void
write_buf(const char *target, const char *name, const struct buf *b)
{
    write_seed(target, name, b->data, b->len);
}

static size_t
unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (s[0] && s[1] && n < cap) {
        unsigned int byte;
        if (sscanf(s, "%2x", &byte) != 1) {
            abort();
        }
        out[n++] = byte;
        s += 2;
    }
    return n;
}

/* ---------------------------------------------------------------------
 * Channel frames.
 */

#define CHAN_ID 7
#define EPOCH 0x1234abcd
#define GUEST_EPOCH 0x5eed

/* Builds the Ethernet frame carrying channel frame 'hdr' + the
 * 'payload_len' bytes at 'payload' from the guest to the host (or the
 * other way), signed with 'key'. */
static size_t
build_frame_len(const struct chan_wire_header *hdr, const void *payload,
                size_t payload_len, const uint8_t *key, size_t key_len,
                bool to_guest, bool vlan, uint8_t *out, size_t size)
{
    uint8_t udp[CHAN_WIRE_MAX_FRAME];
    size_t udp_len;

    if (chan_wire_encode(hdr, payload, payload_len, key, key_len, udp,
                         sizeof udp, &udp_len)) {
        abort();
    }

    struct chan_config cfg;
    chan_config_default(CHAN_ID, &cfg);
    const struct chan_endpoint *src = to_guest ? &cfg.host : &cfg.guest;
    const struct chan_endpoint *dst = to_guest ? &cfg.guest : &cfg.host;
    struct pkt_udp pkt = {
        .eth_dst = dst->mac,
        .eth_src = src->mac,
        .vlan = vlan,
        .vid = vlan ? cfg.vid : 0,
        .ip_src = src->ip,
        .ip_dst = dst->ip,
        .ttl = PKT_DEFAULT_TTL,
        .udp_src = src->port,
        .udp_dst = dst->port,
        .payload = udp,
        .payload_len = udp_len,
    };
    size_t len;
    if (pkt_udp_build(&pkt, out, size, &len)) {
        abort();
    }
    return len;
}

/* Like build_frame_len() for a NUL-terminated payload (or none). */
static size_t
build_frame(const struct chan_wire_header *hdr, const char *payload,
            const uint8_t *key, size_t key_len, bool to_guest, bool vlan,
            uint8_t *out, size_t size)
{
    return build_frame_len(hdr, payload, payload ? strlen(payload) : 0,
                           key, key_len, to_guest, vlan, out, size);
}

/* Appends one length-prefixed frame with a 'payload_len'-byte payload to a
 * fuzz-frame input. */
static void
put_frame_len(struct buf *b, const struct chan_wire_header *hdr,
              const void *payload, size_t payload_len, const uint8_t *key,
              size_t key_len, bool to_guest, bool vlan)
{
    uint8_t frame[65536];
    size_t len = build_frame_len(hdr, payload, payload_len, key, key_len,
                                 to_guest, vlan, frame, sizeof frame);
    buf_put_be16(b, len);
    buf_put(b, frame, len);
}

/* Appends one length-prefixed frame to a fuzz-frame input. */
static void
put_frame(struct buf *b, const struct chan_wire_header *hdr,
          const char *payload, const uint8_t *key, size_t key_len,
          bool to_guest, bool vlan)
{
    put_frame_len(b, hdr, payload, payload ? strlen(payload) : 0, key,
                  key_len, to_guest, vlan);
}

/* ---------------------------------------------------------------------
 * XFER messages (the transfer lane, lib/xfer.h).
 */

#define XFER_ID 0x7e57c0de      /* A transfer id (the frames' epoch). */
#define DIGEST "9f86d081884c7d659a2feaa0c55ad015" \
               "a3bf4f1b2b0b822cd15d6c15b0f00a08"

static void
xfer_msg_start(struct xfer_msg *msg, enum xfer_op op)
{
    memset(msg, 0, sizeof *msg);
    msg->op = op;
    memcpy(msg->digest, DIGEST, XFER_DIGEST_LEN);
}

/* A GET of object 'size' / 'chunk_size' for the one range 'first',
 * 'count'. */
static void
xfer_get(struct xfer_msg *msg, uint64_t size, uint32_t chunk_size,
         uint64_t first, uint32_t count)
{
    xfer_msg_start(msg, XFER_OP_GET);
    msg->size = size;
    msg->chunk_size = chunk_size;
    msg->n_ranges = 1;
    msg->ranges[0] = (struct xfer_range) { .first = first, .count = count };
}

static void
xfer_fail(struct xfer_msg *msg, const char *error, const char *reason)
{
    xfer_msg_start(msg, XFER_OP_FAIL);
    snprintf(msg->error, sizeof msg->error, "%s", error);
    snprintf(msg->reason, sizeof msg->reason, "%s", reason);
}

/* Returns 'msg' as the wire carries it (compact JSON; the caller frees
 * it). */
static char *
xfer_text(const struct xfer_msg *msg)
{
    json_t *json = xfer_msg_to_json(msg);
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    if (!text) {
        abort();
    }
    json_decref(json);
    return text;
}

static const char *
big_batch(void)
{
    static char text[4096];
    size_t n = 0;

    n += snprintf(text + n, sizeof text - n, "{\"records\":[");
    for (int i = 0; i < 20; i++) {
        n += snprintf(text + n, sizeof text - n,
                      "%s{\"op\":\"put\",\"key\":\"cfg/item-%02d\","
                      "\"value\":{\"name\":\"item %d\",\"tags\":[\"a\",\"b\"],"
                      "\"n\":%d,\"ok\":true},\"version\":%d}",
                      i ? "," : "", i, i, i * 3, 100 + i);
    }
    snprintf(text + n, sizeof text - n, "]}");
    return text;
}

static const char small_batch[] =
    "{\"records\":[{\"op\":\"put\",\"key\":\"motd\",\"value\":"
    "{\"text\":\"hello\"},\"version\":3},"
    "{\"op\":\"delete\",\"key\":\"old-motd\",\"version\":4}]}";

static void
gen_frame(void)
{
    struct buf b = { 0 };
    uint8_t key[256];
    char text[256];

    /* flags, key length.  Key length 0: the selected key is empty. */
#define START(FLAGS, KEY_LEN)                   \
    buf_clear(&b);                              \
    buf_put_u8(&b, FLAGS);                      \
    buf_put_u8(&b, KEY_LEN);                    \
    fuzz_frame_key(key, KEY_LEN)

    /* Guest HELLO (epoch 0, before any session). */
    START(0, 0);
    struct chan_wire_header hello = {
        .type = CHAN_WIRE_HELLO, .flags = CHAN_WIRE_F_ACK_VALID,
        .vid = 4094, .chunk_count = 1,
    };
    snprintf(text, sizeof text, "{\"guest_epoch\":%d}", GUEST_EPOCH);
    put_frame(&b, &hello, text, key, 0, false, false);
    write_buf("frame", "hello-guest", &b);

    /* The same on the vNIC, tagged. */
    START(0, 0);
    put_frame(&b, &hello, text, key, 0, false, true);
    write_buf("frame", "hello-guest-vlan", &b);

    /* Host SYNC, then a one-chunk DATA, then a HEARTBEAT, to the guest,
     * with a 32-byte selected key. */
    START(0, 32);
    struct chan_wire_header sync = {
        .type = CHAN_WIRE_SYNC, .vid = 4094, .epoch = EPOCH,
        .chunk_count = 1,
    };
    snprintf(text, sizeof text, "{\"guest_epoch\":%d,\"snapshot_end\":2}",
             GUEST_EPOCH);
    put_frame(&b, &sync, text, key, 32, true, false);
    struct chan_wire_header data = {
        .type = CHAN_WIRE_DATA, .flags = CHAN_WIRE_F_SNAPSHOT, .vid = 4094,
        .epoch = EPOCH, .seq = 1, .chunk_count = 1,
    };
    put_frame(&b, &data, small_batch, key, 32, true, false);
    struct chan_wire_header hb = {
        .type = CHAN_WIRE_HEARTBEAT, .vid = 4094, .epoch = EPOCH,
        .seq = 1, .chunk_count = 1,
    };
    put_frame(&b, &hb, NULL, key, 32, true, false);
    write_buf("frame", "sync-data-heartbeat", &b);

    /* A DATA message in three chunks (MTU 576), with a key longer than
     * the SHA-256 block (hashed first). */
    START(0, 100);
    const char *batch = big_batch();
    struct chan_wire_header tmpl = {
        .type = CHAN_WIRE_DATA, .flags = CHAN_WIRE_F_ACK_VALID,
        .vid = 100, .epoch = EPOCH, .seq = 10, .ack = 3,
    };
    struct chan_chunker c;
    if (chan_chunker_init(&c, &tmpl, batch, strlen(batch), 576)) {
        abort();
    }
    struct chan_wire_header hdr;
    const uint8_t *p;
    size_t n;
    while (chan_chunker_next(&c, &hdr, &p, &n)) {
        char chunk[1024];
        memcpy(chunk, p, n);
        chunk[n] = '\0';
        put_frame(&b, &hdr, chunk, key, 100, true, false);
    }
    write_buf("frame", "data-chunked", &b);

    /* Guest ACK with the fixed key, and with checksum and trailer fix-up
     * on (so that mutations of it still get through). */
    START(FUZZ_FRAME_FIX_CSUM | FUZZ_FRAME_RESIGN, 0);
    struct chan_wire_header ack = {
        .type = CHAN_WIRE_ACK, .flags = CHAN_WIRE_F_ACK_VALID, .vid = 4094,
        .epoch = EPOCH, .ack = 12, .chunk_count = 1,
    };
    put_frame(&b, &ack, NULL, fuzz_frame_fixed_key,
              sizeof fuzz_frame_fixed_key, false, false);
    write_buf("frame", "ack-fixed-key", &b);

    /* DATA with fix-up on and the empty key. */
    START(FUZZ_FRAME_FIX_CSUM | FUZZ_FRAME_RESIGN, 0);
    put_frame(&b, &data, small_batch, key, 0, true, true);
    write_buf("frame", "data-fixup", &b);

    /* The transfer lane, with a 32-byte selected key: chand-host's XFER
     * GET of a 40-byte object in 16-byte chunks, the guest's three CHUNKs
     * (raw bytes, the last one short) and chand-host's XFER DONE. */
    START(0, 32);
    struct xfer_msg xmsg;
    struct chan_wire_header xfer = {
        .type = CHAN_WIRE_XFER, .vid = 4094, .epoch = XFER_ID,
        .chunk_count = 1,
    };
    xfer_get(&xmsg, 40, 16, 0, 3);
    char *xtext = xfer_text(&xmsg);
    put_frame(&b, &xfer, xtext, key, 32, true, false);
    free(xtext);
    for (unsigned int i = 0; i < 3; i++) {
        struct chan_wire_header chunk = {
            .type = CHAN_WIRE_CHUNK, .vid = 4094, .epoch = XFER_ID,
            .seq = i, .chunk_count = 1,
        };
        uint8_t bytes[16];
        for (size_t j = 0; j < sizeof bytes; j++) {
            bytes[j] = (uint8_t) (i * 16 + j) * 37;
        }
        put_frame_len(&b, &chunk, bytes, xfer_chunk_len(40, 16, i), key, 32,
                      false, false);
    }
    xfer_msg_start(&xmsg, XFER_OP_DONE);
    xtext = xfer_text(&xmsg);
    put_frame(&b, &xfer, xtext, key, 32, true, false);
    free(xtext);
    write_buf("frame", "xfer-get-chunks-done", &b);

    /* With fix-up on and the empty key, to the guest: a CHUNK of an object
     * chand-host sends and an XFER FAIL refusing one. */
    START(FUZZ_FRAME_FIX_CSUM | FUZZ_FRAME_RESIGN, 0);
    struct chan_wire_header chunk = {
        .type = CHAN_WIRE_CHUNK, .vid = 4094, .epoch = XFER_ID, .seq = 7,
        .chunk_count = 1,
    };
    put_frame_len(&b, &chunk, "\0\1\2\3\377chunk", 10, key, 0, true,
                  false);
    xfer_fail(&xmsg, XFER_ERR_NOT_ENTITLED, "not this VM's object");
    xtext = xfer_text(&xmsg);
    put_frame(&b, &xfer, xtext, key, 0, true, true);
    free(xtext);
    write_buf("frame", "xfer-chunk-fail-fixup", &b);

    free(b.data);
#undef START
}

/* ---------------------------------------------------------------------
 * Payloads.
 */

static void
gen_payload(void)
{
    static const struct {
        const char *name;
        uint8_t limits[3];
        const char *text;
    } seeds[] = {
        { "batch", { 0, 0, 0 }, small_batch },
        { "batch-values", { 0, 0, 0 },
          "{\"records\":[{\"op\":\"put\",\"key\":\"k\",\"value\":"
          "[1,-2,3.5,\"s\\u0000t\",null,true,{\"a\":{\"b\":[]}}],"
          "\"version\":9223372036854775807}]}" },
        { "batch-empty", { 0, 0, 0 }, "{\"records\":[]}" },
        { "batch-limits", { 1, 2, 3 },
          "{\"records\":[{\"op\":\"put\",\"key\":\"a\",\"value\":[[1]],"
          "\"version\":0},{\"op\":\"delete\",\"key\":\"b\","
          "\"version\":1}]}" },
        { "hello", { 0, 0, 0 }, "{\"guest_epoch\":24301}" },
        { "sync", { 0, 0, 0 },
          "{\"guest_epoch\":24301,\"snapshot_end\":17}" },
        { "empty", { 0, 0, 0 }, "" },
        { "nested", { 1, 0, 4 }, "{\"a\":{\"b\":{\"c\":{}}}}" },
    };

    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        struct buf b = { 0 };
        buf_put(&b, seeds[i].limits, 3);
        buf_put_str(&b, seeds[i].text);
        write_buf("payload", seeds[i].name, &b);
        free(b.data);
    }
    struct buf b = { 0 };
    buf_put(&b, "\0\0\0", 3);
    buf_put_str(&b, big_batch());
    write_buf("payload", "batch-big", &b);
    free(b.data);
}

/* ---------------------------------------------------------------------
 * OVSDB.
 */

static void
write_json(const char *target, const char *name, json_t *json)
{
    char *s = json_dumps(json, JSON_COMPACT);
    if (!s) {
        abort();
    }
    write_seed(target, name, s, strlen(s));
    free(s);
    json_decref(json);
}

/* Like write_json(), with the leading space that makes fuzz-ovsdb use
 * typed replicas. */
static void
write_json_typed(const char *target, const char *name, json_t *json)
{
    char *s = json_dumps(json, JSON_COMPACT);
    if (!s) {
        abort();
    }
    struct buf b = { 0 };
    buf_put_u8(&b, ' ');
    buf_put_str(&b, s);
    write_buf(target, name, &b);
    free(b.data);
    free(s);
    json_decref(json);
}

#define UUID_IF "0d5f4f9e-1c1e-4c25-a0a4-3d3b6f1a8e01"
#define UUID_PORT "7a1c3e52-9b7d-4e0e-8a61-2f4c5d6e7f02"
#define UUID_BR "c3b2a190-0f1e-4d2c-9b8a-7c6d5e4f3a03"

static void
gen_ovsdb(void)
{
    json_t *ext = json_pack("{s:s, s:s, s:s}", "chand-vm", "vm1",
                            "chand-id", "7", "chand-vid", "100");
    json_t *iface = json_pack("{s:s, s:o, s:i}", "name", "vnet7",
                              "external_ids", ovsdb_datum_string_map(ext),
                              "ofport", 5);
    json_t *ports = json_array();
    json_array_append_new(ports, json_string(UUID_PORT));
    json_t *ifaces = json_array();
    json_array_append_new(ifaces, json_string(UUID_IF));
    json_t *port = json_pack("{s:s, s:o}", "name", "vnet7", "interfaces",
                             ovsdb_datum_uuid_set(ifaces));
    json_t *bridge = json_pack("{s:s, s:o}", "name", "br-int", "ports",
                               ovsdb_datum_uuid_set(ports));

    /* A monitor reply (initial snapshot). */
    json_t *snapshot = json_pack(
        "{s:{s:{s:O}}, s:{s:{s:O}}, s:{s:{s:O}}}",
        "Interface", UUID_IF, "new", iface,
        "Port", UUID_PORT, "new", port,
        "Bridge", UUID_BR, "new", bridge);
    write_json("ovsdb", "table-updates", json_incref(snapshot));
    write_json_typed("ovsdb", "table-updates-typed", json_incref(snapshot));
    write_json_typed("ovsdb", "bad-types-typed",
                     json_pack("{s:{s:{s:{s:s, s:[s, [i]]}}}}", "Interface",
                               UUID_IF, "new", "ofport", "five",
                               "external_ids", "set", 1));
    write_json("ovsdb", "monitor-reply",
               json_pack("{s:O, s:n, s:i}", "result", snapshot, "error",
                         "id", 3));

    /* An "update" notification: modify the interface, delete the port. */
    json_t *ext2 = json_pack("{s:s, s:s}", "chand-vm", "vm1", "chand-id",
                             "8");
    json_t *update = json_pack(
        "{s:{s:{s:{s:o}, s:{s:o, s:s, s:i}}}, s:{s:{s:O}}}",
        "Interface", UUID_IF,
        "old", "external_ids", ovsdb_datum_string_map(ext),
        "new", "external_ids", ovsdb_datum_string_map(ext2),
        "name", "vnet7", "ofport", 6,
        "Port", UUID_PORT, "old", port);
    write_json("ovsdb", "update-notify",
               json_pack("{s:s, s:[n, O], s:n}", "method", "update",
                         "params", update, "id"));
    write_json("ovsdb", "update-sequence",
               json_pack("[O, O]", snapshot, update));

    /* A replica script (see fuzz-ovsdb.c): snapshot, clear, delete the
     * port, insert it back unchanged, clear, a snapshot without it, an
     * update of the interface. */
    json_t *port_del = json_pack("{s:{s:{s:O}}}", "Port", UUID_PORT, "old",
                                 port);
    json_t *port_ins = json_pack("{s:{s:{s:O}}}", "Port", UUID_PORT, "new",
                                 port);
    json_t *iface_only = json_pack("{s:{s:{s:O}}}", "Interface", UUID_IF,
                                   "new", iface);
    write_json("ovsdb", "replica-script",
               json_pack("[O, n, O, O, n, [O], O]", snapshot, port_del,
                         port_ins, iface_only, update));
    json_decref(port_del);
    json_decref(port_ins);
    json_decref(iface_only);

    /* A snapshot with more rows than a table's initial hash size. */
    json_t *many = json_object();
    for (int i = 0; i < 40; i++) {
        char uuid[OVSDB_UUID_LEN + 1];
        char name[16];
        snprintf(uuid, sizeof uuid, "%08x-0000-4000-8000-%012x", i, i);
        snprintf(name, sizeof name, "vnet%d", i);
        json_object_set_new(many, uuid, json_pack("{s:{s:s, s:i}}", "new",
                                                  "name", name, "ofport",
                                                  i));
    }
    write_json("ovsdb", "many-rows", json_pack("{s:o}", "Interface", many));

    /* Transact replies. */
    write_json("ovsdb", "transact-reply",
               json_pack("[{s:[s,s]}, {s:i}, {}]", "uuid", "uuid", UUID_IF,
                         "count", 1));
    write_json("ovsdb", "transact-error",
               json_pack("[{}, {s:s, s:s}]", "error", "constraint violation",
                         "details", "duplicate name"));

    /* Datums. */
    write_json("ovsdb", "datum-map", ovsdb_datum_string_map(ext));
    write_json("ovsdb", "datum-set", json_pack("[s, [i, i, i]]", "set", 1, 2,
                                               3));
    write_json("ovsdb", "datum-named",
               json_pack("[s, [[[s, s], [s, s]]]]", "map", "named-uuid",
                         "row1", "uuid", UUID_BR));
    write_json("ovsdb", "datum-reals", json_pack("[s, [f, i, b]]", "set",
                                                 1.5, 2, 1));
    write_json("ovsdb", "schema",
               json_pack("{s:s, s:{s:{s:{s:{s:s}}}}}", "name",
                         "Open_vSwitch", "tables", "Interface", "columns",
                         "name", "type", "string"));

    json_decref(snapshot);
    json_decref(update);
    json_decref(ext);
    json_decref(ext2);
    json_decref(iface);
    json_decref(port);
    json_decref(bridge);
    json_decref(ports);
    json_decref(ifaces);
}

/* ---------------------------------------------------------------------
 * OpenFlow.
 */

/* Captured from Open vSwitch 3.1.0 (see test/unit/test-ofp13.c). */
static const char *const ovs_messages[][2] = {
    { "ovs-hello-13", "040000100000000c0001000800000010" },
    { "ovs-hello-default", "060000080000001c" },
    { "ovs-features-reply",
      "04060020000000020000feab334e804600000000fe0000000000004f00000000" },
    { "ovs-get-async-reply",
      "041b002000000005000000020000000000000000000000000000000000000000" },
    { "ovs-echo-reply", "0403000c0000000670696e67" },
    { "ovs-barrier-reply", "0415000800000007" },
    { "ovs-packet-in",
      "040a005c00000000ffffffff002a01000000000000000000000100148000000400"
      "00000100014204000000090000000000000ac4000000000ac400000001080045"
      "00001c0001000040117ac5a9fe0101a9fe00011d091d090008f6b8" },
    { "ovs-error",
      "0401006e0000000c00020000040d00620000000cfffffffffffffffd00200000"
      "000000007719001000014204000000070000000000000010fffffff900000000"
      "00000000ffffffffffff0ac40000000108004500001c0001000040117ac5a9fe"
      "0001a9fe01011d091d090008f6b8" },
};

/* Writes a MULTIPART_REPLY of 'type' with the body in 'hex' into 'msg'.
 * Returns its length. */
static size_t
multipart_reply(uint8_t *msg, uint16_t type, bool more, const char *hex)
{
    size_t n = unhex(hex, msg + 16, 4096);
    memset(msg, 0, 16);
    msg[0] = OFP13_VERSION;
    msg[1] = OFP13_MULTIPART_REPLY;
    msg[2] = (16 + n) >> 8;
    msg[3] = 16 + n;
    msg[7] = 11;
    msg[9] = type;
    msg[11] = more;
    return 16 + n;
}

static void
gen_openflow(void)
{
    uint8_t msg[65536];
    size_t len;

    for (size_t i = 0; i < sizeof ovs_messages / sizeof ovs_messages[0];
         i++) {
        len = unhex(ovs_messages[i][1], msg, sizeof msg);
        write_seed("openflow", ovs_messages[i][0], msg, len);
    }

    /* A connection as chand-host sees it: HELLO, FEATURES_REPLY,
     * GET_ASYNC_REPLY, ECHO_REQUEST, then a PACKET_IN carrying a real
     * guest HELLO frame with pkt_mark 7, a BARRIER_REPLY and an ERROR. */
    struct buf b = { 0 };
    if (ofp13_encode_hello(msg, sizeof msg, &len, 1)) {
        abort();
    }
    buf_put(&b, msg, len);
    struct ofp13_features f = {
        .datapath_id = 0xfeab334e8046ULL, .n_buffers = 0, .n_tables = 254,
        .capabilities = 0x4f,
    };
    ofp13_encode_features_reply(msg, sizeof msg, &len, 2, &f);
    buf_put(&b, msg, len);
    struct ofp13_async_config ac;
    ofp13_async_config_chand(&ac, false);
    ofp13_encode_set_async(msg, sizeof msg, &len, 3, &ac);
    msg[1] = OFP13_GET_ASYNC_REPLY;
    buf_put(&b, msg, len);
    ofp13_encode_echo_request(msg, sizeof msg, &len, 4, "ping", 4);
    buf_put(&b, msg, len);

    uint8_t frame[2048];
    char text[64];
    struct chan_wire_header hello = {
        .type = CHAN_WIRE_HELLO, .flags = CHAN_WIRE_F_ACK_VALID,
        .vid = 4094, .chunk_count = 1,
    };
    snprintf(text, sizeof text, "{\"guest_epoch\":%d}", GUEST_EPOCH);
    size_t frame_len = build_frame(&hello, text, NULL, 0, false, false,
                                   frame, sizeof frame);
    if (ofp13_encode_packet_in(msg, sizeof msg, &len, 0, OFP13_R_ACTION, 0,
                               0x4300abcd00000007ULL, 5, CHAN_ID, frame,
                               frame_len)) {
        abort();
    }
    write_seed("openflow", "packet-in-hello", msg, len);
    buf_put(&b, msg, len);
    ofp13_encode_simple(msg, sizeof msg, &len, OFP13_BARRIER_REPLY, 5);
    buf_put(&b, msg, len);
    ofp13_encode_error(msg, sizeof msg, &len, 6, OFP13_ET_BAD_REQUEST, 1,
                       0, frame, 64);
    buf_put(&b, msg, len);
    write_buf("openflow", "session", &b);

    /* Messages chand-host sends (decoded by the same code in tests). */
    ofp13_encode_packet_out(msg, sizeof msg, &len, 9, OFP13_PORT_CONTROLLER,
                            CHAN_ID, frame, frame_len);
    write_seed("openflow", "packet-out", msg, len);
    ofp13_encode_set_controller_id(msg, sizeof msg, &len, 3, 17224);
    write_seed("openflow", "set-controller-id", msg, len);
    ofp13_encode_error(msg, sizeof msg, &len, 7, OFP13_ET_EXPERIMENTER, 5,
                       OFP13_NX_VENDOR_ID, "abcdefgh", 8);
    write_seed("openflow", "error-experimenter", msg, len);

    /* What lib/ofctrl reads: statistics replies and a bundle reply. */
    len = multipart_reply(msg, OFP13_MP_FLOW, true,
                          "00380000000000010000000200640000000000000000"
                          "00004300abcd00000007000000000000000500000000"
                          "000001f40001000400000000");
    write_seed("openflow", "flow-stats-reply", msg, len);
    len = multipart_reply(msg, OFP13_MP_METER, false,
                          "00000007003800000000000000000002000000000000"
                          "00640000000000001900000000010000000000000000"
                          "0000000a0000000000000280");
    write_seed("openflow", "meter-stats-reply", msg, len);
    len = multipart_reply(msg, OFP13_MP_METER_CONFIG, false,
                          "0018000e00000007000100100000"
                          "07d0000001f400000000");
    write_seed("openflow", "meter-config-reply", msg, len);
    ofp13_encode_bundle_ctrl(msg, sizeof msg, &len, 12, 1,
                             OFP13_BCT_COMMIT_REPLY,
                             OFP13_BF_ATOMIC | OFP13_BF_ORDERED);
    write_seed("openflow", "bundle-commit-reply", msg, len);
    free(b.data);
}

/* ---------------------------------------------------------------------
 * Local request sockets.
 */

static void
gen_api(void)
{
    static const struct {
        const char *name;
        uint8_t piece;
        const char *text;
    } seeds[] = {
        { "list-commands", 0,
          "{\"method\":\"list-commands\",\"params\":[],\"id\":1}" },
        { "pipelined", 0,
          "{\"method\":\"version\",\"params\":[],\"id\":1}\n"
          "{\"method\":\"vlog/list\",\"params\":[],\"id\":\"two\"}\n"
          "{\"method\":\"ctl/stats\",\"params\":[],\"id\":[3]}" },
        { "echo-pieces", 5,
          "{\"method\":\"fuzz/echo\",\"params\":[\"a\",\"b \\\"c\\\"\","
          "\"\\u00e9\"],\"id\":7}" },
        { "defer", 0,
          "{\"method\":\"fuzz/defer\",\"params\":[],\"id\":1}"
          "{\"method\":\"fuzz/defer\",\"params\":[\"e\"],\"id\":2}"
          "{\"method\":\"fuzz/fail\",\"params\":[\"no\"],\"id\":3}" },
        { "bad-requests", 0,
          "{\"method\":\"version\",\"params\":[1],\"id\":1}"
          "{\"method\":\"nope\",\"params\":[],\"id\":2}"
          "{\"method\":\"version\",\"params\":[\"x\"],\"id\":3}"
          "{\"method\":\"version\",\"params\":[],\"id\":null}"
          "{\"result\":\"x\",\"error\":null,\"id\":4}" },
        { "vlog-set", 0,
          "{\"method\":\"vlog/set\",\"params\":[\"jsonrpc:dbg\","
          "\"ANY:warn\"],\"id\":1}"
          "{\"method\":\"vlog/set\",\"params\":[\"bogus\"],\"id\":2}" },
        { "channel-list", 1,
          "{\"method\":\"channel/list\",\"params\":[\"vm1\"],\"id\":1}" },
        { "hangup", 0,
          "{\"method\":\"fuzz/big\",\"params\":[\"600\"],\"id\":1}"
          "{\"method\":\"fuzz/hangup\",\"params\":[],\"id\":2}"
          "{\"method\":\"fuzz/defer\",\"params\":[],\"id\":3}" },
        /* chand-guest's local API (chand-guest/api.h): first byte with
         * bit 7 set. */
        { "guest-requests", 0x80,
          "{\"method\":\"get\",\"params\":[\"motd\"],\"id\":1}"
          "{\"method\":\"list\",\"params\":[\"cfg/\"],\"id\":2}"
          "{\"method\":\"list\",\"params\":[],\"id\":3}"
          "{\"method\":\"status\",\"params\":[],\"id\":4}"
          "{\"method\":\"echo\",\"params\":[1,{\"a\":null}],\"id\":5}" },
        { "guest-publish", 0x80 | 9,
          "{\"method\":\"publish\",\"params\":[\"app/x\",{\"a\":[1]}],"
          "\"id\":1}"
          "{\"method\":\"publish\",\"params\":[\"from/x\",1],\"id\":2}"
          "{\"method\":\"unpublish\",\"params\":[\"app/x\"],\"id\":3}"
          "{\"method\":\"unpublish\",\"params\":[\"app/x\"],\"id\":4}"
          "{\"method\":\"published\",\"params\":[\"app/\"],\"id\":5}"
          "{\"method\":\"published\",\"params\":[],\"id\":6}" },
        { "guest-watch", 0x80 | 7,
          "{\"method\":\"watch\",\"params\":[\"cfg/\"],\"id\":1}\n"
          "{\"method\":\"watch\",\"params\":[],\"id\":2}\n" },
        { "guest-bad", 0x80,
          "{\"method\":\"get\",\"params\":[\"nope\"],\"id\":1}"
          "{\"method\":\"get\",\"params\":[\"\"],\"id\":2}"
          "{\"method\":\"get\",\"params\":[1,2],\"id\":3}"
          "{\"method\":\"status\",\"params\":[1],\"id\":4}"
          "{\"method\":\"frob\",\"params\":[],\"id\":5}"
          "{\"method\":\"get\",\"params\":[\"motd\"],\"id\":null}"
          "{\"method\":3,\"id\":6}" },
        { "bad-json", 0, "{\"method\":\"version\",\"params\":[],\"id\":1}"
          " [1,2]" },
    };

    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        struct buf b = { 0 };
        buf_put_u8(&b, seeds[i].piece);
        buf_put_str(&b, seeds[i].text);
        write_buf("api", seeds[i].name, &b);
        free(b.data);
    }

    /* More watches than one guest API connection may hold (64). */
    struct buf b = { 0 };
    buf_put_u8(&b, 0x80);
    for (int i = 0; i < 66; i++) {
        char req[64];
        snprintf(req, sizeof req,
                 "{\"method\":\"watch\",\"params\":[\"%d\"],\"id\":%d}",
                 i, i);
        buf_put_str(&b, req);
    }
    write_buf("api", "guest-many-watches", &b);
    free(b.data);
}

/* ---------------------------------------------------------------------
 * Flow templates.
 */

static void
put_values(struct buf *b, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_put(b, values[i], strlen(values[i]) + 1);
    }
}

static void
gen_flow_template(void)
{
    /* In the order of fuzz-flow-template's var_names[]. */
    static const char *const values[] = {
        "7", "4094", "5", "2", "0a:c4:00:00:00:07", "169.254.1.7",
        "0a:c4:00:00:00:00", "169.254.0.1", "7433",
    };
    static const char *const evil[] = {
        "7,actions=NORMAL", "4094", "5", "2", "0a:c4:00:00:00:07",
        "169.254.1.7 actions=drop", "0a:c4:00:00:00:00", "169.254.0.1",
        "7433\npriority=65535,actions=NORMAL",
    };
    static const char custom[] =
        "# custom\n"
        "[channel]\n"
        "priority=100,in_port=${VNIC_OFPORT},dl_vlan=${VID}, \\\n"
        "    actions=pop_vlan,output:${CHAND_OFPORT}\r\n"
        "\n"
        "[vid]\n"
        "%counter vid_drops\n"
        "priority=50,dl_vlan=${VID},actions=drop\n"
        "[bridge]\n"
        "priority=10,dl_src=${HOST_MAC},actions=set_field:${A}->reg0,drop\n";
    static const struct {
        const char *name;
        uint8_t mode;
        uint8_t section;
        const char *const *values;
    } seeds[] = {
        { "host-channel", 1, 2, values },
        { "host-vid", 1, 1, values },
        { "host-bridge", 1, 0, values },
        { "guest-channel", 2, 2, values },
        { "host-channel-evil", 1, 2, evil },
        { "custom-channel", 0, 2, values },
        { "custom-bridge", 0, 0, values },
    };

    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        struct buf b = { 0 };
        buf_put_u8(&b, seeds[i].mode);
        buf_put_u8(&b, seeds[i].section);
        buf_put(&b, "\0\0\0\7", 4);
        if (!seeds[i].mode) {
            buf_put_be16(&b, strlen(custom));
            buf_put_str(&b, custom);
        }
        put_values(&b, seeds[i].values, 9);
        if (!seeds[i].mode) {
            buf_put(&b, "x\0y\0z", 6);
        }
        write_buf("flow-template", seeds[i].name, &b);
        free(b.data);
    }
}

/* ---------------------------------------------------------------------
 * Channel sessions (fuzz-session's script format).
 */

static void
put_run(struct buf *b, uint16_t ms)
{
    buf_put_u8(b, 0);
    buf_put_be16(b, ms);
}

/* A guest HELLO with the ack flag: vid byte, epoch (from the input unless
 * 'host_epoch'), ack delta, guest-epoch/keys byte. */
static void
put_hello(struct buf *b, bool host_epoch, uint8_t ge, unsigned int key)
{
    buf_put_u8(b, 2 | 0x40 | (host_epoch ? 0x20 : 0) | (key << 3));
    buf_put_u8(b, 0);
    if (!host_epoch) {
        buf_put(b, "\0\0\0\0", 4);
    }
    buf_put_u8(b, 0);
    buf_put_u8(b, ge);
}

/* A guest ACK of the host's last seq (plus 'ahead'), in the host's
 * epoch. */
static void
put_ack(struct buf *b, uint8_t ahead, uint8_t ge, unsigned int key)
{
    buf_put_u8(b, 3 | 0x20 | 0x40 | (key << 3));
    buf_put_u8(b, 0);
    buf_put_u8(b, 0x80 | ahead);
    buf_put_u8(b, ge);
}

static void
gen_session(void)
{
    struct buf b = { 0 };

    /* Empty key: HELLO, SYNC answered by ACK, the snapshot acked, a
     * change of the desired state, heartbeats. */
    buf_put_u8(&b, 0);
    put_hello(&b, false, 0, 0);
    put_run(&b, 10);
    put_ack(&b, 0, 0, 0);
    put_run(&b, 300);
    put_ack(&b, 0, 0, 0);
    buf_put_u8(&b, 4);
    buf_put_u8(&b, 0x11);
    put_run(&b, 50);
    put_ack(&b, 0, 0, 0);
    put_run(&b, 1500);
    put_run(&b, 6000);
    write_buf("session", "basic", &b);

    /* Keys: the guest reports holding generation 2 and signs with it. */
    buf_clear(&b);
    buf_put_u8(&b, 1);
    put_hello(&b, false, 2 | 4, 1);
    put_run(&b, 10);
    put_ack(&b, 0, 2 | 4, 1);
    put_run(&b, 300);
    put_ack(&b, 0, 0, 1);
    buf_put_u8(&b, 5 | (1 << 3));
    put_run(&b, 1000);
    write_buf("session", "keys", &b);

    /* After a chand-host restart: the guest is exactly where the prior
     * session left it (epoch, guest epoch, position 2). */
    buf_clear(&b);
    buf_put_u8(&b, 2);
    buf_put_u8(&b, 2 | 0x40 | 0x20);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 1);
    put_run(&b, 10);
    put_ack(&b, 0, 0, 0);
    put_run(&b, 100);
    write_buf("session", "resume-after-restart", &b);

    /* A bad ack (beyond what was sent), a stale epoch, a raw frame and a
     * HELLO with a payload from the input. */
    buf_clear(&b);
    buf_put_u8(&b, 0);
    put_hello(&b, false, 0, 0);
    put_run(&b, 10);
    put_ack(&b, 100, 0, 0);
    buf_put_u8(&b, 3 | 0x40);
    buf_put_u8(&b, 0);
    buf_put(&b, "\0\0\0\1", 4);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 7);
    const char hello[] = "{\"guest_epoch\":0,\"keys\":[1,2,3]}";
    buf_put_be16(&b, strlen(hello));
    buf_put_str(&b, hello);
    buf_put_u8(&b, 0);
    buf_put(&b, "\0\0\0\0", 4);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 1);
    buf_put_be16(&b, 52);
    for (int i = 0; i < 52; i++) {
        buf_put_u8(&b, i);
    }
    put_run(&b, 2000);
    write_buf("session", "bad-acks", &b);
    free(b.data);
}

/* ---------------------------------------------------------------------
 * The upstream end (fuzz-upstream's script format).
 */

/* Record specs (see fuzz-upstream.c): keys[] and values[] indexes. */
enum {
    K_MOTD = 0, K_CFG_A = 1, K_CFG_B = 2, K_K = 3, K_FROM = 4,
    K_LONG = 8, K_200 = 9,
};
enum { V_1 = 0, V_2 = 1, V_X = 4, V_OBJ = 8, V_40 = 13, V_300 = 14,
       V_1500 = 15 };

static void
put_record(struct buf *b, bool delete, unsigned int key, unsigned int value,
           unsigned int version)
{
    buf_put_u8(b, (delete ? 0x80 : 0) | ((version & 7) << 4) | key);
    buf_put_u8(b, ((version >> 3) << 4) | value);
}

static void
put_up_sync(struct buf *b, uint8_t epoch, uint8_t end)
{
    buf_put_u8(b, FUZZ_UP_SYNC);
    buf_put_u8(b, epoch);
    buf_put_u8(b, end);
}

/* A DATA step of the current epoch at the next seq ('seq' byte 0) with a
 * batch of 'n' records to follow (put_record()). */
static void
put_up_data(struct buf *b, uint8_t flags, uint8_t chunks, int n)
{
    buf_put_u8(b, FUZZ_UP_DATA | flags);
    buf_put_u8(b, FUZZ_UP_EPOCH_CURRENT);
    buf_put_u8(b, 0);
    buf_put_u8(b, chunks);
    if (n >= 0) {
        buf_put_u8(b, n);
    }
}

static void
gen_upstream(void)
{
    struct buf b = { 0 };

    /* A session from scratch: SYNC (snapshot of 2 messages), the
     * snapshot, commit, more DATA, commit, a HELLO. */
    buf_put_u8(&b, 0);              /* No prior session, no rows. */
    buf_put_u8(&b, 0);              /* Position. */
    put_up_sync(&b, FUZZ_UP_EPOCH_A, 2);
    put_up_data(&b, FUZZ_UP_DATA_SNAPSHOT, 0, 2);
    put_record(&b, false, K_MOTD, V_X, 3);
    put_record(&b, false, K_CFG_A, V_OBJ, 4);
    put_up_data(&b, FUZZ_UP_DATA_SNAPSHOT, 0, 1);
    put_record(&b, false, K_CFG_B, V_1, 5);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    put_up_data(&b, 0, 0, 3);
    put_record(&b, true, K_MOTD, 0, 6);
    put_record(&b, false, K_CFG_A, V_2, 7);
    put_record(&b, false, K_K, V_40, 8);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    buf_put_u8(&b, FUZZ_UP_TIME | 0xf8);
    buf_put_u8(&b, FUZZ_UP_HELLO);
    write_buf("upstream", "session", &b);

    /* A message in 3 chunks sent at once, then one in 4 chunks sent one
     * step at a time (the message reused), with a long key and a long
     * value. */
    buf_clear(&b);
    buf_put_u8(&b, 1);              /* Prior session in epoch A at 4. */
    buf_put_u8(&b, 4);
    put_up_data(&b, FUZZ_UP_DATA_ALL, 2, 3);
    put_record(&b, false, K_LONG, V_300, 1);
    put_record(&b, false, K_200, V_1500, 2);
    put_record(&b, false, K_FROM, V_1, 3);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    put_up_data(&b, 0, 3 | (0 << 3), 2);
    put_record(&b, false, K_LONG, V_1500, 9);
    put_record(&b, false, K_MOTD, V_40, 9);
    for (int i = 1; i < 4; i++) {
        put_up_data(&b, FUZZ_UP_DATA_REUSE, 3 | (i << 3), -1);
    }
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    write_buf("upstream", "chunked", &b);

    /* A batch taken, a message arriving while it is in flight, the
     * batch failing, then both messages sent again and committed. */
    buf_clear(&b);
    buf_put_u8(&b, 2 | (2 << 4));   /* Epoch B at 7, with 2 rows. */
    buf_put_u8(&b, 7);
    put_record(&b, false, K_MOTD, V_X, 3);
    put_record(&b, false, K_CFG_A, V_1, 1);
    put_up_data(&b, 0, 0, 2);
    put_record(&b, false, K_MOTD, V_OBJ, 4);
    put_record(&b, true, K_CFG_A, 0, 2);
    buf_put_u8(&b, FUZZ_UP_TAKE);
    put_up_data(&b, 0, 0, 1);
    put_record(&b, false, K_K, V_2, 5);
    buf_put_u8(&b, FUZZ_UP_DONE);   /* Fails. */
    for (int i = 0; i < 2; i++) {
        buf_put_u8(&b, FUZZ_UP_DATA);
        buf_put_u8(&b, FUZZ_UP_EPOCH_CURRENT);
        buf_put_u8(&b, 0x80);       /* Duplicate: at the position. */
        buf_put_u8(&b, 0);
        buf_put_u8(&b, 0);
    }
    put_up_data(&b, 0, 0, 2);
    put_record(&b, false, K_MOTD, V_OBJ, 4);
    put_record(&b, true, K_CFG_A, 0, 2);
    put_up_data(&b, 0, 0, 1);
    put_record(&b, false, K_K, V_2, 5);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    write_buf("upstream", "fail-retransmit", &b);

    /* Prior rows, then a new session whose snapshot is empty (every row
     * goes), then one with limits that refuse some of a snapshot. */
    buf_clear(&b);
    buf_put_u8(&b, 1 | (3 << 4));
    buf_put_u8(&b, 9);
    put_record(&b, false, K_MOTD, V_X, 3);
    put_record(&b, false, K_CFG_A, V_1, 1);
    put_record(&b, false, K_CFG_B, V_300, 2);
    put_up_sync(&b, FUZZ_UP_EPOCH_B, 0);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    buf_put_u8(&b, FUZZ_UP_LIMITS);
    buf_put(&b, "\x02\x08\x04\x00", 4);
    put_up_sync(&b, FUZZ_UP_EPOCH_C, 1);
    put_up_data(&b, FUZZ_UP_DATA_SNAPSHOT, 0, 4);
    put_record(&b, false, K_MOTD, V_X, 3);
    put_record(&b, false, K_CFG_A, V_40, 1);
    put_record(&b, false, K_CFG_B, V_1, 2);
    put_record(&b, false, K_K, V_1, 2);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    buf_put_u8(&b, FUZZ_UP_HELLO);
    write_buf("upstream", "snapshot-limits", &b);

    /* A raw batch from chand's encoder (a reserved key among others), a
     * SYNC repeat, a bad SYNC, DATA of another epoch and a gap. */
    buf_clear(&b);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    put_up_sync(&b, FUZZ_UP_EPOCH_A, 1);
    struct chan_batch batch;
    chan_batch_init(&batch);
    json_t *v = json_pack("{s:[i,n]}", "a", 1);
    chan_batch_add_put(&batch, "cfg/raw", v, 1);
    chan_batch_add_put(&batch, "from/vm2/x", v, 1);
    chan_batch_add_delete(&batch, "gone", 2);
    json_decref(v);
    char *text;
    size_t len;
    if (chan_batch_encode(&batch, NULL, &text, &len)) {
        abort();
    }
    chan_batch_destroy(&batch);
    buf_put_u8(&b, FUZZ_UP_DATA | FUZZ_UP_DATA_RAW | FUZZ_UP_DATA_SNAPSHOT);
    buf_put_u8(&b, FUZZ_UP_EPOCH_CURRENT);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    buf_put_be16(&b, len);
    buf_put(&b, text, len);
    free(text);
    put_up_sync(&b, FUZZ_UP_EPOCH_A, 1);
    put_up_sync(&b, FUZZ_UP_EPOCH_B, 0xc0 | 1);
    buf_put_u8(&b, FUZZ_UP_COMMIT | FUZZ_UP_OK);
    buf_put_u8(&b, FUZZ_UP_DATA);
    buf_put_u8(&b, FUZZ_UP_EPOCH_B);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, FUZZ_UP_DATA);
    buf_put_u8(&b, FUZZ_UP_EPOCH_CURRENT);
    buf_put_u8(&b, 0x40 | 40);      /* next + 8: a gap. */
    buf_put_u8(&b, 0);
    buf_put_u8(&b, 0);
    buf_put_u8(&b, FUZZ_UP_HELLO);
    write_buf("upstream", "raw-and-bad", &b);
    free(b.data);
}

/* ---------------------------------------------------------------------
 * fuzz-xfer: XFER payloads (valid ones built with xfer_msg_to_json(),
 * refusals as text) and engine scripts.
 */

static void
write_xfer_text(const char *name, const char *text)
{
    struct buf b = { 0 };
    buf_put_u8(&b, 0);
    buf_put_str(&b, text);
    write_buf("xfer", name, &b);
    free(b.data);
}

static void
write_xfer_msg(const char *name, const struct xfer_msg *msg)
{
    char *text = xfer_text(msg);
    write_xfer_text(name, text);
    free(text);
}

static void
buf_put_be32(struct buf *b, uint32_t x)
{
    buf_put_be16(b, x >> 16);
    buf_put_be16(b, x);
}

/* Starts an engine script: window, rto_min, rto_max / 8, rto_initial / 4,
 * chunk_size, size. */
static void
xfer_engine_start(struct buf *b, uint16_t window, uint8_t rto_min,
                  uint8_t rto_max8, uint8_t rto_initial4,
                  uint16_t chunk_size, uint64_t size)
{
    buf_clear(b);
    buf_put_u8(b, FUZZ_XFER_ENGINE);
    buf_put_be16(b, window);
    buf_put_u8(b, rto_min);
    buf_put_u8(b, rto_max8);
    buf_put_u8(b, rto_initial4);
    buf_put_be16(b, chunk_size);
    buf_put_be32(b, size >> 32);
    buf_put_be32(b, size);
}

static void
put_xfer_step(struct buf *b, int step, unsigned int arg)
{
    buf_put_u8(b, FUZZ_XFER_STEP(step, arg));
}

/* GETs until there is nothing to ask for, then the sender delivers
 * 'n' * 32 chunks in order, 'delay' ms apart, dropping the ones 'loss'
 * marks. */
static void
put_xfer_round(struct buf *b, int n, uint8_t delay, uint8_t loss)
{
    put_xfer_step(b, FUZZ_XFER_GET, 1);
    for (int i = 0; i < n; i++) {
        put_xfer_step(b, FUZZ_XFER_DELIVER, 31);
        buf_put_u8(b, delay);
        buf_put_u8(b, loss);
    }
}

static void
gen_xfer(void)
{
    struct xfer_msg msg;
    struct buf b = { 0 };

    /* Valid messages. */
    xfer_get(&msg, 40, 16, 0, 3);
    write_xfer_msg("get", &msg);
    xfer_get(&msg, 0, 1, 0, 1);
    write_xfer_msg("get-empty-object", &msg);
    xfer_get(&msg, UINT64_C(1) << 30, CHAN_WIRE_MAX_PAYLOAD, 16000, 256);
    write_xfer_msg("get-max-chunk-size", &msg);
    /* The largest object by chunks (2^32 of them), its last chunk short. */
    xfer_get(&msg, XFER_MAX_CHUNKS * CHAN_WIRE_MAX_PAYLOAD - 1,
             CHAN_WIRE_MAX_PAYLOAD, XFER_MAX_CHUNKS - 1, 1);
    write_xfer_msg("get-last-of-max-chunks", &msg);
    /* 64 ranges of 4 chunks: 256 in all. */
    xfer_get(&msg, 1000000, 1000, 0, 4);
    msg.n_ranges = XFER_MAX_RANGES;
    for (size_t i = 0; i < XFER_MAX_RANGES; i++) {
        msg.ranges[i] = (struct xfer_range) { .first = 996 - i * 10,
                                              .count = 4 };
    }
    write_xfer_msg("get-64-ranges", &msg);

    static const char *const errors[] = {
        XFER_ERR_NOT_ENTITLED, XFER_ERR_NO_OBJECT, XFER_ERR_SIZE,
        XFER_ERR_CHUNK_SIZE, XFER_ERR_TOO_BIG, XFER_ERR_IO,
    };
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "fail-%s", errors[i]);
        xfer_fail(&msg, errors[i], "the sender says why: \"\xc3\xa9\"");
        write_xfer_msg(name, &msg);
    }

    xfer_msg_start(&msg, XFER_OP_DONE);
    write_xfer_msg("done", &msg);

    /* A reason longer than XFER_REASON_MAX with a 3-byte character across
     * the limit, one with U+0000 in it, one of escapes. */
    char long_reason[1024];
    snprintf(long_reason, sizeof long_reason,
             "{\"op\":\"fail\",\"digest\":\"" DIGEST "\","
             "\"error\":\"io\",\"reason\":\"%0255d"
             "\xe2\x82\xac\xe2\x82\xac tail\"}", 0);
    write_xfer_text("fail-long-reason", long_reason);
    write_xfer_text("fail-reason-nul",
                    "{\"op\":\"fail\",\"digest\":\"" DIGEST "\","
                    "\"error\":\"newer_peer_error_9\","
                    "\"reason\":\"cut here\\u0000not kept\"}");
    write_xfer_text("fail-reason-escapes",
                    "{\"reason\":\"\\ud83d\\ude00 \\u00e9\\t\\\"\","
                    "\"error\":\"x\",\"digest\":\"" DIGEST "\","
                    "\"op\":\"fail\"}");

    /* Refusals, one rule each. */
    static const struct {
        const char *name;
        const char *text;
    } bad[] = {
        { "bad-257-chunks",
          "{\"op\":\"get\",\"digest\":\"" DIGEST "\",\"size\":1000000,"
          "\"chunk_size\":1000,\"ranges\":[[0,256],[300,1]]}" },
        { "bad-past-end",
          "{\"op\":\"get\",\"digest\":\"" DIGEST "\",\"size\":40,"
          "\"chunk_size\":16,\"ranges\":[[2,2]]}" },
        { "bad-chunk-size",
          "{\"op\":\"get\",\"digest\":\"" DIGEST "\",\"size\":40,"
          "\"chunk_size\":65456,\"ranges\":[[0,1]]}" },
        { "bad-too-many-chunks",
          "{\"op\":\"get\",\"digest\":\"" DIGEST "\","
          "\"size\":4294967297,\"chunk_size\":1,\"ranges\":[[0,1]]}" },
        { "bad-negative",
          "{\"op\":\"get\",\"digest\":\"" DIGEST "\",\"size\":-1,"
          "\"chunk_size\":16,\"ranges\":[[-1,1]]}" },
        { "bad-extra-member",
          "{\"op\":\"done\",\"digest\":\"" DIGEST "\",\"size\":0}" },
        { "bad-digest-upper",
          "{\"op\":\"done\",\"digest\":"
          "\"9F86D081884C7D659A2FEAA0C55AD015"
          "A3BF4F1B2B0B822CD15D6C15B0F00A08\"}" },
        { "bad-error-name",
          "{\"op\":\"fail\",\"digest\":\"" DIGEST "\",\"error\":\"No-Such\","
          "\"reason\":\"\"}" },
        { "bad-duplicate-member",
          "{\"op\":\"done\",\"op\":\"done\",\"digest\":\"" DIGEST "\"}" },
        { "bad-not-object", "[\"get\"]" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_xfer_text(bad[i].name, bad[i].text);
    }
    xfer_get(&msg, 1000000, 1000, 0, 1);
    msg.n_ranges = XFER_MAX_RANGES;
    for (size_t i = 0; i < XFER_MAX_RANGES; i++) {
        msg.ranges[i] = (struct xfer_range) { .first = i * 2, .count = 1 };
    }
    char *text = xfer_text(&msg);
    char *text65 = xasprintf("%.*s,[200,1]]}", (int) strlen(text) - 2, text);
    write_xfer_text("bad-65-ranges", text65);
    free(text65);
    free(text);

    /* Engine: a 100-chunk object with the defaults, delivered without
     * loss. */
    xfer_engine_start(&b, 0, 0, 0, 0, 1000, 99999);
    for (int i = 0; i < 4; i++) {
        put_xfer_round(&b, 1, 1, 0);
    }
    put_xfer_step(&b, FUZZ_XFER_GET, 0);
    write_buf("xfer", "engine-lossless", &b);

    /* Loss both ways: a quarter of the chunks dropped, timers run out, a
     * chunk could not be stored, the sender replaced. */
    xfer_engine_start(&b, 16, 10, 25, 10, 512, 40000);
    for (int i = 0; i < 6; i++) {
        put_xfer_round(&b, 1, 3, 0x11);
        put_xfer_step(&b, FUZZ_XFER_WAKEUP, 0);
    }
    put_xfer_step(&b, FUZZ_XFER_LOST, 0);
    buf_put_u8(&b, 2);
    put_xfer_step(&b, FUZZ_XFER_TIME, 4);
    buf_put_u8(&b, 200);
    put_xfer_round(&b, 2, 1, 0x80);
    put_xfer_step(&b, FUZZ_XFER_RESTART, 0);
    for (int i = 0; i < 4; i++) {
        put_xfer_round(&b, 1, 1, 0);
    }
    write_buf("xfer", "engine-lossy", &b);

    /* Resumption: a bitmap of the chunks held and one more chunk, then
     * out-of-order arrivals, wrong lengths, duplicates, indexes past the
     * end and the short last chunk. */
    xfer_engine_start(&b, 8, 0, 0, 0, 100, 2050);
    put_xfer_step(&b, FUZZ_XFER_HAVE, 1);
    buf_put_u8(&b, 2);
    buf_put_u8(&b, 0xa5);
    buf_put_u8(&b, 0x0f);
    put_xfer_step(&b, FUZZ_XFER_HAVE, 2);
    buf_put_be32(&b, 20);
    put_xfer_step(&b, FUZZ_XFER_GET, 0);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 0);      /* Queued, position 3. */
    buf_put_u8(&b, 3);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 0);
    buf_put_u8(&b, 0);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 2);      /* A duplicate. */
    buf_put_u8(&b, 0);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 1);      /* Past the end. */
    buf_put_be32(&b, 21);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 3);      /* The last, unrequested. */
    buf_put_u8(&b, 0);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 3 | 2 << 2);     /* Length - 1. */
    buf_put_u8(&b, 1);
    buf_put_u8(&b, 0xff);
    put_xfer_step(&b, FUZZ_XFER_CHUNK, 0 | 3 << 2);     /* Length 0. */
    buf_put_u8(&b, 0);
    buf_put_be16(&b, 0);
    put_xfer_round(&b, 1, 5, 0x02);
    put_xfer_round(&b, 1, 5, 0);
    put_xfer_step(&b, FUZZ_XFER_TIME, 20);      /* Time goes back. */
    buf_put_u8(&b, 50);
    put_xfer_round(&b, 1, 5, 0);
    write_buf("xfer", "engine-resume", &b);

    /* The largest window and GET over 16384 chunks of 1 byte. */
    xfer_engine_start(&b, 1024, 1, 255, 255, 1, 16384);
    put_xfer_step(&b, FUZZ_XFER_GET, 1);
    for (int i = 0; i < 8; i++) {
        put_xfer_step(&b, FUZZ_XFER_DELIVER, 31);
        buf_put_u8(&b, 0);
        buf_put_u8(&b, i == 3 ? 0x01 : 0);
    }
    put_xfer_step(&b, FUZZ_XFER_GET, 1);
    write_buf("xfer", "engine-big-window", &b);

    /* An empty object (one empty chunk); creation refused: chunk_size 0,
     * above CHAN_WIRE_MAX_PAYLOAD, more than XFER_MAX_CHUNKS chunks. */
    xfer_engine_start(&b, 0, 0, 0, 0, 1, 0);
    put_xfer_round(&b, 1, 1, 0);
    put_xfer_step(&b, FUZZ_XFER_LOST, 0);
    buf_put_u8(&b, 0);
    put_xfer_step(&b, FUZZ_XFER_GET, 0);
    write_buf("xfer", "engine-empty-object", &b);
    xfer_engine_start(&b, 0, 0, 0, 0, 0, 100);
    write_buf("xfer", "engine-chunk-size-0", &b);
    xfer_engine_start(&b, 0, 0, 0, 0, CHAN_WIRE_MAX_PAYLOAD + 1, 100);
    write_buf("xfer", "engine-chunk-size-big", &b);
    xfer_engine_start(&b, 0, 0, 0, 0, 1, XFER_MAX_CHUNKS + 1);
    write_buf("xfer", "engine-too-many-chunks", &b);
    free(b.data);
}

/* fuzz-qga: a qemu-ga client's streams, after the max_msg and split
 * bytes. */
static void
gen_qga(void)
{
    static const struct {
        const char *name;
        uint8_t max_msg, split;
        const char *stream;
    } seeds[] = {
        { "ping", 255, 0, "{\"execute\": \"guest-ping\"}\n" },
        { "sync-delimited", 255, 7,
          "\xff{\"execute\": \"guest-sync-delimited\", "
          "\"arguments\": {\"id\": 12345}}\n"
          "{\"execute\":\"guest-info\",\"id\":[1,\"x\"]}"
          "{\"execute\":\"guest-get-time\"}" },
        { "escapes", 255, 3,
          "{\"execute\": \"guest-exec\", \"arguments\": {\"path\": "
          "\"a\\\"}{[\\\\\", \"arg\": [\"]\", {\"x\": [[]]}]}, "
          "\"id\": {\"k\": null}}" },
        { "stray", 255, 2,
          "nonsense \"a\\\"b\"123 } ] true[1]{\"execute\": 1}"
          "{\"id\": 1}{\"execute\": \"x\", \"foo\": 2}" },
        { "partial-reset", 255, 5,
          "{\"execute\": \"guest-file-read\", \"argu\xff"
          "{\"execute\": \"guest-ping\"}" },
        { "oversized", 0, 16,
          "{\"execute\": \"guest-file-write\", \"arguments\": "
          "{\"handle\": 1, \"buf-b64\": \"aGVsbG8gd29ybGQ=\"}}"
          "{\"execute\": \"guest-ping\"}" },
        { "bad-json", 255, 1,
          "{\"execute\": , }{\"execute\": \"a\", \"execute\": \"b\"}"
          "{\"execute\": \"\xc3\x28\"}" },
    };
    struct buf b = { 0 };

    for (size_t i = 0; i < ARRAY_SIZE(seeds); i++) {
        buf_clear(&b);
        buf_put_u8(&b, seeds[i].max_msg);
        buf_put_u8(&b, seeds[i].split);
        buf_put_str(&b, seeds[i].stream);
        write_buf("qga", seeds[i].name, &b);
    }

    /* Nesting at QGA_MAX_DEPTH and one deeper. */
    for (int extra = 0; extra < 2; extra++) {
        int arrays = QGA_MAX_DEPTH - 2 + extra;
        buf_clear(&b);
        buf_put_u8(&b, 255);
        buf_put_u8(&b, 64);
        buf_put_str(&b, "{\"execute\": \"x\", \"arguments\": {\"a\": ");
        for (int j = 0; j < arrays; j++) {
            buf_put_u8(&b, '[');
        }
        for (int j = 0; j < arrays; j++) {
            buf_put_u8(&b, ']');
        }
        buf_put_str(&b, "}}");
        write_buf("qga", extra ? "too-deep" : "deepest", &b);
    }
    free(b.data);
}

int
main(int argc, char *argv[])
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    make_dir(outdir);

    gen_frame();
    gen_payload();
    gen_ovsdb();
    gen_openflow();
    gen_api();
    gen_flow_template();
    gen_session();
    gen_upstream();
    gen_xfer();
    gen_qga();
    return 0;
}
