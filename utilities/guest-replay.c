/* The offline replay of a capture into a guest datastore: see
 * guest-replay.h. */

#include <config.h>
#include "guest-replay.h"

#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chan-wire.h"
#include "datastore.h"
#include "keyring.h"
#include "packets.h"
#include "receiver.h"
#include "udp.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(replay);

struct replay_stats {
    uint64_t frames_read;
    uint64_t frames_for_channel; /* Fed to the receiver. */
    uint64_t frames_from_guest;  /* Guest endpoint -> host endpoint. */
    uint64_t frames_other_vid;   /* Tagged with another vid. */
    uint64_t frames_other;       /* IPv4/UDP, not to or from us. */
    uint64_t frames_not_udp;     /* Not Ethernet/IPv4/UDP, or invalid. */
    uint64_t frames_truncated;   /* Captured shorter than on the wire. */
    uint64_t frames_oversize;    /* Longer than the daemon reads. */
    uint64_t bursts;
    uint64_t would_send_ack;
    uint64_t would_send_hello;
    uint64_t would_send_other;
};

/* The receiver's send function: counts, sends nothing. */
static int
count_send(const uint8_t *frame, size_t len, void *stats_)
{
    struct replay_stats *stats = stats_;

    if (len > 3 && frame[3] == CHAN_WIRE_ACK) {
        stats->would_send_ack++;
    } else if (len > 3 && frame[3] == CHAN_WIRE_HELLO) {
        stats->would_send_hello++;
    } else {
        stats->would_send_other++;
    }
    return 0;
}

static bool
endpoint_equal(const struct chan_endpoint *ep, uint32_t ip, uint16_t port)
{
    return ep->ip == ip && ep->port == port;
}

enum frame_kind {
    FRAME_FOR_CHANNEL,          /* To the guest endpoint. */
    FRAME_FROM_GUEST,           /* Guest endpoint -> host endpoint. */
    FRAME_OTHER_VID,
    FRAME_OTHER,
    FRAME_NOT_UDP,
};

/* Classifies the captured frame 'data' of 'len' bytes; for UDP frames
 * fills '*pkt' (pointing into 'data'). */
static enum frame_kind
classify(const struct chan_config *chan, const uint8_t *data, size_t len,
         struct pkt_udp *pkt)
{
    if (pkt_udp_parse(data, len, 0, pkt)) {
        return FRAME_NOT_UDP;
    }
    if (pkt->vlan && pkt->vid != chan->vid) {
        return FRAME_OTHER_VID;
    }
    if (endpoint_equal(&chan->guest, pkt->ip_dst, pkt->udp_dst)) {
        return FRAME_FOR_CHANNEL;
    }
    if (endpoint_equal(&chan->guest, pkt->ip_src, pkt->udp_src)
        && endpoint_equal(&chan->host, pkt->ip_dst, pkt->udp_dst)) {
        return FRAME_FROM_GUEST;
    }
    return FRAME_OTHER;
}

/* Opens the capture 'path'.  Returns it, or NULL after printing why. */
static pcap_t *
open_capture(const char *path)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p;

    p = pcap_open_offline_with_tstamp_precision(path,
                                                PCAP_TSTAMP_PRECISION_MICRO,
                                                errbuf);
    if (!p) {
        fprintf(stderr, "chand-guest-replay: cannot read capture %s: %s\n",
                path, errbuf);
        return NULL;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        const char *name = pcap_datalink_val_to_name(pcap_datalink(p));

        fprintf(stderr, "chand-guest-replay: %s: link type %s is not Ethernet "
                "(capture on the vNIC or on chand0 with tcpdump -i IFACE, "
                "not -i any)\n", path, name ? name : "unknown");
        pcap_close(p);
        return NULL;
    }
    return p;
}

/* Reads the guest_epoch member of the control payload of 'h'. */
static bool
payload_guest_epoch(const struct chan_wire_header *h, const uint8_t *payload,
                    uint32_t *epochp)
{
    json_t *obj, *v;
    bool ok;

    if (chan_payload_decode_object(payload, h->payload_len, NULL, &obj)) {
        return false;
    }
    v = json_object_get(obj, "guest_epoch");
    ok = (json_is_integer(v) && json_integer_value(v) >= 1
          && json_integer_value(v) <= UINT32_MAX);
    if (ok) {
        *epochp = json_integer_value(v);
    }
    json_decref(obj);
    return ok;
}

/* Finds the guest epoch of the captured store: the guest_epoch of the
 * first valid SYNC the host sent to the channel, else of the first valid
 * HELLO the guest sent.  Returns 0 if there is neither. */
static uint32_t
find_guest_epoch(const struct replay_options *opts,
                 const struct keyring *keys)
{
    uint32_t from_sync = 0, from_hello = 0;
    struct pcap_pkthdr *ph;
    const u_char *data;
    pcap_t *p;

    p = open_capture(opts->pcap);
    if (!p) {
        return 0;
    }
    while (!from_sync && pcap_next_ex(p, &ph, &data) == 1) {
        struct chan_wire_header h;
        const uint8_t *payload;
        struct pkt_udp pkt;
        enum frame_kind kind;
        uint32_t gen, epoch;

        kind = classify(&opts->chan, data, ph->caplen, &pkt);
        if ((kind != FRAME_FOR_CHANNEL && kind != FRAME_FROM_GUEST)
            || keyring_decode(keys, pkt.payload, pkt.payload_len, &h,
                              &payload, &gen)
            || h.vid != opts->chan.vid) {
            continue;
        }
        if (kind == FRAME_FOR_CHANNEL && h.type == CHAN_WIRE_SYNC
            && endpoint_equal(&opts->chan.host, pkt.ip_src, pkt.udp_src)
            && payload_guest_epoch(&h, payload, &epoch)) {
            from_sync = epoch;
        } else if (kind == FRAME_FROM_GUEST && h.type == CHAN_WIRE_HELLO
                   && !from_hello
                   && payload_guest_epoch(&h, payload, &epoch)) {
            from_hello = epoch;
        }
    }
    pcap_close(p);
    return from_sync ? from_sync : from_hello;
}

/* Prints "drop_*" counters of 'counters' (a receiver status "counters"
 * object, borrowed), in name order, and returns their sum. */
static uint64_t
print_drops(FILE *out, json_t *counters)
{
    const char **names;
    size_t n = 0, i;
    uint64_t total = 0;
    const char *name;
    json_t *value;

    names = calloc(json_object_size(counters) + 1, sizeof *names);
    if (!names) {
        return 0;
    }
    json_object_foreach (counters, name, value) {
        if (!strncmp(name, "drop_", 5)) {
            names[n++] = name;
        }
    }
    /* Insertion sort: there are a few dozen at most. */
    for (i = 1; i < n; i++) {
        const char *x = names[i];
        size_t j = i;

        for (; j > 0 && strcmp(names[j - 1], x) > 0; j--) {
            names[j] = names[j - 1];
        }
        names[j] = x;
    }
    for (i = 0; i < n; i++) {
        json_int_t v = json_integer_value(json_object_get(counters,
                                                          names[i]));
        fprintf(out, "%s %"JSON_INTEGER_FORMAT"\n", names[i], v);
        total += v;
    }
    free(names);
    return total;
}

static void
print_summary(FILE *out, const struct replay_options *opts,
              const struct replay_stats *rs, struct receiver *rx,
              struct datastore *ds, const struct keyring *keys)
{
    struct receiver_stats s;
    struct ds_state st;
    json_t *status;
    uint64_t records = 0;
    char gens[128];

    receiver_get_stats(rx, &s);
    datastore_get_state(ds, &st);
    if (datastore_count(ds, &records)) {
        records = 0;
    }
    status = receiver_status_json(rx, 0);

    fprintf(out, "pcap %s\n", opts->pcap);
    fprintf(out, "datastore %s\n", opts->db);
    fprintf(out, "frames_read %"PRIu64"\n", rs->frames_read);
    fprintf(out, "frames_for_channel %"PRIu64"\n", rs->frames_for_channel);
    fprintf(out, "frames_from_guest %"PRIu64"\n", rs->frames_from_guest);
    fprintf(out, "frames_other_vid %"PRIu64"\n", rs->frames_other_vid);
    fprintf(out, "frames_other %"PRIu64"\n", rs->frames_other);
    fprintf(out, "frames_not_udp %"PRIu64"\n", rs->frames_not_udp);
    fprintf(out, "frames_truncated %"PRIu64"\n", rs->frames_truncated);
    fprintf(out, "frames_oversize %"PRIu64"\n", rs->frames_oversize);
    fprintf(out, "bursts %"PRIu64"\n", rs->bursts);
    fprintf(out, "rx_data %"PRIu64"\n", s.rx_data);
    fprintf(out, "rx_sync %"PRIu64"\n", s.rx_sync);
    fprintf(out, "rx_heartbeat %"PRIu64"\n", s.rx_heartbeat);
    fprintf(out, "rx_hello %"PRIu64"\n", s.rx_hello);
    fprintf(out, "applied_messages %"PRIu64"\n", s.msgs_applied);
    fprintf(out, "applied_records %"PRIu64"\n", s.records_applied);
    fprintf(out, "skipped_messages %"PRIu64"\n", s.msgs_skipped);
    fprintf(out, "duplicates %"PRIu64"\n", s.rx_duplicate);
    fprintf(out, "sync_repeats %"PRIu64"\n", s.rx_sync_repeat);
    fprintf(out, "snapshots_begun %"PRIu64"\n", s.snapshots_begun);
    fprintf(out, "snapshots_finished %"PRIu64"\n", s.snapshots_finished);
    fprintf(out, "commits %"PRIu64"\n", s.commits);
    fprintf(out, "commit_errors %"PRIu64"\n", s.commit_errors);
    uint64_t drops = print_drops(out, json_object_get(status, "counters"));
    fprintf(out, "drops %"PRIu64"\n", drops);
    fprintf(out, "would_send_ack %"PRIu64"\n", rs->would_send_ack);
    fprintf(out, "would_send_hello %"PRIu64"\n", rs->would_send_hello);
    keyring_format(keys, gens, sizeof gens);
    for (char *c = gens; *c; c++) {
        if (*c == ' ') {
            memmove(c, c + 1, strlen(c));   /* "1, 2" -> "1,2" */
        }
    }
    fprintf(out, "key_generations %s\n", gens);
    fprintf(out, "rx_generation %"PRIu32"\n", receiver_rx_generation(rx));
    fprintf(out, "guest_epoch %"PRIu32"\n", st.guest_epoch);
    fprintf(out, "host_epoch %"PRIu32"\n", st.host_epoch);
    fprintf(out, "position %"PRIu64"\n", st.position);
    fprintf(out, "snapshot %s\n", ds_snapshot_to_string(st.snapshot));
    fprintf(out, "snapshot_end %"PRIu64"\n", st.snapshot_end);
    fprintf(out, "records %"PRIu64"\n", records);
    json_decref(status);
}

/* Ends a burst at 'now' (ms). */
static void
end_burst(struct receiver *rx, struct replay_stats *rs, long long now)
{
    receiver_flush(rx, now);
    receiver_run(rx, now);
    rs->bursts++;
}

int
replay_run(const struct replay_options *opts, FILE *out)
{
    char key_error[KEYRING_ERROR_LEN];
    struct datastore_options dso = { .sync = DS_SYNC_FULL };
    struct replay_stats rs = { .frames_read = 0 };
    struct keyring_file *kf = NULL;
    struct datastore *ds = NULL;
    struct receiver *rx = NULL;
    struct ds_state st;
    struct stat sb;
    pcap_t *p = NULL;
    long long now = 0, last_us = 0;
    unsigned int in_burst = 0;
    bool fresh;
    int error = 0, rc;

    error = keyring_file_open(opts->key_file, 0, &kf, key_error,
                              sizeof key_error);
    if (error) {
        fprintf(stderr, "chand-guest-replay: cannot load the channel keys: "
                "%s\n", key_error);
        return error;
    }
    p = open_capture(opts->pcap);
    if (!p) {
        error = EINVAL;
        goto out;
    }

    /* The datastore. */
    fresh = stat(opts->db, &sb) ? errno == ENOENT : !sb.st_size;
    dso.guest_epoch = find_guest_epoch(opts, keyring_file_get(kf));
    error = datastore_open_opts(opts->db, &dso, &ds);
    if (error) {
        fprintf(stderr, "chand-guest-replay: cannot open the datastore: %s\n",
                datastore_last_error());
        goto out;
    }
    datastore_get_state(ds, &st);
    if (fresh && dso.guest_epoch) {
        VLOG_INFO("%s: new datastore with the captured guest epoch %"PRIu32,
                  opts->db, dso.guest_epoch);
    } else if (dso.guest_epoch && dso.guest_epoch != st.guest_epoch) {
        VLOG_WARN("%s: the capture is of guest epoch %"PRIu32" but the "
                  "datastore's is %"PRIu32": its SYNC will be ignored, as "
                  "the live daemon would", opts->db, dso.guest_epoch,
                  st.guest_epoch);
    }

    struct receiver_config rc_cfg = {
        .vid = opts->chan.vid,
        .host_ip = opts->chan.host.ip,
        .host_port = opts->chan.host.port,
        .keys = keyring_file_get(kf),
    };
    rx = receiver_create(&rc_cfg, ds, count_send, &rs, 0);
    if (!rx) {
        error = ENOMEM;
        goto out;
    }

    for (;;) {
        struct pcap_pkthdr *ph;
        const u_char *data;
        struct pkt_udp pkt;
        long long ts_us;

        rc = pcap_next_ex(p, &ph, &data);
        if (rc == PCAP_ERROR_BREAK) {
            break;              /* End of file. */
        } else if (rc != 1) {
            fprintf(stderr, "chand-guest-replay: error reading %s after "
                    "%"PRIu64" frames: %s (the frames before it were "
                    "applied)\n",
                    opts->pcap, rs.frames_read, pcap_geterr(p));
            error = EIO;
            break;
        }
        rs.frames_read++;

        /* Capture time, never going backwards. */
        ts_us = (long long) ph->ts.tv_sec * 1000000 + ph->ts.tv_usec;
        if (in_burst && ts_us - last_us > REPLAY_GAP_US) {
            end_burst(rx, &rs, now);
            in_burst = 0;
        }
        if (ts_us > last_us) {
            last_us = ts_us;
        }
        if (last_us / 1000 > now) {
            now = last_us / 1000;
        }

        if (ph->caplen < ph->len) {
            rs.frames_truncated++;
            continue;
        }
        switch (classify(&opts->chan, data, ph->caplen, &pkt)) {
        case FRAME_FOR_CHANNEL:
            if (pkt.payload_len > UDP_MAX_DATAGRAM) {
                rs.frames_oversize++;
                break;
            }
            rs.frames_for_channel++;
            receiver_input(rx, pkt.payload, pkt.payload_len, pkt.ip_src,
                           pkt.udp_src, now);
            if (++in_burst >= REPLAY_BURST_MAX) {
                end_burst(rx, &rs, now);
                in_burst = 0;
            }
            break;
        case FRAME_FROM_GUEST:
            rs.frames_from_guest++;
            break;
        case FRAME_OTHER_VID:
            rs.frames_other_vid++;
            break;
        case FRAME_OTHER:
            rs.frames_other++;
            break;
        case FRAME_NOT_UDP:
        default:
            rs.frames_not_udp++;
            break;
        }
    }
    end_burst(rx, &rs, now);

    print_summary(out, opts, &rs, rx, ds, keyring_file_get(kf));
    struct receiver_stats s;
    receiver_get_stats(rx, &s);
    if (!error && s.commit_errors) {
        fprintf(stderr, "chand-guest-replay: %"PRIu64" datastore transactions "
                "failed (see the log): the store does not hold everything "
                "the capture carries\n", s.commit_errors);
        error = EIO;
    }

out:
    receiver_destroy(rx);
    datastore_close(ds);
    if (p) {
        pcap_close(p);
    }
    keyring_file_destroy(kf);
    return error;
}
