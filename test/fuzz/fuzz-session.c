/*
 * fuzz-session: chand-host's end of a channel (chand-host/channel.c) as a
 * hostile guest drives it.  A guest can send anything on its vNIC; what
 * reaches channel_receive() is every UDP payload that came from the vNIC
 * with the channel's vid and addresses, so this is the code a malicious VM
 * talks to directly: frame authentication with the channel's keys, HELLO
 * (session start, resume, resume after a host restart), ACK (cumulative
 * acks into lib/chan-sender, rewinds), the keys a guest reports, and the
 * snapshot and delta bookkeeping those trigger.
 *
 * Each input is a script run against one fresh channel (chan-id 7, default
 * endpoints, small limits so that windows fill and queues overflow, a
 * desired state of a few records).  Time only moves when the script says
 * so, and the channel's random epochs come from a deterministic
 * getrandom() defined here, so an input always does the same thing.
 *
 * Input layout:
 *
 *     byte 0    set-up: bit 0 keys configured (else the empty key); bit 1
 *               the channel starts from a prior session (as after a
 *               chand-host restart); bit 2 flows not installed at first
 *     then      steps, each an opcode byte (low 3 bits: what; high bits:
 *               options) and its operands:
 *       0  advance time by a 16-bit number of ms, then channel_run()
 *       1  raw frame: 16-bit length and bytes; with bit 7, the trailer is
 *          recomputed with the key picked by bits 3-4 (so that mutated
 *          headers get past authentication)
 *       2  HELLO, 3 ACK, 6 DATA/SYNC/HEARTBEAT/HELLO (bits 6-7): a
 *          well-formed frame built from a few operand bytes, signed with
 *          the key bits 3-4 pick, with the host's current epoch (bit 5) or
 *          one from the input, ACK_VALID (bit 6) with an ack near the
 *          host's last seq, the guest epoch the host sent in its SYNC or
 *          another, and sometimes "keys" and "snapshot_end" members
 *       7  HELLO with a payload from the input (16-bit length and bytes)
 *       4  change the desired state (add, change or delete a record)
 *       5  with bit 7, install or remove the flows; else reconfigure the
 *          keys (bits 3-4: which of the two)
 *
 * Invariants checked besides memory safety: every frame chand-host sends
 * is a valid Ethernet/IPv4/UDP frame from the host endpoint to this
 * guest's endpoint, carrying a channel frame that authenticates under one
 * of the channel's keys, with the channel's vid, not an ACK, whose payload
 * decodes (a record batch for DATA, an object otherwise); the channel's
 * state, JSON and Chan DB state are always well formed.
 */
#include <config.h>
#include "fuzz.h"

#include <sys/random.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "channel.h"
#include "chandb.h"
#include "packets.h"
#include "vlog.h"

#define CHAN_ID 7
#define MAX_STEPS 128

/* The channel's keys (hex forms of fuzz_frame_fixed_key and of the
 * pattern key of fuzz-frame with length 32). */
static uint8_t keys[2][32];
static char key_hex[2][65];

/* Deterministic randomness: the channel draws its epochs from
 * getrandom(), which this definition replaces. */
static uint32_t random_state;

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        random_state = random_state * 1103515245u + 12345u;
        p[i] = random_state >> 16;
    }
    return len;
}

/* What the guest has learned from the frames chand-host sent. */
struct view {
    uint32_t epoch;             /* Epoch of the last frame from the host. */
    uint32_t guest_epoch;       /* From the last SYNC. */
    uint64_t last_seq;          /* Highest DATA seq seen in 'epoch'. */
    size_t n_frames;
};

static struct view view;

static void
discard_log(const char *line, void *aux)
{
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vlog_set_hook(discard_log, NULL);
    memcpy(keys[0], fuzz_frame_fixed_key, 32);
    fuzz_frame_key(keys[1], 32);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 32; i++) {
            snprintf(&key_hex[k][2 * i], 3, "%02x", keys[k][i]);
        }
    }
    return 0;
}

/* Picks a key: 0 the empty key, 1 and 2 the channel's keys, 3 a key the
 * channel does not have. */
static const uint8_t *
pick_key(unsigned int which, size_t *lenp)
{
    static const uint8_t wrong[32] = "not the key of this channel....";
    switch (which & 3) {
    case 1:
        *lenp = 32;
        return keys[0];
    case 2:
        *lenp = 32;
        return keys[1];
    case 3:
        *lenp = 32;
        return wrong;
    default:
        *lenp = 0;
        return NULL;
    }
}

/* Decodes 'udp' with each key chand-host may use. */
/* True if 'obj' is what chand-host's upstream ACKs carry: nothing, or
 * "limits" (an object) and "mtu" (an integer). */
static bool
upstream_ack_payload_ok(json_t *obj)
{
    const char *name;
    json_t *value;
    json_object_foreach (obj, name, value) {
        if (!strcmp(name, "limits") ? !json_is_object(value)
            : !strcmp(name, "mtu") ? !json_is_integer(value)
            : true) {
            return false;
        }
    }
    return true;
}

static bool
decode_any(const uint8_t *udp, size_t len, struct chan_wire_header *h,
           const uint8_t **payload)
{
    for (unsigned int k = 0; k < 3; k++) {
        size_t key_len;
        const uint8_t *key = pick_key(k, &key_len);
        if (!chan_wire_decode(udp, len, key, key_len, h, payload)) {
            return true;
        }
    }
    return false;
}

/* channel_transmit_func: checks and learns from each frame chand-host
 * sends to the guest. */
static int
transmit(uint32_t chan_id, const uint8_t *frame, size_t len, void *aux)
{
    const struct chan_config *cfg = aux;
    struct pkt_udp pkt;

    FUZZ_CHECK(chan_id == CHAN_ID);
    uint8_t *copy = fuzz_dup(frame, len);
    FUZZ_CHECK(!pkt_udp_parse(copy, len, PKT_PARSE_REQUIRE_UDP_CSUM, &pkt));
    FUZZ_CHECK(!pkt.vlan);
    FUZZ_CHECK(eth_addr_equals(&pkt.eth_src, &cfg->host.mac));
    FUZZ_CHECK(eth_addr_equals(&pkt.eth_dst, &cfg->guest.mac));
    FUZZ_CHECK(pkt.ip_src == cfg->host.ip && pkt.ip_dst == cfg->guest.ip);
    FUZZ_CHECK(pkt.udp_src == cfg->host.port);
    FUZZ_CHECK(pkt.udp_dst == cfg->guest.port);

    struct chan_wire_header h;
    const uint8_t *payload;
    FUZZ_CHECK(decode_any(pkt.payload, pkt.payload_len, &h, &payload));
    FUZZ_CHECK(h.vid == cfg->vid);
    /* The host's only ACKs are of the guest's upstream stream
     * (upstream.c): ACK_VALID, and a payload that is empty or holds the
     * limits and the host's MTU (doc/PROTOCOL.md, section 4.1).  They are
     * not part of the downstream session. */
    if (h.type == CHAN_WIRE_ACK) {
        json_t *obj;
        FUZZ_CHECK(h.flags & CHAN_WIRE_F_ACK_VALID);
        FUZZ_CHECK(!chan_payload_decode_object(payload, h.payload_len, NULL,
                                               &obj));
        FUZZ_CHECK(upstream_ack_payload_ok(obj));
        json_decref(obj);
        view.n_frames++;
        free(copy);
        return 0;
    }

    if (h.epoch != view.epoch) {
        view.epoch = h.epoch;
        view.last_seq = 0;
    }
    if (h.type == CHAN_WIRE_DATA) {
        if (h.seq > view.last_seq) {
            view.last_seq = h.seq;
        }
        if (h.chunk_count == 1) {
            struct chan_batch batch;
            chan_batch_init(&batch);
            FUZZ_CHECK(!chan_batch_decode(payload, h.payload_len, NULL,
                                          &batch));
            chan_batch_destroy(&batch);
        }
    } else {
        json_t *obj;
        FUZZ_CHECK(!chan_payload_decode_object(payload, h.payload_len, NULL,
                                               &obj));
        if (h.type == CHAN_WIRE_SYNC) {
            json_t *ge = json_object_get(obj, "guest_epoch");
            FUZZ_CHECK(json_is_integer(ge));
            view.guest_epoch = json_integer_value(ge);
        }
        json_decref(obj);
    }
    view.n_frames++;
    free(copy);
    return 0;
}

/* The desired state: key -> [version, text, value]. */
static void
desired_put(json_t *desired, const char *key, int64_t version,
            const char *text)
{
    json_t *value = json_loads(text, JSON_DECODE_ANY, NULL);
    FUZZ_CHECK(value);
    json_object_set_new(desired, key, json_pack("[Iso]", (json_int_t) version,
                                                text, value));
}

static void
set_keys(struct channel *ch, unsigned int which)
{
    json_t *k = json_array();
    if (which & 1) {
        json_array_append_new(k, json_pack("[is]", 2, key_hex[0]));
    }
    if (which & 2) {
        json_array_append_new(k, json_pack("[is]", 1, key_hex[1]));
    }
    channel_set_keys(ch, k);
    json_decref(k);
}

/* Signs and hands 'payload' to the channel as a frame from the guest. */
static void
send_frame(struct channel *ch, struct chan_wire_header *h,
           const char *payload, size_t payload_len, unsigned int key,
           long long now)
{
    uint8_t frame[CHAN_WIRE_MAX_FRAME];
    size_t key_len, len;
    const uint8_t *k = pick_key(key, &key_len);

    if (!chan_wire_encode(h, payload, payload_len, k, key_len, frame,
                          sizeof frame, &len)) {
        uint8_t *copy = fuzz_dup(frame, len);
        channel_receive(ch, copy, len, now);
        free(copy);
    }
}

/* Fills the epoch and ack fields of a frame from the guest. */
static void
guest_header(struct fuzz_input *in, uint8_t op, struct chan_wire_header *h)
{
    h->vid = fuzz_u8(in) & 0x80 ? 100 : 4094;
    h->epoch = op & 0x20 ? view.epoch : fuzz_be32(in);
    uint8_t delta = fuzz_u8(in);
    if (delta & 0x80) {
        h->ack = view.last_seq + (delta & 0x7f);
    } else {
        h->ack = view.last_seq >= delta ? view.last_seq - delta : 0;
    }
    h->flags = op & 0x40 || h->type == CHAN_WIRE_ACK
               ? CHAN_WIRE_F_ACK_VALID : 0;
    if (!(h->flags & CHAN_WIRE_F_ACK_VALID)) {
        h->ack = 0;
    }
    h->chunk_count = 1;
}

static void
step_control(struct channel *ch, struct fuzz_input *in, uint8_t op,
             uint8_t type, long long now)
{
    struct chan_wire_header h = { .type = type };
    guest_header(in, op, &h);
    if (type == CHAN_WIRE_DATA || type == CHAN_WIRE_SYNC
        || type == CHAN_WIRE_HEARTBEAT) {
        h.seq = fuzz_u8(in) + 1;
    }

    uint8_t ge = fuzz_u8(in);
    json_t *obj = json_object();
    if (type == CHAN_WIRE_HELLO) {
        json_object_set_new(obj, "guest_epoch",
                            json_integer(ge & 1 ? view.guest_epoch
                                         : (json_int_t) ge * 1000));
    }
    if (ge & 2) {
        json_object_set_new(obj, "keys", json_pack("[ii]", ge & 4 ? 2 : 9,
                                                   1));
    }
    if (ge & 8) {
        json_object_set_new(obj, "snapshot_end", json_integer(ge >> 4));
    }
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    send_frame(ch, &h, text, strlen(text), (op >> 3) & 3, now);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t setup = fuzz_u8(&in);
    long long now = 0;

    random_state = 1;
    memset(&view, 0, sizeof view);

    struct chan_config cfg;
    chan_config_default(CHAN_ID, &cfg);
    struct channel_limits limits = {
        .max_record = 256, .max_batch_records = 3, .window = 4,
        .max_queued = 4096,
    };
    struct chandb_prior prior = {
        .host_epoch = 0x5eed, .guest_epoch = 3000, .applied_seq = 2,
        .applied = json_pack("{s:[i,n]}", "motd", 3),
    };
    struct channel *ch = channel_create("vm1", &cfg, "vnet7", 5,
                                        setup & 2 ? &prior : NULL, NULL,
                                        &limits,
                                        transmit, &cfg, now);
    json_decref(prior.applied);
    if (setup & 2) {
        view.epoch = prior.host_epoch;
        view.guest_epoch = prior.guest_epoch;
        view.last_seq = prior.applied_seq;
    }
    bool flows = !(setup & 4);
    channel_set_flows_installed(ch, flows);
    set_keys(ch, setup & 1 ? 3 : 0);

    json_t *desired = json_object();
    desired_put(desired, "motd", 3, "{\"text\":\"hello\"}");
    desired_put(desired, "cfg/a", 4, "1");
    desired_put(desired, "cfg/b", 5, "[true,null]");
    channel_set_desired(ch, desired, NULL, now, 0);

    for (int i = 0; i < MAX_STEPS && in.size; i++) {
        uint8_t op = fuzz_u8(&in);
        switch (op & 7) {
        case 0:
            now += fuzz_be16(&in);
            channel_run(ch, now);
            break;

        case 1: {
            const uint8_t *p;
            size_t len = fuzz_take(&in, fuzz_be16(&in), &p);
            uint8_t *frame = fuzz_dup(p, len);
            if (op & 0x80 && len >= CHAN_WIRE_OVERHEAD) {
                size_t key_len;
                const uint8_t *key = pick_key(op >> 3, &key_len);
                chan_wire_mac(key, key_len, frame, len - 16,
                              frame + len - 16);
            }
            channel_receive(ch, frame, len, now);
            free(frame);
            break;
        }

        case 2:
            step_control(ch, &in, op, CHAN_WIRE_HELLO, now);
            break;

        case 3:
            step_control(ch, &in, op, CHAN_WIRE_ACK, now);
            break;

        case 4: {
            uint8_t what = fuzz_u8(&in);
            char key[16];
            snprintf(key, sizeof key, "k%u", what & 7);
            if (what & 0x80) {
                json_object_del(desired, key);
            } else {
                char text[32];
                snprintf(text, sizeof text, "{\"v\":%u}", what);
                desired_put(desired, key, what >> 3, text);
            }
            if (what & 0x40) {
                /* A record too large to send. */
                char big[300];
                memset(big, 'x', sizeof big);
                big[0] = big[sizeof big - 2] = '"';
                big[sizeof big - 1] = '\0';
                desired_put(desired, "big", 1, big);
            }
            channel_set_desired(ch, desired, NULL, now, 0);
            break;
        }

        case 5:
            if (op & 0x80) {
                flows = !flows;
                channel_set_flows_installed(ch, flows);
            } else {
                set_keys(ch, op >> 3);
            }
            break;

        case 6: {
            static const uint8_t types[] = {
                CHAN_WIRE_DATA, CHAN_WIRE_SYNC, CHAN_WIRE_HEARTBEAT,
                CHAN_WIRE_HELLO,
            };
            step_control(ch, &in, op, types[(op >> 6) & 3], now);
            break;
        }

        case 7: {
            const uint8_t *p;
            size_t len = fuzz_take(&in, fuzz_be16(&in), &p);
            struct chan_wire_header h = { .type = CHAN_WIRE_HELLO };
            guest_header(&in, op, &h);
            send_frame(ch, &h, (const char *) p, len, (op >> 3) & 3, now);
            break;
        }
        }

        enum channel_state state = channel_get_state(ch, now);
        FUZZ_CHECK(strcmp(channel_state_name(state), "?"));
    }

    /* Everything chanctl and the Chan DB would read. */
    json_t *j = channel_to_json(ch, now);
    FUZZ_CHECK(json_is_object(j));
    json_decref(j);
    struct chandb_channel_state st;
    channel_get_db_state(ch, now, &st);
    FUZZ_CHECK(st.state && st.vm && !strcmp(st.vm, "vm1"));
    FUZZ_CHECK(st.chan_id == CHAN_ID && st.vid == cfg.vid);
    FUZZ_CHECK(json_is_object(st.applied));
    FUZZ_CHECK(!st.statistics || json_is_object(st.statistics));
    FUZZ_CHECK(st.desired_count == json_object_size(desired));
    channel_next_deadline(ch, now);

    channel_destroy(ch);
    json_decref(desired);
    return 0;
}
