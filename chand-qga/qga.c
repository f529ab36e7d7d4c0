/* chand-qga's top level: see qga.h. */

#include <config.h>
#include "qga.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"
#include "commands.h"
#include "ctl.h"
#include "endpoint.h"
#include "hmap.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"
#include "vm-id.h"

VLOG_DEFINE_THIS_MODULE(qga);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

#define QGA_RETRY_MS 5000       /* A socket that could not be opened. */

/* A VM served. */
struct served {
    struct hmap_node node;      /* In qga->served, by VM name. */
    char *vm;
    char *path;                 /* Its socket. */
    struct qga_vm *state;
    struct endpoint *ep;        /* NULL if the socket could not be opened. */
    long long retry_at;
    bool seen;                  /* Still wanted (during a sync). */
};

struct qga {
    struct qga_options opts;
    struct ovsdb_replica *replica;
    struct calls *calls;
    struct qga_env env;
    struct ctl_server *ctl;
    struct hmap served;
    uint64_t seqno;
    bool kind_is_vm;
    enum vm_id_kind kind;
    uint64_t bad_names;         /* VMs or ids unfit for a file name. */
    bool exiting;
};

static void
declare_tables(struct ovsdb_replica *r)
{
    struct ovsdb_replica_table *t;

    calls_declare(r);
    t = ovsdb_replica_add_table(r, "Channel");
    ovsdb_replica_add_column(t, "chassis", NULL);
    ovsdb_replica_add_column(t, "state", NULL);

    t = ovsdb_replica_add_table(r, VM_ID_TABLE);
    ovsdb_replica_add_column(t, "vm", NULL);
    ovsdb_replica_add_column(t, "kind", NULL);
    ovsdb_replica_add_column(t, "id", NULL);
    ovsdb_replica_add_column(t, "retired", NULL);
    ovsdb_replica_add_index(t, "vm");
}

/* ----------------------------------------------------------------------
 * Which VMs, on which sockets.
 */

/* True if 's' can be a socket's file name in the socket directory. */
static bool
name_is_safe(const char *s)
{
    return *s && *s != '.' && !strchr(s, '/') && strlen(s) <= 200;
}

/* Returns the socket's file name for VM 'vm' (borrowed), or NULL if the VM
 * has none. */
static const char *
socket_name_of(const struct qga *q, const char *vm)
{
    if (q->kind_is_vm) {
        return vm;
    }

    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(q->replica, VM_ID_TABLE);
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_EQ (row, t, vm) {
        const char *kind = ovsdb_replica_row_get_string(row, "kind");
        const char *id = ovsdb_replica_row_get_string(row, "id");
        int64_t retired = 0;
        bool present;
        const json_t *r = ovsdb_replica_row_get(row, "retired");
        if (kind && id && r && !ovsdb_datum_get_integer(r, &retired,
                                                        &present)
            && !retired && !strcmp(kind, vm_id_kind_name(q->kind))) {
            return id;
        }
    }
    return NULL;
}

static struct served *
find_served(const struct qga *q, const char *vm)
{
    struct served *s;

    HMAP_FOR_EACH_WITH_HASH (s, node, hash_string_nocase(vm), &q->served) {
        if (!strcmp(s->vm, vm)) {
            return s;
        }
    }
    return NULL;
}

static void
served_destroy(struct qga *q, struct served *s)
{
    hmap_remove(&q->served, &s->node);
    endpoint_destroy(s->ep);
    qga_vm_destroy(s->state);
    free(s->vm);
    free(s->path);
    free(s);
}

/* Opens the socket of 's' if it is not open. */
static void
open_endpoint(struct qga *q, struct served *s)
{
    char *error;

    if (s->ep || time_msec() < s->retry_at) {
        return;
    }
    s->ep = endpoint_create(s->state, s->path, q->opts.max_request, &error);
    if (!s->ep) {
        VLOG_WARN_RL(&rl, "%s: %s (tried again in %d s)", s->vm, error,
                     QGA_RETRY_MS / 1000);
        free(error);
        s->retry_at = time_msec() + QGA_RETRY_MS;
    }
}

/* Makes 's' exist for 'vm' on 'path'. */
static void
want(struct qga *q, const char *vm, const char *path)
{
    struct served *s = find_served(q, vm);

    if (s && strcmp(s->path, path)) {
        VLOG_INFO("%s: its socket moves to %s", vm, path);
        served_destroy(q, s);
        s = NULL;
    }
    if (!s) {
        s = xzalloc(sizeof *s);
        s->vm = xstrdup(vm);
        s->path = xstrdup(path);
        s->state = qga_vm_create(&q->env, vm);
        hmap_insert(&q->served, &s->node, hash_string_nocase(vm));
    }
    s->seen = true;
}

/* True if Channel row 'row' makes its VM one to serve. */
static bool
channel_is_served(const struct qga *q, const struct ovsdb_replica_row *row)
{
    const char *chassis = ovsdb_replica_row_get_string(row, "chassis");
    const char *state = ovsdb_replica_row_get_string(row, "state");

    return ((!q->opts.chassis || (chassis && !strcmp(chassis,
                                                     q->opts.chassis)))
            && !(state && !strcmp(state, "released")));
}

/* Brings the set of sockets in step with the replica. */
static void
sync_served(struct qga *q)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(q->replica, "Channel");
    const struct ovsdb_replica_row *row;
    struct served *s;

    HMAP_FOR_EACH_SAFE (s, node, &q->served) {
        s->seen = false;
    }
    OVSDB_REPLICA_FOR_EACH (row, t) {
        const char *vm = ovsdb_replica_row_get_string(row, "vm");
        if (!vm || !channel_is_served(q, row)) {
            continue;
        }
        const char *name = socket_name_of(q, vm);
        if (!name) {
            continue;
        } else if (!name_is_safe(name)) {
            q->bad_names++;
            VLOG_WARN_RL(&rl, "%s: \"%s\" cannot be a socket's file name; "
                         "the VM is not served", vm, name);
            continue;
        }
        char *path = xasprintf("%s/%s.sock", q->opts.socket_dir, name);
        want(q, vm, path);
        free(path);
    }
    HMAP_FOR_EACH_SAFE (s, node, &q->served) {
        if (!s->seen) {
            served_destroy(q, s);
        }
    }
}

/* ----------------------------------------------------------------------
 * Control socket.
 */

static void
ctl_list(struct ctl_conn *conn, int argc, const char *argv[], void *q_)
{
    struct qga *q = q_;
    json_t *list = json_array();
    struct served *s;

    (void) argc;
    (void) argv;
    HMAP_FOR_EACH_SAFE (s, node, &q->served) {
        json_t *o = s->ep ? endpoint_to_json(s->ep)
                          : json_pack("{s:s, s:s, s:s}", "vm", s->vm,
                                      "socket", s->path,
                                      "error", "cannot listen");
        json_array_append_new(list, o);
    }
    char *text = json_dumps(list, JSON_INDENT(2) | JSON_SORT_KEYS);
    ctl_command_reply(conn, text);
    free(text);
    json_decref(list);
}

static void
ctl_stats(struct ctl_conn *conn, int argc, const char *argv[], void *q_)
{
    struct qga *q = q_;
    struct calls_stats cs;
    struct qga_cmd_stats qs;

    (void) argc;
    (void) argv;
    calls_get_stats(q->calls, &cs);
    qga_get_cmd_stats(&qs);
    json_t *o = json_pack(
        "{s:b, s:I, s:I,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "chan_db_connected", ovsdb_replica_is_connected(q->replica),
        "sockets", (json_int_t) hmap_count(&q->served),
        "bad_names", (json_int_t) q->bad_names,
        "calls",
        "started", (json_int_t) cs.started, "ok", (json_int_t) cs.ok,
        "errors", (json_int_t) cs.errors,
        "timeouts", (json_int_t) cs.timeouts,
        "undeliverable", (json_int_t) cs.undeliverable,
        "write_failures", (json_int_t) cs.write_failures,
        "bad_responses", (json_int_t) cs.bad_responses,
        "cancelled", (json_int_t) cs.cancelled,
        "outstanding", (json_int_t) cs.outstanding,
        "deletes_pending", (json_int_t) cs.deletes_pending,
        "commands",
        "commands", (json_int_t) qs.commands, "ok", (json_int_t) qs.ok,
        "errors", (json_int_t) qs.errors,
        "bad_args", (json_int_t) qs.bad_args,
        "not_found", (json_int_t) qs.not_found,
        "large_reads", (json_int_t) qs.large_reads,
        "large_read_bytes", (json_int_t) qs.large_read_bytes,
        "host_errors", (json_int_t) qs.host_errors);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    ctl_command_reply(conn, text);
    free(text);
    json_decref(o);
}

static void
ctl_exit(struct ctl_conn *conn, int argc, const char *argv[], void *q_)
{
    struct qga *q = q_;

    (void) argc;
    (void) argv;
    q->exiting = true;
    ctl_command_reply(conn, NULL);
}

/* ----------------------------------------------------------------------
 * Life cycle.
 */

/* The mark of this chand-qga's requests: --chassis, else the host name. */
static const char *
owner_name(const struct qga_options *opts)
{
    static char host[256];

    if (opts->chassis) {
        return opts->chassis;
    }
    if (gethostname(host, sizeof host - 1)) {
        strcpy(host, "localhost");
    }
    return host;
}

void *
qga_create(const void *opts_)
{
    const struct qga_options *opts = opts_;
    struct qga *q = xzalloc(sizeof *q);

    q->opts = *opts;
    q->kind_is_vm = !strcmp(opts->socket_name, "vm");
    if (!q->kind_is_vm && (!vm_id_kind_from_name(opts->socket_name, &q->kind)
                           || q->kind == VM_ID_ANY)) {
        VLOG_ERR("--socket-name: '%s' is not vm or one of %s",
                 opts->socket_name, vm_id_kind_list());
        free(q);
        return NULL;
    }
    if (mkdir(opts->socket_dir, 0750) && errno != EEXIST) {
        VLOG_ERR("%s: cannot create the socket directory (%s)",
                 opts->socket_dir, strerror(errno));
        free(q);
        return NULL;
    }
    q->ctl = ctl_server_create(opts->ctl);
    if (!q->ctl) {
        free(q);
        return NULL;
    }

    q->replica = ovsdb_replica_create("Chan");
    declare_tables(q->replica);
    ovsdb_replica_connect(q->replica, opts->chan_db);
    q->calls = calls_create(q->replica, owner_name(opts));
    q->env = (struct qga_env) {
        .calls = q->calls,
        .host_ctl = opts->host_ctl,
        .call_timeout_ms = opts->call_timeout_ms,
        .exec_timeout_ms = opts->exec_timeout_ms,
        .file_timeout_ms = opts->file_timeout_ms,
        .max_file_read = opts->max_file_read,
        .max_file_write = opts->max_file_write,
    };
    hmap_init(&q->served);

    ctl_command_register("qga/list", "", 0, 0, ctl_list, q);
    ctl_command_register("qga/stats", "", 0, 0, ctl_stats, q);
    ctl_command_register("exit", "", 0, 0, ctl_exit, q);
    VLOG_INFO("chand-qga %s: Chan DB %s, sockets in %s named by %s",
              PACKAGE_VERSION, opts->chan_db, opts->socket_dir,
              opts->socket_name);
    return q;
}

void
qga_run(struct qga *q)
{
    ovsdb_replica_run(q->replica);
    calls_run(q->calls);
    if (ovsdb_replica_is_synced(q->replica)
        && ovsdb_replica_get_seqno(q->replica) != q->seqno) {
        q->seqno = ovsdb_replica_get_seqno(q->replica);
        sync_served(q);
        ovsdb_replica_track_clear(q->replica);
    }

    struct served *s;
    HMAP_FOR_EACH_SAFE (s, node, &q->served) {
        open_endpoint(q, s);
        if (s->ep) {
            endpoint_run(s->ep);
        }
        qga_vm_run(s->state);
    }
    calls_run(q->calls);
    ctl_server_run(q->ctl);
}

void
qga_wait(struct qga *q)
{
    struct served *s;

    ovsdb_replica_wait(q->replica);
    calls_wait(q->calls);
    HMAP_FOR_EACH_SAFE (s, node, &q->served) {
        if (s->ep) {
            endpoint_wait(s->ep);
        } else {
            poll_timer_wait_until(s->retry_at);
        }
        qga_vm_wait(s->state);
    }
    ctl_server_wait(q->ctl);
}

bool
qga_exiting(const struct qga *q)
{
    return q->exiting;
}

void
qga_destroy(struct qga *q)
{
    if (!q) {
        return;
    }
    struct served *s;
    HMAP_FOR_EACH_SAFE (s, node, &q->served) {
        served_destroy(q, s);
    }
    hmap_destroy(&q->served);
    calls_destroy(q->calls);
    ovsdb_replica_destroy(q->replica);
    ctl_server_destroy(q->ctl);
    free(q);
}
