/*
 * guests-spec: the pure parts of `chand-bench guests`, the guest simulator
 * (doc/bench.md, "The guest simulator"): its channel list and the frames it
 * reads and writes on each simulated VM's veth.  No I/O, no allocation.
 *
 * Channel list.  One simulated VM a line, fields separated by spaces or
 * tabs, '#' to the end of the line a comment, blank lines ignored:
 *
 *     VM CHAN_ID VID IFACE [KEYFILE]
 *
 *   VM       the VM's name, as in the vNIC's external_ids:chand-vm
 *            (1..64 characters from A-Z a-z 0-9 . _ -); also the name of
 *            its datastore, DIR/VM.db
 *   CHAN_ID  external_ids:chand-id (decimal 1..4294967295, strict)
 *   VID      external_ids:chand-vid (decimal 1..4094, strict)
 *   IFACE    the simulator's end of the VM's veth pair (1..15 bytes, no
 *            '/' or ':')
 *   KEYFILE  the VM's chand-guest key file (keyring.h format); "-" or
 *            absent: no keys (unauthenticated)
 *
 * The same five fields separated by commas make one --channel argument.
 *
 * Frames.  The host bridge pushes the channel's VLAN tag on what it sends
 * to a vNIC (flows/host.flows, priority 40100); an AF_PACKET socket shows a
 * received frame with that tag moved into metadata (PACKET_AUXDATA), so
 * guests_frame_retag() puts it back before guests_frame_accept() checks
 * what the guest bridge's flows would (flows/guest.flows): the channel's
 * vid, the host endpoint as source, the guest endpoint as destination.
 * guests_frame_build() writes what the host's guest-to-host rule accepts:
 * tagged with the vid, from the guest endpoint to the host endpoint.
 *
 * Watched keys.  With --watch-key KEY (repeatable) the simulator notes,
 * per simulated VM, the wall-clock time (CLOCK_REALTIME, ms) at which the
 * VM first committed a put of KEY, and its status gives per KEY how many
 * VMs did and the nearest-rank percentiles of those times
 * (guests_percentile()).
 */
#ifndef GUESTS_SPEC_H
#define GUESTS_SPEC_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"

#define GUESTS_IFNAME_MAX 15            /* IFNAMSIZ - 1. */
#define GUESTS_PATH_MAX 4096
#define GUESTS_ERROR_LEN 160

struct guests_spec {
    char vm[CHAN_VM_NAME_MAX + 1];
    uint32_t chan_id;
    uint16_t vid;
    char iface[GUESTS_IFNAME_MAX + 1];
    char keyfile[GUESTS_PATH_MAX];      /* "": no keys. */
};

/* Parses one line of a channel list ('sep': ',' for a --channel argument,
 * 0 for spaces and tabs).  Returns 1 and fills '*spec', 0 for a line with
 * nothing but blanks or a comment, or -1 with the first problem in 'error'
 * (e.g. "chand-vid out of range (1..4094)"). */
int guests_spec_parse(const char *line, char sep, struct guests_spec *spec,
                      char *error, size_t error_size);

/* Why guests_frame_accept() refused a frame. */
enum guests_drop {
    GUESTS_OK = 0,
    GUESTS_DROP_PARSE,          /* Not Ethernet/802.1Q/IPv4/UDP (or bad
                                 * checksums): ARP, IPv6, ... */
    GUESTS_DROP_UNTAGGED,       /* No VLAN tag. */
    GUESTS_DROP_VID,            /* Another vid. */
    GUESTS_DROP_ADDRESS,        /* Not host endpoint -> guest endpoint. */
    GUESTS_N_DROPS
};

/* "parse", "untagged", "vid", "address" ("ok" for GUESTS_OK). */
const char *guests_drop_name(enum guests_drop);

/* Writes into 'out' (of 'size' bytes) the 'len'-byte frame at 'in' with an
 * 802.1Q tag 'tci' inserted after the MAC addresses if 'tagged' (else a
 * copy).  Stores the new length in '*lenp'.  Returns false if 'in' is
 * shorter than two MAC addresses or 'out' is too small. */
bool guests_frame_retag(const uint8_t *in, size_t len, bool tagged,
                        uint16_t tci, uint8_t *out, size_t size,
                        size_t *lenp);

/* Checks the Ethernet frame at 'frame' ('len' bytes, with its tag) against
 * channel 'cfg'.  On GUESTS_OK stores the UDP payload (pointing into
 * 'frame') in '*payloadp' and '*payload_lenp' and its source address and
 * port (host order) in '*src_ipp' and '*src_portp'. */
enum guests_drop guests_frame_accept(const struct chan_config *cfg,
                                     const uint8_t *frame, size_t len,
                                     const uint8_t **payloadp,
                                     size_t *payload_lenp,
                                     uint32_t *src_ipp, uint16_t *src_portp);

/* Builds the guest-to-host frame carrying the 'len'-byte chan-wire frame
 * at 'payload' for channel 'cfg' into 'buf' (of 'size' bytes) and stores
 * its length in '*lenp'.  Returns 0 or a pkt_error (packets.h). */
int guests_frame_build(const struct chan_config *cfg, const uint8_t *payload,
                       size_t len, uint8_t *buf, size_t size, size_t *lenp);

/* Watched keys (--watch-key). */
#define GUESTS_WATCH_MAX 8              /* Keys watched at most. */
#define GUESTS_WATCH_KEY_MAX 4096       /* Bytes (DS_KEY_MAX). */

/* Checks one --watch-key argument 'key' given after 'n_watched' others
 * ('watched', borrowed): 1..GUESTS_WATCH_KEY_MAX bytes, no control
 * character, not a repeat, at most GUESTS_WATCH_MAX in all.  Returns 0, or
 * -1 with the problem in 'error'. */
int guests_watch_key_check(const char *key, const char *const *watched,
                           size_t n_watched, char *error, size_t error_size);

/* The nearest-rank 'p'th percentile (0 < p <= 100) of the 'n' ascending
 * values at 'sorted' (the smallest value whose rank is at least p% of n),
 * or -1 if 'n' is 0. */
long long guests_percentile(const long long *sorted, size_t n, double p);

#endif /* guests-spec.h */
