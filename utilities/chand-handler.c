/* chand-handler: the built-in handlers of chand-guest (doc/objects.md,
 * "Built-in handlers").  Installed as <handlers-dir>/verdict, notice,
 * install and restore, it does what its name says; called as
 * chand-handler, it takes the action as its first argument. */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler-actions.h"
#include "util.h"

/* Most bytes read from stdin: a record's value is at most 1 MiB. */
#define STDIN_MAX (2 * 1024 * 1024)

static void
usage(void)
{
    printf("\
chand-handler: the built-in handlers of chand-guest\n\
usage: chand-handler verdict|notice|install|restore < RECORD\n\
       chand-handler release DIGEST\n\
       (or installed as HANDLERS-DIR/verdict, HANDLERS-DIR/notice,\n\
       HANDLERS-DIR/install and HANDLERS-DIR/restore)\n\
\n\
verdict   for each path of the record whose file still holds the object,\n\
          quarantine it (move it into the quarantine directory with its\n\
          metadata) or delete it, as the record's action says\n\
notice    report the object that supersedes this one\n\
install   put the record's verified content at its path, with its mode\n\
          (atomically; never through a symbolic link)\n\
restore   put the record's verified content back at the path asked for,\n\
          keeping the mode of the file it replaces\n\
release   put every quarantined file of DIGEST back where it was\n\
\n\
The quarantine directory is $CHAND_QUARANTINE_DIR, or %s.\n\
\n\
Options:\n\
  -h, --help          show this help and exit\n\
  -V, --version       show the version and exit\n",
           HA_DEFAULT_QUARANTINE_DIR);
}

static const char *
quarantine_dir(void)
{
    const char *dir = getenv("CHAND_QUARANTINE_DIR");

    return dir && *dir ? dir : HA_DEFAULT_QUARANTINE_DIR;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads all of stdin (at most STDIN_MAX bytes) into a malloc()ed buffer
 * owned by the caller, storing its length in '*lenp'; NULL if it is too
 * long or cannot be read. */
static char *
read_stdin(size_t *lenp)
{
    char *buf = xmalloc(STDIN_MAX + 1);
    size_t len = fread(buf, 1, STDIN_MAX + 1, stdin);

    if (ferror(stdin) || len > STDIN_MAX) {
        free(buf);
        return NULL;
    }
    *lenp = len;
    return buf;
}

/* Runs handler 'kind' on stdin.  Returns the exit status. */
static int
run_handler(const char *kind)
{
    struct ha_result res = { 0, NULL, NULL };
    struct ha_input in;
    size_t len = 0;
    char *text = read_stdin(&len);
    char *error = text ? ha_parse_input(text, len, &in)
                       : xstrdup("cannot read stdin (or over 2 MiB)");

    free(text);
    if (!error && strcmp(in.kind, kind)) {
        error = xasprintf("a %s record given to the %s handler", in.kind,
                          kind);
        ha_input_destroy(&in);
    }
    if (error) {
        fprintf(stderr, "chand-handler %s: %s\n", kind, error);
        free(error);
        return 2;
    }
    if (!strcmp(kind, "verdict")) {
        ha_verdict(&in, quarantine_dir(), now_ms(), &res);
    } else if (!strcmp(kind, "install")) {
        ha_install(&in, &res);
    } else if (!strcmp(kind, "restore")) {
        ha_restore(&in, &res);
    } else {
        ha_notice(&in, &res);
    }
    if (res.output) {
        printf("%s\n", res.output);
    }
    if (res.error) {
        fprintf(stderr, "chand-handler %s: %s\n", kind, res.error);
    }
    free(res.output);
    free(res.error);
    ha_input_destroy(&in);
    return res.exit_code;
}

/* "chand-handler release DIGEST".  Returns the exit status. */
static int
release(const char *digest)
{
    size_t n = 0;
    char *error = ha_release(quarantine_dir(), digest, &n);

    printf("released %zu file%s of %s\n", n, n == 1 ? "" : "s", digest);
    if (error) {
        fprintf(stderr, "chand-handler release: %s\n", error);
        free(error);
        return 1;
    }
    return 0;
}

int
main(int argc, char *argv[])
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *name = strrchr(argv[0], '/');
    int c;

    name = name ? name + 1 : argv[0];
    if (ha_known_kind(name)) {
        return run_handler(name);
    }
    while ((c = getopt_long(argc, argv, "+hV", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': usage(); return 0;
        case 'V': printf("chand-handler %s\n", PACKAGE_VERSION); return 0;
        default:
            fprintf(stderr, "Try 'chand-handler --help'.\n");
            return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc == 1 && ha_known_kind(argv[0])) {
        return run_handler(argv[0]);
    } else if (argc == 2 && !strcmp(argv[0], "release")) {
        return release(argv[1]);
    }
    fprintf(stderr, "chand-handler: expected verdict, notice, install, "
            "restore or release DIGEST (try --help)\n");
    return 2;
}
