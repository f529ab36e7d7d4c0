/* chanctl: commands that talk to a daemon's control socket (channels,
 * channel-show, object-delink and host for chand-host; guest for chand-guest).  See
 * chanctl.h and lib/ctl.h. */

#include <config.h>
#include "chanctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-endpoint.h"
#include "ctl.h"

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
 * (borrowed) on 't' and prints its output.  Returns an exit status. */
static int
run_ctl_command(const struct ctl_target *t, const char *command, int argc,
                char *argv[])
{
    char *result, *error_text;
    int error = ctl_client_transact(t->path, command, argc, argv, &result,
                                    &error_text);

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
        return CHANCTL_FAIL;
    }
    size_t len = strlen(result);
    fputs(result, stdout);
    if (len && result[len - 1] != '\n') {
        putchar('\n');
    }
    free(result);
    return CHANCTL_OK;
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

int
chanctl_cmd_channel_show(const struct chanctl_options *opts, int argc,
                         char *argv[])
{
    struct ctl_target t = host_target(opts);

    return run_ctl_command(&t, "channel/show", argc, argv);
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

int
chanctl_cmd_host(const struct chanctl_options *opts, int argc, char *argv[])
{
    struct ctl_target t = host_target(opts);

    return run_ctl_command(&t, argv[0], argc - 1, argv + 1);
}

int
chanctl_cmd_guest(const struct chanctl_options *opts, int argc,
                  char *argv[])
{
    struct ctl_target t = guest_target(opts);

    return run_ctl_command(&t, argv[0], argc - 1, argv + 1);
}
