/* chanctl: command-line parsing and dispatch.  See chanctl.h. */

#include <config.h>
#include "chanctl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "chan-endpoint.h"
#include "stream-ssl.h"
#include "util.h"
#include "vm-id.h"

/* Options a command accepts besides the connection options, --timeout and
 * -v, which every command accepts. */
enum {
    OPT_VM = 1 << 0,
    OPT_JSON = 1 << 1,
    OPT_OBJECT = 1 << 2,        /* --flag, --param. */
    OPT_WAIT = 1 << 3,          /* --wait. */
    OPT_NO_WAIT = 1 << 4,       /* --no-wait. */
    OPT_MODE = 1 << 5,          /* --mode MODE. */
    OPT_ROLE = 1 << 6,          /* --role ROLE. */
    OPT_CONNECTION = 1 << 7,    /* --read-only, --inactivity-probe MSEC. */
    OPT_SIZE = 1 << 8           /* --size BYTES. */
};

typedef int chanctl_cmd_func(const struct chanctl_options *, int argc,
                             char *argv[]);

struct command {
    const char *name;
    const char *args;           /* Synopsis after the name, for --help. */
    int min_args, max_args;     /* Positional arguments; -1: unlimited. */
    unsigned int opts;          /* OPT_* accepted. */
    chanctl_cmd_func *func;
    const char *help;           /* One line, for --help. */
};

static const struct command commands[] = {
    /* Host: Chan DB. */
    { "push", "[--vm NAME] KEY JSON [KEY JSON]...", 2, -1, OPT_VM,
      chanctl_cmd_push,
      "set KEY to JSON for one VM or all VMs (several: one Record_Set)" },
    { "delete", "[--vm NAME] KEY", 1, 1, OPT_VM, chanctl_cmd_delete,
      "delete KEY's record for one VM or all VMs" },
    { "status", "[--vm NAME] [--json]", 0, 0, OPT_VM | OPT_JSON,
      chanctl_cmd_status, "channel states (one VM: in detail)" },
    { "wait", "[--vm NAME] [--timeout SEC]", 0, 0, OPT_VM, chanctl_cmd_wait,
      "wait until channels are ready and in sync" },
    { "key-add", "--vm NAME [HEXKEY]", 0, 1, OPT_VM, chanctl_cmd_key_add,
      "add VM's next key generation; print \"GEN HEXKEY\" for the guest" },
    { "key-retire", "--vm NAME GENERATION", 1, 1, OPT_VM,
      chanctl_cmd_key_retire, "remove one of VM's key generations" },
    { "key-list", "[--vm NAME]", 0, 0, OPT_VM, chanctl_cmd_key_list,
      "list key generations per VM (not the keys)" },
    { "object-list", "[DIGEST-PREFIX] [--json]", 0, 1, OPT_JSON,
      chanctl_cmd_object_list,
      "objects the VMs hold: digest, size, VMs referencing it, flags" },
    { "object-show", "DIGEST [--json]", 1, 1, OPT_JSON,
      chanctl_cmd_object_show,
      "one object and, per VM, its paths and flags" },
    { "object-set", "DIGEST [flags=F,...] [NAME=VALUE]...", 2, -1, 0,
      chanctl_cmd_object_set,
      "set an object's flags (e.g. flags=infected) and parameters" },
    { "allow", "DIGEST [NAME]", 1, 2, 0, chanctl_cmd_allow,
      "put an object on the install allowlist (or rename its entry)" },
    { "disallow", "DIGEST", 1, 1, 0, chanctl_cmd_disallow,
      "remove an object from the install allowlist" },
    { "allowlist", "[--json]", 0, 0, OPT_JSON, chanctl_cmd_allowlist,
      "list the install allowlist: digest, name" },
    { "install", "--vm NAME DIGEST PATH [--mode MODE]", 2, 2,
      OPT_VM | OPT_MODE, chanctl_cmd_install,
      "have VM install a stored object at PATH (record install/DIGEST)" },
    { "call", "--vm NAME [--timeout SEC] COMMAND [JSON-ARGS]", 1, 2,
      OPT_VM | OPT_JSON, chanctl_cmd_call,
      "send a request to VM's chand-guest and print the response "
      "(doc/adapters.md)" },
    { "set-connection", "[--role ROLE] [--read-only] "
      "[--inactivity-probe MSEC] TARGET...", 1, -1,
      OPT_ROLE | OPT_CONNECTION, chanctl_cmd_set_connection,
      "make Chan_Global.connections these TARGETs (e.g. pssl:6641)" },
    { "get-connection", "[--json]", 0, 0, OPT_JSON,
      chanctl_cmd_get_connection,
      "list the Chan DB server's remotes: options, TARGET" },
    { "del-connection", "", 0, 0, 0, chanctl_cmd_del_connection,
      "remove all of the Chan DB server's remotes" },
    { "rbac-init", "[--role ROLE]", 0, 0, OPT_ROLE, chanctl_cmd_rbac_init,
      "create or repair the RBAC role of hypervisors' chand-host "
      "(default: " CHANCTL_DEFAULT_ROLE ")" },
    { "id-set", "--vm NAME KIND:ID...", 1, -1, OPT_VM, chanctl_cmd_id_set,
      "give VM platform ids (its previous id of each KIND is retired)" },
    { "id-retire", "KIND:ID...", 1, -1, 0, chanctl_cmd_id_retire,
      "retire platform ids: kept, still resolve, reported as retired" },
    { "id-delete", "KIND:ID...", 1, -1, 0, chanctl_cmd_id_delete,
      "forget platform ids, current or retired" },
    { "id-list", "[--vm NAME] [--json]", 0, 0, OPT_VM | OPT_JSON,
      chanctl_cmd_id_list, "platform ids per VM, current and retired" },
    { "id-show", "KIND:ID [--json]", 1, 1, OPT_JSON, chanctl_cmd_id_show,
      "print the VM a platform id names (KIND any: any kind)" },
    /* Host: chand-host control socket. */
    { "channels", "", 0, 0, 0, chanctl_cmd_channels,
      "chand-host's channel table (channel/list)" },
    { "channel-show", "VM", 1, 1, 0, chanctl_cmd_channel_show,
      "chand-host's view of VM (channel/show)" },
    { "object-delink", "--vm NAME", 0, 0, OPT_VM, chanctl_cmd_object_delink,
      "rebuild VM's published records and object references from the "
      "guest (object/delink)" },
    { "object-store", "FILE", 1, 1, 0, chanctl_cmd_object_store,
      "copy FILE into chand-host's content store; print \"DIGEST SIZE\"" },
    { "object-fetch", "--vm NAME DIGEST [--size N] [--wait]", 1, 1,
      OPT_VM | OPT_WAIT | OPT_SIZE,
      chanctl_cmd_object_fetch,
      "fetch an object from VM into the content store (object/fetch)" },
    { "transfers", "[--json]", 0, 0, OPT_JSON, chanctl_cmd_transfers,
      "content store, fetches and transfer lanes (transfer/list)" },
    { "host", "COMMAND [ARG...]", 1, -1, 0, chanctl_cmd_host,
      "any chand-host control command" },
    { "metrics", "[host|guest]", 0, 1, 0, chanctl_cmd_metrics,
      "every counter and gauge of chand-host or chand-guest (default: "
      "chand-host if its control socket exists), in Prometheus text "
      "format (host/metrics, guest/metrics)" },
    /* Guest: chand-guest local API. */
    { "get", "KEY", 1, 1, 0, chanctl_cmd_get,
      "print KEY's JSON value" },
    { "list", "[PREFIX] [--json]", 0, 1, OPT_JSON, chanctl_cmd_list,
      "print KEY<TAB>JSON per record" },
    { "watch", "[PREFIX] [--json]", 0, 1, OPT_JSON, chanctl_cmd_watch,
      "print record changes as they happen" },
    { "publish", "KEY JSON", 2, 2, 0, chanctl_cmd_publish,
      "publish KEY with value JSON for the host" },
    { "unpublish", "KEY", 1, 1, 0, chanctl_cmd_unpublish,
      "withdraw published KEY" },
    { "published", "[--vm NAME] [PREFIX]", 0, 1, OPT_VM | OPT_JSON,
      chanctl_cmd_published,
      "print published records (--vm: the Chan DB's)" },
    { "object-add", "[--flag F]... [--param K=V]... PATH...", 1, -1,
      OPT_OBJECT, chanctl_cmd_object_add,
      "register files as objects (sha256) for the host" },
    { "object-remove", "PATH...", 1, -1, 0, chanctl_cmd_object_remove,
      "unregister objects" },
    { "objects", "[DIGEST] [--json]", 0, 1, OPT_JSON, chanctl_cmd_objects,
      "print the registered objects" },
    { "object-restore", "DIGEST PATH [--no-wait]", 2, 2,
      OPT_WAIT | OPT_NO_WAIT, chanctl_cmd_object_restore,
      "restore an object from the host to PATH and wait for the result" },
    { "guest-status", "[--json]", 0, 0, OPT_JSON, chanctl_cmd_guest_status,
      "print chand-guest's status" },
    { "guest", "COMMAND [ARG...]", 1, -1, 0, chanctl_cmd_guest,
      "any chand-guest control command" },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

void
chanctl_error(const char *format, ...)
{
    va_list args;

    fflush(stdout);
    fputs("chanctl: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    putc('\n', stderr);
}

int
chanctl_usage_error(const char *format, ...)
{
    va_list args;

    fflush(stdout);
    fputs("chanctl: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputs("\nTry 'chanctl --help' for more information.\n", stderr);
    return CHANCTL_USAGE;
}

char *
chanctl_unix_name(const char *target)
{
    return (!strncmp(target, "unix:", 5)
            ? xasprintf("%s", target)
            : xasprintf("unix:%s", target));
}

long long int
chanctl_time_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long int) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long int
chanctl_wall_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long int) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
chanctl_sleep_msec(long long int msec)
{
    if (msec > 0) {
        struct timespec ts = { msec / 1000, (msec % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

long long int
chanctl_deadline(double seconds)
{
    return (seconds > 0
            ? chanctl_time_msec() + (long long int) (seconds * 1000)
            : 0);
}

void
chanctl_poll_sleep(long long int deadline)
{
    long long int msec = CHANCTL_POLL_MSEC;

    if (deadline) {
        long long int left = deadline - chanctl_time_msec();
        msec = left < msec ? left : msec;
    }
    chanctl_sleep_msec(msec);
}

bool
chanctl_digest_is_valid(const char *digest)
{
    return (strlen(digest) == CHANCTL_DIGEST_LEN
            && strspn(digest, "0123456789abcdef") == CHANCTL_DIGEST_LEN);
}

int
chanctl_check_digest(const char *digest)
{
    if (!chanctl_digest_is_valid(digest)) {
        return chanctl_usage_error("'%.80s' is not a DIGEST: a sha256 "
                                   "digest is %d lowercase hex digits",
                                   digest, CHANCTL_DIGEST_LEN);
    }
    return 0;
}

const char *
chanctl_vm_label(const struct chanctl_options *opts)
{
    return opts->vm_label ? opts->vm_label : opts->vm;
}

int
chanctl_check_vm_required(const struct chanctl_options *opts,
                          const char *command)
{
    if (!opts->vm) {
        return chanctl_usage_error("%s needs --vm NAME", command);
    } else if (!chan_vm_name_is_valid(opts->vm)) {
        return chanctl_usage_error("--vm: '%s' is not a valid VM name (1 to "
                                   "%d characters from A-Z a-z 0-9 . _ -)",
                                   opts->vm, CHAN_VM_NAME_MAX);
    }
    return 0;
}

static void
usage(void)
{
    printf("chanctl, the chand command-line tool for operators\n"
           "usage: chanctl [OPTIONS] COMMAND [ARG...]\n"
           "\nHost commands (Chan DB, through ovsdb-server):\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        char *synopsis = xasprintf("%s %s", c->name, c->args);

        if (!strcmp(c->name, "channels")) {
            printf("\nHost commands (chand-host control socket):\n");
        } else if (!strcmp(c->name, "get")) {
            printf("\nGuest commands (chand-guest local API and control "
                   "socket):\n");
        }
        printf("  %-33s %s\n", synopsis, c->help);
        free(synopsis);
    }
    printf("\nOptions:\n"
           "  --chan-db REMOTE   Chan DB server: unix:PATH, tcp:IP:PORT or "
           "ssl:IP:PORT,\n"
           "                     or several, comma-separated (the first "
           "that answers);\n"
           "                     env CHAND_CHAN_DB\n"
           "                     (default: %s)\n"
           "  --db REMOTE        deprecated spelling of --chan-db, as "
           "CHAND_DB is of\n"
           "                     CHAND_CHAN_DB; both are removed in the "
           "next release\n"
           "  --private-key FILE, --certificate FILE, --ca-cert FILE\n"
           "                     TLS for ssl: remotes: this client's key and "
           "certificate,\n"
           "                     and the CA certificate that signs the "
           "server's\n"
           "  --bootstrap-ca-cert FILE\n"
           "                     as --ca-cert, but if FILE does not exist, "
           "trust the CA\n"
           "                     certificate the server presents first and "
           "save it there\n"
           "  --host-ctl PATH    chand-host control socket; "
           "env CHAND_HOST_CTL\n"
           "                     (default: %s)\n"
           "  --api PATH         chand-guest API socket, a path or "
           "@ABSTRACT;\n"
           "                     env CHAND_GUEST_API (default: %s)\n"
           "  --guest-ctl PATH   chand-guest control socket; "
           "env CHAND_GUEST_CTL\n"
           "                     (default: %s)\n"
           "  --vm NAME          push, delete, status, wait, published, "
           "key-list,\n"
           "                     id-list: one VM; key-add, key-retire, "
           "object-delink,\n"
           "                     object-fetch, install, id-set: the VM "
           "(required)\n"
           "  --vm KIND:ID       the same, the VM named by a platform id "
           "(KIND: libvirt-uuid,\n"
           "                     iface-id, nova-uuid, platform-id, or any); "
           "channel-show\n"
           "                     takes KIND:ID for VM too\n"
           "  --json             status, list, watch, published, "
           "objects,\n"
           "                     guest-status, object-list, object-show,\n"
           "                     allowlist, transfers, get-connection, "
           "id-list,\n"
           "                     id-show: JSON output\n"
           "  --wait             object-fetch: wait until the object is "
           "fetched;\n"
           "                     object-restore: wait for the result (the "
           "default)\n"
           "  --no-wait          object-restore: return once the request "
           "is made\n"
           "  --size N           object-fetch: the object's size in bytes, "
           "to fetch content\n"
           "                     no Object row names (a VM's file-export)\n"
           "  --mode MODE        install: the file's octal mode "
           "(default: 0755)\n"
           "  --role ROLE        set-connection: the RBAC role of clients "
           "on the TARGETs\n"
           "                     (default: none, unrestricted); rbac-init: "
           "the role to\n"
           "                     set up (default: %s)\n"
           "  --read-only        set-connection: clients on the TARGETs "
           "may not write\n"
           "  --inactivity-probe MSEC\n"
           "                     set-connection: probe idle clients every "
           "MSEC ms\n"
           "                     (0: never; default: ovsdb-server's, 5000)\n"
           "  --flag F           object-add: give the objects flag F "
           "(repeatable)\n"
           "  --param K=V        object-add: give the objects param K "
           "(repeatable)\n"
           "  --timeout SEC      give up after SEC seconds (exit 1); wait,\n"
           "                     object-fetch --wait, object-restore: how "
           "long to\n"
           "                     wait; watch: stop (exit 0) (default: no "
           "limit;\n"
           "                     object-restore: %d); call: the VM's time "
           "for the\n"
           "                     request, waited for 2 s more (default: "
           "%d)\n"
           "  -v, --verbose      push, delete, publish, unpublish, "
           "object-add,\n"
           "                     object-remove, allow, disallow, install,\n"
           "                     object-restore, set-connection,\n"
           "                     del-connection, id-set, id-retire, "
           "id-delete:\n"
           "                     say what was done;\n"
           "                     status --vm: also list the applied keys\n"
           "  -h, --help         print this help and exit\n"
           "  -V, --version      print the version and exit\n"
           "  --                 end of options (e.g. before a JSON value "
           "such as -1)\n"
           "\nThe Chan DB database is \"%s\"; a REMOTE without a prefix "
           "is a unix: path.\n"
           "Exit status: 0 success, 1 not found or failed, "
           "2 usage error.\n",
           CHANCTL_DEFAULT_DB, CHANCTL_DEFAULT_HOST_CTL,
           CHANCTL_DEFAULT_API, CHANCTL_DEFAULT_GUEST_CTL,
           CHANCTL_DEFAULT_ROLE, CHANCTL_RESTORE_TIMEOUT, CHANCTL_CALL_TIMEOUT,
           CHANCTL_DB_NAME);
}

static const struct command *
find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

/* Long options that take a value. */
static const char *const value_options[] = {
    "chan-db", "db", "host-ctl", "api", "guest-ctl", "vm", "timeout",
    "flag", "param", "mode", "private-key", "certificate", "ca-cert",
    "bootstrap-ca-cert", "role", "inactivity-probe", "size"
};

static bool
option_takes_value(const char *name)
{
    for (size_t i = 0; i < sizeof value_options / sizeof *value_options;
         i++) {
        if (!strcmp(value_options[i], name)) {
            return true;
        }
    }
    return false;
}

/* Option state while parsing: which command-specific options were given,
 * so that they can be checked against the command. */
struct parse_state {
    bool help, version;
    const char *vm_given;       /* Spelling, for the error message. */
    const char *json_given;
    const char *object_given;   /* --flag or --param. */
    const char *wait_given;
    const char *no_wait_given;
    const char *mode_given;
    const char *role_given;
    const char *connection_given; /* --read-only or --inactivity-probe. */
    const char *size_given;
};

static int
parse_timeout(const char *s, double *timeout)
{
    char *end;

    errno = 0;
    double t = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(t) || t < 0
        || t > 86400 * 365) {
        return chanctl_usage_error("--timeout: '%s' is not a number of "
                                   "seconds (0 to 31536000)", s);
    }
    *timeout = t;
    return 0;
}

/* Parses object-fetch's --size: a decimal number of bytes, at least 1. */
static int
parse_size(const char *s, const char **sizep)
{
    if (strspn(s, "0123456789") != strlen(s) || strlen(s) > 18
        || !strtoull(s, NULL, 10)) {
        return chanctl_usage_error("--size: '%s' is not a number of bytes "
                                   "(a decimal integer, at least 1)", s);
    }
    *sizep = s;
    return 0;
}

/* Parses set-connection's --inactivity-probe: 0 (no probes) or
 * CHANCTL_MIN_INACTIVITY_PROBE to INT_MAX milliseconds. */
static int
parse_inactivity_probe(const char *s, long long int *msec)
{
    char *end;

    errno = 0;
    long long int v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX
        || (v && v < CHANCTL_MIN_INACTIVITY_PROBE)) {
        return chanctl_usage_error("--inactivity-probe: '%s' is neither 0 "
                                   "(no probes) nor a number of "
                                   "milliseconds from %d to %d", s,
                                   CHANCTL_MIN_INACTIVITY_PROBE, INT_MAX);
    }
    *msec = v;
    return 0;
}

/* Appends 'value' (borrowed from argv) of repeatable option 'option' to
 * 'values', which holds '*np' of at most 'max'.  Returns 0 or
 * CHANCTL_USAGE. */
static int
add_repeated(const char **values, size_t *np, size_t max, const char *option,
             const char *value)
{
    if (*np >= max) {
        return chanctl_usage_error("at most %zu %s options", max, option);
    }
    values[(*np)++] = value;
    return 0;
}

/* Parses the option at argv[*ip] (which starts with '-').  Returns 0 and
 * advances '*ip' past it (and its value), or CHANCTL_USAGE. */
static int
parse_option(int argc, char *argv[], int *ip, struct chanctl_options *opts,
             struct parse_state *ps)
{
    const char *arg = argv[*ip];
    char name[32];
    const char *value = NULL;

    if (arg[1] != '-') {
        /* Short options: -v, -h, -V, combinable ("-vh"). */
        for (const char *p = arg + 1; *p; p++) {
            switch (*p) {
            case 'v':
                opts->verbose = true;
                break;
            case 'h':
                ps->help = true;
                break;
            case 'V':
                ps->version = true;
                break;
            default:
                return chanctl_usage_error("unknown option '-%c'", *p);
            }
        }
        (*ip)++;
        return 0;
    }

    const char *body = arg + 2;
    const char *eq = strchr(body, '=');
    size_t len = eq ? (size_t) (eq - body) : strlen(body);
    if (len >= sizeof name) {
        return chanctl_usage_error("unknown option '%s'", arg);
    }
    memcpy(name, body, len);
    name[len] = '\0';

    if (option_takes_value(name)) {
        if (eq) {
            value = eq + 1;
        } else if (*ip + 1 < argc) {
            value = argv[++*ip];
        } else {
            return chanctl_usage_error("option '--%s' needs a value", name);
        }
        if (!*value) {
            return chanctl_usage_error("option '--%s' needs a nonempty "
                                       "value", name);
        }
    } else if (eq) {
        if (!strcmp(name, "json") || !strcmp(name, "verbose")
            || !strcmp(name, "help") || !strcmp(name, "version")
            || !strcmp(name, "wait") || !strcmp(name, "no-wait")
            || !strcmp(name, "read-only")) {
            return chanctl_usage_error("option '--%s' takes no value",
                                       name);
        }
        return chanctl_usage_error("unknown option '%s'", arg);
    }
    (*ip)++;

    if (!strcmp(name, "chan-db") || !strcmp(name, "db")) {
        /* "--db" is the deprecated spelling of "--chan-db". */
        opts->chan_db = value;
        opts->chan_db_origin = CHANCTL_FROM_OPTION;
        opts->chan_db_option = !strcmp(name, "db") ? "--db" : "--chan-db";
    } else if (!strcmp(name, "host-ctl")) {
        opts->host_ctl = value;
        opts->host_ctl_origin = CHANCTL_FROM_OPTION;
    } else if (!strcmp(name, "api")) {
        opts->api = value;
        opts->api_origin = CHANCTL_FROM_OPTION;
    } else if (!strcmp(name, "guest-ctl")) {
        opts->guest_ctl = value;
        opts->guest_ctl_origin = CHANCTL_FROM_OPTION;
    } else if (!strcmp(name, "vm")) {
        opts->vm = value;
        ps->vm_given = "--vm";
    } else if (!strcmp(name, "timeout")) {
        return parse_timeout(value, &opts->timeout);
    } else if (!strcmp(name, "flag")) {
        ps->object_given = "--flag";
        return add_repeated(opts->flags, &opts->n_flags,
                            CHANCTL_OBJ_MAX_FLAGS, "--flag", value);
    } else if (!strcmp(name, "param")) {
        ps->object_given = "--param";
        if (!strchr(value, '=')) {
            return chanctl_usage_error("--param: '%s' is not NAME=VALUE",
                                       value);
        }
        return add_repeated(opts->params, &opts->n_params,
                            CHANCTL_OBJ_MAX_PARAMS, "--param", value);
    } else if (!strcmp(name, "mode")) {
        opts->mode = value;
        ps->mode_given = "--mode";
    } else if (!strcmp(name, "role")) {
        opts->role = value;
        ps->role_given = "--role";
    } else if (!strcmp(name, "read-only")) {
        opts->read_only = true;
        ps->connection_given = "--read-only";
    } else if (!strcmp(name, "size")) {
        ps->size_given = "--size";
        return parse_size(value, &opts->size);
    } else if (!strcmp(name, "inactivity-probe")) {
        ps->connection_given = "--inactivity-probe";
        return parse_inactivity_probe(value, &opts->inactivity_probe);
    } else if (!strcmp(name, "private-key")) {
        stream_ssl_set_private_key_file(value);
    } else if (!strcmp(name, "certificate")) {
        stream_ssl_set_certificate_file(value);
    } else if (!strcmp(name, "ca-cert") || !strcmp(name, "bootstrap-ca-cert")) {
        stream_ssl_set_ca_cert_file(value, !strcmp(name, "bootstrap-ca-cert"));
    } else if (!strcmp(name, "json")) {
        opts->json = true;
        ps->json_given = "--json";
    } else if (!strcmp(name, "wait")) {
        opts->wait = true;
        ps->wait_given = "--wait";
    } else if (!strcmp(name, "no-wait")) {
        opts->no_wait = true;
        ps->no_wait_given = "--no-wait";
    } else if (!strcmp(name, "verbose")) {
        opts->verbose = true;
    } else if (!strcmp(name, "help")) {
        ps->help = true;
    } else if (!strcmp(name, "version")) {
        ps->version = true;
    } else {
        return chanctl_usage_error("unknown option '%s'", arg);
    }
    return 0;
}

/* True if 'arg' is an option rather than a positional argument: it starts
 * with '-' and is not "-" alone or a negative number (a JSON value). */
static bool
is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] && !(arg[1] >= '0' && arg[1] <= '9');
}

/* What the SIGALRM handler writes and how it exits. */
static char alarm_msg[160];
static int alarm_status;

static void
alarm_handler(int sig)
{
    (void) sig;
    if (alarm_msg[0]) {
        ssize_t n = write(STDERR_FILENO, alarm_msg, strlen(alarm_msg));
        (void) n;
    }
    _exit(alarm_status);
}

/* Arms a one-shot timer of 'seconds' that writes 'msg' (may be empty) and
 * exits the process with 'status'. */
static void
arm_timeout(double seconds, const char *msg, int status)
{
    struct itimerval it;
    struct sigaction sa;

    snprintf(alarm_msg, sizeof alarm_msg, "%s", msg);
    alarm_status = status;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = (time_t) seconds;
    it.it_value.tv_usec = (suseconds_t) ((seconds
                                          - (double) it.it_value.tv_sec)
                                         * 1e6);
    if (!it.it_value.tv_sec && !it.it_value.tv_usec) {
        it.it_value.tv_usec = 1;
    }
    setitimer(ITIMER_REAL, &it, NULL);
}

/* If 'cmd' with 'opts' polls a server until its own deadline, returns
 * what it polls, for the message if the server stops answering; otherwise
 * NULL. */
static const char *
polled_server(const struct command *cmd, const struct chanctl_options *opts)
{
    if (!strcmp(cmd->name, "wait")) {
        return "the Chan DB";
    } else if (!strcmp(cmd->name, "object-fetch") && opts->wait) {
        return "chand-host";
    } else if (!strcmp(cmd->name, "object-restore") && !opts->no_wait) {
        return "chand-guest";
    }
    return NULL;
}

int
main(int argc, char *argv[])
{
    struct chanctl_options opts;
    struct parse_state ps;
    const struct command *cmd = NULL;
    char **pos = calloc(argc + 1, sizeof *pos);
    int n_pos = 0;
    int i = 1;
    bool end_of_options = false;
    const char *env;
    int error;

    if (!pos) {
        abort();
    }
    memset(&opts, 0, sizeof opts);
    memset(&ps, 0, sizeof ps);
    opts.chan_db = CHANCTL_DEFAULT_DB;
    opts.chan_db_option = "--chan-db";
    opts.host_ctl = CHANCTL_DEFAULT_HOST_CTL;
    opts.api = CHANCTL_DEFAULT_API;
    opts.guest_ctl = CHANCTL_DEFAULT_GUEST_CTL;
    opts.inactivity_probe = -1;
    /* CHAND_DB is the deprecated spelling of CHAND_CHAN_DB. */
    if ((env = getenv("CHAND_CHAN_DB")) && *env) {
        opts.chan_db = env;
        opts.chan_db_origin = CHANCTL_FROM_ENV;
        opts.chan_db_env = "CHAND_CHAN_DB";
    } else if ((env = getenv("CHAND_DB")) && *env) {
        opts.chan_db = env;
        opts.chan_db_origin = CHANCTL_FROM_ENV;
        opts.chan_db_env = "CHAND_DB";
    }
    if ((env = getenv("CHAND_HOST_CTL")) && *env) {
        opts.host_ctl = env;
        opts.host_ctl_origin = CHANCTL_FROM_ENV;
    }
    if ((env = getenv("CHAND_GUEST_API")) && *env) {
        opts.api = env;
        opts.api_origin = CHANCTL_FROM_ENV;
    }
    if ((env = getenv("CHAND_GUEST_CTL")) && *env) {
        opts.guest_ctl = env;
        opts.guest_ctl_origin = CHANCTL_FROM_ENV;
    }

    while (i < argc) {
        const char *arg = argv[i];

        if (cmd && (!strcmp(cmd->name, "host")
                    || !strcmp(cmd->name, "guest"))) {
            /* Everything after "host" or "guest" is the command,
             * verbatim. */
            pos[n_pos++] = argv[i++];
        } else if (!end_of_options && !strcmp(arg, "--")) {
            end_of_options = true;
            i++;
        } else if (!end_of_options && is_option(arg)) {
            error = parse_option(argc, argv, &i, &opts, &ps);
            if (error) {
                free(pos);
                return error;
            }
        } else if (!cmd) {
            cmd = find_command(arg);
            if (!cmd) {
                free(pos);
                return chanctl_usage_error("unknown command '%s'", arg);
            }
            i++;
        } else {
            pos[n_pos++] = argv[i++];
        }
    }

    if (ps.help) {
        usage();
        free(pos);
        return CHANCTL_OK;
    }
    if (ps.version) {
        printf("chanctl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        free(pos);
        return CHANCTL_OK;
    }
    if (!cmd) {
        free(pos);
        return chanctl_usage_error("missing command");
    }
    if (ps.vm_given && !(cmd->opts & OPT_VM)) {
        error = chanctl_usage_error("'%s' does not take --vm", cmd->name);
    } else if (ps.json_given && !(cmd->opts & OPT_JSON)) {
        error = chanctl_usage_error("'%s' does not take --json",
                                    cmd->name);
    } else if (ps.object_given && !(cmd->opts & OPT_OBJECT)) {
        error = chanctl_usage_error("'%s' does not take %s", cmd->name,
                                    ps.object_given);
    } else if (ps.wait_given && !(cmd->opts & OPT_WAIT)) {
        error = chanctl_usage_error("'%s' does not take --wait", cmd->name);
    } else if (ps.no_wait_given && !(cmd->opts & OPT_NO_WAIT)) {
        error = chanctl_usage_error("'%s' does not take --no-wait",
                                    cmd->name);
    } else if (ps.mode_given && !(cmd->opts & OPT_MODE)) {
        error = chanctl_usage_error("'%s' does not take --mode", cmd->name);
    } else if (ps.role_given && !(cmd->opts & OPT_ROLE)) {
        error = chanctl_usage_error("'%s' does not take --role", cmd->name);
    } else if (ps.size_given && !(cmd->opts & OPT_SIZE)) {
        error = chanctl_usage_error("'%s' does not take --size", cmd->name);
    } else if (ps.connection_given && !(cmd->opts & OPT_CONNECTION)) {
        error = chanctl_usage_error("'%s' does not take %s", cmd->name,
                                    ps.connection_given);
    } else if (opts.wait && opts.no_wait) {
        error = chanctl_usage_error("--wait and --no-wait contradict each "
                                    "other");
    } else if (n_pos < cmd->min_args) {
        error = chanctl_usage_error("missing arguments for '%s' (usage: "
                                    "chanctl %s %s)", cmd->name, cmd->name,
                                    cmd->args);
    } else if (cmd->max_args >= 0 && n_pos > cmd->max_args) {
        error = chanctl_usage_error("too many arguments for '%s' (usage: "
                                    "chanctl %s %s)", cmd->name, cmd->name,
                                    cmd->args);
    } else {
        error = 0;
    }
    if (error) {
        free(pos);
        return error;
    }

    if (!strcmp(cmd->name, "object-restore") && !opts.no_wait
        && !opts.timeout) {
        opts.timeout = CHANCTL_RESTORE_TIMEOUT;
    }
    if (!strcmp(cmd->name, "call") && !opts.timeout) {
        opts.timeout = CHANCTL_CALL_TIMEOUT;
    }
    if (opts.timeout > 0) {
        const char *server = polled_server(cmd, &opts);

        if (!strcmp(cmd->name, "watch")) {
            arm_timeout(opts.timeout, "", CHANCTL_OK);
        } else if (!strcmp(cmd->name, "call")) {
            /* The VM's time: the command waits for the response and its
             * grace itself, and cleans up; this only catches a Chan DB
             * that stops answering. */
            char *msg = xasprintf(
                "chanctl: call: timed out after %g seconds (no answer from "
                "the Chan DB)\n", opts.timeout);
            arm_timeout(opts.timeout + CHANCTL_CALL_GRACE_MSEC / 1000.0 + 5,
                        msg, CHANCTL_FAIL);
            free(msg);
        } else if (server) {
            /* The command checks its deadline itself; this only catches a
             * server that stops answering. */
            char *msg = xasprintf(
                "chanctl: %s: timed out after %g seconds (no answer from "
                "%s)\n", cmd->name, opts.timeout, server);
            arm_timeout(opts.timeout + 2, msg, CHANCTL_FAIL);
            free(msg);
        } else {
            char *msg = xasprintf(
                "chanctl: %s: timed out after %g seconds\n", cmd->name,
                opts.timeout);
            arm_timeout(opts.timeout, msg, CHANCTL_FAIL);
            free(msg);
        }
    }

    /* A reader that goes away (chanctl list | head) ends us quietly. */
    signal(SIGPIPE, SIG_DFL);

    /* --vm KIND:ID: the VM that the platform id names. */
    struct chanctl_vm_ref ref = { NULL, NULL, NULL };
    if (opts.vm && vm_id_is_spec(opts.vm)) {
        error = chanctl_resolve_vm(&opts, "--vm", opts.vm, &ref);
        if (error) {
            free(pos);
            return error;
        }
        opts.vm_id = opts.vm;
        opts.vm = ref.vm;
        opts.vm_label = ref.label;
        opts.vm_id_status = ref.status;
    }

    error = cmd->func(&opts, n_pos, pos);
    free(pos);
    free(ref.vm);
    free(ref.label);
    if (fflush(stdout) || ferror(stdout)) {
        chanctl_error("error writing output: %s", strerror(errno));
        return CHANCTL_FAIL;
    }
    return error;
}
