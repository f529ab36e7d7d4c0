/*
 * replay-pcap: the packet lists the replay tier works with, read from and
 * written to classic pcap files with libpcap (Ethernet link type only), plus
 * an optional ".meta" side file holding one line of text per packet (the
 * PACKET_IN metadata of a controller capture: "in_port=vnic1 pkt_mark=7
 * reason=action table=0").
 *
 * Timestamps carry the order of a case's packets across its input files
 * (packet i of a scenario has timestamp i + 1 seconds); in output files they
 * are whatever the capturing switch wrote and are ignored when comparing.
 * replay_pcap_write() can renumber them 1, 2, 3, ... so that golden files
 * do not change when they are regenerated.
 *
 * Everything here is test tooling: functions report errors as a malloc()ed
 * message owned by the caller (free() it), never by exiting.
 */
#ifndef REPLAY_PCAP_H
#define REPLAY_PCAP_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

/* Largest frame the tools read or write. */
#define REPLAY_PCAP_SNAPLEN 65535

/* One packet.  'data' and 'meta' are owned by the list holding it. */
struct replay_pkt {
    uint8_t *data;
    size_t len;
    struct timeval ts;
    char *meta;                 /* One line without newline, or NULL. */
};

/* A growable list of packets.  Initialize with REPLAY_PCAP_INITIALIZER or
 * replay_pcap_init(); free with replay_pcap_destroy(). */
struct replay_pcap {
    struct replay_pkt *pkts;
    size_t n;
    size_t allocated;
};
#define REPLAY_PCAP_INITIALIZER { NULL, 0, 0 }

void replay_pcap_init(struct replay_pcap *);

/* Frees every packet and the array; leaves 'pcap' empty and reusable. */
void replay_pcap_destroy(struct replay_pcap *pcap);

/* Appends a copy of the 'len' bytes at 'data', with timestamp 'ts' (NULL:
 * zero) and metadata line 'meta' (NULL: none; copied).  Aborts if out of
 * memory. */
void replay_pcap_add(struct replay_pcap *pcap, const void *data, size_t len,
                     const struct timeval *ts, const char *meta);

/* Appends every packet of pcap file 'path' to 'pcap'.  A file that does not
 * exist is an error unless 'missing_ok', in which case nothing is appended
 * and 0 is returned; a 0-byte file counts as a capture with no packets.  If
 * "<path without .pcap>.meta" exists, its lines are attached to the packets
 * read, one per packet, and must be exactly as many.  Returns 0, or an errno
 * value with a message in '*errp' (caller frees). */
int replay_pcap_read(const char *path, bool missing_ok,
                     struct replay_pcap *pcap, char **errp);

/* Writes 'pcap' to 'path' (Ethernet link type, snaplen
 * REPLAY_PCAP_SNAPLEN), replacing it.  With 'renumber', packet i gets
 * timestamp i + 1 seconds instead of its own.  If any packet has metadata,
 * also writes "<path without .pcap>.meta" (a packet without metadata gives
 * an empty line); otherwise removes a stale .meta file.  Returns 0, or an
 * errno value with a message in '*errp'. */
int replay_pcap_write(const char *path, const struct replay_pcap *pcap,
                      bool renumber, char **errp);

/* Returns a new string: 'path' with a final ".pcap" replaced by ".meta"
 * (or ".meta" appended).  The caller frees it. */
char *replay_pcap_meta_path(const char *path);

#endif /* replay-pcap.h */
