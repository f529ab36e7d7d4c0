/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * Chan DB roles: push (bulk inserts), pushrate (updates at an offered
 * rate), pushbig (one huge value), cpwrite (ovsdb-client transact),
 * grwatch (a monitor of Guest_Record, and of relayed Record rows). */

#include <config.h>
#include "chand-bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "stream.h"
#include "vlog.h"

extern char **environ;

/* An OVSDB connection with its own poll(2) loop (sub-millisecond pacing
 * needs more than poll-loop's millisecond timers). */
struct dbc {
    struct jsonrpc *rpc;
    int fd;
    const char *vm;             /* Channel row to follow, or NULL. */
    json_t *monitor_id;         /* Id of the monitor request, or NULL. */
    bool monitor_ready;
    int64_t applied_count;      /* Latest Channel row values. */
    int64_t desired_count;
    bool synced;
    uint64_t replies, errors;
    char first_error[256];
    json_t *last_result;        /* Result of the latest transact reply. */
    struct grwatch *grw;        /* grwatch's state, or NULL. */
};

static void grwatch_rows(struct grwatch *, const json_t *updates, bool
                         initial);

static void
dbc_open(struct dbc *db, const char *name)
{
    struct stream *stream;
    memset(db, 0, sizeof *db);
    int error = stream_open_block(name, &stream);
    if (error) {
        bench_fatal("%s: %s", name, strerror(error));
    }
    db->fd = stream_get_fd(stream);
    db->rpc = jsonrpc_open(stream);
}

static void
dbc_close(struct dbc *db)
{
    jsonrpc_close(db->rpc);
    json_decref(db->monitor_id);
    json_decref(db->last_result);
}

static void
dbc_send(struct dbc *db, json_t *msg)
{
    int error = jsonrpc_send(db->rpc, msg);
    if (error) {
        bench_fatal("sending to the Chan DB: %s", strerror(error));
    }
}

static void
note_error(struct dbc *db, const json_t *error)
{
    db->errors++;
    if (!db->first_error[0]) {
        char *text = json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(db->first_error, sizeof db->first_error, "%s",
                 text ? text : "?");
        free(text);
    }
}

static void
channel_rows(struct dbc *db, const json_t *updates)
{
    const json_t *rows = json_object_get(updates, "Channel");
    const char *uuid;
    json_t *row;
    json_object_foreach ((json_t *) rows, uuid, row) {
        json_t *new = json_object_get(row, "new");
        const char *vm = json_string_value(json_object_get(new, "vm"));
        if (vm && db->vm && !strcmp(vm, db->vm)) {
            db->applied_count = json_integer_value(
                json_object_get(new, "applied_count"));
            db->desired_count = json_integer_value(
                json_object_get(new, "desired_count"));
            db->synced = json_is_true(json_object_get(new, "synced"));
        }
    }
}

static void
dbc_handle(struct dbc *db, json_t *msg)
{
    const char *method = jsonrpc_msg_method(msg);
    enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
    if (type == JSONRPC_REQUEST && method && !strcmp(method, "echo")) {
        dbc_send(db, jsonrpc_create_reply(
                     json_incref(jsonrpc_msg_params(msg)),
                     jsonrpc_msg_id(msg)));
    } else if (type == JSONRPC_NOTIFY && method
               && !strcmp(method, "update")) {
        if (db->grw) {
            grwatch_rows(db->grw, json_array_get(jsonrpc_msg_params(msg), 1),
                         false);
        } else {
            channel_rows(db, json_array_get(jsonrpc_msg_params(msg), 1));
        }
    } else if ((type == JSONRPC_REPLY || type == JSONRPC_ERROR)
               && db->monitor_id
               && jsonrpc_id_equal(jsonrpc_msg_id(msg), db->monitor_id)) {
        if (type == JSONRPC_ERROR) {
            char *text = json_dumps(msg, JSON_COMPACT);
            bench_fatal("monitor failed: %s", text ? text : "?");
        }
        if (db->grw) {
            grwatch_rows(db->grw, jsonrpc_msg_result(msg), true);
        } else {
            channel_rows(db, jsonrpc_msg_result(msg));
        }
        db->monitor_ready = true;
    } else if (type == JSONRPC_ERROR) {
        db->replies++;
        note_error(db, jsonrpc_msg_error(msg));
    } else if (type == JSONRPC_REPLY) {
        db->replies++;
        json_t *result = jsonrpc_msg_result(msg);
        size_t i;
        json_t *op;
        json_array_foreach (result, i, op) {
            json_t *error = json_object_get(op, "error");
            if (error) {
                note_error(db, op);
                break;
            }
            json_t *count = json_object_get(op, "count");
            if (count && !json_integer_value(count)) {
                note_error(db, json_string("update matched no row"));
                break;
            }
        }
        json_decref(db->last_result);
        db->last_result = json_incref(result);
    }
}

/* Processes what has arrived, then waits for more until 'deadline'
 * (CLOCK_MONOTONIC ns; 0: do not wait).  Returns false at the deadline. */
static bool
dbc_step(struct dbc *db, int64_t deadline)
{
    bool any = false;
    for (;;) {
        json_t *msg;
        jsonrpc_run(db->rpc);
        int error = jsonrpc_recv(db->rpc, &msg);
        if (!error) {
            dbc_handle(db, msg);
            json_decref(msg);
            any = true;
            continue;
        } else if (error != EAGAIN) {
            bench_fatal("Chan DB connection: %s",
                        error == EOF ? "closed" : strerror(error));
        }
        break;
    }
    if (any) {
        return true;
    }
    int64_t now = bench_now();
    if (now >= deadline) {
        return false;
    }
    struct pollfd pfd = { .fd = db->fd, .events = POLLIN };
    if (jsonrpc_get_backlog(db->rpc)) {
        pfd.events |= POLLOUT;
    }
    struct timespec ts = { .tv_sec = (deadline - now) / 1000000000,
                           .tv_nsec = (deadline - now) % 1000000000 };
    ppoll(&pfd, 1, &ts, NULL);
    return true;
}

/* Sends a "monitor" of the Channel table for 'vm' and waits for its
 * initial contents. */
static void
dbc_monitor(struct dbc *db, const char *vm)
{
    db->vm = vm;
    json_t *req = jsonrpc_create_request(
        "monitor",
        json_pack("[s s {s{s[ssss]}}]", "Chan", "bench-channel", "Channel",
                  "columns", "vm", "applied_count", "desired_count",
                  "synced"),
        &db->monitor_id);
    dbc_send(db, req);
    int64_t deadline = bench_now() + 10000000000LL;
    while (!db->monitor_ready) {
        if (!dbc_step(db, deadline)) {
            bench_fatal("no answer to monitor");
        }
    }
}

/* Waits until the Channel row of the monitored VM shows at least 'target'
 * applied keys and synced.  Returns the time, or 0 at the deadline. */
static int64_t
dbc_wait_applied(struct dbc *db, int64_t target, int64_t deadline)
{
    while (!(db->applied_count >= target && db->synced)) {
        if (!dbc_step(db, deadline)) {
            return 0;
        }
    }
    return bench_now();
}

static void
dbc_wait_replies(struct dbc *db, uint64_t n, int64_t deadline)
{
    while (db->replies < n) {
        if (!dbc_step(db, deadline)) {
            bench_fatal("%" PRIu64 " of %" PRIu64 " transactions answered "
                        "before the deadline", db->replies, n);
        }
    }
}

static json_t *
txn(json_t *ops)
{
    json_array_insert_new(ops, 0, json_string("Chan"));
    return jsonrpc_create_request("transact", ops, NULL);
}

/* Returns the JSON text of a value: a JSON string of exactly 'size' bytes
 * of text if 'size' >= 2, else the decimal number 'n'. */
static char *
value_text(uint64_t size, uint64_t n)
{
    char *text;
    if (size >= 2) {
        text = malloc(size + 1);
        text[0] = '"';
        memset(text + 1, 'v', size - 2);
        text[size - 1] = '"';
        text[size] = '\0';
        /* Make values differ: the sample number at the front. */
        char num[24];
        int len = snprintf(num, sizeof num, "%" PRIu64, n);
        if ((uint64_t) len + 2 <= size) {
            memcpy(text + 1, num, len);
        }
    } else if (asprintf(&text, "%" PRIu64, n) < 0) {
        abort();
    }
    return text;
}

static json_t *
insert_op(const char *vm, const char *key, const char *value,
          int64_t version)
{
    json_t *row = json_pack("{ss ss sI}", "key", key, "value", value,
                            "version", (json_int_t) version);
    if (vm) {
        json_object_set_new(row, "vm", json_string(vm));
    }
    return json_pack("{ss ss so}", "op", "insert", "table", "Record",
                     "row", row);
}

/* An insert of Record_Set 'name' for 'vm' with 'records' (stolen: an
 * object key -> JSON text) at 'version'. */
static json_t *
insert_set_op(const char *vm, const char *name, json_t *records,
              int64_t version)
{
    json_t *pairs = json_array();
    const char *key;
    json_t *value;
    json_object_foreach (records, key, value) {
        json_array_append_new(pairs, json_pack("[sO]", key, value));
    }
    json_decref(records);
    json_t *row = json_pack("{ss s[so] sI}", "name", name, "records", "map",
                            pairs, "version", (json_int_t) version);
    if (vm) {
        json_object_set_new(row, "vm", json_string(vm));
    }
    return json_pack("{ss ss so}", "op", "insert", "table", "Record_Set",
                     "row", row);
}

enum {
    OPT_VM = 256, OPT_ALL, OPT_PREFIX, OPT_COUNT, OPT_PER_TXN,
    OPT_VALUE_SIZE, OPT_WAIT_APPLIED, OPT_TIMEOUT, OPT_KEYS, OPT_RATE,
    OPT_LOG, OPT_SETTLE, OPT_INSERT, OPT_KEY, OPT_BYTES, OPT_VERSION,
    OPT_INTERVAL, OPT_RELAY_PREFIX, OPT_RELAY_LOG, OPT_READY, OPT_IDLE,
    OPT_TLS, OPT_SET,
};

static const struct option db_longopts[] = {
    {"vm", required_argument, NULL, OPT_VM},
    {"all", no_argument, NULL, OPT_ALL},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"count", required_argument, NULL, OPT_COUNT},
    {"per-txn", required_argument, NULL, OPT_PER_TXN},
    {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
    {"wait-applied", required_argument, NULL, OPT_WAIT_APPLIED},
    {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"log", required_argument, NULL, OPT_LOG},
    {"settle", required_argument, NULL, OPT_SETTLE},
    {"insert", no_argument, NULL, OPT_INSERT},
    {"set", required_argument, NULL, OPT_SET},
    {"key", required_argument, NULL, OPT_KEY},
    {"bytes", required_argument, NULL, OPT_BYTES},
    {"version", required_argument, NULL, OPT_VERSION},
    {"interval-ms", required_argument, NULL, OPT_INTERVAL},
    {"relay-prefix", required_argument, NULL, OPT_RELAY_PREFIX},
    {"relay-log", required_argument, NULL, OPT_RELAY_LOG},
    {"ready", required_argument, NULL, OPT_READY},
    {"idle-s", required_argument, NULL, OPT_IDLE},
    {"private-key", required_argument, NULL, OPT_TLS},
    {"certificate", required_argument, NULL, OPT_TLS},
    {"ca-cert", required_argument, NULL, OPT_TLS},
    {NULL, 0, NULL, 0},
};

struct db_opts {
    const char *db;
    const char *vm;             /* NULL: all VMs. */
    bool all;
    const char *prefix;
    const char *key;
    const char *log;
    const char *relay_prefix, *relay_log, *ready;
    const char *set;            /* push: Record_Set name prefix, or NULL. */
    uint64_t count, per_txn, value_size, wait_applied, keys, settle;
    uint64_t bytes, version, interval_ms;
    double timeout, rate, idle;
    bool insert;
};

static void
parse_db_opts(int argc, char *argv[], struct db_opts *o)
{
    int c, idx;
    vlog_set_levels_from_string("warn");     /* No connection chatter. */
    memset(o, 0, sizeof *o);
    o->timeout = 120;
    o->version = 1;
    o->prefix = "bench/";
    while ((c = getopt_long(argc, argv, "", db_longopts, &idx)) != -1) {
        switch (c) {
        case OPT_TLS: bench_tls_option(db_longopts[idx].name, optarg); break;
        case OPT_VM: o->vm = optarg; break;
        case OPT_ALL: o->all = true; break;
        case OPT_PREFIX: o->prefix = optarg; break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_LOG: o->log = optarg; break;
        case OPT_INSERT: o->insert = true; break;
        case OPT_SET: o->set = optarg; break;
        case OPT_COUNT: o->count = bench_arg_u64("--count", optarg); break;
        case OPT_PER_TXN:
            o->per_txn = bench_arg_u64("--per-txn", optarg);
            break;
        case OPT_VALUE_SIZE:
            o->value_size = bench_arg_u64("--value-size", optarg);
            break;
        case OPT_WAIT_APPLIED:
            o->wait_applied = bench_arg_u64("--wait-applied", optarg);
            break;
        case OPT_KEYS: o->keys = bench_arg_u64("--keys", optarg); break;
        case OPT_SETTLE: o->settle = bench_arg_u64("--settle", optarg); break;
        case OPT_BYTES: o->bytes = bench_arg_u64("--bytes", optarg); break;
        case OPT_VERSION:
            o->version = bench_arg_u64("--version", optarg);
            break;
        case OPT_INTERVAL:
            o->interval_ms = bench_arg_u64("--interval-ms", optarg);
            break;
        case OPT_TIMEOUT:
            o->timeout = bench_arg_double("--timeout-s", optarg);
            break;
        case OPT_RATE: o->rate = bench_arg_double("--rate", optarg); break;
        case OPT_RELAY_PREFIX: o->relay_prefix = optarg; break;
        case OPT_RELAY_LOG: o->relay_log = optarg; break;
        case OPT_READY: o->ready = optarg; break;
        case OPT_IDLE: o->idle = bench_arg_double("--idle-s", optarg); break;
        default: exit(2);
        }
    }
    if (argc - optind != 1) {
        bench_fatal("%s: expected the Chan DB remote (unix:PATH, ssl:IP:PORT)",
                    argv[0]);
    }
    o->db = argv[optind];
    if (!o->vm && !o->all) {
        bench_fatal("%s: give --vm VM or --all", argv[0]);
    }
}

/* push: N inserts in pipelined transactions of K; with --set NAME, each
 * transaction is one Record_Set row of its K records instead. */
int
bench_cmd_push(int argc, char *argv[])
{
    struct db_opts o;
    parse_db_opts(argc, argv, &o);
    if (!o.count) {
        bench_fatal("push: --count is required");
    }
    if (!o.per_txn || o.per_txn > o.count) {
        o.per_txn = o.count;
    }
    struct dbc db;
    int64_t base_applied = 0;
    dbc_open(&db, o.db);
    if (o.wait_applied) {
        /* --wait-applied N: until the Channel row shows N more keys
         * applied than before the push. */
        if (!o.vm) {
            bench_fatal("push: --wait-applied needs --vm");
        }
        dbc_monitor(&db, o.vm);
        base_applied = db.applied_count;
    }

    /* Build every transaction before the clock starts. */
    size_t n_txn = (o.count + o.per_txn - 1) / o.per_txn;
    json_t **txns = calloc(n_txn, sizeof *txns);
    for (size_t t = 0; t < n_txn; t++) {
        json_t *ops = json_array();
        json_t *set = o.set ? json_object() : NULL;
        for (uint64_t i = t * o.per_txn;
             i < o.count && i < (t + 1) * o.per_txn; i++) {
            char key[256];
            snprintf(key, sizeof key, "%s%08" PRIu64, o.prefix, i);
            char *value = value_text(o.value_size, i);
            if (set) {
                json_object_set_new(set, key, json_string(value));
            } else {
                json_array_append_new(ops, insert_op(o.vm, key, value,
                                                     o.version));
            }
            free(value);
        }
        if (set) {
            char name[256];
            snprintf(name, sizeof name, "%s%s%zu", o.set, o.prefix, t);
            json_array_append_new(ops, insert_set_op(o.vm, name, set,
                                                     o.version));
        }
        txns[t] = txn(ops);
    }

    int64_t deadline = bench_now() + o.timeout * 1e9;
    int64_t t_send = bench_now();
    for (size_t t = 0; t < n_txn; t++) {
        dbc_send(&db, txns[t]);
        dbc_step(&db, 0);
    }
    int64_t t_sent = bench_now();
    dbc_wait_replies(&db, n_txn, deadline);
    int64_t t_commit = bench_now();
    int64_t t_applied = 0;
    if (o.wait_applied && !db.errors) {
        t_applied = dbc_wait_applied(&db, base_applied + o.wait_applied,
                                     deadline);
    }
    free(txns);
    bench_print_json(json_pack(
        "{sI sI sI sI sI sI sI sI ss}",
        "records", (json_int_t) o.count,
        "transactions", (json_int_t) n_txn,
        "t_send", (json_int_t) t_send,
        "t_sent", (json_int_t) t_sent,
        "t_commit", (json_int_t) t_commit,
        "t_channel_applied", (json_int_t) t_applied,
        "channel_applied_count", (json_int_t) db.applied_count,
        "errors", (json_int_t) db.errors,
        "first_error", db.first_error));
    dbc_close(&db);
    return db.errors || (o.wait_applied && !t_applied) ? 1 : 0;
}

/* pushrate: one transaction per sample at an offered rate.  Either inserts
 * a new key per sample (--insert) or updates --keys pre-inserted keys
 * round-robin, bumping their version.  Logs "KEY VERSION T_SEND" per
 * sample. */
int
bench_cmd_pushrate(int argc, char *argv[])
{
    struct db_opts o;
    parse_db_opts(argc, argv, &o);
    if (!o.count || !o.rate || !o.log || (!o.insert && !o.keys)) {
        bench_fatal("pushrate: needs --count, --rate, --log and --keys or "
                    "--insert");
    }
    FILE *log = fopen(o.log, "w");
    if (!log) {
        bench_fatal("%s: %s", o.log, strerror(errno));
    }
    setvbuf(log, NULL, _IOFBF, 1 << 20);
    struct dbc db;
    dbc_open(&db, o.db);
    int64_t base_applied = 0;
    if (o.settle && o.vm) {
        /* --settle N: after inserting the keys, wait until the Channel row
         * shows N more keys applied than now. */
        dbc_monitor(&db, o.vm);
        base_applied = db.applied_count;
    }

    char **uuids = NULL;
    int64_t deadline = bench_now() + o.timeout * 1e9;
    if (!o.insert) {
        json_t *ops = json_array();
        for (uint64_t k = 0; k < o.keys; k++) {
            char key[256];
            snprintf(key, sizeof key, "%s%06" PRIu64, o.prefix, k);
            json_array_append_new(ops, insert_op(o.vm, key, "0", 1));
        }
        dbc_send(&db, txn(ops));
        dbc_wait_replies(&db, 1, deadline);
        if (db.errors) {
            bench_fatal("pushrate: inserting the keys: %s", db.first_error);
        }
        uuids = calloc(o.keys, sizeof *uuids);
        for (uint64_t k = 0; k < o.keys; k++) {
            json_t *u = json_array_get(json_object_get(
                json_array_get(db.last_result, k), "uuid"), 1);
            if (!json_is_string(u)) {
                bench_fatal("pushrate: no uuid in the insert reply");
            }
            uuids[k] = strdup(json_string_value(u));
        }
        db.replies = 0;
        if (o.settle && o.vm) {
            if (!dbc_wait_applied(&db, base_applied + o.settle, deadline)) {
                bench_fatal("pushrate: keys not applied before the "
                            "deadline");
            }
        } else {
            bench_sleep_until(bench_now() + 1000000000);
        }
    }

    struct bench_pacer pacer = { .start = bench_now(), .rate = o.rate };
    uint64_t sent = 0;
    int64_t max_lag = 0;
    while (sent < o.count && !bench_stop) {
        int64_t now = bench_now();
        uint64_t due = bench_pacer_due(&pacer, now);
        while (sent < o.count && sent < due) {
            char key[256];
            int64_t version;
            json_t *op;
            char *value = value_text(o.value_size, sent);
            if (o.insert) {
                snprintf(key, sizeof key, "%s%06" PRIu64, o.prefix, sent);
                version = 1;
                op = insert_op(o.vm, key, value, version);
            } else {
                uint64_t k = sent % o.keys;
                snprintf(key, sizeof key, "%s%06" PRIu64, o.prefix, k);
                version = 2 + sent / o.keys;
                op = json_pack("{ss ss s[[ss[ss]]] s{ss sI}}",
                               "op", "update", "table", "Record",
                               "where", "_uuid", "==", "uuid", uuids[k],
                               "row", "value", value,
                               "version", (json_int_t) version);
            }
            free(value);
            json_t *req = txn(json_pack("[o]", op));
            int64_t t = bench_now();
            dbc_send(&db, req);
            fprintf(log, "%s %" PRId64 " %" PRId64 "\n", key, version, t);
            int64_t lag = t - bench_pacer_time_of(&pacer, sent);
            if (lag > max_lag) {
                max_lag = lag;
            }
            sent++;
        }
        int64_t next = bench_pacer_time_of(&pacer, sent);
        while (sent < o.count && bench_now() < next) {
            dbc_step(&db, next);
        }
    }
    int64_t t_end = bench_now();
    dbc_wait_replies(&db, sent, bench_now() + o.timeout * 1e9);
    fclose(log);
    bench_print_json(json_pack(
        "{sI sI sI sf sf sI ss}",
        "sent", (json_int_t) sent,
        "t_start", (json_int_t) pacer.start,
        "t_end", (json_int_t) t_end,
        "achieved_rate", sent / ((t_end - pacer.start) / 1e9 + 1e-9),
        "max_send_lag_ms", max_lag / 1e6,
        "errors", (json_int_t) db.errors,
        "first_error", db.first_error));
    for (uint64_t k = 0; uuids && k < o.keys; k++) {
        free(uuids[k]);
    }
    free(uuids);
    dbc_close(&db);
    return db.errors ? 1 : 0;
}

/* pushbig: one insert whose value is a JSON string of exactly --bytes bytes
 * of text, written to the socket as raw JSON (lib/jsonrpc would refuse to
 * send more than JSONRPC_MAX_MSG). */
int
bench_cmd_pushbig(int argc, char *argv[])
{
    struct db_opts o;
    parse_db_opts(argc, argv, &o);
    if (!o.key || o.bytes < 2 || !o.vm) {
        bench_fatal("pushbig: needs --vm, --key and --bytes (>= 2)");
    }
    /* The Record's value column holds the JSON text "vvvv...v" (with the
     * quotes); in the OVSDB request that string is escaped: \"vvv...v\". */
    char *head = NULL, *tail = "\\\"\"}}],\"id\":1}";
    if (asprintf(&head, "{\"method\":\"transact\",\"params\":[\"Chan\","
                 "{\"op\":\"insert\",\"table\":\"Record\",\"row\":"
                 "{\"key\":\"%s\",\"vm\":\"%s\",\"version\":%" PRIu64 ","
                 "\"value\":\"\\\"", o.key, o.vm, o.version) < 0) {
        abort();
    }
    size_t body = o.bytes - 2;
    size_t len = strlen(head) + body + strlen(tail);
    char *msg = malloc(len);
    memcpy(msg, head, strlen(head));
    memset(msg + strlen(head), 'v', body);
    memcpy(msg + strlen(head) + body, tail, strlen(tail));

    struct stream *stream;
    int error = stream_open_block(o.db, &stream);
    if (error) {
        bench_fatal("%s: %s", o.db, strerror(error));
    }
    int fd = stream_get_fd(stream);
    int64_t t_send = bench_now();
    size_t ofs = 0;
    while (ofs < len) {
        ssize_t n = stream_send(stream, msg + ofs, len - ofs);
        if (n == -EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, 1000);
        } else if (n < 0) {
            bench_fatal("pushbig: send: %s", strerror(-n));
        } else {
            ofs += n;
        }
    }
    int64_t t_sent = bench_now();
    struct jsonrpc *rpc = jsonrpc_open(stream);
    json_t *reply;
    error = jsonrpc_recv_block(rpc, &reply);
    int64_t t_commit = bench_now();
    char *text = NULL;
    if (!error) {
        json_t *res = jsonrpc_msg_result(reply);
        json_t *err = json_object_get(json_array_get(res, 0), "error");
        if (jsonrpc_msg_type(reply) == JSONRPC_ERROR || err) {
            text = json_dumps(reply, JSON_COMPACT);
        }
        json_decref(reply);
    }
    jsonrpc_close(rpc);
    free(msg);
    free(head);
    bench_print_json(json_pack(
        "{sI sI sI sI sI ss}",
        "bytes", (json_int_t) o.bytes,
        "request_bytes", (json_int_t) len,
        "t_send", (json_int_t) t_send,
        "t_sent", (json_int_t) t_sent,
        "t_commit", (json_int_t) t_commit,
        "error", error ? strerror(error) : text ? text : ""));
    int rc = error || text ? 1 : 0;
    free(text);
    return rc;
}

/* Runs ovsdb-client transact DB OPS; returns its exit status. */
static int
run_ovsdb_client(const char *db, const char *ops)
{
    char *argv[] = { "ovsdb-client", "transact", (char *) db, (char *) ops,
                     NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int error = posix_spawnp(&pid, "ovsdb-client", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (error) {
        bench_fatal("ovsdb-client: %s", strerror(error));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        continue;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* cpwrite: the control plane's view: `ovsdb-client transact` updating one
 * key, once per sample.  Logs "KEY VERSION T_START T_EXIT". */
int
bench_cmd_cpwrite(int argc, char *argv[])
{
    struct db_opts o;
    parse_db_opts(argc, argv, &o);
    if (!o.key || !o.count || !o.log) {
        bench_fatal("cpwrite: needs --key, --count and --log");
    }
    FILE *log = fopen(o.log, "w");
    if (!log) {
        bench_fatal("%s: %s", o.log, strerror(errno));
    }
    char *vm = o.vm ? json_dumps(json_string(o.vm), JSON_ENCODE_ANY)
                    : strdup("[\"set\",[]]");
    char *ops;
    if (asprintf(&ops, "[\"Chan\",{\"op\":\"insert\",\"table\":\"Record\","
                 "\"row\":{\"key\":\"%s\",\"vm\":%s,\"version\":1,"
                 "\"value\":\"0\"}}]", o.key, vm) < 0) {
        abort();
    }
    if (run_ovsdb_client(o.db, ops)) {
        bench_fatal("cpwrite: ovsdb-client insert failed");
    }
    free(ops);
    bench_sleep_until(bench_now() + 500000000);

    uint64_t failures = 0;
    for (uint64_t i = 0; i < o.count && !bench_stop; i++) {
        int64_t version = 2 + i;
        if (asprintf(&ops, "[\"Chan\",{\"op\":\"update\",\"table\":"
                     "\"Record\",\"where\":[[\"key\",\"==\",\"%s\"],"
                     "[\"vm\",\"==\",%s]],\"row\":{\"version\":%" PRId64
                     ",\"value\":\"%" PRId64 "\"}}]", o.key, vm, version,
                     version) < 0) {
            abort();
        }
        int64_t t0 = bench_now();
        int rc = run_ovsdb_client(o.db, ops);
        int64_t t1 = bench_now();
        free(ops);
        if (rc) {
            failures++;
        }
        fprintf(log, "%s %" PRId64 " %" PRId64 " %" PRId64 "\n", o.key,
                version, t0, t1);
        bench_sleep_until(t1 + (int64_t) o.interval_ms * 1000000);
    }
    fclose(log);
    free(vm);
    bench_print_json(json_pack("{sI sI}", "samples", (json_int_t) o.count,
                               "failures", (json_int_t) failures));
    return failures ? 1 : 0;
}

/* --- grwatch ------------------------------------------------------------ */

struct grwatch {
    const char *vm, *prefix, *relay_prefix;
    FILE *log, *relay_log;
    uint64_t rows, relayed, initial;
    int64_t t_first, t_last, t_relay_last;
};

/* Logs "KEY VERSION T" for each row of 'table' in 'updates' (a monitor
 * update or the initial contents) whose key starts with 'prefix' and, if
 * 'vm' is nonnull, whose vm is 'vm': an insert, or a modify that changed
 * the version.  Returns how many it logged. */
static uint64_t
grwatch_table(const json_t *updates, const char *table, const char *vm,
              const char *prefix, FILE *log, int64_t t)
{
    const json_t *rows = json_object_get(updates, table);
    const char *uuid;
    json_t *row;
    uint64_t n = 0;
    size_t plen = strlen(prefix);
    json_object_foreach ((json_t *) rows, uuid, row) {
        json_t *new = json_object_get(row, "new");
        json_t *old = json_object_get(row, "old");
        const char *key = json_string_value(json_object_get(new, "key"));
        if (!key || strncmp(key, prefix, plen)) {
            continue;           /* A delete, or another key. */
        }
        if (vm) {
            const char *v = json_string_value(json_object_get(new, "vm"));
            if (!v || strcmp(v, vm)) {
                continue;
            }
        }
        if (old && !json_object_get(old, "version")) {
            continue;           /* Modified, but not a new version. */
        }
        if (log) {
            fprintf(log, "%s %" PRId64 " %" PRId64 "\n", key,
                    (int64_t) json_integer_value(json_object_get(new,
                                                                 "version")),
                    t);
        }
        n++;
    }
    return n;
}

static void
grwatch_rows(struct grwatch *g, const json_t *updates, bool initial)
{
    int64_t t = bench_now();
    if (initial) {
        g->initial = grwatch_table(updates, "Guest_Record", g->vm, g->prefix,
                                   NULL, t);
        return;
    }
    uint64_t n = grwatch_table(updates, "Guest_Record", g->vm, g->prefix,
                               g->log, t);
    if (n) {
        if (!g->rows) {
            g->t_first = t;
        }
        g->rows += n;
        g->t_last = t;
    }
    if (g->relay_prefix) {
        n = grwatch_table(updates, "Record", NULL, g->relay_prefix,
                          g->relay_log, t);
        if (n) {
            g->relayed += n;
            g->t_relay_last = t;
        }
    }
}

/* grwatch: monitors the Chan DB's Guest_Record table (and with
 * --relay-prefix the Record table too) and logs, when each update reaches
 * this client, "KEY VERSION T" for each new version of a row of --vm whose
 * key starts with --prefix (--log), and of a Record row whose key starts
 * with --relay-prefix (--relay-log: the records chand-host relayed).  The
 * rows present when the monitor starts are not logged.  Stops after
 * --count Guest_Record rows (and --count relayed rows with
 * --relay-prefix), after --idle-s without any (once one came), at
 * --timeout-s, or on SIGTERM; exits 1 if --count was not reached. */
int
bench_cmd_grwatch(int argc, char *argv[])
{
    struct db_opts o;
    parse_db_opts(argc, argv, &o);
    if (!o.vm) {
        bench_fatal("grwatch: needs --vm");
    }
    struct grwatch g = { .vm = o.vm, .prefix = o.prefix,
                         .relay_prefix = o.relay_prefix };
    if (o.log && !(g.log = fopen(o.log, "w"))) {
        bench_fatal("%s: %s", o.log, strerror(errno));
    }
    if (o.relay_log && !(g.relay_log = fopen(o.relay_log, "w"))) {
        bench_fatal("%s: %s", o.relay_log, strerror(errno));
    }
    if (g.log) {
        setvbuf(g.log, NULL, _IOFBF, 1 << 20);
    }
    if (g.relay_log) {
        setvbuf(g.relay_log, NULL, _IOFBF, 1 << 20);
    }
    struct dbc db;
    dbc_open(&db, o.db);
    db.grw = &g;
    json_t *mon = json_pack("{s{s[sss]}}", "Guest_Record", "columns", "vm",
                            "key", "version");
    if (o.relay_prefix) {
        json_object_set_new(mon, "Record", json_pack("{s[sss]}", "columns",
                                                     "vm", "key",
                                                     "version"));
    }
    dbc_send(&db, jsonrpc_create_request(
                 "monitor", json_pack("[s s o]", "Chan", "bench-grwatch",
                                      mon), &db.monitor_id));
    int64_t deadline = bench_now() + 10000000000LL;
    while (!db.monitor_ready) {
        if (!dbc_step(&db, deadline)) {
            bench_fatal("grwatch: no answer to monitor");
        }
    }
    if (o.ready) {
        int fd = open(o.ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
        if (fd < 0) {
            bench_fatal("%s: %s", o.ready, strerror(errno));
        }
        close(fd);
    }

    const char *end = "count";
    deadline = bench_now() + o.timeout * 1e9;
    while (!o.count || g.rows < o.count
           || (o.relay_prefix && g.relayed < o.count)) {
        int64_t now = bench_now();
        if (bench_stop) {
            end = "signal";
            break;
        }
        if (now >= deadline) {
            end = "timeout";
            break;
        }
        int64_t t_any = g.t_last > g.t_relay_last ? g.t_last
                                                  : g.t_relay_last;
        if (o.idle > 0 && t_any && now - t_any > o.idle * 1e9) {
            end = "idle";
            break;
        }
        int64_t wake = now + 50000000;
        dbc_step(&db, wake < deadline ? wake : deadline);
    }
    if (g.log) {
        fclose(g.log);
    }
    if (g.relay_log) {
        fclose(g.relay_log);
    }
    bench_print_json(json_pack(
        "{sI sI sI sI sI sI ss}",
        "rows", (json_int_t) g.rows,
        "relayed", (json_int_t) g.relayed,
        "initial", (json_int_t) g.initial,
        "t_first", (json_int_t) g.t_first,
        "t_last", (json_int_t) g.t_last,
        "t_relay_last", (json_int_t) g.t_relay_last,
        "end", end));
    dbc_close(&db);
    return !strcmp(end, "count") ? 0 : 1;
}
