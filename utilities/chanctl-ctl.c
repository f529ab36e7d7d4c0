/* chanctl: commands that talk to a daemon's control socket (channels,
 * channel-show, object-delink, object-store, object-fetch, transfers and
 * host for chand-host; guest for chand-guest; metrics for either).  See
 * chanctl.h and lib/ctl.h. */

#include <config.h>
#include "chanctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "chan-endpoint.h"
#include "ctl.h"
#include "util.h"
#include "vm-id.h"

/* Which daemon a control command goes to. */
struct ctl_target {
    const char *daemon;         /* "chand-host" or "chand-guest". */
    const char *path;           /* Socket. */
    const char *option;         /* "--host-ctl", for hints. */
    const char *env;            /* "CHAND_HOST_CTL", for hints. */
    enum chanctl_origin origin;
};

static struct ctl_target
host_target(const struct chanctl_options *opts)
{
    struct ctl_target t = {
        "chand-host", opts->host_ctl, "--host-ctl", "CHAND_HOST_CTL",
        opts->host_ctl_origin
    };
    return t;
}

static struct ctl_target
guest_target(const struct chanctl_options *opts)
{
    struct ctl_target t = {
        "chand-guest", opts->guest_ctl, "--guest-ctl", "CHAND_GUEST_CTL",
        opts->guest_ctl_origin
    };
    return t;
}

/* Runs control command 'command' with the 'argc' arguments in 'argv'
 * (borrowed) on 't' and stores its output (malloc'd, owned by the caller)
 * in '*resultp'.  Returns an exit status; on failure prints why and stores
 * NULL. */
static int
ctl_query(const struct ctl_target *t, const char *command, int argc,
          char *argv[], char **resultp)
{
    char *result, *error_text;
    int error = ctl_client_transact(t->path, command, argc, argv, &result,
                                    &error_text);

    *resultp = NULL;
    if (error) {
        /* Errors after the connection was made; anything else is a
         * failure to connect. */
        bool connected = (error == EPROTO || error == ECONNRESET
                          || error == EPIPE || error == EMSGSIZE);
        if (!connected) {
            chanctl_error("cannot connect to %s control socket %s: %s (is "
                          "%s running? use %s%s%s)", t->daemon, t->path,
                          strerror(error), t->daemon, t->option,
                          t->origin == CHANCTL_FROM_ENV ? " or unset " : "",
                          t->origin == CHANCTL_FROM_ENV ? t->env : "");
        } else {
            chanctl_error("%s: %s control socket %s: %s", command,
                          t->daemon, t->path,
                          error == EPROTO ? "malformed reply"
                                          : strerror(error));
        }
        return CHANCTL_FAIL;
    }
    if (error_text) {
        size_t len = strlen(error_text);
        while (len && error_text[len - 1] == '\n') {
            error_text[--len] = '\0';
        }
        chanctl_error("%s: %s: %s", t->daemon, command, error_text);
        free(error_text);
        free(result);
        return CHANCTL_FAIL;
    }
    *resultp = result ? result : xstrdup("");
    return CHANCTL_OK;
}

/* Prints control command output 'text', ending it with a new-line if it
 * lacks one. */
static void
print_output(const char *text)
{
    size_t len = strlen(text);

    fputs(text, stdout);
    if (len && text[len - 1] != '\n') {
        putchar('\n');
    }
}

/* Runs control command 'command' with the 'argc' arguments in 'argv'
 * (borrowed) on 't' and prints its output.  Returns an exit status. */
static int
run_ctl_command(const struct ctl_target *t, const char *command, int argc,
                char *argv[])
{
    char *result;
    int error = ctl_query(t, command, argc, argv, &result);

    if (!error) {
        print_output(result);
        free(result);
    }
    return error;
}

int
chanctl_cmd_channels(const struct chanctl_options *opts, int argc,
                     char *argv[])
{
    struct ctl_target t = host_target(opts);

    (void) argc;
    (void) argv;
    return run_ctl_command(&t, "channel/list", 0, NULL);
}

/* Prints channel/show's answer 'text' (a JSON object) with "id" and
 * "id_status" from 'ref' added, the way chand-host formats it; other text
 * as it is. */
static void
print_channel_with_id(const char *text, const struct chanctl_vm_ref *ref,
                      const char *id)
{
    json_t *j = json_loads(text, 0, NULL);

    if (json_is_object(j)) {
        json_object_set_new(j, "id", json_string(id));
        json_object_set_new(j, "id_status", json_string(ref->status));
        char *out = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        print_output(out ? out : text);
        free(out);
    } else {
        print_output(text);
    }
    json_decref(j);
}

/* chanctl channel-show VM: VM may be KIND:ID, resolved through the Chan
 * DB; the answer then shows the id. */
int
chanctl_cmd_channel_show(const struct chanctl_options *opts, int argc,
                         char *argv[])
{
    struct ctl_target t = host_target(opts);
    struct chanctl_vm_ref ref;
    char *answer;

    if (!vm_id_is_spec(argv[0])) {
        return run_ctl_command(&t, "channel/show", argc, argv);
    }
    int error = chanctl_resolve_vm(opts, "channel-show", argv[0], &ref);
    if (error) {
        return error;
    }
    char *args[] = { ref.vm };
    error = ctl_query(&t, "channel/show", 1, args, &answer);
    if (!error) {
        print_channel_with_id(answer, &ref, argv[0]);
        free(answer);
    } else {
        chanctl_error("channel-show: %s is VM %s", argv[0], ref.vm);
    }
    free(ref.vm);
    free(ref.label);
    return error;
}

/* chanctl object-delink --vm VM: chand-host's object/delink. */
int
chanctl_cmd_object_delink(const struct chanctl_options *opts, int argc,
                          char *argv[])
{
    struct ctl_target t = host_target(opts);
    char *args[] = { (char *) opts->vm };

    (void) argc;
    (void) argv;
    if (!opts->vm) {
        return chanctl_usage_error("object-delink needs --vm NAME");
    } else if (!chan_vm_name_is_valid(opts->vm)) {
        return chanctl_usage_error("invalid VM name '%s'", opts->vm);
    }
    return run_ctl_command(&t, "object/delink", 1, args);
}

/* chanctl object-store FILE: chand-host's object/store with FILE's
 * canonical path (chand-host has a working directory of its own); prints
 * its answer, "DIGEST SIZE". */
int
chanctl_cmd_object_store(const struct chanctl_options *opts, int argc,
                         char *argv[])
{
    struct ctl_target t = host_target(opts);
    char *path = realpath(argv[0], NULL);

    (void) argc;
    if (!path) {
        chanctl_error("object-store: %s: %s", argv[0], strerror(errno));
        return CHANCTL_FAIL;
    }
    int error = run_ctl_command(&t, "object/store", 1, &path);
    free(path);
    return error;
}

/* Runs chand-host's transfer/list and stores its answer, parsed, in
 * '*statusp' (a new reference).  Returns an exit status; on failure prints
 * why and stores NULL. */
static int
transfer_list(const struct ctl_target *t, json_t **statusp)
{
    json_error_t jerror;
    char *text;
    int error = ctl_query(t, "transfer/list", 0, NULL, &text);

    *statusp = NULL;
    if (error) {
        return error;
    }
    json_t *status = json_loads(text, 0, &jerror);
    free(text);
    if (!json_is_object(status)) {
        chanctl_error("%s: transfer/list: malformed answer (%s)", t->daemon,
                      status ? "not an object" : jerror.text);
        json_decref(status);
        return CHANCTL_FAIL;
    }
    *statusp = status;
    return CHANCTL_OK;
}

/* Returns the member of array 'array' (borrowed) whose "digest" is
 * 'digest', or NULL. */
static const json_t *
find_by_digest(const json_t *array, const char *digest)
{
    const json_t *elem;
    size_t i;

    json_array_foreach (array, i, elem) {
        const char *d = json_string_value(json_object_get(elem, "digest"));
        if (d && !strcmp(d, digest)) {
            return elem;
        }
    }
    return NULL;
}

static json_int_t
member_int(const json_t *object, const char *name)
{
    return json_integer_value(json_object_get(object, name));
}

/* Prints on stderr how far the fetch of 'digest' from 'vm' got, according
 * to transfer/list's answer 'status' (borrowed). */
static void
print_fetch_progress(const json_t *status, const char *vm,
                     const char *digest)
{
    const json_t *lane = json_object_get(json_object_get(status, "lanes"),
                                         vm);
    const json_t *pull = find_by_digest(json_object_get(lane, "pulls"),
                                        digest);

    if (pull) {
        json_int_t n = member_int(pull, "n_chunks");
        json_int_t have = member_int(pull, "have");
        fprintf(stderr, "chanctl: %s has %"JSON_INTEGER_FORMAT"/%"
                JSON_INTEGER_FORMAT" chunks of %.12s (%d%%); the fetch goes "
                "on in chand-host (see chanctl transfers)\n", vm, have, n,
                digest, n > 0 ? (int) (have * 100 / n) : 0);
    } else {
        fprintf(stderr, "chanctl: no transfer of %.12s from %s has started "
                "yet; the fetch stays queued in chand-host (see chanctl "
                "transfers)\n", digest, vm);
    }
}

/* Polls transfer/list until the fetch of 'digest' from opts->vm is gone
 * (done), failed, or opts->timeout passes.  Returns an exit status. */
static int
wait_for_fetch(const struct chanctl_options *opts,
               const struct ctl_target *t, const char *digest)
{
    long long int deadline = chanctl_deadline(opts->timeout);

    for (;;) {
        json_t *status;
        int error = transfer_list(t, &status);
        if (error) {
            return error;
        }
        const json_t *fetch = find_by_digest(
            json_object_get(status, "fetches"), digest);
        const char *why = json_string_value(json_object_get(fetch,
                                                            "error"));
        if (!fetch) {
            printf("fetched %s from %s\n", digest, chanctl_vm_label(opts));
        } else if (why) {
            chanctl_error("object-fetch: %s", why);
        } else if (deadline && chanctl_time_msec() >= deadline) {
            chanctl_error("object-fetch: timed out after %g seconds waiting "
                          "for %.12s from %s", opts->timeout, digest,
                          chanctl_vm_label(opts));
            print_fetch_progress(status, opts->vm, digest);
        } else {
            json_decref(status);
            chanctl_poll_sleep(deadline);
            continue;
        }
        json_decref(status);
        return fetch ? CHANCTL_FAIL : CHANCTL_OK;
    }
}

/* chanctl object-fetch --vm VM DIGEST [--size N] [--wait]: chand-host's
 * object/fetch VM DIGEST [N]; with --wait, waits for the fetch to end. */
int
chanctl_cmd_object_fetch(const struct chanctl_options *opts, int argc,
                         char *argv[])
{
    struct ctl_target t = host_target(opts);
    char *args[] = { (char *) opts->vm, argv[0], (char *) opts->size };
    int n_args = opts->size ? 3 : 2;
    int error;

    (void) argc;
    if ((error = chanctl_check_vm_required(opts, "object-fetch"))
        || (error = chanctl_check_digest(argv[0]))) {
        return error;
    }
    if (!opts->wait) {
        return run_ctl_command(&t, "object/fetch", n_args, args);
    }

    char *answer;
    error = ctl_query(&t, "object/fetch", n_args, args, &answer);
    if (error) {
        return error;
    }
    if (opts->verbose) {
        print_output(answer);
    }
    free(answer);
    return wait_for_fetch(opts, &t, argv[0]);
}

/* Prints the content store line of transfer/list's answer 'status'. */
static void
print_content_store(const json_t *status)
{
    const char *dir = json_string_value(json_object_get(status,
                                                        "content_dir"));
    json_int_t bytes = member_int(status, "content_bytes");
    json_int_t cap = member_int(status, "content_cap");

    printf("content store %s: %"JSON_INTEGER_FORMAT" bytes", dir ? dir : "?",
           bytes);
    if (cap > 0) {
        printf(" of %"JSON_INTEGER_FORMAT" (%d%%)\n", cap,
               (int) (bytes * 100 / cap));
    } else {
        printf(" (no cap)\n");
    }
}

/* Prints one line per fetch in transfer/list's answer 'status'. */
static void
print_fetches(const json_t *status)
{
    const json_t *fetches = json_object_get(status, "fetches");
    const json_t *f;
    size_t i;

    if (!json_array_size(fetches)) {
        printf("no fetches\n");
        return;
    }
    printf("fetches:\n");
    json_array_foreach (fetches, i, f) {
        const char *source = json_string_value(json_object_get(f, "source"));
        const char *error = json_string_value(json_object_get(f, "error"));

        printf("  %.12s  size %"JSON_INTEGER_FORMAT"  from %s  %s%s%s\n",
               json_string_value(json_object_get(f, "digest")),
               member_int(f, "size"), source ? source : "-",
               error ? "failed: " : source ? "fetching" : "waiting for a VM",
               error ? error : "",
               json_is_true(json_object_get(f, "operator"))
               ? "" : " (for a VM)");
    }
}

/* Prints one VM's lane of transfer/list's answer: its pulls, the objects
 * it serves and the pulls that ended lately. */
static void
print_lane(const char *vm, const json_t *lane)
{
    const json_t *pulls = json_object_get(lane, "pulls");
    const json_t *served = json_object_get(lane, "served");
    const json_t *p;
    size_t i;

    printf("lane %s: %zu pulls, %zu served\n", vm, json_array_size(pulls),
           json_array_size(served));
    json_array_foreach (pulls, i, p) {
        json_int_t n = member_int(p, "n_chunks");
        json_int_t have = member_int(p, "have");

        printf("  pull %.12s  %"JSON_INTEGER_FORMAT"/%"JSON_INTEGER_FORMAT
               " chunks (%d%%)  rerequested %"JSON_INTEGER_FORMAT
               "  duplicates %"JSON_INTEGER_FORMAT"\n",
               json_string_value(json_object_get(p, "digest")), have, n,
               n > 0 ? (int) (have * 100 / n) : 0,
               member_int(p, "rerequested"), member_int(p, "duplicates"));
    }
    json_array_foreach (served, i, p) {
        printf("  served %.12s  chunks_sent %"JSON_INTEGER_FORMAT
               "  sent_again %"JSON_INTEGER_FORMAT"\n",
               json_string_value(json_object_get(p, "digest")),
               member_int(p, "chunks_sent"), member_int(p, "sent_again"));
    }
    json_array_foreach (json_object_get(lane, "recent"), i, p) {
        printf("  pulled %.12s  %s  %"JSON_INTEGER_FORMAT" chunks in %"
               JSON_INTEGER_FORMAT" ms  rerequested %"JSON_INTEGER_FORMAT
               "  duplicates %"JSON_INTEGER_FORMAT"\n",
               json_string_value(json_object_get(p, "digest")),
               json_string_value(json_object_get(p, "result")),
               member_int(p, "n_chunks"), member_int(p, "ms"),
               member_int(p, "rerequested"), member_int(p, "duplicates"));
    }
}

/* chanctl transfers [--json]: chand-host's transfer/list, as is or
 * summarized. */
int
chanctl_cmd_transfers(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    struct ctl_target t = host_target(opts);
    json_t *status;

    (void) argc;
    (void) argv;
    int error = transfer_list(&t, &status);
    if (error) {
        return error;
    }
    if (opts->json) {
        char *text = json_dumps(status, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", text ? text : "null");
        free(text);
    } else {
        const char *vm;
        json_t *lane;

        print_content_store(status);
        print_fetches(status);
        json_object_foreach (json_object_get(status, "lanes"), vm, lane) {
            print_lane(vm, lane);
        }
    }
    json_decref(status);
    return CHANCTL_OK;
}

int
chanctl_cmd_host(const struct chanctl_options *opts, int argc, char *argv[])
{
    struct ctl_target t = host_target(opts);

    return run_ctl_command(&t, argv[0], argc - 1, argv + 1);
}

/* chanctl metrics [host|guest]: host/metrics or guest/metrics; without an
 * argument, chand-host's if its control socket exists, else
 * chand-guest's. */
int
chanctl_cmd_metrics(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    bool host;
    if (argc) {
        host = !strcmp(argv[0], "host");
        if (!host && strcmp(argv[0], "guest")) {
            return chanctl_usage_error("metrics: '%s' is neither host nor "
                                       "guest", argv[0]);
        }
    } else {
        host = access(opts->host_ctl, F_OK) == 0;
    }
    struct ctl_target t = host ? host_target(opts) : guest_target(opts);
    char *text;
    int error = ctl_query(&t, host ? "host/metrics" : "guest/metrics", 0,
                          NULL, &text);
    if (!error) {
        fputs(text, stdout);
        free(text);
    }
    return error;
}

int
chanctl_cmd_guest(const struct chanctl_options *opts, int argc,
                  char *argv[])
{
    struct ctl_target t = guest_target(opts);

    return run_ctl_command(&t, argv[0], argc - 1, argv + 1);
}
