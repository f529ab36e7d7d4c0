/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * Roles for a clustered Chan DB (doc/bench.md, section 11), all built on
 * lib/ovsdb-replica, the client chand-host itself uses:
 *
 *   now       prints CLOCK_MONOTONIC in ns (for the harness's own marks).
 *   failover  kills a process (the cluster's leader) and pushes one record
 *             right after, retrying until a member commits it.
 *   chwait    follows a VM's Channel rows until the one with the highest
 *             claim is on a given chassis and ready.
 *   simhosts  N simulated hypervisors, each a replica with chand-host's
 *             conditions for its own VMs, in one poll loop; pushes records
 *             to one VM and to all VMs and counts, per host, the bytes and
 *             row updates each push cost it, and the members' CPU. */

#include <config.h>
#include "chand-bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "poll-loop.h"
#include "stream-ssl.h"
#include "vlog.h"

/* TLS options shared by the roles here and bench-db.c's. */
bool
bench_tls_option(const char *name, const char *value)
{
    if (!strcmp(name, "private-key")) {
        stream_ssl_set_private_key_file(value);
    } else if (!strcmp(name, "certificate")) {
        stream_ssl_set_certificate_file(value);
    } else if (!strcmp(name, "ca-cert")) {
        stream_ssl_set_ca_cert_file(value, false);
    } else {
        return false;
    }
    return true;
}

int
bench_cmd_now(int argc, char *argv[])
{
    (void) argc;
    (void) argv;
    printf("%" PRId64 "\n", bench_now());
    return 0;
}

/* CPU ticks (utime + stime) of 'pid' from /proc, or -1. */
static int64_t
proc_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) {
        return -1;
    }
    /* Fields after the command: state is field 3; utime 14, stime 15. */
    unsigned long long utime, stime;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2) {
        return -1;
    }
    return (int64_t) (utime + stime);
}

static int64_t
self_ticks(void)
{
    return proc_ticks((long) getpid());
}

static void
quiet_logs(void)
{
    vlog_set_levels_from_string("warn");
}

/* Runs every replica once and blocks until something happens or 'ms'. */
static void
loop_once(struct ovsdb_replica **r, size_t n, long long ms)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i]) {
            ovsdb_replica_run(r[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i]) {
            ovsdb_replica_wait(r[i]);
        }
    }
    poll_timer_wait(ms);
    poll_block();
}

/* ----------------------------------------------------------------------
 * failover
 */

struct fo_txn {
    bool done;
    bool ok;
    char error[256];
};

static void
fo_txn_cb(const json_t *result, const char *error, void *aux)
{
    struct fo_txn *t = aux;
    (void) result;
    t->done = true;
    t->ok = !error;
    if (error) {
        snprintf(t->error, sizeof t->error, "%s", error);
    }
}

/* Creates a replica of the Chan DB that monitors 'columns' (n of them) of
 * 'table' with condition 'cond' (borrowed), reconnecting with a backoff of
 * 'min_ms' to 'max_ms', and starts connecting to 'remotes' (in their order
 * unless 'shuffle').  The caller owns the replica; '*tp' is the table. */
static struct ovsdb_replica *
chan_replica(const char *remotes, const char *table,
             const char *const *columns, size_t n, const json_t *cond,
             int min_ms, int max_ms, bool shuffle,
             struct ovsdb_replica_table **tp)
{
    struct ovsdb_replica *r = ovsdb_replica_create("Chan");
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(r, table);
    for (size_t i = 0; i < n; i++) {
        ovsdb_replica_add_column(t, columns[i], NULL);
    }
    ovsdb_replica_set_condition(t, cond);
    ovsdb_replica_set_shuffle_remotes(r, shuffle);
    ovsdb_replica_set_backoff(r, min_ms, max_ms);
    ovsdb_replica_connect(r, remotes);
    if (tp) {
        *tp = t;
    }
    return r;
}

/* Appends {"t": T, "error": ERROR} to 'errors', up to 20 of them. */
static void
note_error(json_t *errors, int64_t t, const char *error)
{
    if (json_array_size(errors) < 20) {
        json_array_append_new(errors, json_pack("{sI ss}", "t",
                                                (json_int_t) t,
                                                "error", error));
    }
}

/* Deletes then inserts the record: the same transaction sent again (after
 * a reply that was lost) leaves exactly one row. */
static json_t *
record_ops(const char *vm, const char *key, const char *value)
{
    json_t *where = json_pack("[o]", ovsdb_condition("key", "==",
                                                      json_string(key)));
    json_t *row = json_pack("{ss ss sI}", "key", key, "value", value,
                            "version", (json_int_t) 1);
    if (vm) {
        json_array_append_new(where, ovsdb_condition("vm", "==",
                                                     json_string(vm)));
        json_object_set_new(row, "vm", json_string(vm));
    } else {
        json_array_append_new(where, ovsdb_condition(
                                  "vm", "==", json_pack("[s[]]", "set")));
    }
    return json_pack("[oo]", ovsdb_op_delete("Record", where),
                     ovsdb_op_insert("Record", row, NULL));
}

enum {
    CL_OPT_VM = 256, CL_OPT_KEY, CL_OPT_KILL_PID, CL_OPT_TIMEOUT,
    CL_OPT_RETRY, CL_OPT_ATTEMPT, CL_OPT_CHASSIS, CL_OPT_READY, CL_OPT_LOG,
    CL_OPT_HOSTS, CL_OPT_VMS_PER_HOST, CL_OPT_PUSHES, CL_OPT_PREFIX,
    CL_OPT_SETTLE, CL_OPT_CPU, CL_OPT_IDLE, CL_OPT_TLS,
};

#define TLS_LONGOPTS                                                    \
    {"private-key", required_argument, NULL, CL_OPT_TLS},               \
    {"certificate", required_argument, NULL, CL_OPT_TLS},               \
    {"ca-cert", required_argument, NULL, CL_OPT_TLS}

/* failover REMOTES --vm VM --key K --kill-pid PID: connects (to REMOTES in
 * the order given: put the members that stay first), then at t_kill sends
 * SIGKILL to PID and at once the record's transaction, again every
 * --retry-ms after an error and --attempt-ms without an answer, until one
 * commits (t_commit). */
int
bench_cmd_failover(int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"vm", required_argument, NULL, CL_OPT_VM},
        {"key", required_argument, NULL, CL_OPT_KEY},
        {"kill-pid", required_argument, NULL, CL_OPT_KILL_PID},
        {"timeout-s", required_argument, NULL, CL_OPT_TIMEOUT},
        {"retry-ms", required_argument, NULL, CL_OPT_RETRY},
        {"attempt-ms", required_argument, NULL, CL_OPT_ATTEMPT},
        TLS_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *vm = NULL, *key = NULL;
    long pid = 0;
    double timeout = 60;
    uint64_t retry_ms = 20, attempt_ms = 1000;
    int c, idx;
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        switch (c) {
        case CL_OPT_VM: vm = optarg; break;
        case CL_OPT_KEY: key = optarg; break;
        case CL_OPT_KILL_PID:
            pid = (long) bench_arg_u64("--kill-pid", optarg);
            break;
        case CL_OPT_TIMEOUT:
            timeout = bench_arg_double("--timeout-s", optarg);
            break;
        case CL_OPT_RETRY: retry_ms = bench_arg_u64("--retry-ms", optarg);
            break;
        case CL_OPT_ATTEMPT:
            attempt_ms = bench_arg_u64("--attempt-ms", optarg);
            break;
        case CL_OPT_TLS: bench_tls_option(longopts[idx].name, optarg); break;
        default: exit(2);
        }
    }
    if (argc - optind != 1 || !vm || !key || pid <= 0) {
        bench_fatal("failover: REMOTES --vm VM --key K --kill-pid PID");
    }
    quiet_logs();
    /* No rows: the connection alone, to the first remote that works. */
    static const char *const cols[] = { "key" };
    json_t *none = json_pack("[b]", false);
    struct ovsdb_replica *r = chan_replica(argv[optind], "Record", cols, 1,
                                           none, 50, 200, false, NULL);
    json_decref(none);
    int64_t deadline = bench_now() + (int64_t) (timeout * 1e9);
    while (!ovsdb_replica_is_synced(r)) {
        if (bench_now() > deadline) {
            bench_fatal("failover: not connected to %s", argv[optind]);
        }
        loop_once(&r, 1, 100);
    }
    char *remote0 = strdup(ovsdb_replica_get_remote(r));

    int64_t t_kill = bench_now();
    if (kill((pid_t) pid, SIGKILL)) {
        bench_fatal("failover: kill %ld: %s", pid, strerror(errno));
    }
    int64_t t_killed = bench_now();
    uint64_t attempts = 0, lost = 0;
    char first_error[256] = "";
    struct fo_txn txn = { .done = true };
    uint64_t id = 0;
    int64_t t_attempt = 0, t_next = t_killed, t_commit = 0;
    json_t *errors = json_array();
    while (!t_commit) {
        int64_t now = bench_now();
        if (now > deadline) {
            break;
        }
        if (txn.done && !txn.ok && now >= t_next) {
            txn = (struct fo_txn) { .done = false };
            id = ovsdb_replica_transact(r, record_ops(vm, key, "\"failover\""),
                                        fo_txn_cb, &txn);
            attempts++;
            t_attempt = now;
        } else if (!txn.done && now - t_attempt > (int64_t) attempt_ms * 1000000) {
            ovsdb_replica_transact_cancel(r, id);
            txn = (struct fo_txn) { .done = true };
            snprintf(txn.error, sizeof txn.error, "no answer in %" PRIu64
                     " ms", attempt_ms);
            lost++;
            t_next = now;
            note_error(errors, now, txn.error);
            continue;
        }
        loop_once(&r, 1, 1);
        if (txn.done && txn.ok) {
            t_commit = bench_now();
        } else if (txn.done && txn.error[0]) {
            if (!first_error[0]) {
                snprintf(first_error, sizeof first_error, "%s", txn.error);
            }
            note_error(errors, bench_now(), txn.error);
            txn.error[0] = '\0';
            t_next = bench_now() + (int64_t) retry_ms * 1000000;
        }
    }
    struct ovsdb_replica_stats st;
    ovsdb_replica_get_stats(r, &st);
    const char *remote = ovsdb_replica_get_remote(r);
    bench_print_json(json_pack(
        "{sI sI sI sI sI ss ss? ss so sI sI}",
        "t_kill", (json_int_t) t_kill,
        "t_killed", (json_int_t) t_killed,
        "t_commit", (json_int_t) t_commit,
        "attempts", (json_int_t) attempts,
        "unanswered", (json_int_t) lost,
        "remote_before", remote0,
        "remote_at_commit", remote,
        "first_error", first_error,
        "errors", errors,
        "connects", (json_int_t) st.n_connects,
        "server_rejects", (json_int_t) st.n_server_rejects));
    free(remote0);
    ovsdb_replica_destroy(r);
    return t_commit ? 0 : 1;
}

/* ----------------------------------------------------------------------
 * chwait
 */

/* chwait REMOTES --vm VM --chassis C: logs "T CHASSIS CLAIM STATE" each
 * time the VM's Channel row with the highest claim (chassis, claim or
 * state) changes; done when that row is on C and ready (t_ready). */
int
bench_cmd_chwait(int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"vm", required_argument, NULL, CL_OPT_VM},
        {"chassis", required_argument, NULL, CL_OPT_CHASSIS},
        {"timeout-s", required_argument, NULL, CL_OPT_TIMEOUT},
        {"ready", required_argument, NULL, CL_OPT_READY},
        {"log", required_argument, NULL, CL_OPT_LOG},
        TLS_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *vm = NULL, *chassis = NULL, *ready = NULL, *logname = NULL;
    double timeout = 60;
    int c, idx;
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        switch (c) {
        case CL_OPT_VM: vm = optarg; break;
        case CL_OPT_CHASSIS: chassis = optarg; break;
        case CL_OPT_READY: ready = optarg; break;
        case CL_OPT_LOG: logname = optarg; break;
        case CL_OPT_TIMEOUT:
            timeout = bench_arg_double("--timeout-s", optarg);
            break;
        case CL_OPT_TLS: bench_tls_option(longopts[idx].name, optarg); break;
        default: exit(2);
        }
    }
    if (argc - optind != 1 || !vm || !chassis) {
        bench_fatal("chwait: REMOTES --vm VM --chassis C");
    }
    quiet_logs();
    FILE *log = logname ? fopen(logname, "w") : NULL;
    static const char *const cols[] = { "vm", "chassis", "claim", "state" };
    json_t *cond = json_pack("[[sss]]", "vm", "==", vm);
    struct ovsdb_replica_table *t;
    struct ovsdb_replica *r = chan_replica(argv[optind], "Channel", cols, 4,
                                           cond, 50, 500, true, &t);
    json_decref(cond);
    int64_t deadline = bench_now() + (int64_t) (timeout * 1e9);
    bool synced = false;
    uint64_t seqno = 0;
    int64_t t_ready = 0, t_synced = 0;
    char last[256] = "";
    json_t *initial = NULL;
    while (!t_ready && bench_now() < deadline && !bench_stop) {
        loop_once(&r, 1, 20);
        if (!synced && ovsdb_replica_is_synced(r)
            && !ovsdb_replica_cond_pending(r)) {
            synced = true;
            t_synced = bench_now();
        }
        if (!synced || ovsdb_replica_get_seqno(r) == seqno) {
            continue;
        }
        seqno = ovsdb_replica_get_seqno(r);
        const struct ovsdb_replica_row *row, *top = NULL;
        int64_t top_claim = -1;
        OVSDB_REPLICA_FOR_EACH (row, t) {
            int64_t claim = 0;
            bool present;
            ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "claim"),
                                    &claim, &present);
            if (claim > top_claim) {
                top_claim = claim;
                top = row;
            }
        }
        const char *ch = top ? ovsdb_replica_row_get_string(top, "chassis")
                             : NULL;
        const char *state = NULL;
        if (top) {
            ovsdb_datum_get_string(ovsdb_replica_row_get(top, "state"),
                                   &state);
        }
        char now_s[256];
        snprintf(now_s, sizeof now_s, "%s %" PRId64 " %s", ch ? ch : "-",
                 top_claim, state ? state : "-");
        if (strcmp(now_s, last)) {
            int64_t now = bench_now();
            snprintf(last, sizeof last, "%s", now_s);
            if (log) {
                fprintf(log, "%" PRId64 " %s\n", now, now_s);
                fflush(log);
            }
            if (!initial) {
                initial = json_string(now_s);
                bench_touch(ready);
            }
            if (ch && !strcmp(ch, chassis) && state
                && !strcmp(state, "ready")) {
                t_ready = now;
            }
        }
        if (!initial) {
            initial = json_string("none");
            bench_touch(ready);
        }
    }
    bench_print_json(json_pack("{sI sI so ss}", "t_synced",
                               (json_int_t) t_synced, "t_ready",
                               (json_int_t) t_ready, "initial",
                               initial ? initial : json_null(),
                               "last", last));
    if (log) {
        fclose(log);
    }
    ovsdb_replica_destroy(r);
    return t_ready ? 0 : 1;
}

/* ----------------------------------------------------------------------
 * simhosts
 */

struct simhost {
    struct ovsdb_replica *r;
    char name[32];
    char **vms;
    uint64_t bytes0, rows0;     /* Counters at the last snapshot. */
};

/* Declares chand-host's tables and columns (chand-host/chandb.c) and its
 * --monitor=own conditions for 'vms' on chassis 'chassis'. */
static void
simhost_declare(struct ovsdb_replica *r, const char *chassis, char **vms,
                size_t n_vms)
{
    static const struct {
        const char *table;
        const char *cols[14];
        int per_vm;             /* 0 all rows, 1 vm == V, 2 Record, 3
                                 * Channel. */
    } tables[] = {
        { "Record", { "key", "vm", "value", "version", "error",
                      "external_ids" }, 2 },
        { "Channel", { "vm", "chassis", "claim", "migrations", "state",
                       "host_epoch", "guest_epoch", "applied_seq", "applied",
                       "sent_seq", "sent", "up_epoch", "up_position" }, 3 },
        { "Guest_Record", { "vm", "key", "value", "version" }, 1 },
        { "Chan_Global", { "guest_limits" }, 0 },
        { "Guest_Limits", { "vm", "limits" }, 1 },
        { "Relay", { "source", "prefix", "to", "vms" }, 0 },
        { "Channel_Key", { "vm", "generation", "key" }, 1 },
        { "Object_Ref", { "vm", "digest" }, 1 },
        { "Allowlist", { "digest", "name" }, 0 },
    };
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        struct ovsdb_replica_table *t
            = ovsdb_replica_add_table(r, tables[i].table);
        for (size_t j = 0; tables[i].cols[j]; j++) {
            ovsdb_replica_add_column(t, tables[i].cols[j], NULL);
        }
        if (!tables[i].per_vm) {
            continue;
        }
        json_t *cond;
        if (tables[i].per_vm == 2) {
            cond = json_pack("[[ss[s[]]] [sss]]", "vm", "==", "set",
                             "vm", "==", "");
        } else if (tables[i].per_vm == 3) {
            cond = json_pack("[[sss]]", "chassis", "==", chassis);
        } else {
            cond = json_array();
        }
        for (size_t v = 0; v < n_vms; v++) {
            json_array_append_new(cond, json_pack("[sss]", "vm", "==",
                                                  vms[v]));
        }
        ovsdb_replica_set_condition(t, cond);
        json_decref(cond);
    }
}

static bool
simhost_has_key(const struct simhost *h, const char *key)
{
    return ovsdb_replica_find_by_string(
        ovsdb_replica_get_table(h->r, "Record"), "key", key) != NULL;
}

static void
simhost_counters(const struct simhost *h, uint64_t *bytes, uint64_t *rows)
{
    struct ovsdb_replica_stats st;
    ovsdb_replica_get_stats(h->r, &st);
    *bytes = st.n_bytes_received;
    *rows = st.n_row_updates;
}

struct cpu_pid {
    char *name;
    long pid;
    int64_t t0;
};

struct sim {
    struct simhost *hosts;
    size_t n;
    struct ovsdb_replica **all;     /* n hosts + the writer. */
    struct ovsdb_replica *writer;
    struct cpu_pid *cpus;
    size_t n_cpus;
};

static void
sim_loop(struct sim *s, long long ms)
{
    loop_once(s->all, s->n + 1, ms);
}

static void
sim_snapshot(struct sim *s)
{
    for (size_t i = 0; i < s->n; i++) {
        simhost_counters(&s->hosts[i], &s->hosts[i].bytes0,
                         &s->hosts[i].rows0);
    }
}

static void
cpu_begin(struct sim *s)
{
    for (size_t i = 0; i < s->n_cpus; i++) {
        s->cpus[i].t0 = proc_ticks(s->cpus[i].pid);
    }
}

static json_t *
cpu_end(struct sim *s)
{
    json_t *o = json_object();
    for (size_t i = 0; i < s->n_cpus; i++) {
        int64_t t = proc_ticks(s->cpus[i].pid);
        json_object_set_new(o, s->cpus[i].name,
                            t < 0 || s->cpus[i].t0 < 0 ? json_null()
                            : json_integer(t - s->cpus[i].t0));
    }
    return o;
}

/* One push phase: 'pushes' transactions of one record each, for the first
 * VM of host (i * stride) % n (to_all false) or for all VMs; after each,
 * runs until the serving host(s) have the record and 'settle_ms' more,
 * then takes every host's counters.  Returns the phase's JSON. */
static json_t *
sim_phase(struct sim *s, const char *prefix, bool to_all, uint64_t pushes,
          uint64_t settle_ms, int64_t deadline)
{
    json_t *serve_bytes = json_array(), *serve_rows = json_array();
    json_t *lat = json_array(), *lat_last = json_array();
    uint64_t other_bytes = 0, other_rows = 0, other_samples = 0;
    uint64_t other_bytes_max = 0, other_rows_max = 0, other_nonzero = 0;
    uint64_t errors = 0;
    size_t stride = s->n > 1 ? 7919 % s->n : 0;
    if (stride == 0) {
        stride = 1;
    }
    int64_t wall = 0;
    cpu_begin(s);
    int64_t self0 = self_ticks();
    for (uint64_t p = 0; p < pushes; p++) {
        size_t target = (size_t) ((p * stride) % s->n);
        const char *vm = to_all ? NULL : s->hosts[target].vms[0];
        char key[128];
        snprintf(key, sizeof key, "%s%s/%" PRIu64, prefix,
                 to_all ? "all" : "one", p);
        sim_snapshot(s);
        struct fo_txn txn = { .done = false };
        int64_t t0 = bench_now();
        ovsdb_replica_transact(s->writer, record_ops(vm, key, "\"sim\""),
                               fo_txn_cb, &txn);
        size_t n_have = 0;
        int64_t t_first = 0, t_last = 0;
        bool *have = calloc(s->n, sizeof *have);
        for (;;) {
            sim_loop(s, 5);
            if (bench_now() > deadline) {
                bench_fatal("simhosts: push %s not seen in time (%zu "
                            "hosts have it)", key, n_have);
            }
            if (txn.done && !txn.ok) {
                bench_fatal("simhosts: push %s: %s", key, txn.error);
            }
            for (size_t i = 0; i < s->n; i++) {
                if ((to_all || i == target) && !have[i]
                    && simhost_has_key(&s->hosts[i], key)) {
                    have[i] = true;
                    n_have++;
                    t_last = bench_now();
                    if (!t_first) {
                        t_first = t_last;
                    }
                }
            }
            if (txn.done && n_have == (to_all ? s->n : 1)) {
                break;
            }
        }
        free(have);
        int64_t t_end = bench_now() + (int64_t) settle_ms * 1000000;
        while (bench_now() < t_end) {
            sim_loop(s, 5);
        }
        wall += bench_now() - t0;
        json_array_append_new(lat, json_integer(t_first - t0));
        json_array_append_new(lat_last, json_integer(t_last - t0));
        for (size_t i = 0; i < s->n; i++) {
            uint64_t b, r;
            simhost_counters(&s->hosts[i], &b, &r);
            b -= s->hosts[i].bytes0;
            r -= s->hosts[i].rows0;
            if (to_all || i == target) {
                json_array_append_new(serve_bytes, json_integer(b));
                json_array_append_new(serve_rows, json_integer(r));
            } else {
                other_bytes += b;
                other_rows += r;
                other_samples++;
                other_bytes_max = b > other_bytes_max ? b : other_bytes_max;
                other_rows_max = r > other_rows_max ? r : other_rows_max;
                other_nonzero += b > 0;
            }
        }
    }
    (void) errors;
    int64_t self1 = self_ticks();
    return json_pack(
        "{sI so so so so s{sI sI sI sI sI sI} so sI sI}",
        "pushes", (json_int_t) pushes,
        "serving_bytes", serve_bytes,
        "serving_row_updates", serve_rows,
        "t_first_ns", lat,
        "t_last_ns", lat_last,
        "others",
        "samples", (json_int_t) other_samples,
        "bytes", (json_int_t) other_bytes,
        "bytes_max", (json_int_t) other_bytes_max,
        "nonzero_bytes_samples", (json_int_t) other_nonzero,
        "row_updates", (json_int_t) other_rows,
        "row_updates_max", (json_int_t) other_rows_max,
        "cpu_ticks", cpu_end(s),
        "self_cpu_ticks", (json_int_t) (self1 - self0),
        "wall_ns", (json_int_t) wall);
}

/* simhosts REMOTES --hosts N [--vms-per-host V] [--pushes P] [--cpu
 * NAME=PID]...: see the top of this file and doc/bench.md. */
int
bench_cmd_simhosts(int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, CL_OPT_HOSTS},
        {"vms-per-host", required_argument, NULL, CL_OPT_VMS_PER_HOST},
        {"pushes", required_argument, NULL, CL_OPT_PUSHES},
        {"prefix", required_argument, NULL, CL_OPT_PREFIX},
        {"settle-ms", required_argument, NULL, CL_OPT_SETTLE},
        {"idle-ms", required_argument, NULL, CL_OPT_IDLE},
        {"cpu", required_argument, NULL, CL_OPT_CPU},
        {"timeout-s", required_argument, NULL, CL_OPT_TIMEOUT},
        TLS_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    uint64_t n = 10, vph = 2, pushes = 10, settle_ms = 100, idle_ms = 2000;
    const char *prefix = "sim/";
    double timeout = 300;
    struct sim s;
    memset(&s, 0, sizeof s);
    s.cpus = calloc(argc, sizeof *s.cpus);
    int c, idx;
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        switch (c) {
        case CL_OPT_HOSTS: n = bench_arg_u64("--hosts", optarg); break;
        case CL_OPT_VMS_PER_HOST:
            vph = bench_arg_u64("--vms-per-host", optarg);
            break;
        case CL_OPT_PUSHES: pushes = bench_arg_u64("--pushes", optarg); break;
        case CL_OPT_PREFIX: prefix = optarg; break;
        case CL_OPT_SETTLE:
            settle_ms = bench_arg_u64("--settle-ms", optarg);
            break;
        case CL_OPT_IDLE: idle_ms = bench_arg_u64("--idle-ms", optarg); break;
        case CL_OPT_TIMEOUT:
            timeout = bench_arg_double("--timeout-s", optarg);
            break;
        case CL_OPT_CPU: {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                bench_fatal("--cpu NAME=PID");
            }
            s.cpus[s.n_cpus].name = strndup(optarg, eq - optarg);
            s.cpus[s.n_cpus].pid = (long) bench_arg_u64("--cpu", eq + 1);
            s.n_cpus++;
            break;
        }
        case CL_OPT_TLS: bench_tls_option(longopts[idx].name, optarg); break;
        default: exit(2);
        }
    }
    if (argc - optind != 1 || !n || !vph) {
        bench_fatal("simhosts: REMOTES --hosts N ...");
    }
    const char *remotes = argv[optind];
    quiet_logs();

    /* A socket per host, and some for the rest. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < n + 64) {
        rl.rlim_cur = n + 64 > rl.rlim_max ? rl.rlim_max : n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    int64_t deadline = bench_now() + (int64_t) (timeout * 1e9);
    s.n = n;
    s.hosts = calloc(n, sizeof *s.hosts);
    s.all = calloc(n + 1, sizeof *s.all);
    int64_t t_start = bench_now();
    for (size_t i = 0; i < n; i++) {
        struct simhost *h = &s.hosts[i];
        snprintf(h->name, sizeof h->name, "simhv%zu", i);
        h->vms = calloc(vph, sizeof *h->vms);
        for (size_t v = 0; v < vph; v++) {
            if (asprintf(&h->vms[v], "sim-h%zu-v%zu", i, v) < 0) {
                abort();
            }
        }
        h->r = ovsdb_replica_create("Chan");
        simhost_declare(h->r, h->name, h->vms, vph);
        /* As chand-host does for tcp: and ssl: remotes. */
        ovsdb_replica_set_probe_interval(h->r, 5000);
        ovsdb_replica_connect(h->r, remotes);
        s.all[i] = h->r;
    }
    s.writer = ovsdb_replica_create("Chan");
    struct ovsdb_replica_table *wt = ovsdb_replica_add_table(s.writer,
                                                             "Record");
    ovsdb_replica_add_column(wt, "key", NULL);
    json_t *none = json_pack("[b]", false);
    ovsdb_replica_set_condition(wt, none);
    json_decref(none);
    ovsdb_replica_set_leader_only(s.writer, true);
    ovsdb_replica_connect(s.writer, remotes);
    s.all[n] = s.writer;

    /* Every host connected, synced and its conditions acknowledged. */
    size_t n_ready = 0;
    while (n_ready < n || !ovsdb_replica_is_synced(s.writer)) {
        if (bench_now() > deadline) {
            bench_fatal("simhosts: %zu of %" PRIu64 " hosts ready in time",
                        n_ready, n);
        }
        sim_loop(&s, 50);
        n_ready = 0;
        for (size_t i = 0; i < n; i++) {
            n_ready += (ovsdb_replica_is_synced(s.hosts[i].r)
                        && !ovsdb_replica_cond_pending(s.hosts[i].r));
        }
    }
    int64_t t_ready = bench_now();
    json_t *members = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *rem = ovsdb_replica_get_remote(s.hosts[i].r);
        json_t *cnt = json_object_get(members, rem ? rem : "?");
        json_object_set_new(members, rem ? rem : "?",
                            json_integer(json_integer_value(cnt) + 1));
    }

    /* Idle: what a host receives with no push at all. */
    sim_snapshot(&s);
    int64_t t_idle = bench_now();
    cpu_begin(&s);
    while (bench_now() < t_idle + (int64_t) idle_ms * 1000000) {
        sim_loop(&s, 50);
    }
    json_t *idle_cpu = cpu_end(&s);
    uint64_t idle_bytes = 0, idle_rows = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b, r;
        simhost_counters(&s.hosts[i], &b, &r);
        idle_bytes += b - s.hosts[i].bytes0;
        idle_rows += r - s.hosts[i].rows0;
    }
    double idle_s = (bench_now() - t_idle) / 1e9;

    json_t *one = sim_phase(&s, prefix, false, pushes, settle_ms, deadline);
    json_t *all = sim_phase(&s, prefix, true, pushes, settle_ms, deadline);

    /* Leave the Chan DB as it was. */
    json_t *ops = json_array();
    json_array_append_new(ops, ovsdb_op_delete(
        "Record", json_pack("[[ss[s[]]]]", "vm", "==", "set")));
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(ops, ovsdb_op_delete(
            "Record", json_pack("[[sss]]", "vm", "==", s.hosts[i].vms[0])));
    }
    struct fo_txn txn = { .done = false };
    ovsdb_replica_transact(s.writer, ops, fo_txn_cb, &txn);
    while (!txn.done && bench_now() < deadline) {
        sim_loop(&s, 20);
    }

    struct ovsdb_replica_stats st;
    uint64_t connects = 0, syncs = 0;
    for (size_t i = 0; i < n; i++) {
        ovsdb_replica_get_stats(s.hosts[i].r, &st);
        connects += st.n_connects;
        syncs += st.n_syncs;
    }
    bench_print_json(json_pack(
        "{sI sI sI sf so s{sf sI sI so} so so sI sI sb}",
        "hosts", (json_int_t) n,
        "vms_per_host", (json_int_t) vph,
        "settle_ms", (json_int_t) settle_ms,
        "connect_s", (t_ready - t_start) / 1e9,
        "hosts_per_member", members,
        "idle",
        "seconds", idle_s,
        "bytes", (json_int_t) idle_bytes,
        "row_updates", (json_int_t) idle_rows,
        "cpu_ticks", idle_cpu,
        "one_vm", one,
        "all_vms", all,
        "connects", (json_int_t) connects,
        "full_syncs", (json_int_t) syncs,
        "cleanup_ok", txn.done && txn.ok));
    for (size_t i = 0; i <= n; i++) {
        ovsdb_replica_destroy(s.all[i]);
    }
    return 0;
}
