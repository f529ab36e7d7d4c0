/*
 * guest-replay: the offline replay of chand-guest-replay(8).  Reads a
 * capture of a channel (pcap or pcapng, Ethernet link type) as tcpdump
 * records it on the VM's vNIC (802.1Q-tagged with the channel's vid) or on
 * chand-guest's port chand0 (untagged), and applies the host's frames to a
 * datastore through the live daemon's receiver (receiver_input() and
 * receiver_flush()), without Open vSwitch, sockets or the local API.
 * Nothing is sent: the frames the daemon would send (ACK, HELLO) are only
 * counted.
 *
 * Which frames are fed to the receiver: IPv4/UDP frames addressed to the
 * guest endpoint (IP and port), untagged or tagged with the channel's vid,
 * exactly what the live daemon's socket would receive; the receiver itself
 * then drops those not from the host endpoint (drop_source), as the daemon
 * does.  Frames from the guest endpoint to the host endpoint are counted
 * (frames_from_guest) and otherwise only read for the guest epoch (below);
 * everything else is counted and skipped.
 *
 * Bursts: the daemon applies what one socket read returns in one
 * transaction.  The replay ends a burst (receiver_flush(), then
 * receiver_run()) after REPLAY_BURST_MAX frames of the channel or when the
 * capture is silent for more than REPLAY_GAP_US between two frames, and at
 * the end.  Receiver time is the capture's time.
 *
 * The datastore may be fresh or existing, and is used exactly as the live
 * daemon would use it (so replaying the same capture twice applies
 * nothing the second time).  One difference: a store created by the replay
 * takes its guest epoch from the capture (the guest_epoch of the first
 * SYNC the host sent the channel in it, else of the first HELLO the guest
 * sent), so that the captured session's SYNC applies to it.  An existing
 * store keeps its own, and a SYNC for another guest epoch is ignored as
 * the daemon would (drop_sync_guest), with a warning.
 *
 * The summary printed at the end has one "name value" line each.
 */
#ifndef GUEST_REPLAY_H
#define GUEST_REPLAY_H 1

#include <stdio.h>

#include "chan-endpoint.h"

#define REPLAY_BURST_MAX 256    /* Frames per burst, at most (UDP_BATCH). */
#define REPLAY_GAP_US 1000      /* Silence that ends a burst. */

struct replay_options {
    const char *pcap;           /* The capture file. */
    const char *db;             /* The datastore (created if missing). */
    struct chan_config chan;    /* vid and endpoints; chan_id unused. */
    const char *key_file;       /* Channel key file (keyring.h). */
};

/* Replays 'opts->pcap' into 'opts->db' and prints the summary to 'out'.
 * Errors are logged and printed to stderr.  Returns 0, or a positive errno
 * if the capture could not be read (completely), the key file is invalid,
 * the datastore could not be opened, or a datastore transaction failed. */
int replay_run(const struct replay_options *opts, FILE *out);

#endif /* guest-replay.h */
