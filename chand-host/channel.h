/*
 * channel: chand-host's end of one channel (see doc/SESSION.md).
 *
 * A channel owns the session with one VM's chand-guest: the host epoch, the
 * handshake (HELLO from the guest, SYNC and a snapshot from the host, or a
 * resume from the guest's position), the sender with its window and
 * retransmissions, heartbeats, and the bookkeeping of what the guest will
 * hold ('sent') and has acknowledged ('applied').  It turns desired-state
 * changes into batches of records, builds Ethernet/IPv4/UDP frames from the
 * host endpoint to the guest endpoint, and hands them to a transmit
 * function (chand-host's OpenFlow connection), which marks them with the
 * chan-id.
 *
 * Time is passed in; the channel does no I/O of its own.
 */
#ifndef CHANNEL_H
#define CHANNEL_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"
#include "latency-hist.h"

struct chandb_channel_state;
struct chandb_prior;
struct chandb_upstream;
struct upstream;

enum channel_state {
    CHANNEL_DOWN,               /* Not provisioned or flows not installed. */
    CHANNEL_CONNECTING,         /* No session with the guest yet. */
    CHANNEL_READY,              /* In session, guest answering. */
    CHANNEL_DEGRADED,           /* In session, guest not answering. */
};

const char *channel_state_name(enum channel_state);

/* Per-channel limits (DESIGN §5), so one VM cannot hog chand-host. */
struct channel_limits {
    size_t max_record;          /* Largest record value, bytes. */
    size_t max_batch_records;   /* Records per DATA message. */
    unsigned int window;        /* Frames sent and not yet acknowledged. */
    size_t window_bytes;        /* ...and their payload bytes, at most. */
    size_t max_queued;          /* Bytes queued for the guest; beyond it the
                                 * queue is dropped and the channel resyncs
                                 * with a (coalesced) snapshot. */
};

/* 96 KiB in flight: 69 full frames at MTU 1,500, 10 at 9,000, which the
 * guest ovs-vswitchd's AF_PACKET socket (212,992 bytes of buffer by
 * default, counted in the kernel's buffer size of each frame, well above
 * its length) takes in one burst without dropping.  At 128 KiB a
 * 20,000-record push lost frames there. */
#define CHANNEL_DEFAULT_WINDOW_BYTES (96u << 10)

#define CHANNEL_LIMITS_DEFAULT { 72u << 20, 1000, 256,                  \
                                 CHANNEL_DEFAULT_WINDOW_BYTES, 256u << 20 }

/* Transmits 'frame' (a complete Ethernet frame, borrowed) marked with
 * 'chan_id'.  Returns 0 or an errno (the frame is then lost; the channel's
 * retransmissions make up for it). */
typedef int channel_transmit_func(uint32_t chan_id, const uint8_t *frame,
                                  size_t len, void *aux);

/* Creates the channel of VM 'vm' (copied) with configuration 'cfg' on
 * interface 'iface' (copied) at OpenFlow port 'ofport'.  'prior' (may be
 * NULL; borrowed) is what a previous chand-host left in the Chan DB: if the
 * guest turns out to be exactly there, the channel goes on with that
 * session and sends only what the guest lacks.  'up_prior' (may be NULL;
 * borrowed) is the Chan DB's upstream state for the VM: its Guest_Record
 * rows and the upstream position.  The caller owns the result. */
struct channel *channel_create(const char *vm, const struct chan_config *cfg,
                               const char *iface, int64_t ofport,
                               const struct chandb_prior *prior,
                               const struct chandb_upstream *up_prior,
                               const struct channel_limits *,
                               channel_transmit_func *, void *aux,
                               long long now);
void channel_destroy(struct channel *);

/* Sets this side's MTU for the channel (chan-mtu.h: configured or
 * detected, capped at what the path carries).  The channel advertises it
 * to the guest and sends with the smaller of it and the guest's. */
void channel_set_mtu(struct channel *, unsigned int mtu);

/* The MTU the channel sends with now. */
unsigned int channel_mtu(const struct channel *);

const char *channel_vm(const struct channel *);
const char *channel_iface(const struct channel *);
const struct chan_config *channel_config(const struct channel *);
int64_t channel_ofport(const struct channel *);
enum channel_state channel_get_state(const struct channel *, long long now);

/* True if 'cfg', 'iface' and 'ofport' are what the channel was created
 * with. */
bool channel_matches(const struct channel *, const struct chan_config *cfg,
                     const char *iface, int64_t ofport);

/* Tells the channel whether its flows are installed on the bridge (it
 * sends nothing while they are not). */
void channel_set_flows_installed(struct channel *, bool installed);

/* Gives the VM's desired state: an object key -> [version, value_text,
 * value] (the channel keeps a reference; its owner may change it in place
 * and call this again with the same object and the keys it changed).
 * 'changed' (borrowed) is an object whose names are the keys that may have
 * changed since the last call with the same object, or NULL for any key.
 * Queues whatever the guest lacks.  'seen_us' (time_usec()) is when
 * chand-host learned of the change, for the latency histograms. */
void channel_set_desired(struct channel *, const json_t *desired,
                         const json_t *changed, long long now,
                         long long seen_us);

/* Sets the channel's message authentication keys: 'keys' (borrowed) is a
 * JSON array of [generation, "64 hex digits"], newest first (see
 * chandb_keys()); empty means unauthenticated (the empty HMAC key).  Frames
 * from the guest are accepted under any of them; frames to the guest use
 * the newest generation the guest has reported holding. */
void channel_set_keys(struct channel *, const json_t *keys);

/* Processes a frame from the guest: 'payload' is the UDP payload (a chand
 * frame), already checked to come from this channel's vNIC with its vid
 * and endpoint addresses. */
void channel_receive(struct channel *, const uint8_t *payload, size_t len,
                     long long now);

/* The channel's upstream end: the records its guest publishes (borrowed;
 * the caller writes its batches to the Chan DB). */
struct upstream *channel_upstream(struct channel *);

/* The file transfer lane (xfer-lane.h).  'func' is called with each
 * valid CHUNK or XFER frame from the guest (header and payload borrowed
 * for the call); NULL drops them as "unexpected_type". */
struct chan_wire_header;
typedef void channel_xfer_func(struct channel *,
                               const struct chan_wire_header *,
                               const uint8_t *payload, long long now,
                               void *aux);
void channel_set_xfer(struct channel *, channel_xfer_func *, void *aux);

/* Sends chand frame 'frame' (borrowed) of the transfer lane to the guest.
 * Returns 0, or an errno value if it was not sent (no flows, transmit
 * failure). */
int channel_send_xfer(struct channel *, const uint8_t *frame, size_t len);

/* The key to send with now (NULL and 0: the empty key). */
void channel_tx_key(const struct channel *, const uint8_t **keyp,
                    size_t *lenp);

/* Sends what is due. */
void channel_run(struct channel *, long long now);
long long channel_next_deadline(const struct channel *, long long now);

/* Fills 'st' for the Chan DB.  Pointers in 'st' are borrowed from the
 * channel and valid until its next call. */
void channel_get_db_state(struct channel *, long long now,
                          struct chandb_channel_state *st);

/* How often a channel's Channel row is written when only its counters
 * changed (milliseconds; other changes go at once), and when only the
 * keepalive counters did (tx_heartbeat, rx_ack, tx_frames: an idle
 * channel's heartbeats, which would otherwise cost a row write every few
 * seconds per channel). */
#define CHANNEL_STATS_WRITE_MS 5000
#define CHANNEL_STATS_IDLE_WRITE_MS 60000

/* True if the channel's Channel row should be written now: it never was,
 * something but its counters changed since channel_db_written(), or the
 * counters are due (see above). */
bool channel_db_write_due(struct channel *, long long now);
void channel_db_written(struct channel *, long long now);

/* Channel rows are written on a cadence (chand-host's DB_WRITE_MS) while
 * records flow.  A new channel's row is written at once (this returns 0).
 * A channel that has just caught up with its desired state (everything
 * desired is acknowledged) and whose row does not show it yet is written
 * sooner: from the time this returns, which is at least
 * CHANNEL_PROMPT_WRITE_MS after its last write, so that a channel fed one
 * record at a time costs at most 1000 / CHANNEL_PROMPT_WRITE_MS row writes
 * a second.  LLONG_MAX if no such write is wanted. */
#define CHANNEL_PROMPT_WRITE_MS 20
long long channel_db_prompt_due(const struct channel *);

/* The last seq sent in the current session and the state the guest has
 * once it applied everything up to it (borrowed: key -> [version, text]);
 * 0 and NULL outside an active session.  Written when the channel is
 * released, so that the next chassis can resume a guest found there. */
void channel_get_sent(const struct channel *, uint64_t *seq,
                      const json_t **sent);

/* Latency histograms (microseconds), kept for every message that carries
 * records, from chand-host's start: a push is "seen" when chand-host reads
 * the Chan DB change, "sent" when its DATA frame first leaves, "acked"
 * when the guest's ACK covers it (the guest acks after its durable
 * commit), "applied" when a Channel row that shows it (Channel.applied)
 * is committed in the Chan DB. */
enum channel_latency {
    CHANNEL_LAT_SEEN_TO_SENT,
    CHANNEL_LAT_SENT_TO_ACKED,
    CHANNEL_LAT_ACKED_TO_APPLIED,
    CHANNEL_LAT_SEEN_TO_ACKED,
    CHANNEL_LAT_SEEN_TO_APPLIED,
    CHANNEL_N_LATENCY
};

/* "seen_to_sent", ...: the name in channel-show, host/status and
 * Channel.statistics. */
const char *channel_latency_name(enum channel_latency);

/* Returns the channel's CHANNEL_N_LATENCY histograms (borrowed). */
const struct latency_hist *channel_latency(const struct channel *);

/* Returns a new JSON object: name -> latency_hist_to_json() of each of
 * 'hists' (CHANNEL_N_LATENCY of them, in enum order). */
json_t *channel_latency_json(const struct latency_hist *hists,
                             bool with_buckets);

/* Tells the channel that its Channel row as of ack mark 'mark'
 * (chandb_channel_state.ack_mark) is committed in the Chan DB, at
 * 'now_us'. */
void channel_db_committed(struct channel *, uint64_t mark, long long now_us);

/* Returns a new JSON object with the channel's details and counters (for
 * chanctl). */
json_t *channel_to_json(const struct channel *, long long now);

/* Sets counter 'name' of the channel to 'value': counts kept by the flows
 * rather than by the channel, e.g. "rx_drop_meter" (the guest's frames the
 * channel's meter dropped) or "isolation_drops" (flows/host.flows). */
void channel_set_counter(struct channel *, const char *name, uint64_t value);

/* Counts a frame for this channel that was dropped before reaching it
 * (bad addresses, bad in_port...), under 'reason'. */
void channel_count_drop(struct channel *, const char *reason);

#endif /* channel.h */
