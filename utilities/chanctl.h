/*
 * chanctl: the operator CLI for chand, on the host and in the guest.
 *
 * chanctl.c parses the command line and dispatches to one command
 * function; the commands live in three files by what they talk to:
 *
 *   - chanctl-db.c: the Chan DB (OVSDB JSON-RPC to ovsdb-server): push,
 *     delete, status, wait, key-add, key-retire, key-list, object-list,
 *     object-show, object-set, allow, disallow, allowlist, install, call,
 *     published --vm, set-connection, get-connection, del-connection,
 *     rbac-init, id-set, id-retire, id-delete, id-list, id-show; and the
 *     resolution of a VM given by a platform id (--vm KIND:ID).
 *   - chanctl-ctl.c: the daemons' control sockets (lib/ctl client):
 *     channels, channel-show, object-delink, object-store, object-fetch,
 *     transfers, host (chand-host), guest (chand-guest).
 *   - chanctl-guest.c: chand-guest's local API (JSON-RPC on a Unix
 *     socket): get, list, watch, publish, unpublish, published,
 *     object-add, object-remove, objects, object-restore, guest-status.
 *
 * Every command function takes the parsed options and its positional
 * arguments (borrowed) and returns the process exit status: CHANCTL_OK,
 * CHANCTL_FAIL (not found, failed condition, or the operation failed) or
 * CHANCTL_USAGE (bad arguments).  Commands print their own error messages
 * on stderr through chanctl_error() before returning nonzero.
 */
#ifndef CHANCTL_H
#define CHANCTL_H 1

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses. */
enum {
    CHANCTL_OK = 0,             /* Success. */
    CHANCTL_FAIL = 1,           /* Not found, condition failed, error. */
    CHANCTL_USAGE = 2           /* Usage error: bad option or argument. */
};

/* Defaults. */
#define CHANCTL_DEFAULT_DB "unix:/var/run/openvswitch/db.sock"
#define CHANCTL_DEFAULT_HOST_CTL CHAND_RUNDIR "/chand-host.ctl"
#define CHANCTL_DEFAULT_API "@chand-guest"
#define CHANCTL_DEFAULT_GUEST_CTL "@chand-guest.ctl"
#define CHANCTL_DB_NAME "Chan"

/* Published keys (chand-guest/datastore.h): at most this many bytes, and
 * not under the prefix of records chand-host relays. */
#define CHANCTL_PUB_KEY_MAX 256
#define CHANCTL_PUB_RESERVED { "from/", "obj/", "result/" }

/* Objects (chand-guest/datastore.h): flags and params of one path. */
#define CHANCTL_OBJ_MAX_FLAGS 16
#define CHANCTL_OBJ_MAX_PARAMS 16

/* Object digests: sha256, as 64 lowercase hex digits. */
#define CHANCTL_DIGEST_LEN 64

/* object-fetch --wait and object-restore: how often they look again. */
#define CHANCTL_POLL_MSEC 200

/* rbac-init: the role it sets up without --role, the one chand-host's
 * connections use. */
#define CHANCTL_DEFAULT_ROLE "chand-host"

/* set-connection --inactivity-probe: 0 (no probes) or this many
 * milliseconds up to INT_MAX (ovsdb-server probes no more often). */
#define CHANCTL_MIN_INACTIVITY_PROBE 1000

/* call: how long the VM has without --timeout (seconds), the wait for the
 * response beyond it (ms), and the hex digits of a request id. */
#define CHANCTL_CALL_TIMEOUT 30
#define CHANCTL_CALL_GRACE_MSEC 2000
#define CHANCTL_CALL_ID_LEN 32

/* object-restore: how long it waits for the result without --timeout. */
#define CHANCTL_RESTORE_TIMEOUT 300


/* Where an option's value came from, for error hints. */
enum chanctl_origin {
    CHANCTL_FROM_DEFAULT,
    CHANCTL_FROM_ENV,
    CHANCTL_FROM_OPTION
};

/* Parsed command-line options.  All strings are borrowed from argv or the
 * environment and live as long as the process. */
struct chanctl_options {
    const char *chan_db;        /* Chan DB remote, e.g. "unix:/x/db.sock". */
    enum chanctl_origin chan_db_origin;
    const char *chan_db_option; /* "--chan-db" or its deprecated "--db". */
    const char *chan_db_env;    /* With CHANCTL_FROM_ENV: "CHAND_CHAN_DB",
                                 * or its deprecated spelling "CHAND_DB". */
    const char *host_ctl;       /* chand-host control socket path. */
    enum chanctl_origin host_ctl_origin;
    const char *api;            /* chand-guest API socket ("@name", path). */
    enum chanctl_origin api_origin;
    const char *guest_ctl;      /* chand-guest control socket. */
    enum chanctl_origin guest_ctl_origin;
    const char *vm;             /* --vm NAME, or NULL; after --vm KIND:ID,
                                 * the VM it resolved to. */
    const char *vm_id;          /* --vm KIND:ID as given, or NULL. */
    const char *vm_label;       /* For messages: "KIND:ID (NAME)" after
                                 * --vm KIND:ID, else NULL. */
    const char *vm_id_status;   /* After --vm KIND:ID: "current" or
                                 * "retired". */
    bool json;                  /* --json. */
    bool verbose;               /* -v, --verbose. */
    double timeout;             /* --timeout SEC; 0 means none. */
    bool wait;                  /* --wait. */
    bool no_wait;               /* --no-wait. */
    const char *mode;           /* --mode MODE, or NULL. */
    const char *flags[CHANCTL_OBJ_MAX_FLAGS];   /* --flag F, in order. */
    size_t n_flags;
    const char *params[CHANCTL_OBJ_MAX_PARAMS]; /* --param K=V, in order. */
    size_t n_params;
    const char *role;           /* --role ROLE, or NULL. */
    bool read_only;             /* --read-only. */
    long long int inactivity_probe; /* --inactivity-probe MSEC; -1: none. */
    const char *size;           /* --size BYTES (decimal), or NULL. */
};

/* Prints "chanctl: " and the printf-style message and a newline on
 * stderr. */
void chanctl_error(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

/* Prints a usage error like chanctl_error(), then a pointer to --help, and
 * returns CHANCTL_USAGE. */
int chanctl_usage_error(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

/* Returns a malloc'd "unix:..." stream name for 'target': a "unix:" name is
 * kept, anything else (a file path, or "@name" for an abstract socket) gets
 * "unix:" prepended.  The caller frees it. */
char *chanctl_unix_name(const char *target);


/* Monotonic time in milliseconds. */
long long int chanctl_time_msec(void);

/* Wall-clock time in milliseconds since the epoch. */
long long int chanctl_wall_msec(void);

/* Sleeps 'msec' milliseconds (nothing if 'msec' <= 0). */
void chanctl_sleep_msec(long long int msec);

/* Returns the monotonic time at which a poll of at most 'seconds' ends
 * (0: 'seconds' is 0, no limit). */
long long int chanctl_deadline(double seconds);

/* Sleeps until the next poll, CHANCTL_POLL_MSEC from now or at 'deadline'
 * (0: none), whichever comes first. */
void chanctl_poll_sleep(long long int deadline);

/* Returns true if 'digest' is a sha256 digest: CHANCTL_DIGEST_LEN
 * lowercase hex digits. */
bool chanctl_digest_is_valid(const char *digest);

/* Checks 'digest' with chanctl_digest_is_valid(); returns 0, or prints a
 * usage error and returns CHANCTL_USAGE. */
int chanctl_check_digest(const char *digest);

/* Checks --vm for a command that requires it ('command' names it in the
 * message); returns 0, or prints a usage error and returns
 * CHANCTL_USAGE. */
int chanctl_check_vm_required(const struct chanctl_options *,
                              const char *command);

/* Returns how messages name the VM of --vm: "KIND:ID (NAME)" when the
 * caller named it by a platform id, else its name (NULL without --vm). */
const char *chanctl_vm_label(const struct chanctl_options *);

/* Platform ids (chanctl-db.c). */

/* What chanctl_resolve_vm() found. */
struct chanctl_vm_ref {
    char *vm;                   /* The VM's name. */
    char *label;                /* "KIND:ID (NAME)", KIND:ID as given. */
    const char *status;         /* "current" or "retired". */
};

/* Resolves 'text' (KIND:ID, as given to option or argument 'what', e.g.
 * "--vm") through the Chan DB's VM_Id table.  On success returns
 * CHANCTL_OK and fills 'ref' (the caller frees its strings), after a note on
 * stderr if the id is a retired one.  Otherwise prints why (malformed id:
 * CHANCTL_USAGE; unknown or ambiguous id, no VM_Id table, no Chan DB:
 * CHANCTL_FAIL) and returns it. */
int chanctl_resolve_vm(const struct chanctl_options *, const char *what,
                       const char *text, struct chanctl_vm_ref *ref);

/* Commands.  'argv' holds the command's positional arguments (not the
 * command name), borrowed. */

/* chanctl-db.c. */
int chanctl_cmd_push(const struct chanctl_options *, int argc, char *argv[]);
int chanctl_cmd_delete(const struct chanctl_options *, int argc,
                       char *argv[]);
int chanctl_cmd_status(const struct chanctl_options *, int argc,
                       char *argv[]);
int chanctl_cmd_wait(const struct chanctl_options *, int argc, char *argv[]);
int chanctl_cmd_key_add(const struct chanctl_options *, int argc,
                        char *argv[]);
int chanctl_cmd_key_retire(const struct chanctl_options *, int argc,
                           char *argv[]);
int chanctl_cmd_object_list(const struct chanctl_options *, int argc,
                            char *argv[]);
int chanctl_cmd_object_show(const struct chanctl_options *, int argc,
                            char *argv[]);
int chanctl_cmd_object_set(const struct chanctl_options *, int argc,
                           char *argv[]);
int chanctl_cmd_published_vm(const struct chanctl_options *, int argc,
                             char *argv[]);
int chanctl_cmd_key_list(const struct chanctl_options *, int argc,
                         char *argv[]);
int chanctl_cmd_allow(const struct chanctl_options *, int argc,
                      char *argv[]);
int chanctl_cmd_disallow(const struct chanctl_options *, int argc,
                         char *argv[]);
int chanctl_cmd_allowlist(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_install(const struct chanctl_options *, int argc,
                        char *argv[]);
int chanctl_cmd_call(const struct chanctl_options *, int argc, char *argv[]);
int chanctl_cmd_set_connection(const struct chanctl_options *, int argc,
                               char *argv[]);
int chanctl_cmd_get_connection(const struct chanctl_options *, int argc,
                               char *argv[]);
int chanctl_cmd_del_connection(const struct chanctl_options *, int argc,
                               char *argv[]);
int chanctl_cmd_rbac_init(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_id_set(const struct chanctl_options *, int argc,
                       char *argv[]);
int chanctl_cmd_id_retire(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_id_delete(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_id_list(const struct chanctl_options *, int argc,
                        char *argv[]);
int chanctl_cmd_id_show(const struct chanctl_options *, int argc,
                        char *argv[]);

/* chanctl-ctl.c. */
int chanctl_cmd_channels(const struct chanctl_options *, int argc,
                         char *argv[]);
int chanctl_cmd_channel_show(const struct chanctl_options *, int argc,
                             char *argv[]);
int chanctl_cmd_object_delink(const struct chanctl_options *, int argc,
                              char *argv[]);
int chanctl_cmd_object_store(const struct chanctl_options *, int argc,
                             char *argv[]);
int chanctl_cmd_object_fetch(const struct chanctl_options *, int argc,
                             char *argv[]);
int chanctl_cmd_transfers(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_host(const struct chanctl_options *, int argc, char *argv[]);
int chanctl_cmd_metrics(const struct chanctl_options *, int argc,
                        char *argv[]);
int chanctl_cmd_guest(const struct chanctl_options *, int argc,
                      char *argv[]);

/* chanctl-guest.c. */
int chanctl_cmd_get(const struct chanctl_options *, int argc, char *argv[]);
int chanctl_cmd_list(const struct chanctl_options *, int argc, char *argv[]);
int chanctl_cmd_watch(const struct chanctl_options *, int argc,
                      char *argv[]);
int chanctl_cmd_publish(const struct chanctl_options *, int argc,
                        char *argv[]);
int chanctl_cmd_unpublish(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_published(const struct chanctl_options *, int argc,
                          char *argv[]);
int chanctl_cmd_object_add(const struct chanctl_options *, int argc,
                           char *argv[]);
int chanctl_cmd_object_remove(const struct chanctl_options *, int argc,
                              char *argv[]);
int chanctl_cmd_objects(const struct chanctl_options *, int argc,
                        char *argv[]);
int chanctl_cmd_object_restore(const struct chanctl_options *, int argc,
                               char *argv[]);
int chanctl_cmd_guest_status(const struct chanctl_options *, int argc,
                             char *argv[]);

#endif /* chanctl.h */
