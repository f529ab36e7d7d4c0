/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * Guest-side roles: watch (the local API's change notifications), dbpoll
 * (the datastore's applied-ops counter, committed state only) and publish
 * (records published through the local API, pipelined). */

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
    OPT_INTERVAL, OPT_IDLE, OPT_KEYS, OPT_INFLIGHT, OPT_RATE,
    OPT_VALUE_SIZE, OPT_WAIT_SESSION,
};

static const struct option guest_longopts[] = {
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"count", required_argument, NULL, OPT_COUNT},
    {"log", required_argument, NULL, OPT_LOG},
    {"ready", required_argument, NULL, OPT_READY},
    {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
    {"interval-us", required_argument, NULL, OPT_INTERVAL},
    {"idle-s", required_argument, NULL, OPT_IDLE},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
    {"wait-session", required_argument, NULL, OPT_WAIT_SESSION},
    {NULL, 0, NULL, 0},
};

struct guest_opts {
    const char *prefix, *log, *ready;
    uint64_t count, interval_us, keys, inflight, value_size;
    double timeout, idle, rate, wait_session;
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
        case OPT_KEYS: o->keys = bench_arg_u64("--keys", optarg); break;
        case OPT_INFLIGHT:
            o->inflight = bench_arg_u64("--inflight", optarg);
            break;
        case OPT_RATE: o->rate = bench_arg_double("--rate", optarg); break;
        case OPT_VALUE_SIZE:
            o->value_size = bench_arg_u64("--value-size", optarg);
            break;
        case OPT_WAIT_SESSION:
            o->wait_session = bench_arg_double("--wait-session", optarg);
            break;
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

/* --- publish ------------------------------------------------------------ */

/* Opens a JSON-RPC connection to the local API 'api' ("@name" for an
 * abstract socket, or a path, with or without "unix:"). */
static struct jsonrpc *
api_connect(const char *api, int *fdp)
{
    char *name;
    if (asprintf(&name, "%s%s", strncmp(api, "unix:", 5) ? "unix:" : "",
                 api) < 0) {
        abort();
    }
    struct stream *stream;
    int error = stream_open_block(name, &stream);
    if (error) {
        bench_fatal("%s: %s", name, strerror(error));
    }
    free(name);
    *fdp = stream_get_fd(stream);
    return jsonrpc_open(stream);
}

/* One request, waited for.  Returns the result (new reference) or dies
 * with the error. */
static json_t *
api_call(struct jsonrpc *rpc, const char *method, json_t *params)
{
    json_t *reply;
    int error = jsonrpc_transact_block(
        rpc, jsonrpc_create_request(method, params, NULL), &reply);
    if (error) {
        bench_fatal("%s: %s", method, strerror(error));
    }
    if (jsonrpc_msg_type(reply) != JSONRPC_REPLY) {
        char *text = json_dumps(reply, JSON_COMPACT);
        bench_fatal("%s: %s", method, text ? text : "error");
    }
    json_t *result = json_incref(jsonrpc_msg_result(reply));
    json_decref(reply);
    return result;
}

/* Waits until chand-guest's upstream session is established and the limits
 * the host sent say that this VM may publish at any rate and any number of
 * records (the harness lifts those limits in Chan_Global).  Returns the
 * limits (new reference). */
static json_t *
wait_session(struct jsonrpc *rpc, double seconds)
{
    int64_t deadline = bench_now() + seconds * 1e9;
    for (;;) {
        json_t *st = api_call(rpc, "status", json_array());
        json_t *pub = json_object_get(st, "publisher");
        const char *state = json_string_value(json_object_get(pub, "state"));
        json_t *limits = json_object_get(pub, "limits");
        if (state && !strcmp(state, "established") && json_is_object(limits)
            && !json_integer_value(json_object_get(limits,
                                                   "max_publish_rate"))
            && !json_integer_value(json_object_get(limits, "max_records"))) {
            json_incref(limits);
            json_decref(st);
            return limits;
        }
        if (bench_now() > deadline || bench_stop) {
            char *text = json_dumps(limits, JSON_COMPACT | JSON_ENCODE_ANY);
            bench_fatal("publish: after %.0f s the upstream session is %s "
                        "with limits %s (want established, no rate and "
                        "record limits)", seconds, state ? state : "?",
                        text ? text : "?");
        }
        json_decref(st);
        bench_sleep_until(bench_now() + 50000000);
    }
}

/* The value of sample 'n': the number, or a JSON string of 'size' bytes of
 * text (quotes included) starting with the number. */
static json_t *
pub_value(uint64_t size, uint64_t n)
{
    if (size < 3) {
        return json_integer(n);
    }
    char *text = malloc(size - 1);
    memset(text, 'v', size - 2);
    text[size - 2] = '\0';
    char num[24];
    int len = snprintf(num, sizeof num, "%" PRIu64, n);
    if ((uint64_t) len <= size - 2) {
        memcpy(text, num, len);
    }
    json_t *v = json_string(text);
    free(text);
    return v;
}

struct pub_sample {
    int64_t t_send, t_reply, version;
};

/* publish: --count publications through the local API's "publish" on one
 * connection, pipelined: at most --inflight requests unanswered (default
 * 64), sent as fast as that allows or at an offered --rate (open loop,
 * within the in-flight cap).  Each sample publishes a new key
 * PREFIX%08d, or with --keys K the keys PREFIX%06d round-robin (each
 * published once beforehand, and waited for until the host has
 * acknowledged them, before the clock starts).  Logs
 * "KEY VERSION T_SEND T_REPLY" for each publication chand-guest accepted
 * (T_REPLY: the API call returned; the record is durable in the guest).
 * --wait-session S: first waits up to S seconds for the upstream session
 * and the lifted limits (--count 0: only that). */
int
bench_cmd_publish(int argc, char *argv[])
{
    struct guest_opts o;
    const char *api = parse_guest_opts(argc, argv, &o);
    if (!o.inflight) {
        o.inflight = 64;
    }
    if (o.count && !o.log) {
        bench_fatal("publish: --log is required");
    }
    int fd;
    struct jsonrpc *rpc = api_connect(api, &fd);
    json_t *limits = o.wait_session ? wait_session(rpc, o.wait_session)
                                    : json_null();
    int64_t deadline = bench_now() + o.timeout * 1e9;
    if (o.keys && o.count) {
        for (uint64_t k = 0; k < o.keys; k++) {
            char key[256];
            snprintf(key, sizeof key, "%s%06" PRIu64, o.prefix, k);
            json_decref(api_call(rpc, "publish",
                                 json_pack("[s o]", key, pub_value(
                                               o.value_size, 0))));
        }
        for (;;) {
            json_t *r = api_call(rpc, "published",
                                 json_pack("[s]", o.prefix));
            json_int_t pending = json_integer_value(json_object_get(
                                                        r, "pending"));
            json_decref(r);
            if (!pending) {
                break;
            }
            if (bench_now() > deadline || bench_stop) {
                bench_fatal("publish: %lld of the %" PRIu64 " keys still "
                            "pending at the deadline", (long long) pending,
                            o.keys);
            }
            bench_sleep_until(bench_now() + 20000000);
        }
    }

    struct pub_sample *s = calloc(o.count ? o.count : 1, sizeof *s);
    uint64_t sent = 0, answered = 0, ok = 0, errors = 0, max_inflight = 0;
    char first_error[256] = "";
    int64_t max_lag = 0, t_first_reply = 0, t_last_reply = 0;
    struct bench_pacer pacer = { .start = bench_now(), .rate = o.rate };
    const char *end = "count";
    while (answered < o.count) {
        int64_t now = bench_now();
        uint64_t due = o.rate ? bench_pacer_due(&pacer, now) : o.count;
        while (sent < o.count && sent < due
               && sent - answered < o.inflight) {
            char key[256];
            if (o.keys) {
                snprintf(key, sizeof key, "%s%06" PRIu64, o.prefix,
                         sent % o.keys);
            } else {
                snprintf(key, sizeof key, "%s%08" PRIu64, o.prefix, sent);
            }
            json_t *req = json_pack("{s:s, s:[s o], s:I}", "method",
                                    "publish", "params", key,
                                    pub_value(o.value_size, sent + 1),
                                    "id", (json_int_t) sent);
            int64_t t = bench_now();
            int error = jsonrpc_send(rpc, req);
            if (error) {
                bench_fatal("publish: sending: %s", strerror(error));
            }
            s[sent].t_send = t;
            if (o.rate) {
                int64_t lag = t - bench_pacer_time_of(&pacer, sent);
                if (lag > max_lag) {
                    max_lag = lag;
                }
            }
            sent++;
            if (sent - answered > max_inflight) {
                max_inflight = sent - answered;
            }
        }

        bool any = false;
        for (;;) {
            json_t *msg;
            jsonrpc_run(rpc);
            int error = jsonrpc_recv(rpc, &msg);
            if (error == EAGAIN) {
                break;
            } else if (error) {
                bench_fatal("publish: connection: %s", error == EOF
                            ? "closed by chand-guest" : strerror(error));
            }
            int64_t t = bench_now();
            enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
            json_t *id = jsonrpc_msg_id(msg);
            if ((type == JSONRPC_REPLY || type == JSONRPC_ERROR)
                && json_is_integer(id) && json_integer_value(id) >= 0
                && (uint64_t) json_integer_value(id) < sent
                && !s[json_integer_value(id)].t_reply) {
                struct pub_sample *p = &s[json_integer_value(id)];
                p->t_reply = t;
                answered++;
                json_t *v = json_object_get(jsonrpc_msg_result(msg),
                                            "version");
                if (type == JSONRPC_REPLY && json_is_integer(v)) {
                    p->version = json_integer_value(v);
                    ok++;
                    if (!t_first_reply) {
                        t_first_reply = t;
                    }
                    t_last_reply = t;
                } else {
                    errors++;
                    if (!first_error[0]) {
                        char *text = json_dumps(msg, JSON_COMPACT);
                        snprintf(first_error, sizeof first_error, "%s",
                                 text ? text : "?");
                        free(text);
                    }
                }
            }
            json_decref(msg);
            any = true;
        }
        if (any) {
            continue;
        }
        now = bench_now();
        if (bench_stop) {
            end = "signal";
            break;
        }
        if (now > deadline) {
            end = "timeout";
            break;
        }
        int64_t wake = now + 50000000;
        if (o.rate && sent < o.count && sent - answered < o.inflight) {
            int64_t next = bench_pacer_time_of(&pacer, sent);
            if (next < wake) {
                wake = next;
            }
        }
        if (wake <= now) {
            continue;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (jsonrpc_get_backlog(rpc)) {
            pfd.events |= POLLOUT;
        }
        struct timespec ts = { .tv_sec = (wake - now) / 1000000000,
                               .tv_nsec = (wake - now) % 1000000000 };
        ppoll(&pfd, 1, &ts, NULL);
    }

    if (o.log) {
        FILE *log = fopen(o.log, "w");
        if (!log) {
            bench_fatal("%s: %s", o.log, strerror(errno));
        }
        for (uint64_t i = 0; i < sent; i++) {
            if (!s[i].version) {
                continue;
            }
            char key[256];
            if (o.keys) {
                snprintf(key, sizeof key, "%s%06" PRIu64, o.prefix,
                         i % o.keys);
            } else {
                snprintf(key, sizeof key, "%s%08" PRIu64, o.prefix, i);
            }
            fprintf(log, "%s %" PRId64 " %" PRId64 " %" PRId64 "\n", key,
                    s[i].version, s[i].t_send, s[i].t_reply);
        }
        fclose(log);
    }
    int64_t *api_ns = calloc(sent ? sent : 1, sizeof *api_ns);
    size_t n_api = 0;
    for (uint64_t i = 0; i < sent; i++) {
        if (s[i].version) {
            api_ns[n_api++] = s[i].t_reply - s[i].t_send;
        }
    }
    int64_t t_start = pacer.start;
    bench_print_json(json_pack(
        "{sI sI sI sI sI ss sI sI sI sI sf sf sf sI so so ss}",
        "count", (json_int_t) o.count,
        "keys", (json_int_t) o.keys,
        "sent", (json_int_t) sent,
        "ok", (json_int_t) ok,
        "errors", (json_int_t) errors,
        "first_error", first_error,
        "t_start", (json_int_t) t_start,
        "t_last_send", (json_int_t) (sent ? s[sent - 1].t_send : 0),
        "t_first_reply", (json_int_t) t_first_reply,
        "t_last_reply", (json_int_t) t_last_reply,
        "offered_rate", o.rate,
        "achieved_rate", (t_last_reply > t_start
                          ? ok / ((t_last_reply - t_start) / 1e9) : 0.0),
        "max_send_lag_ms", max_lag / 1e6,
        "max_inflight", (json_int_t) max_inflight,
        "send_to_reply", bench_percentiles(api_ns, n_api),
        "limits", limits,
        "end", end));
    free(api_ns);
    free(s);
    jsonrpc_close(rpc);
    return errors || answered < o.count ? 1 : 0;
}
