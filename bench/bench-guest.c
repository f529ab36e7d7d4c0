/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * Guest-side roles: watch (the local API's change notifications) and
 * dbpoll (the datastore's applied-ops counter, committed state only). */

#include <config.h>
#include "chand-bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonrpc.h"
#include "stream.h"

enum {
    OPT_PREFIX = 256, OPT_COUNT, OPT_LOG, OPT_READY, OPT_TIMEOUT,
    OPT_INTERVAL, OPT_IDLE,
};

static const struct option guest_longopts[] = {
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"count", required_argument, NULL, OPT_COUNT},
    {"log", required_argument, NULL, OPT_LOG},
    {"ready", required_argument, NULL, OPT_READY},
    {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
    {"interval-us", required_argument, NULL, OPT_INTERVAL},
    {"idle-s", required_argument, NULL, OPT_IDLE},
    {NULL, 0, NULL, 0},
};

struct guest_opts {
    const char *prefix, *log, *ready;
    uint64_t count, interval_us;
    double timeout, idle;
};

static const char *
parse_guest_opts(int argc, char *argv[], struct guest_opts *o)
{
    int c;
    memset(o, 0, sizeof *o);
    o->prefix = "";
    o->timeout = 120;
    o->interval_us = 500;
    while ((c = getopt_long(argc, argv, "", guest_longopts, NULL)) != -1) {
        switch (c) {
        case OPT_PREFIX: o->prefix = optarg; break;
        case OPT_LOG: o->log = optarg; break;
        case OPT_READY: o->ready = optarg; break;
        case OPT_COUNT: o->count = bench_arg_u64("--count", optarg); break;
        case OPT_INTERVAL:
            o->interval_us = bench_arg_u64("--interval-us", optarg);
            break;
        case OPT_TIMEOUT:
            o->timeout = bench_arg_double("--timeout-s", optarg);
            break;
        case OPT_IDLE: o->idle = bench_arg_double("--idle-s", optarg); break;
        default: exit(2);
        }
    }
    if (argc - optind != 1) {
        bench_fatal("%s: expected one argument", argv[0]);
    }
    return argv[optind];
}

/* watch: logs "KEY VERSION T" (VERSION -1 for a delete) when each change
 * notification arrives.  Stops after --count notifications, after
 * --idle-s without one (once one came), at --timeout-s, or on SIGTERM. */
int
bench_cmd_watch(int argc, char *argv[])
{
    struct guest_opts o;
    const char *api = parse_guest_opts(argc, argv, &o);
    char *name;
    if (asprintf(&name, "%s%s", strncmp(api, "unix:", 5) ? "unix:" : "",
                 api) < 0) {
        abort();
    }
    FILE *log = NULL;
    if (o.log) {
        log = fopen(o.log, "w");
        if (!log) {
            bench_fatal("%s: %s", o.log, strerror(errno));
        }
        setvbuf(log, NULL, _IOFBF, 1 << 20);
    }
    struct stream *stream;
    int error = stream_open_block(name, &stream);
    if (error) {
        bench_fatal("watch: %s: %s", name, strerror(error));
    }
    int fd = stream_get_fd(stream);
    struct jsonrpc *rpc = jsonrpc_open(stream);
    json_t *reply;
    error = jsonrpc_transact_block(
        rpc, jsonrpc_create_request("watch", json_pack("[s]", o.prefix),
                                    NULL), &reply);
    if (error || jsonrpc_msg_type(reply) != JSONRPC_REPLY) {
        bench_fatal("watch: request failed");
    }
    json_decref(reply);
    bench_touch(o.ready);

    uint64_t n = 0, deletes = 0;
    int64_t t_first = 0, t_last = 0;
    int64_t deadline = bench_now() + o.timeout * 1e9;
    const char *end = "count";
    while (!o.count || n < o.count) {
        json_t *msg;
        jsonrpc_run(rpc);
        error = jsonrpc_recv(rpc, &msg);
        if (!error) {
            int64_t t = bench_now();
            const char *method = jsonrpc_msg_method(msg);
            if (method && !strcmp(method, "update")) {
                json_t *p = json_array_get(jsonrpc_msg_params(msg), 0);
                const char *key = json_string_value(json_object_get(p,
                                                                    "key"));
                const char *op = json_string_value(json_object_get(p, "op"));
                json_t *v = json_object_get(p, "version");
                bool del = op && !strcmp(op, "delete");
                deletes += del;
                if (log && key) {
                    fprintf(log, "%s %" PRId64 " %" PRId64 "\n", key,
                            del ? (int64_t) -1
                                : (int64_t) json_integer_value(v), t);
                }
                if (!n) {
                    t_first = t;
                }
                n++;
                t_last = t;
            }
            json_decref(msg);
            continue;
        } else if (error != EAGAIN) {
            end = error == EOF ? "closed by chand-guest" : strerror(error);
            break;
        }
        int64_t now = bench_now();
        if (bench_stop) {
            end = "signal";
            break;
        }
        if (now > deadline) {
            end = "timeout";
            break;
        }
        if (o.idle > 0 && n && now - t_last > o.idle * 1e9) {
            end = "idle";
            break;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        poll(&pfd, 1, 50);
    }
    if (log) {
        fclose(log);
    }
    jsonrpc_close(rpc);
    free(name);
    bench_print_json(json_pack("{sI sI sI sI ss}",
                               "notifications", (json_int_t) n,
                               "deletes", (json_int_t) deletes,
                               "t_first", (json_int_t) t_first,
                               "t_last", (json_int_t) t_last,
                               "end", end));
    return 0;
}

/* dbpoll: polls the datastore's channel.ops_applied, which chand-guest
 * advances in the same transaction as the records it applies, so what
 * this sees is committed (and, with synchronous=FULL, durable).  Reports
 * when the first and the --count'th op beyond the starting value became
 * visible, and a timeline (every 50 ms) of the counter. */
int
bench_cmd_dbpoll(int argc, char *argv[])
{
    struct guest_opts o;
    const char *path = parse_guest_opts(argc, argv, &o);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK) {
        bench_fatal("dbpoll: %s: %s", path, sqlite3_errmsg(db));
    }
    sqlite3_busy_timeout(db, 100);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT ops_applied, frames_applied, "
                           "position FROM channel WHERE id = 1", -1, &st,
                           NULL) != SQLITE_OK) {
        bench_fatal("dbpoll: %s: %s", path, sqlite3_errmsg(db));
    }
    int64_t base = -1, frames0 = 0, ops = 0, frames = 0, pos = 0;
    int64_t t_first = 0, t_done = 0, t_next_sample = 0;
    int64_t deadline = bench_now() + o.timeout * 1e9;
    json_t *timeline = json_array();
    bool ready = false;
    while (!bench_stop) {
        int rc = sqlite3_step(st);
        int64_t t = bench_now();
        if (rc == SQLITE_ROW) {
            ops = sqlite3_column_int64(st, 0);
            frames = sqlite3_column_int64(st, 1);
            pos = sqlite3_column_int64(st, 2);
            if (base < 0) {
                base = ops;
                frames0 = frames;
            } else if (ops > base && !t_first) {
                t_first = t;
            }
        }
        sqlite3_reset(st);
        if (!ready && base >= 0) {
            bench_touch(o.ready);
            ready = true;
        }
        if (base >= 0 && t >= t_next_sample && (t_first || !o.count)) {
            json_array_append_new(timeline, json_pack("[II]", (json_int_t) t,
                                                      (json_int_t) (ops
                                                                    - base)));
            t_next_sample = t + 50000000;
        }
        if (o.count && base >= 0 && ops - base >= (int64_t) o.count) {
            t_done = t;
            json_array_append_new(timeline, json_pack("[II]", (json_int_t) t,
                                                      (json_int_t) (ops
                                                                    - base)));
            break;
        }
        if (t > deadline) {
            break;
        }
        struct timespec ts = { .tv_sec = 0,
                               .tv_nsec = o.interval_us * 1000 };
        nanosleep(&ts, NULL);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    bench_print_json(json_pack("{sI sI sI sI sI sI so}",
                               "base_ops", (json_int_t) base,
                               "ops", (json_int_t) (ops - base),
                               "frames", (json_int_t) (frames - frames0),
                               "position", (json_int_t) pos,
                               "t_first", (json_int_t) t_first,
                               "t_done", (json_int_t) t_done,
                               "timeline", timeline));
    return t_done || !o.count ? 0 : 1;
}
