/* Tests for lib/stream's "ssl:" and "pssl:" streams (lib/stream-ssl), with
 * certificates made by ovs-pki (package openvswitch-common).
 *
 * Both ends run in this process.  The SSL configuration is process-wide,
 * but each stream keeps the configuration it was created with, so a test
 * sets the client's configuration before stream_open() and the server's
 * before pstream_accept(). */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "poll-loop.h"
#include "stream-ssl.h"
#include "stream.h"
#include "vlog.h"

static char dir[64];            /* Temporary directory with the PKI. */
static bool pki_ok;

static void
remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
        fprintf(stderr, "%s: could not remove\n", dir);
    }
}

/* Makes, once, a PKI in 'dir' with ovs-pki: CAs "switchca" and
 * "controllerca", certificates "server" and "client" signed by switchca and
 * "other" signed by controllerca.  Fails the test if ovs-pki is missing. */
static bool
make_pki__(void)
{
    if (system("command -v ovs-pki >/dev/null 2>&1")) {
        fprintf(stderr, "\nerror: ovs-pki not found; the ssl tests need it "
                "(Debian package openvswitch-common)\n");
        return false;
    }
    snprintf(dir, sizeof dir, "/tmp/test-stream-ssl-XXXXXX");
    if (!mkdtemp(dir)) {
        return false;
    }
    atexit(remove_dir);

    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && P='ovs-pki --dir=%s/pki --log=%s/pki.log' && "
             "$P init && $P req+sign server switch && "
             "$P req+sign client switch && "
             "$P req+sign other controller", dir, dir, dir);
    char full[1200];
    snprintf(full, sizeof full, "(%s) >'%s/pki.out' 2>&1", cmd, dir);
    if (system(full)) {
        fprintf(stderr, "\nerror: ovs-pki failed, see %s/pki.out\n", dir);
        return false;
    }
    return true;
}

/* Makes, once, a PKI in 'dir' with ovs-pki: CAs "switchca" and
 * "controllerca", certificates "server" and "client" signed by switchca and
 * "other" signed by controllerca.  Fails the test if ovs-pki is missing. */
static void
make_pki(void)
{
    static bool tried;

    if (!tried) {
        tried = true;
        pki_ok = make_pki__();
    }
    if (!pki_ok) {
        CU_FAIL_FATAL("ovs-pki is missing or failed: cannot make "
                      "certificates for the ssl tests");
    }
}

static char *
path(const char *name)
{
    static char bufs[8][160];
    static int i;
    char *buf = bufs[i++ % 8];
    snprintf(buf, sizeof bufs[0], "%s/%s", dir, name);
    return buf;
}

/* Configures this process as 'who' ("server", "client" or "other") with the
 * CA file 'ca' (relative to 'dir'). */
static void
configure(const char *who, const char *ca, bool bootstrap)
{
    char key[64], cert[64];

    snprintf(key, sizeof key, "%s-privkey.pem", who);
    snprintf(cert, sizeof cert, "%s-cert.pem", who);
    stream_ssl_reset();
    stream_ssl_set_key_and_cert(path(key), path(cert));
    stream_ssl_set_ca_cert_file(path(ca), bootstrap);
    if (!strcmp(who, "server")) {
        stream_ssl_set_peer_ca_cert_file(path("pki/switchca/cacert.pem"));
    }
}

#define SWITCHCA "pki/switchca/cacert.pem"
#define CONTROLLERCA "pki/controllerca/cacert.pem"

/* Log capture. */
static char log_buf[8192];

static void
log_hook(const char *line, void *aux)
{
    (void) aux;
    size_t n = strlen(log_buf);
    snprintf(log_buf + n, sizeof log_buf - n, "%s\n", line);
}

static void
capture_log(void)
{
    log_buf[0] = '\0';
    vlog_set_hook(log_hook, NULL);
}

static void
end_capture(void)
{
    vlog_set_hook(NULL, NULL);
}

/* Opens a pssl listener on 'addr' ("127.0.0.1" or "[::1]") as the server;
 * stores the client's name for it in 'aname'. */
static struct pstream *
open_server(const char *addr, char *aname, size_t size)
{
    struct pstream *p;
    char pname[64];

    configure("server", SWITCHCA, false);
    snprintf(pname, sizeof pname, "pssl:0:%s", addr);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    snprintf(aname, size, "ssl:%s:%d", addr, pstream_get_bound_port(p));
    return p;
}

/* Accepts one connection on 'p' with the server's configuration. */
static struct stream *
accept_one(struct pstream *p)
{
    struct stream *s = NULL;
    int error;

    configure("server", SWITCHCA, false);
    alarm(30);
    while ((error = pstream_accept(p, &s)) == EAGAIN) {
        pstream_wait(p);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(error, 0);
    return s;
}

/* Drives the handshakes of 'c' and 's' until neither is in progress;
 * stores their results. */
static void
handshake(struct stream *c, struct stream *s, int *c_error, int *s_error)
{
    alarm(30);
    for (;;) {
        *c_error = stream_connect(c);
        *s_error = stream_connect(s);
        if (*c_error != EAGAIN && *s_error != EAGAIN) {
            break;
        }
        if (*c_error == EAGAIN) {
            stream_connect_wait(c);
        }
        if (*s_error == EAGAIN) {
            stream_connect_wait(s);
        }
        poll_block();
    }
    alarm(0);
}

/* Receives exactly 'n' bytes from 'r' while 'w' (if nonnull) flushes
 * what it queued. */
static ssize_t
recv_exactly(struct stream *r, struct stream *w, char *buf, size_t n)
{
    size_t got = 0;

    alarm(30);
    while (got < n) {
        if (w) {
            stream_run(w);
        }
        ssize_t k = stream_recv(r, buf + got, n - got);
        if (k == -EAGAIN) {
            if (w) {
                stream_run_wait(w);
            }
            stream_recv_wait(r);
            poll_block();
        } else if (k <= 0) {
            alarm(0);
            return k;
        } else {
            got += k;
        }
    }
    alarm(0);
    return got;
}

static void
send_all(struct stream *s, const char *buf, size_t n)
{
    alarm(30);
    while (n > 0) {
        ssize_t r = stream_send(s, buf, n);
        if (r == -EAGAIN) {
            stream_send_wait(s);
            poll_block();
            continue;
        }
        CU_ASSERT_FATAL(r > 0);
        buf += r;
        n -= r;
    }
    alarm(0);
}

static bool
starts_with(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
}

/* Handshake, data both ways, a large transfer, EOF. */
static void
exercise(const char *addr)
{
    char aname[64];
    struct pstream *p = open_server(addr, aname, sizeof aname);
    struct stream *c, *s;
    int c_error, s_error;

    configure("client", SWITCHCA, false);
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    CU_ASSERT_STRING_EQUAL(stream_get_name(c), aname);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(starts_with(stream_get_name(s), "ssl:"));
    CU_ASSERT_PTR_NULL(stream_get_peer_id(s));    /* Not yet. */

    /* Nothing to read, nothing sent before the handshake. */
    char buf[64];
    CU_ASSERT_EQUAL(stream_recv(s, buf, sizeof buf), -EAGAIN);

    handshake(c, s, &c_error, &s_error);
    CU_ASSERT_EQUAL(c_error, 0);
    CU_ASSERT_EQUAL(s_error, 0);
    CU_ASSERT_EQUAL(stream_connect(c), 0);
    CU_ASSERT(starts_with(stream_get_peer_id(c), "server id:"));
    CU_ASSERT(starts_with(stream_get_peer_id(s), "client id:"));

    CU_ASSERT_EQUAL(stream_recv(s, buf, sizeof buf), -EAGAIN);
    CU_ASSERT_EQUAL(stream_recv(c, buf, sizeof buf), -EAGAIN);
    CU_ASSERT_EQUAL(stream_send(c, buf, 0), 0);

    send_all(c, "hello", 5);
    CU_ASSERT_EQUAL(recv_exactly(s, c, buf, 5), 5);
    CU_ASSERT(!memcmp(buf, "hello", 5));
    send_all(s, "world!", 6);
    CU_ASSERT_EQUAL(recv_exactly(c, s, buf, 6), 6);
    CU_ASSERT(!memcmp(buf, "world!", 6));

    /* A transfer larger than the socket buffers in both directions at
     * once, through the poll loop. */
    size_t big = 4 * 1024 * 1024;
    char *out = malloc(big), *in = malloc(big);
    char *out2 = malloc(big), *in2 = malloc(big);
    uint64_t seed = 11;
    for (size_t i = 0; i < big; i++) {
        out[i] = unit_random(&seed);
        out2[i] = unit_random(&seed);
    }
    size_t sent = 0, rcvd = 0, sent2 = 0, rcvd2 = 0;
    alarm(60);
    while (rcvd < big || rcvd2 < big) {
        stream_run(c);
        stream_run(s);
        if (sent < big) {
            ssize_t r = stream_send(c, out + sent, big - sent);
            CU_ASSERT_FATAL(r > 0 || r == -EAGAIN);
            sent += r > 0 ? r : 0;
        }
        if (sent2 < big) {
            ssize_t r = stream_send(s, out2 + sent2, big - sent2);
            CU_ASSERT_FATAL(r > 0 || r == -EAGAIN);
            sent2 += r > 0 ? r : 0;
        }
        if (rcvd < big) {
            ssize_t r = stream_recv(s, in + rcvd, big - rcvd);
            CU_ASSERT_FATAL(r > 0 || r == -EAGAIN);
            rcvd += r > 0 ? r : 0;
        }
        if (rcvd2 < big) {
            ssize_t r = stream_recv(c, in2 + rcvd2, big - rcvd2);
            CU_ASSERT_FATAL(r > 0 || r == -EAGAIN);
            rcvd2 += r > 0 ? r : 0;
        }
        stream_run_wait(c);
        stream_run_wait(s);
        if (sent < big) {
            stream_send_wait(c);
        }
        if (sent2 < big) {
            stream_send_wait(s);
        }
        if (rcvd < big) {
            stream_recv_wait(s);
        }
        if (rcvd2 < big) {
            stream_recv_wait(c);
        }
        if (rcvd < big || rcvd2 < big) {
            poll_block();
        } else {
            poll_cancel();
        }
    }
    alarm(0);
    CU_ASSERT(!memcmp(in, out, big));
    CU_ASSERT(!memcmp(in2, out2, big));
    free(in);
    free(out);
    free(in2);
    free(out2);

    /* EOF: closing the client gives 0 on the server. */
    stream_close(c);
    CU_ASSERT_EQUAL(recv_exactly(s, NULL, buf, 1), 0);
    stream_close(s);
    pstream_close(p);
}

static void
test_ssl_ipv4(void)
{
    make_pki();
    exercise("127.0.0.1");
}

static void
test_ssl_ipv6(void)
{
    make_pki();
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = fd >= 0 && !bind(fd, (struct sockaddr *) &sin6, sizeof sin6);
    if (fd >= 0) {
        close(fd);
    }
    if (!ok) {
        printf("\n    (no IPv6 loopback address ::1: skipped) ");
        return;
    }
    exercise("[::1]");
}

/* The client's certificate is signed by another CA: the server refuses
 * it.  The client sees the failure in the handshake (TLS 1.2) or, since a
 * TLS 1.3 client finishes first, on its first read. */
static void
test_ssl_other_ca(void)
{
    make_pki();

    char aname[64];
    struct pstream *p = open_server("127.0.0.1", aname, sizeof aname);
    struct stream *c, *s;
    int c_error, s_error;

    /* The client trusts the server but has a certificate from
     * controllerca. */
    configure("other", SWITCHCA, false);
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    vlog_set_levels_from_string("stream_ssl:off");
    handshake(c, s, &c_error, &s_error);
    CU_ASSERT_EQUAL(s_error, EPROTO);
    CU_ASSERT_PTR_NULL(stream_get_peer_id(s));
    if (!c_error) {
        char buf[16];
        ssize_t r = recv_exactly(c, NULL, buf, 1);
        CU_ASSERT(r < 0 && r != -EAGAIN);
    } else {
        CU_ASSERT_EQUAL(c_error, EPROTO);
    }
    stream_close(c);
    stream_close(s);

    /* The client does not trust the server's CA either: both handshakes
     * fail. */
    configure("other", CONTROLLERCA, false);
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    capture_log();
    vlog_set_levels_from_string("stream_ssl:warn");
    handshake(c, s, &c_error, &s_error);
    end_capture();
    CU_ASSERT_EQUAL(c_error, EPROTO);
    CU_ASSERT_EQUAL(s_error, EPROTO);
    CU_ASSERT_PTR_NULL(stream_get_peer_id(c));
    /* The reason is logged. */
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf, "certificate verif"));
    stream_close(c);
    stream_close(s);
    vlog_set_levels_from_string("stream_ssl:info");
    pstream_close(p);
}

/* Clients without a certificate: ours refuses to start, and a bare OpenSSL
 * client is refused by the server. */
static void
test_ssl_no_cert(void)
{
    make_pki();

    char aname[64];
    struct pstream *p = open_server("127.0.0.1", aname, sizeof aname);
    struct stream *c, *s;

    /* Our client requires a key and certificate, and a CA. */
    stream_ssl_reset();
    CU_ASSERT_FALSE(stream_ssl_is_configured());
    stream_ssl_set_ca_cert_file(path(SWITCHCA), false);
    CU_ASSERT_TRUE(stream_ssl_is_configured());
    capture_log();
    CU_ASSERT_EQUAL(stream_open(aname, &c), ENOPROTOOPT);
    end_capture();
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf,
                                  "Private key must be configured"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf,
                                  "Certificate must be configured"));

    /* A bare OpenSSL client with no certificate. */
    int port = pstream_get_bound_port(p);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *) &sin, sizeof sin),
                          0);
    CU_ASSERT_EQUAL(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    vlog_set_levels_from_string("stream_ssl:off");
    int s_error, ret = 0, ssl_error = 0;
    bool client_failed = false;
    alarm(30);
    for (;;) {
        s_error = stream_connect(s);
        if (!client_failed) {
            char buf[16];
            /* Like our client, a TLS 1.3 client only learns of the refusal
             * when it reads. */
            ERR_clear_error();
            ret = (SSL_is_init_finished(ssl)
                   ? SSL_read(ssl, buf, sizeof buf) : SSL_connect(ssl));
            ssl_error = SSL_get_error(ssl, ret);
            client_failed = (ret <= 0 && ssl_error != SSL_ERROR_WANT_READ
                             && ssl_error != SSL_ERROR_WANT_WRITE);
        }
        if (s_error != EAGAIN && client_failed) {
            break;
        }
        if (s_error == EAGAIN) {
            stream_connect_wait(s);
        }
        if (!client_failed) {
            poll_fd_wait(fd, ssl_error == SSL_ERROR_WANT_WRITE
                         ? POLLOUT : POLLIN);
        }
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(s_error, EPROTO);
    CU_ASSERT(client_failed);
    vlog_set_levels_from_string("stream_ssl:info");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    stream_close(s);
    pstream_close(p);
}

/* No CA certificate configured, or a missing file without bootstrap. */
static void
test_ssl_no_ca(void)
{
    make_pki();

    struct stream *c;
    struct pstream *p;
    stream_ssl_reset();
    stream_ssl_set_key_and_cert(path("client-privkey.pem"),
                                path("client-cert.pem"));
    capture_log();
    CU_ASSERT_EQUAL(stream_open("ssl:127.0.0.1:1", &c), ENOPROTOOPT);
    end_capture();
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf,
                                  "CA certificate must be configured to "
                                  "use SSL"));

    /* A listener opens, but accepting needs the configuration. */
    CU_ASSERT_EQUAL_FATAL(pstream_open("pssl:0:127.0.0.1", &p), 0);
    char aname[64];
    snprintf(aname, sizeof aname, "tcp:127.0.0.1:%d",
             pstream_get_bound_port(p));
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, &c), 0);
    struct stream *s;
    int error;
    alarm(30);
    while ((error = pstream_accept(p, &s)) == EAGAIN) {
        pstream_wait(p);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(error, ENOPROTOOPT);
    CU_ASSERT_PTR_NULL(s);
    stream_close(c);
    pstream_close(p);

    /* A CA file that does not exist, without bootstrap. */
    stream_ssl_set_ca_cert_file(path("missing.pem"), false);
    capture_log();
    CU_ASSERT_EQUAL(stream_open("ssl:127.0.0.1:1", &c), ENOPROTOOPT);
    end_capture();
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf, "missing.pem"));

    /* A key that does not match the certificate. */
    stream_ssl_set_key_and_cert(path("server-privkey.pem"),
                                path("client-cert.pem"));
    stream_ssl_set_ca_cert_file(path(SWITCHCA), false);
    capture_log();
    CU_ASSERT_EQUAL(stream_open("ssl:127.0.0.1:1", &c), ENOPROTOOPT);
    end_capture();
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf, "does not match"));
}

static X509 *
read_cert(const char *file_name)
{
    FILE *f = fopen(file_name, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) {
        fclose(f);
    }
    return cert;
}

/* CA bootstrap: the first connection saves the server's CA certificate and
 * is dropped; the next one is verified with it. */
static void
test_ssl_bootstrap(void)
{
    make_pki();

    char aname[64];
    struct pstream *p = open_server("127.0.0.1", aname, sizeof aname);
    struct stream *c, *s;
    int c_error, s_error;
    const char *ca = "boot/cacert.pem";

    CU_ASSERT_EQUAL_FATAL(mkdir(path("boot"), 0700), 0);
    configure("client", ca, true);
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    capture_log();
    handshake(c, s, &c_error, &s_error);
    end_capture();
    CU_ASSERT_EQUAL(c_error, EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf, "successfully bootstrapped"));
    stream_close(c);
    stream_close(s);

    /* The file holds the server's CA certificate, read-only. */
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path(ca), &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0444);
    X509 *saved = read_cert(path(ca));
    X509 *expected = read_cert(path(SWITCHCA));
    CU_ASSERT_PTR_NOT_NULL_FATAL(saved);
    CU_ASSERT_PTR_NOT_NULL_FATAL(expected);
    CU_ASSERT_EQUAL(X509_cmp(saved, expected), 0);
    X509_free(saved);
    X509_free(expected);

    /* The same configuration now verifies the server. */
    configure("client", ca, true);
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    handshake(c, s, &c_error, &s_error);
    CU_ASSERT_EQUAL(c_error, 0);
    CU_ASSERT_EQUAL(s_error, 0);
    CU_ASSERT(starts_with(stream_get_peer_id(c), "server id:"));
    CU_ASSERT(starts_with(stream_get_peer_id(s), "client id:"));
    char buf[4];
    send_all(c, "boot", 4);
    CU_ASSERT_EQUAL(recv_exactly(s, c, buf, 4), 4);
    CU_ASSERT(!memcmp(buf, "boot", 4));
    stream_close(c);
    stream_close(s);

    /* A server that sends only its own certificate cannot be bootstrapped
     * from.  (OpenSSL sends the chain it can build from the server's CA
     * file, so this server trusts another CA.) */
    pstream_close(p);
    configure("server", CONTROLLERCA, false);
    stream_ssl_set_peer_ca_cert_file(NULL);
    CU_ASSERT_EQUAL_FATAL(pstream_open("pssl:0:127.0.0.1", &p), 0);
    snprintf(aname, sizeof aname, "ssl:127.0.0.1:%d",
             pstream_get_bound_port(p));
    configure("other", "boot/none.pem", true);
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    configure("server", CONTROLLERCA, false);
    stream_ssl_set_peer_ca_cert_file(NULL);
    int error;
    alarm(30);
    while ((error = pstream_accept(p, &s)) == EAGAIN) {
        pstream_wait(p);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL_FATAL(error, 0);
    capture_log();
    handshake(c, s, &c_error, &s_error);
    end_capture();
    CU_ASSERT_EQUAL(c_error, EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(log_buf, "not self-signed"));
    CU_ASSERT_EQUAL(access(path("boot/none.pem"), F_OK), -1);
    stream_close(c);
    stream_close(s);
    pstream_close(p);
}

/* A server in another process, for stream_open_block(). */
static void
test_ssl_open_block(void)
{
    make_pki();

    char aname[64];
    struct pstream *p = open_server("127.0.0.1", aname, sizeof aname);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        struct stream *s = accept_one(p);
        char buf[4];
        int c_error = 0, s_error;
        alarm(30);
        while ((s_error = stream_connect(s)) == EAGAIN) {
            stream_connect_wait(s);
            poll_block();
        }
        (void) c_error;
        if (s_error || recv_exactly(s, NULL, buf, 4) != 4) {
            _exit(1);
        }
        send_all(s, buf, 4);
        char x;
        _exit(recv_exactly(s, NULL, &x, 1) == 0 ? 0 : 2);
    }
    pstream_close(p);

    struct stream *c;
    configure("client", SWITCHCA, false);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, &c), 0);
    CU_ASSERT_EQUAL(stream_connect(c), 0);
    CU_ASSERT(starts_with(stream_get_peer_id(c), "server id:"));
    send_all(c, "ping", 4);
    char buf[4];
    CU_ASSERT_EQUAL(recv_exactly(c, c, buf, 4), 4);
    CU_ASSERT(!memcmp(buf, "ping", 4));
    stream_close(c);

    int status;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Refused, as for tcp. */
    CU_ASSERT_EQUAL(stream_open_block(aname, &c), ECONNREFUSED);
    CU_ASSERT_PTR_NULL(c);
}

static const struct unit_test tests[] = {
    { "ssl ipv4", test_ssl_ipv4 },
    { "ssl ipv6", test_ssl_ipv6 },
    { "ssl other ca", test_ssl_other_ca },
    { "ssl no cert", test_ssl_no_cert },
    { "ssl no ca", test_ssl_no_ca },
    { "ssl bootstrap", test_ssl_bootstrap },
    { "ssl open block", test_ssl_open_block },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("stream-ssl", tests);
}
