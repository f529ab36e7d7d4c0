/* Copyright (c) 2026 The chand authors.  See daemon.h. */

#include <config.h>
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
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
daemon_run(const struct daemon_class *class, const void *opts, bool detach,
           const char *pidfile)
{
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
