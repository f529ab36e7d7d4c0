/* stream: see stream.h. */

#include <config.h>
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "poll-loop.h"
#include "stream-ssl.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(stream);

/* How long to wait before retrying a connect() that failed with EAGAIN
 * (the listener's backlog was full). */
#define STREAM_CONNECT_RETRY_MSEC 10

#define LISTEN_BACKLOG 64

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 25);

enum stream_kind {
    KIND_UNIX,                  /* "unix:", "punix:" */
    KIND_TCP,                   /* "tcp:", "ptcp:" */
    KIND_SSL                    /* "ssl:", "pssl:" */
};

enum connect_state {
    CS_CONNECTED,               /* Connected (and TLS handshake done). */
    CS_IN_PROGRESS,             /* connect() said EINPROGRESS. */
    CS_RETRY,                   /* connect() said EAGAIN: call it again. */
    CS_HANDSHAKE,               /* TLS handshake in progress. */
    CS_FAILED                   /* 'error' says why. */
};

struct stream {
    char *name;
    int fd;
    enum connect_state state;
    int error;                  /* For CS_FAILED. */
    struct sockaddr_storage ss; /* Peer address, for CS_RETRY. */
    socklen_t ss_len;
    struct ssl_conn *ssl;       /* For KIND_SSL, otherwise NULL. */
};

struct pstream {
    char *name;
    char *accepted_name;        /* Name given to accepted unix streams. */
    int fd;
    char *unlink_path;          /* Socket file to remove on close, or NULL. */
    enum stream_kind kind;
    uint16_t port;              /* Bound port for ptcp and pssl. */
};

/* If 'name' starts with 'prefix', returns the rest, otherwise NULL. */
static const char *
strip_prefix(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    return name && !strncmp(name, prefix, n) ? name + n : NULL;
}

/* Finds the kind of active ('passive' false) or passive stream 'name'
 * names.  Returns the rest of the name in '*suffixp', or NULL if the prefix
 * is unknown. */
static const char *
parse_kind(const char *name, bool passive, enum stream_kind *kindp)
{
    static const struct {
        const char *active, *passive;
        enum stream_kind kind;
    } kinds[] = {
        { "unix:", "punix:", KIND_UNIX },
        { "tcp:", "ptcp:", KIND_TCP },
        { "ssl:", "pssl:", KIND_SSL },
    };

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *suffix = strip_prefix(name, (passive ? kinds[i].passive
                                                 : kinds[i].active));
        if (suffix) {
            *kindp = kinds[i].kind;
            return suffix;
        }
    }
    return NULL;
}

/* Internet addresses. */

/* Parses a port number: 1 to 5 decimal digits, at most 65535, and not 0
 * unless 'allow_zero'. */
static bool
parse_port(const char *s, bool allow_zero, uint16_t *portp)
{
    size_t n = strspn(s, "0123456789");
    if (!n || n > 5 || s[n]) {
        return false;
    }
    long port = strtol(s, NULL, 10);
    if (port > 65535 || (!port && !allow_zero)) {
        return false;
    }
    *portp = port;
    return true;
}

/* If 'host' is "[...]", strips the brackets in place.  Returns false if it
 * has brackets anywhere else or nothing inside them. */
static bool
unbracket(char **hostp)
{
    char *host = *hostp;
    size_t n = strlen(host);

    if (host[0] == '[') {
        if (n < 3 || host[n - 1] != ']'
            || strpbrk(host + 1, "[]") != host + n - 1) {
            return false;
        }
        host[n - 1] = '\0';
        *hostp = host + 1;
        return true;
    }
    return !strpbrk(host, "[]");
}

/* Splits 's' (modified in place) into host and port, as OVS does: "HOST:PORT"
 * if 'host_first', otherwise "PORT[:HOST]".  A host that contains colons (an
 * IPv6 address) must be in brackets.  '*hostp' may be NULL for the passive
 * form.  Returns 0 or EINVAL. */
static int
split_host_port(char *s, bool host_first, char **hostp, char **portp)
{
    char *colon = NULL;
    bool in_brackets = false;
    int n_colons = 0;

    *hostp = *portp = NULL;
    for (char *p = s; *p; p++) {
        if (*p == '[') {
            if (in_brackets) {
                return EINVAL;
            }
            in_brackets = true;
        } else if (*p == ']') {
            if (!in_brackets) {
                return EINVAL;
            }
            in_brackets = false;
        } else if (*p == ':' && !in_brackets) {
            n_colons++;
            colon = p;
        }
    }
    if (in_brackets || n_colons > 1 || (host_first && !n_colons)) {
        return EINVAL;
    }

    if (colon) {
        *colon = '\0';
        *hostp = host_first ? s : colon + 1;
        *portp = host_first ? colon + 1 : s;
    } else {
        *portp = s;
    }
    if (*hostp && (!**hostp || !unbracket(hostp))) {
        return EINVAL;
    }
    return strpbrk(*portp, "[]") ? EINVAL : 0;
}

/* Returns true if 'host' could be a DNS host name, as opposed to a
 * malformed IP address: letters, digits, '-' and '.', not only digits and
 * dots. */
static bool
is_host_name(const char *host)
{
    return (host[strspn(host, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")] == '\0'
            && host[strspn(host, "0123456789.")] != '\0');
}

/* Resolves 'host' (an IPv4 or IPv6 literal, or a host name unless
 * 'numeric_only'; NULL for the IPv4 wildcard) and 'port' into '*ss'.
 * Returns 0, EINVAL for a malformed address, or EADDRNOTAVAIL for a host
 * name that does not resolve. */
static int
resolve(const char *host, uint16_t port, bool numeric_only,
        struct sockaddr_storage *ss, socklen_t *lenp)
{
    memset(ss, 0, sizeof *ss);
    if (!host) {
        struct sockaddr_in *sin = (struct sockaddr_in *) ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons(port);
        *lenp = sizeof *sin;
        return 0;
    }

    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICHOST,
    };
    struct addrinfo *ai;
    int error = getaddrinfo(host, NULL, &hints, &ai);
    if (error) {
        if (!is_host_name(host)) {
            return EINVAL;
        }
        if (numeric_only) {
            return 0;
        }
        hints.ai_flags = 0;
        error = getaddrinfo(host, NULL, &hints, &ai);
        if (error) {
            VLOG_WARN_RL(&rl, "%s: could not resolve host name (%s)", host,
                         gai_strerror(error));
            return EADDRNOTAVAIL;
        }
    }
    if (ai->ai_addrlen > sizeof *ss
        || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)) {
        freeaddrinfo(ai);
        return EADDRNOTAVAIL;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *lenp = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (ss->ss_family == AF_INET) {
        ((struct sockaddr_in *) ss)->sin_port = htons(port);
    } else {
        ((struct sockaddr_in6 *) ss)->sin6_port = htons(port);
    }
    return 0;
}

/* Parses 'target', "HOST:PORT" for an active stream or "PORT[:HOST]" for a
 * passive one, into '*ss'.  Resolves host names unless 'numeric_only' (then
 * '*ss' is not filled in for a host name).  If 'hostp' is nonnull, stores
 * the host (without brackets; NULL if none), which the caller frees.
 * Returns 0 or a positive errno. */
static int
parse_inet(const char *target, bool passive, bool numeric_only,
           struct sockaddr_storage *ss, socklen_t *lenp, char **hostp)
{
    char *copy = strdup(target);
    char *host, *port_s;
    uint16_t port;
    int error;

    if (hostp) {
        *hostp = NULL;
    }
    if (!copy) {
        return ENOMEM;
    }
    error = split_host_port(copy, !passive, &host, &port_s);
    if (!error && !parse_port(port_s, passive, &port)) {
        error = EINVAL;
    }
    if (!error) {
        error = resolve(host, port, numeric_only, ss, lenp);
    }
    if (!error && hostp && host) {
        *hostp = strdup(host);
        if (!*hostp) {
            error = ENOMEM;
        }
    }
    free(copy);
    return error;
}

/* Formats the address and port in 'ss' as "PREFIX:ADDR:PORT" ('port_first'
 * false) or "PREFIX:PORT:ADDR", with an IPv6 address in brackets.  Returns
 * a malloc()ed string or NULL. */
static char *
format_inet(const char *prefix, const struct sockaddr_storage *ss,
            bool port_first)
{
    char addr[INET6_ADDRSTRLEN + 2];
    char *s;
    uint16_t port;

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
        addr[0] = '[';
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr + 1, INET6_ADDRSTRLEN);
        strcat(addr, "]");
        port = ntohs(sin6->sin6_port);
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
        port = ntohs(sin->sin_port);
    }
    if ((port_first
         ? asprintf(&s, "%s:%u:%s", prefix, port, addr)
         : asprintf(&s, "%s:%s:%u", prefix, addr, port)) < 0) {
        return NULL;
    }
    return s;
}

static void
set_tcp_nodelay(int fd)
{
    int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on)) {
        VLOG_ERR_RL(&rl, "setsockopt(TCP_NODELAY): %s", strerror(errno));
    }
}

bool
stream_verify_name(const char *name)
{
    enum stream_kind kind;
    const char *suffix = parse_kind(name, false, &kind);
    struct sockaddr_storage ss;
    socklen_t len;

    if (!suffix) {
        return false;
    }
    return (kind == KIND_UNIX
            ? *suffix != '\0'
            : !parse_inet(suffix, false, true, &ss, &len, NULL));
}

bool
pstream_verify_name(const char *name)
{
    enum stream_kind kind;
    const char *suffix = parse_kind(name, true, &kind);
    struct sockaddr_storage ss;
    socklen_t len;

    if (!suffix) {
        return false;
    }
    return (kind == KIND_UNIX
            ? *suffix != '\0'
            : !parse_inet(suffix, true, true, &ss, &len, NULL));
}

/* Unix domain sockets. */

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

/* Returns a new nonblocking, close-on-exec stream socket of 'family', or a
 * negative errno. */
static int
new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}


/* Active streams. */

/* The socket is connected: on to the TLS handshake, if any. */
static void
socket_connected(struct stream *stream)
{
    stream->state = stream->ssl ? CS_HANDSHAKE : CS_CONNECTED;
}

/* Calls connect() for 'stream' and updates its state. */
static void
try_connect(struct stream *stream)
{
    if (!connect(stream->fd, (struct sockaddr *) &stream->ss,
                 stream->ss_len)) {
        socket_connected(stream);
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
        socket_connected(stream);
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
    struct sockaddr_storage ss;
    socklen_t ss_len;
    enum stream_kind kind;
    const char *suffix = parse_kind(name, false, &kind);
    char *host = NULL;
    int error;

    *streamp = NULL;
    if (!suffix) {
        return EAFNOSUPPORT;
    }
    if (kind == KIND_UNIX) {
        error = make_sockaddr(suffix, (struct sockaddr_un *) &ss, &ss_len);
    } else {
        error = parse_inet(suffix, false, false, &ss, &ss_len, &host);
    }
    if (error) {
        free(host);
        return error;
    }

    int fd = new_socket(ss.ss_family);
    if (fd < 0) {
        free(host);
        return -fd;
    }
    if (kind != KIND_UNIX) {
        set_tcp_nodelay(fd);
    }

    struct stream *stream = calloc(1, sizeof *stream);
    if (!stream || !(stream->name = strdup(name))) {
        free(stream);
        free(host);
        close(fd);
        return ENOMEM;
    }
    stream->fd = fd;
    stream->ss = ss;
    stream->ss_len = ss_len;
    if (kind == KIND_SSL) {
        /* Before connecting, so that a missing configuration fails at
         * once. */
        error = ssl_conn_create(fd, false, host, name, &stream->ssl);
        if (error) {
            free(host);
            stream_close(stream);
            return error;
        }
    }
    free(host);

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
                socket_connected(stream);
            }
        }
        break;
    }

    case CS_HANDSHAKE:
    case CS_FAILED:
        break;
    }

    if (stream->state == CS_HANDSHAKE) {
        int error = ssl_conn_handshake(stream->ssl);
        if (!error) {
            stream->state = CS_CONNECTED;
        } else if (error != EAGAIN) {
            stream->state = CS_FAILED;
            stream->error = error;
        }
    }

    switch (stream->state) {
    case CS_CONNECTED:
        return 0;
    case CS_FAILED:
        return stream->error;
    case CS_IN_PROGRESS:
    case CS_RETRY:
    case CS_HANDSHAKE:
    default:
        return EAGAIN;
    }
}

/* For a stream that is still connecting, the poll events to wait for on its
 * socket; 0 means to retry at once, -1 after STREAM_CONNECT_RETRY_MSEC. */
static int
connect_wait_events(const struct stream *stream)
{
    switch (stream->state) {
    case CS_RETRY:
        return -1;
    case CS_IN_PROGRESS:
        return POLLOUT;
    case CS_HANDSHAKE:
        return ssl_conn_wait_events(stream->ssl, STREAM_CONNECT, false);
    case CS_CONNECTED:
    case CS_FAILED:
    default:
        return 0;
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
        int events = connect_wait_events(stream);
        if (events < 0) {
            poll(NULL, 0, STREAM_CONNECT_RETRY_MSEC);
        } else if (events > 0) {
            struct pollfd pfd = { .fd = stream->fd, .events = events };
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
    if (stream->ssl) {
        return ssl_conn_recv(stream->ssl, buffer, n);
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
    if (stream->ssl) {
        return ssl_conn_send(stream->ssl, buffer, n);
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
    if (stream->ssl && stream->state == CS_CONNECTED) {
        ssl_conn_run(stream->ssl);
    }
}

void
stream_run_wait(struct stream *stream)
{
    if (stream->ssl && stream->state == CS_CONNECTED) {
        int events = ssl_conn_run_wait_events(stream->ssl);
        if (events > 0) {
            poll_fd_wait(stream->fd, events);
        } else if (!events) {
            poll_immediate_wake();
        }
    }
}

void
stream_wait(struct stream *stream, enum stream_wait_type type)
{
    int events;

    switch (stream->state) {
    case CS_FAILED:
        poll_immediate_wake();
        return;
    case CS_RETRY:
        poll_timer_wait(STREAM_CONNECT_RETRY_MSEC);
        return;
    case CS_IN_PROGRESS:
    case CS_HANDSHAKE:
        events = connect_wait_events(stream);
        break;
    case CS_CONNECTED:
    default:
        switch (type) {
        case STREAM_CONNECT:
            events = 0;
            break;
        case STREAM_RECV:
        case STREAM_SEND:
        default:
            events = (stream->ssl
                      ? ssl_conn_wait_events(stream->ssl, type, true)
                      : type == STREAM_RECV ? POLLIN : POLLOUT);
            break;
        }
        break;
    }

    if (events > 0) {
        poll_fd_wait(stream->fd, events);
    } else {
        poll_immediate_wake();
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
        ssl_conn_destroy(stream->ssl);
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

const char *
stream_get_peer_id(const struct stream *stream)
{
    return (stream->ssl && stream->state == CS_CONNECTED
            ? ssl_conn_get_peer_cn(stream->ssl)
            : NULL);
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

    int fd = new_socket(AF_UNIX);
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

static int
punix_open(const char *name, const char *path, struct pstream **pstreamp)
{
    struct sockaddr_un sun;
    socklen_t sun_len;
    int error;

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

    int fd = new_socket(AF_UNIX);
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
    pstream->kind = KIND_UNIX;
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

static int
pinet_open(enum stream_kind kind, const char *suffix,
           struct pstream **pstreamp)
{
    struct sockaddr_storage ss;
    socklen_t ss_len;
    int error;

    error = parse_inet(suffix, true, false, &ss, &ss_len, NULL);
    if (error) {
        return error;
    }

    int fd = new_socket(ss.ss_family);
    if (fd < 0) {
        return -fd;
    }
    int yes = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes)
        || bind(fd, (struct sockaddr *) &ss, ss_len)
        || listen(fd, LISTEN_BACKLOG)) {
        error = errno;
        close(fd);
        return error;
    }
    ss_len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *) &ss, &ss_len)) {
        error = errno;
        close(fd);
        return error;
    }

    struct pstream *pstream = calloc(1, sizeof *pstream);
    if (!pstream) {
        close(fd);
        return ENOMEM;
    }
    pstream->kind = kind;
    pstream->fd = fd;
    pstream->name = format_inet(kind == KIND_SSL ? "pssl" : "ptcp", &ss,
                                true);
    pstream->port = (ss.ss_family == AF_INET6
                     ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
                     : ntohs(((struct sockaddr_in *) &ss)->sin_port));
    if (!pstream->name) {
        pstream_close(pstream);
        return ENOMEM;
    }
    *pstreamp = pstream;
    return 0;
}

int
pstream_open(const char *name, struct pstream **pstreamp)
{
    enum stream_kind kind;
    const char *suffix = parse_kind(name, true, &kind);

    *pstreamp = NULL;
    if (!suffix) {
        return EAFNOSUPPORT;
    }
    return (kind == KIND_UNIX
            ? punix_open(name, suffix, pstreamp)
            : pinet_open(kind, suffix, pstreamp));
}

int
pstream_accept(struct pstream *pstream, struct stream **streamp)
{
    struct sockaddr_storage ss;
    socklen_t ss_len;
    int fd;

    *streamp = NULL;
    for (;;) {
        ss_len = sizeof ss;
        fd = accept4(pstream->fd, (struct sockaddr *) &ss, &ss_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
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
    if (stream) {
        stream->name = (pstream->kind == KIND_UNIX
                        ? strdup(pstream->accepted_name)
                        : format_inet(pstream->kind == KIND_SSL
                                      ? "ssl" : "tcp", &ss, false));
    }
    if (!stream || !stream->name) {
        free(stream);
        close(fd);
        return ENOMEM;
    }
    stream->fd = fd;
    stream->state = CS_CONNECTED;
    if (pstream->kind != KIND_UNIX) {
        set_tcp_nodelay(fd);
    }
    if (pstream->kind == KIND_SSL) {
        int error = ssl_conn_create(fd, true, NULL, stream->name,
                                    &stream->ssl);
        if (error) {
            stream_close(stream);
            return error;
        }
        stream->state = CS_HANDSHAKE;
    }
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

int
pstream_get_bound_port(const struct pstream *pstream)
{
    return pstream->kind == KIND_UNIX ? 0 : pstream->port;
}
