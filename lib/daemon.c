/* Copyright (c) 2026 The chand authors.  See daemon.h. */

#include <config.h>
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "poll-loop.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(daemon);

static int ready_fd = -1;

void
daemon_detach_start(void)
{
    int fds[2];
    if (pipe(fds)) {
        perror("pipe");
        exit(EXIT_FAILURE);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(EXIT_FAILURE);
    } else if (pid > 0) {
        char c;
        close(fds[1]);
        if (read(fds[0], &c, 1) == 1) {
            _exit(EXIT_SUCCESS);
        }
        int status;
        waitpid(pid, &status, 0);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE);
    }
    close(fds[0]);
    ready_fd = fds[1];
}

void
daemon_detach_finish(void)
{
    if (ready_fd < 0) {
        return;
    }
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) {
            close(null);
        }
    }
    if (write(ready_fd, "", 1) != 1) {
        /* The parent is gone: nothing to tell. */
    }
    close(ready_fd);
    ready_fd = -1;
}

int
daemon_write_pidfile(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp) {
        return ENAMETOOLONG;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return errno;
    }
    fprintf(f, "%ld\n", (long) getpid());
    if (fclose(f) || rename(tmp, path)) {
        int error = errno;
        unlink(tmp);
        return error;
    }
    return 0;
}

int
daemon_parse_option(struct daemon_options *dopts, int c, const char *arg)
{
    switch (c) {
    case DAEMON_OPT_LOG_FILE:
        dopts->log_file = arg;
        return -1;
    case DAEMON_OPT_PIDFILE:
        dopts->pidfile = arg;
        return -1;
    case DAEMON_OPT_DETACH:
        dopts->detach = true;
        return -1;
    case DAEMON_OPT_VLOG:
        if (vlog_set_levels_from_string(arg)) {
            fprintf(stderr, "%s: bad --vlog '%s'\n", dopts->program, arg);
            return 2;
        }
        return -1;
    case 'v':
        vlog_set_levels_from_string("ANY:dbg");
        return -1;
    case 'h':
        dopts->usage();
        return 0;
    case 'V':
        printf("%s %s\n", dopts->program, PACKAGE_VERSION);
        return 0;
    default:
        fprintf(stderr, "Try '%s --help'.\n", dopts->program);
        return 2;
    }
}

void
daemon_usage(const char *vlog_module)
{
    printf("Daemon:\n"
           "  --log-file=FILE     also log to FILE\n"
           "  --pidfile=FILE      write the process id to FILE once ready\n"
           "  --detach            run in the background once ready\n"
           "  --vlog=SPEC         log levels, e.g. ANY:info or %s:dbg\n"
           "  -v, --verbose       same as --vlog=ANY:dbg\n"
           "  -h, --help          show this help and exit\n"
           "  -V, --version       show the version and exit\n",
           vlog_module);
}

int
daemon_parse_end(const struct daemon_options *dopts, int argc, char *argv[])
{
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", dopts->program,
                argv[optind]);
        return 2;
    }
    return 0;
}

int
daemon_run(const struct daemon_class *class, const void *opts,
           const struct daemon_options *dopts)
{
    const char *pidfile = dopts->pidfile;
    bool detach = dopts->detach;

    if (dopts->log_file && vlog_set_log_file(dopts->log_file)) {
        fprintf(stderr, "%s: cannot open log file %s\n", dopts->program,
                dopts->log_file);
        return 1;
    }
    if (detach) {
        daemon_detach_start();
    }
    fatal_signal_init();

    void *d = class->create(opts);
    if (!d) {
        return 1;
    }
    if (pidfile && daemon_write_pidfile(pidfile)) {
        VLOG_ERR("%s: cannot write pidfile", pidfile);
        class->destroy(d);
        return 1;
    }
    if (detach) {
        vlog_set_stderr(false);
        daemon_detach_finish();
    }

    while (!fatal_signal_received() && !class->exiting(d)) {
        class->run(d);
        class->wait(d);
        poll_block();
    }
    VLOG_INFO("exiting");
    class->destroy(d);
    if (pidfile) {
        remove(pidfile);
    }
    return 0;
}
