/*
 * chand-bench: the helper program behind scripts/bench (doc/bench.md).
 *
 * One program with a subcommand per measuring role, so that the harness can
 * put each role in the network namespace where it belongs:
 *
 *   inject   raw PACKET_OUTs (set_field pkt_mark, output:TABLE) over a
 *            bridge's mgmt socket, paced, ended by a barrier: ceiling (a).
 *   blast    paced UDP datagrams from an ordinary socket: ceiling (b).
 *   count    counts the datagrams 'inject' or 'blast' sent to a UDP port.
 *   capture  AF_PACKET on a vNIC: DATA frame out to the ACK covering it.
 *   push     inserts records into the Chan DB, pipelined transactions, and
 *            optionally waits for the Channel row to show them applied.
 *   pushrate updates records at a fixed offered rate, logging send times.
 *   pushbig  writes one very large value (raw JSON, no 64 MiB cap).
 *   cpwrite  runs `ovsdb-client transact` once per sample, timing it.
 *   watch    the guest API's "watch": logs when each change is notified.
 *   dbpoll   polls the guest datastore's applied-ops counter.
 *   publish  publishes records through the guest's local API, pipelined,
 *            unpaced or at an offered rate, logging when each call returns.
 *   grwatch  monitors Guest_Record (and relayed Record rows) in the Chan
 *            DB: logs when each published version becomes visible.
 *   now      prints the CLOCK_MONOTONIC time (the harness's own marks).
 *   failover kills a clustered Chan DB's leader and pushes one record at
 *            once, retrying until a member commits it.
 *   chwait   follows a VM's Channel rows until the newest claim's is on a
 *            given chassis and ready (a migration's end).
 *   simhosts many simulated hypervisors in one process, each a Chan DB
 *            replica with chand-host's per-VM conditions: what a push
 *            costs the host serving the VM and every other host.
 *   guests   the guest simulator: one process serving many channels with
 *            chand-guest's receiver, keyring and datastore, on one veth
 *            per simulated VM (bench-guests.c; doc/bench.md).
 *
 * The Chan DB roles take --private-key, --certificate and --ca-cert for
 * ssl: remotes.
 *
 * Every time is CLOCK_MONOTONIC in nanoseconds, one clock for the whole
 * machine (network namespaces do not change it), so times taken by
 * different subcommands in different namespaces compare directly.  Each
 * subcommand prints one JSON object with its results on stdout; progress
 * and errors go to stderr.
 */
#ifndef CHAND_BENCH_H
#define CHAND_BENCH_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The payload of datagrams sent by 'inject' and 'blast': magic, tag, seq. */
#define BENCH_MAGIC "CHBN"
#define BENCH_HDR_LEN 16            /* 4 magic + 4 tag + 8 seq. */

/* bench-util.c */
int64_t bench_now(void);                       /* CLOCK_MONOTONIC, ns. */
int64_t bench_realtime_offset(void);           /* REALTIME - MONOTONIC. */
void bench_sleep_until(int64_t t);
void bench_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void bench_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_print_json(json_t *obj);            /* Steals 'obj'. */
void bench_touch(const char *path);
bool bench_parse_u64(const char *s, uint64_t *v);
uint64_t bench_arg_u64(const char *opt, const char *s);
double bench_arg_double(const char *opt, const char *s);
bool bench_parse_ipport(const char *s, uint32_t *ip, uint16_t *port);
void bench_payload(uint8_t *buf, size_t len, uint32_t tag, uint64_t seq);
bool bench_payload_check(const uint8_t *buf, size_t len, uint32_t tag,
                         uint64_t *seq);
json_t *bench_percentiles(int64_t *v, size_t n);   /* Sorts 'v'. */
extern volatile int bench_stop;
void bench_catch_signals(void);

/* The pacer: 'rate' items per second from 'start' (0: unpaced). */
struct bench_pacer {
    int64_t start;
    double rate;
};
uint64_t bench_pacer_due(const struct bench_pacer *, int64_t now);
int64_t bench_pacer_time_of(const struct bench_pacer *, uint64_t i);

/* Subcommands. */
int bench_cmd_inject(int argc, char *argv[]);
int bench_cmd_blast(int argc, char *argv[]);
int bench_cmd_count(int argc, char *argv[]);
int bench_cmd_capture(int argc, char *argv[]);
int bench_cmd_push(int argc, char *argv[]);
int bench_cmd_pushrate(int argc, char *argv[]);
int bench_cmd_pushbig(int argc, char *argv[]);
int bench_cmd_cpwrite(int argc, char *argv[]);
int bench_cmd_watch(int argc, char *argv[]);
int bench_cmd_dbpoll(int argc, char *argv[]);
int bench_cmd_publish(int argc, char *argv[]);
int bench_cmd_grwatch(int argc, char *argv[]);
int bench_cmd_now(int argc, char *argv[]);
int bench_cmd_failover(int argc, char *argv[]);
int bench_cmd_chwait(int argc, char *argv[]);
int bench_cmd_simhosts(int argc, char *argv[]);
int bench_cmd_guests(int argc, char *argv[]);

/* bench-cluster.c: --private-key, --certificate, --ca-cert (for ssl:
 * remotes); false if 'name' is none of them. */
bool bench_tls_option(const char *name, const char *value);

#endif /* chand-bench.h */
