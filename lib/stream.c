/* stream: see stream.h. */

#include <config.h>
#include "stream.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "poll-loop.h"

/* How long to wait before retrying a connect() that failed with EAGAIN
 * (the listener's backlog was full). */
#define STREAM_CONNECT_RETRY_MSEC 10

#define LISTEN_BACKLOG 64

enum connect_state {
    CS_CONNECTED,               /* Connected. */
    CS_IN_PROGRESS,             /* connect() said EINPROGRESS. */
    CS_RETRY,                   /* connect() said EAGAIN: call it again. */
    CS_FAILED                   /* 'error' says why. */
};

struct stream {
    char *name;
    int fd;
    enum connect_state state;
    int error;                  /* For CS_FAILED. */
    struct sockaddr_un sun;     /* Peer address, for CS_RETRY. */
    socklen_t sun_len;
};

struct pstream {
    char *name;
    char *accepted_name;        /* Name given to accepted streams. */
    int fd;
    char *unlink_path;          /* Socket file to remove on close, or NULL. */
};

/* If 'name' starts with 'prefix', returns the rest, otherwise NULL. */
static const char *
strip_prefix(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    return name && !strncmp(name, prefix, n) ? name + n : NULL;
}

bool
stream_verify_name(const char *name)
{
    const char *path = strip_prefix(name, "unix:");
    return path && *path;
}

bool
pstream_verify_name(const char *name)
{
    const char *path = strip_prefix(name, "punix:");
    return path && *path;
}

/* Fills in '*sun' and '*lenp' for 'path' ("@name" for an abstract socket).
 * Returns 0 or a positive errno. */
static int
make_sockaddr(const char *path, struct sockaddr_un *sun, socklen_t *lenp)
{
    size_t max = sizeof sun->sun_path;

    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (!path || !*path) {
        return EINVAL;
    }
    if (path[0] == '@') {
        size_t n = strlen(path + 1);
        if (!n) {
            return EINVAL;
        }
        if (n > max - 1) {
            return ENAMETOOLONG;
        }
        memcpy(sun->sun_path + 1, path + 1, n);
        *lenp = offsetof(struct sockaddr_un, sun_path) + 1 + n;
    } else {
        size_t n = strlen(path);
        if (n > max - 1) {
            return ENAMETOOLONG;
        }
        memcpy(sun->sun_path, path, n);
        *lenp = offsetof(struct sockaddr_un, sun_path) + n + 1;
    }
    return 0;
}

static int
new_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* Calls connect() for 'stream' and updates its state. */
static void
try_connect(struct stream *stream)
{
    if (!connect(stream->fd, (struct sockaddr *) &stream->sun,
                 stream->sun_len)) {
        stream->state = CS_CONNECTED;
        return;
    }
    switch (errno) {
    case EINPROGRESS:
        stream->state = CS_IN_PROGRESS;
        break;
    case EAGAIN:
    case EINTR:
        stream->state = CS_RETRY;
        break;
    case EISCONN:
        stream->state = CS_CONNECTED;
        break;
    default:
        stream->state = CS_FAILED;
        stream->error = errno;
        break;
    }
}

int
stream_open(const char *name, struct stream **streamp)
{
    struct sockaddr_un sun;
    socklen_t sun_len;
    const char *path = strip_prefix(name, "unix:");
    int error;

    *streamp = NULL;
    if (!path) {
        return EAFNOSUPPORT;
    }
    error = make_sockaddr(path, &sun, &sun_len);
    if (error) {
        return error;
    }

    int fd = new_socket();
    if (fd < 0) {
        return -fd;
    }

    struct stream *stream = calloc(1, sizeof *stream);
    if (!stream || !(stream->name = strdup(name))) {
        free(stream);
        close(fd);
        return ENOMEM;
    }
    stream->fd = fd;
    stream->sun = sun;
    stream->sun_len = sun_len;
    try_connect(stream);
    if (stream->state == CS_FAILED) {
        error = stream->error;
        stream_close(stream);
        return error;
    }
    *streamp = stream;
    return 0;
}

int
stream_connect(struct stream *stream)
{
    switch (stream->state) {
    case CS_CONNECTED:
        return 0;

    case CS_RETRY:
        try_connect(stream);
        break;

    case CS_IN_PROGRESS: {
        struct pollfd pfd = { .fd = stream->fd, .events = POLLOUT };
        if (poll(&pfd, 1, 0) > 0) {
            int error = 0;
            socklen_t len = sizeof error;
            if (getsockopt(stream->fd, SOL_SOCKET, SO_ERROR, &error, &len)) {
                error = errno;
            }
            if (error) {
                stream->state = CS_FAILED;
                stream->error = error;
            } else {
                stream->state = CS_CONNECTED;
            }
        }
        break;
    }

    case CS_FAILED:
        break;
    }

    switch (stream->state) {
    case CS_CONNECTED:
        return 0;
    case CS_FAILED:
        return stream->error;
    case CS_IN_PROGRESS:
    case CS_RETRY:
    default:
        return EAGAIN;
    }
}

int
stream_open_block(const char *name, struct stream **streamp)
{
    struct stream *stream;
    int error = stream_open(name, &stream);

    *streamp = NULL;
    if (error) {
        return error;
    }
    while ((error = stream_connect(stream)) == EAGAIN) {
        if (stream->state == CS_RETRY) {
            poll(NULL, 0, STREAM_CONNECT_RETRY_MSEC);
        } else {
            struct pollfd pfd = { .fd = stream->fd, .events = POLLOUT };
            poll(&pfd, 1, -1);
        }
    }
    if (error) {
        stream_close(stream);
        return error;
    }
    *streamp = stream;
    return 0;
}

ssize_t
stream_recv(struct stream *stream, void *buffer, size_t n)
{
    int error = stream_connect(stream);
    if (error) {
        return -error;
    }
    if (!n) {
        return 0;
    }

    for (;;) {
        ssize_t retval = recv(stream->fd, buffer, n, MSG_DONTWAIT);
        if (retval >= 0) {
            return retval;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EWOULDBLOCK) {
            return -EAGAIN;
        } else {
            return -errno;
        }
    }
}

ssize_t
stream_send(struct stream *stream, const void *buffer, size_t n)
{
    int error = stream_connect(stream);
    if (error) {
        return -error;
    }
    if (!n) {
        return 0;
    }

    for (;;) {
        ssize_t retval = send(stream->fd, buffer, n,
                              MSG_DONTWAIT | MSG_NOSIGNAL);
        if (retval >= 0) {
            return retval;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EWOULDBLOCK) {
            return -EAGAIN;
        } else {
            return -errno;
        }
    }
}

void
stream_run(struct stream *stream)
{
    (void) stream;
}

void
stream_run_wait(struct stream *stream)
{
    (void) stream;
}

void
stream_wait(struct stream *stream, enum stream_wait_type type)
{
    switch (stream->state) {
    case CS_FAILED:
        poll_immediate_wake();
        return;
    case CS_RETRY:
        poll_timer_wait(STREAM_CONNECT_RETRY_MSEC);
        return;
    case CS_IN_PROGRESS:
        poll_fd_wait(stream->fd, POLLOUT);
        return;
    case CS_CONNECTED:
        break;
    }

    switch (type) {
    case STREAM_CONNECT:
        poll_immediate_wake();
        break;
    case STREAM_RECV:
        poll_fd_wait(stream->fd, POLLIN);
        break;
    case STREAM_SEND:
        poll_fd_wait(stream->fd, POLLOUT);
        break;
    }
}

void
stream_connect_wait(struct stream *stream)
{
    stream_wait(stream, STREAM_CONNECT);
}

void
stream_recv_wait(struct stream *stream)
{
    stream_wait(stream, STREAM_RECV);
}

void
stream_send_wait(struct stream *stream)
{
    stream_wait(stream, STREAM_SEND);
}

void
stream_close(struct stream *stream)
{
    if (stream) {
        close(stream->fd);
        free(stream->name);
        free(stream);
    }
}

const char *
stream_get_name(const struct stream *stream)
{
    return stream->name;
}

int
stream_get_fd(const struct stream *stream)
{
    return stream->fd;
}

/* Passive streams. */

/* Creates the directory that contains 'path' with mode 0755 if it does not
 * exist (only the last level).  Returns 0 or a positive errno. */
static int
make_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) {
        return 0;
    }

    char *dir = strndup(path, slash - path);
    if (!dir) {
        return ENOMEM;
    }

    int error = 0;
    struct stat st;
    if (stat(dir, &st)) {
        if (errno != ENOENT) {
            error = errno;
        } else if (mkdir(dir, 0755)) {
            if (errno != EEXIST) {
                error = errno;
            }
        } else {
            /* Exactly 0755 whatever the umask. */
            chmod(dir, 0755);
        }
    } else if (!S_ISDIR(st.st_mode)) {
        error = ENOTDIR;
    }
    free(dir);
    return error;
}

/* If 'path' is a socket file that nobody listens on, removes it.  Returns
 * 0 if the path is now free (or never existed), EADDRINUSE if something
 * listens there or it is not a socket, or another errno. */
static int
remove_stale_socket(const char *path, const struct sockaddr_un *sun,
                    socklen_t sun_len)
{
    struct stat st;

    if (lstat(path, &st)) {
        return errno == ENOENT ? 0 : errno;
    }
    if (!S_ISSOCK(st.st_mode)) {
        return EADDRINUSE;
    }

    int fd = new_socket();
    if (fd < 0) {
        return -fd;
    }
    int error = 0;
    if (!connect(fd, (const struct sockaddr *) sun, sun_len)) {
        error = EADDRINUSE;
    } else if (errno == EAGAIN || errno == EINPROGRESS) {
        /* Someone is listening with a full backlog. */
        error = EADDRINUSE;
    } else if (errno == ECONNREFUSED) {
        if (unlink(path) && errno != ENOENT) {
            error = errno;
        }
    } else {
        error = errno;
    }
    close(fd);
    return error;
}

int
pstream_open(const char *name, struct pstream **pstreamp)
{
    struct sockaddr_un sun;
    socklen_t sun_len;
    const char *path = strip_prefix(name, "punix:");
    int error;

    *pstreamp = NULL;
    if (!path) {
        return EAFNOSUPPORT;
    }
    error = make_sockaddr(path, &sun, &sun_len);
    if (error) {
        return error;
    }

    bool abstract = path[0] == '@';
    if (!abstract) {
        error = make_parent_dir(path);
        if (!error) {
            error = remove_stale_socket(path, &sun, sun_len);
        }
        if (error) {
            return error;
        }
    }

    int fd = new_socket();
    if (fd < 0) {
        return -fd;
    }
    if (bind(fd, (struct sockaddr *) &sun, sun_len)
        || listen(fd, LISTEN_BACKLOG)) {
        error = errno;
        close(fd);
        return error;
    }

    struct pstream *pstream = calloc(1, sizeof *pstream);
    if (!pstream) {
        close(fd);
        if (!abstract) {
            unlink(path);
        }
        return ENOMEM;
    }
    pstream->fd = fd;
    pstream->name = strdup(name);
    if (asprintf(&pstream->accepted_name, "unix:%s", path) < 0) {
        pstream->accepted_name = NULL;
    }
    pstream->unlink_path = abstract ? NULL : strdup(path);
    if (!pstream->name || !pstream->accepted_name
        || (!abstract && !pstream->unlink_path)) {
        if (!abstract) {
            unlink(path);
        }
        pstream_close(pstream);
        return ENOMEM;
    }
    *pstreamp = pstream;
    return 0;
}

int
pstream_accept(struct pstream *pstream, struct stream **streamp)
{
    int fd;

    *streamp = NULL;
    for (;;) {
        fd = accept4(pstream->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            break;
        }
        switch (errno) {
        case EINTR:
            continue;
        case EWOULDBLOCK:
        case ECONNABORTED:
        case EPROTO:
            return EAGAIN;
        default:
            return errno;
        }
    }

    struct stream *stream = calloc(1, sizeof *stream);
    if (!stream || !(stream->name = strdup(pstream->accepted_name))) {
        free(stream);
        close(fd);
        return ENOMEM;
    }
    stream->fd = fd;
    stream->state = CS_CONNECTED;
    *streamp = stream;
    return 0;
}

void
pstream_wait(struct pstream *pstream)
{
    poll_fd_wait(pstream->fd, POLLIN);
}

void
pstream_close(struct pstream *pstream)
{
    if (pstream) {
        close(pstream->fd);
        if (pstream->unlink_path) {
            unlink(pstream->unlink_path);
            free(pstream->unlink_path);
        }
        free(pstream->accepted_name);
        free(pstream->name);
        free(pstream);
    }
}

const char *
pstream_get_name(const struct pstream *pstream)
{
    return pstream->name;
}
