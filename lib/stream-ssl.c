/* stream-ssl: see stream-ssl.h. */

#include <config.h>
#include "stream-ssl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(stream_ssl);

/* Most bytes one stream_send() takes, so that a queued remainder (see
 * ssl_conn_send()) stays small. */
#define SSL_SEND_MAX (64 * 1024)

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 25);

struct ssl_config_file {
    char *file_name;            /* Configured file name, or NULL. */
    bool exists;                /* As of the last check. */
    struct timespec mtime;      /* As of the last check. */
};

static struct ssl_config_file private_key;
static struct ssl_config_file certificate;
static struct ssl_config_file ca_cert;
static struct ssl_config_file peer_ca_cert;
static bool bootstrap_ca_cert;  /* Bootstrap 'ca_cert' if it is missing. */

/* The context built from the files above.  'ctx_valid' is false when the
 * configuration changed since 'ctx' was built; 'ctx' is NULL if the last
 * build failed (the reason was logged).  'ctx_bootstrap' says that 'ctx' has
 * no CA certificate yet: it is to be bootstrapped. */
static SSL_CTX *ctx;
static bool ctx_valid;
static bool ctx_bootstrap;

struct ssl_conn {
    SSL *ssl;
    int fd;
    bool server;
    char *bootstrap_file;       /* CA cert file to bootstrap, or NULL. */
    char *name;
    char *peer_cn;              /* Set when the handshake completes. */

    /* The result of the last SSL_read() and SSL_write(): SSL_NOTHING,
     * SSL_READING or SSL_WRITING.  As in OVS, a call that changes the SSL
     * state resets the other direction's value too, since a read can make
     * the progress that a write waited for and vice versa. */
    int rx_want, tx_want;

    /* Data that ssl_conn_send() accepted but SSL_write() has not taken yet;
     * it must be offered to SSL_write() again as is. */
    char *txbuf;
    size_t tx_ofs, tx_len;
    int tx_error;               /* Sticky error from sending 'txbuf'. */
};

/* A BIO on a nonblocking socket that sends with MSG_NOSIGNAL, so that
 * writing to a closed peer never raises SIGPIPE (OpenSSL's socket BIO uses
 * write(2)). */

static int
sock_bio_write(BIO *bio, const char *buf, int len)
{
    int fd = (int) (intptr_t) BIO_get_data(bio);

    BIO_clear_retry_flags(bio);
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            return n;
        } else if (errno != EINTR) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                BIO_set_retry_write(bio);
            }
            return -1;
        }
    }
}

static int
sock_bio_read(BIO *bio, char *buf, int len)
{
    int fd = (int) (intptr_t) BIO_get_data(bio);

    BIO_clear_retry_flags(bio);
    for (;;) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) {
            return n;
        } else if (errno != EINTR) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                BIO_set_retry_read(bio);
            }
            return -1;
        }
    }
}

static long
sock_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void) bio;
    (void) num;
    (void) ptr;
    return cmd == BIO_CTRL_FLUSH;
}

static int
sock_bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static BIO *
sock_bio_new(int fd)
{
    static BIO_METHOD *method;

    if (!method) {
        method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                              "chand socket");
        if (!method) {
            return NULL;
        }
        BIO_meth_set_write(method, sock_bio_write);
        BIO_meth_set_read(method, sock_bio_read);
        BIO_meth_set_ctrl(method, sock_bio_ctrl);
        BIO_meth_set_create(method, sock_bio_create);
    }

    BIO *bio = BIO_new(method);
    if (bio) {
        BIO_set_data(bio, (void *) (intptr_t) fd);
    }
    return bio;
}

/* Returns a description of the first queued OpenSSL error and clears the
 * queue.  The string is static. */
static const char *
queued_error_string(void)
{
    static char buf[256];
    unsigned long code = ERR_get_error();

    if (code) {
        ERR_error_string_n(code, buf, sizeof buf);
    } else {
        snprintf(buf, sizeof buf, "unknown error");
    }
    ERR_clear_error();
    return buf;
}

/* Configuration. */

static void
set_config_file(struct ssl_config_file *f, const char *file_name)
{
    if (file_name && f->file_name && !strcmp(file_name, f->file_name)) {
        return;
    }
    if (!file_name && !f->file_name) {
        return;
    }
    free(f->file_name);
    f->file_name = file_name ? xstrdup(file_name) : NULL;
    f->exists = false;
    f->mtime = (struct timespec) { 0, 0 };
    ctx_valid = false;
}

/* Updates 'f''s existence and modification time from the file system.
 * Returns true if they changed. */
static bool
config_file_changed(struct ssl_config_file *f)
{
    struct timespec mtime = { 0, 0 };
    struct stat st;
    bool exists;

    if (!f->file_name) {
        return false;
    }
    exists = !stat(f->file_name, &st);
    if (exists) {
        mtime = st.st_mtim;
    }
    if (exists == f->exists && mtime.tv_sec == f->mtime.tv_sec
        && mtime.tv_nsec == f->mtime.tv_nsec) {
        return false;
    }
    f->exists = exists;
    f->mtime = mtime;
    return true;
}

bool
stream_ssl_is_configured(void)
{
    return private_key.file_name || certificate.file_name
           || ca_cert.file_name;
}

void
stream_ssl_set_private_key_file(const char *file_name)
{
    set_config_file(&private_key, file_name);
}

void
stream_ssl_set_certificate_file(const char *file_name)
{
    set_config_file(&certificate, file_name);
}

void
stream_ssl_set_key_and_cert(const char *private_key_file,
                            const char *certificate_file)
{
    set_config_file(&private_key, private_key_file);
    set_config_file(&certificate, certificate_file);
}

void
stream_ssl_set_ca_cert_file(const char *file_name, bool bootstrap)
{
    set_config_file(&ca_cert, file_name);
    if (bootstrap != bootstrap_ca_cert) {
        bootstrap_ca_cert = bootstrap;
        ctx_valid = false;
    }
}

void
stream_ssl_set_peer_ca_cert_file(const char *file_name)
{
    set_config_file(&peer_ca_cert, file_name);
}

void
stream_ssl_reset(void)
{
    set_config_file(&private_key, NULL);
    set_config_file(&certificate, NULL);
    set_config_file(&ca_cert, NULL);
    set_config_file(&peer_ca_cert, NULL);
    bootstrap_ca_cert = false;
    ctx_valid = false;
}

/* Logs the subject and SHA-1 fingerprint of CA certificate 'cert' from
 * 'file_name'. */
static void
log_ca_cert(const char *file_name, X509 *cert)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char fp[EVP_MAX_MD_SIZE * 3 + 1] = "";
    char *subject;

    if (X509_digest(cert, EVP_sha1(), digest, &n)) {
        for (unsigned int i = 0; i < n; i++) {
            snprintf(fp + 3 * i, sizeof fp - 3 * i, "%s%02x",
                     i ? ":" : "", digest[i]);
        }
    }
    subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
    VLOG_INFO("Trusting CA cert from %s (%s) (fingerprint %s)", file_name,
              subject ? subject : "<out of memory>", fp);
    OPENSSL_free(subject);
}

/* Adds the certificates in PEM file 'file_name' to the chain sent after
 * 'c''s certificate.  Returns true on success. */
static bool
add_peer_ca_certs(SSL_CTX *c, const char *file_name)
{
    FILE *file = fopen(file_name, "r");
    int n = 0;

    if (!file) {
        VLOG_ERR("%s: open failed (%s)", file_name, strerror(errno));
        return false;
    }
    for (;;) {
        X509 *cert = PEM_read_X509(file, NULL, NULL, NULL);
        if (!cert) {
            break;
        }
        if (SSL_CTX_add1_chain_cert(c, cert) != 1) {
            VLOG_ERR("%s: SSL_CTX_add1_chain_cert: %s", file_name,
                     queued_error_string());
            X509_free(cert);
            fclose(file);
            return false;
        }
        X509_free(cert);
        n++;
    }
    fclose(file);
    ERR_clear_error();          /* The end of the file. */
    if (!n) {
        VLOG_ERR("%s: no certificate found", file_name);
        return false;
    }
    return true;
}

/* Builds a new context from the configuration.  Returns NULL and logs why
 * on failure. */
static SSL_CTX *
build_ctx(bool *bootstrapp)
{
    bool ok = true;

    *bootstrapp = false;
    if (!private_key.file_name) {
        VLOG_ERR("Private key must be configured to use SSL");
        ok = false;
    }
    if (!certificate.file_name) {
        VLOG_ERR("Certificate must be configured to use SSL");
        ok = false;
    }
    if (!ca_cert.file_name) {
        VLOG_ERR("CA certificate must be configured to use SSL");
        ok = false;
    }
    if (!ok) {
        return NULL;
    }

    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (!c) {
        VLOG_ERR("SSL_CTX_new: %s", queued_error_string());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_dh_auto(c, 1);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE
                        | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_cipher_list(c, "HIGH:!aNULL:!MD5");

    if (SSL_CTX_use_certificate_chain_file(c, certificate.file_name) != 1) {
        VLOG_ERR("%s: could not load certificate: %s",
                 certificate.file_name, queued_error_string());
        goto error;
    }
    if (SSL_CTX_use_PrivateKey_file(c, private_key.file_name,
                                    SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error())
            == X509_R_KEY_VALUES_MISMATCH) {
            VLOG_ERR("Private key %s does not match certificate %s",
                     private_key.file_name, certificate.file_name);
            ERR_clear_error();
            goto error;
        }
        VLOG_ERR("%s: could not load private key: %s",
                 private_key.file_name, queued_error_string());
        goto error;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        VLOG_ERR("Private key %s does not match certificate %s: %s",
                 private_key.file_name, certificate.file_name,
                 queued_error_string());
        goto error;
    }
    if (peer_ca_cert.file_name
        && !add_peer_ca_certs(c, peer_ca_cert.file_name)) {
        goto error;
    }

    struct stat st;
    if (bootstrap_ca_cert && stat(ca_cert.file_name, &st)
        && errno == ENOENT) {
        VLOG_INFO("%s: CA certificate missing, will bootstrap it from the "
                  "first server contacted", ca_cert.file_name);
        *bootstrapp = true;
    } else {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(
            ca_cert.file_name);
        if (!names) {
            VLOG_ERR("%s: could not load CA certificate: %s",
                     ca_cert.file_name, queued_error_string());
            goto error;
        }
        SSL_CTX_set_client_CA_list(c, names);
        if (SSL_CTX_load_verify_locations(c, ca_cert.file_name, NULL) != 1) {
            VLOG_ERR("%s: could not load CA certificate: %s",
                     ca_cert.file_name, queued_error_string());
            goto error;
        }
    }
    return c;

error:
    SSL_CTX_free(c);
    return NULL;
}

/* Returns the context to use for a new stream (rebuilding it if the
 * configuration or a file changed), or NULL if SSL is not usable. */
static SSL_CTX *
get_ctx(void)
{
    /* Check every file, so that each one's state stays current. */
    bool changed = config_file_changed(&private_key);
    changed = config_file_changed(&certificate) || changed;
    changed = config_file_changed(&ca_cert) || changed;
    changed = config_file_changed(&peer_ca_cert) || changed;

    if (changed || !ctx_valid) {
        SSL_CTX_free(ctx);      /* Open streams keep their reference. */
        ctx = build_ctx(&ctx_bootstrap);
        ctx_valid = true;
    }
    return ctx;
}

/* Connections. */

int
ssl_conn_create(int fd, bool server_side, const char *host,
                const char *name, struct ssl_conn **connp)
{
    SSL_CTX *c = get_ctx();
    SSL *ssl;
    BIO *bio;

    *connp = NULL;
    if (!c) {
        return ENOPROTOOPT;
    }

    ssl = SSL_new(c);
    bio = ssl ? sock_bio_new(fd) : NULL;
    if (!bio) {
        VLOG_ERR("%s: SSL_new: %s", name, queued_error_string());
        SSL_free(ssl);
        return ENOMEM;
    }
    SSL_set_bio(ssl, bio, bio);

    bool bootstrap = !server_side && ctx_bootstrap && ca_cert.file_name;
    if (server_side) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if (bootstrap) {
            SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        }

        /* Server name indication, only for a host name (RFC 6066 excludes
         * IP addresses). */
        struct in6_addr addr;
        if (host && *host && !inet_pton(AF_INET, host, &addr)
            && !strchr(host, ':')
            && !SSL_set_tlsext_host_name(ssl, host)) {
            VLOG_ERR("%s: could not set server name indication: %s", name,
                     queued_error_string());
            SSL_free(ssl);
            return ENOPROTOOPT;
        }
    }

    struct ssl_conn *conn = xzalloc(sizeof *conn);
    conn->ssl = ssl;
    conn->fd = fd;
    conn->server = server_side;
    conn->bootstrap_file = bootstrap ? xstrdup(ca_cert.file_name) : NULL;
    conn->name = xstrdup(name);
    conn->rx_want = conn->tx_want = SSL_NOTHING;
    *connp = conn;
    return 0;
}

void
ssl_conn_destroy(struct ssl_conn *conn)
{
    if (conn) {
        /* Try a clean shutdown (close_notify), which works as long as the
         * socket buffer has room; there is no way to finish it later. */
        ERR_clear_error();
        SSL_shutdown(conn->ssl);
        ERR_clear_error();
        SSL_free(conn->ssl);
        free(conn->txbuf);
        free(conn->bootstrap_file);
        free(conn->peer_cn);
        free(conn->name);
        free(conn);
    }
}

/* Saves the top certificate of the peer's chain as the CA certificate.
 * Returns EPROTO on success too: the connection was not verified, so the
 * caller must reconnect. */
static int
do_ca_cert_bootstrap(struct ssl_conn *conn)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(conn->ssl);
    const char *file_name = conn->bootstrap_file;

    if (!chain || !sk_X509_num(chain)) {
        VLOG_ERR("%s: could not bootstrap CA cert: no certificate presented "
                 "by peer", conn->name);
        return EPROTO;
    }
    X509 *cert = sk_X509_value(chain, sk_X509_num(chain) - 1);

    /* Only a self-signed certificate is a CA certificate. */
    int error = X509_check_issued(cert, cert);
    if (error != X509_V_OK) {
        VLOG_ERR("%s: could not bootstrap CA cert: obtained certificate is "
                 "not self-signed (%s)", conn->name,
                 X509_verify_cert_error_string(error));
        if (sk_X509_num(chain) < 2) {
            VLOG_ERR("only one certificate was received, so probably the "
                     "peer is not configured to send its CA certificate");
        }
        return EPROTO;
    }

    int fd = open(file_name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
    if (fd < 0) {
        if (errno == EEXIST) {
            VLOG_INFO("reading CA cert %s created by another process",
                      file_name);
            ctx_valid = false;
            return EPROTO;
        }
        error = errno;
        VLOG_ERR("could not bootstrap CA cert: creating %s failed: %s",
                 file_name, strerror(error));
        return error;
    }

    FILE *file = fdopen(fd, "w");
    if (!file) {
        error = errno;
        VLOG_ERR("could not bootstrap CA cert: fdopen failed: %s",
                 strerror(error));
        close(fd);
        unlink(file_name);
        return error;
    }
    if (!PEM_write_X509(file, cert)) {
        VLOG_ERR("could not bootstrap CA cert: PEM_write_X509 to %s failed: "
                 "%s", file_name, queued_error_string());
        fclose(file);
        unlink(file_name);
        return EIO;
    }
    if (fclose(file)) {
        error = errno;
        VLOG_ERR("could not bootstrap CA cert: writing %s failed: %s",
                 file_name, strerror(error));
        unlink(file_name);
        return error;
    }

    VLOG_INFO("successfully bootstrapped CA cert to %s", file_name);
    log_ca_cert(file_name, cert);
    ctx_valid = false;          /* Load it for the next connection. */
    VLOG_INFO("%s: killing successful connection to retry using CA cert",
              conn->name);
    return EPROTO;
}

static char *
get_peer_common_name(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    char *cn = NULL;

    if (!cert) {
        return NULL;
    }
    X509_NAME *subject = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
        X509_NAME_ENTRY *entry = X509_NAME_get_entry(subject, idx);
        ASN1_STRING *data = entry ? X509_NAME_ENTRY_get_data(entry) : NULL;
        if (data) {
            cn = xmemdup(ASN1_STRING_get0_data(data),
                         ASN1_STRING_length(data) + 1);
            cn[ASN1_STRING_length(data)] = '\0';
        }
    }
    X509_free(cert);
    return cn;
}

/* Interprets the result 'ret' of an SSL call that failed with SSL_get_error()
 * value 'error'.  Returns EAGAIN (setting '*want') or a positive errno. */
static int
interpret_ssl_error(struct ssl_conn *conn, const char *function, int ret,
                    int error, int *want)
{
    *want = SSL_NOTHING;

    switch (error) {
    case SSL_ERROR_WANT_READ:
        *want = SSL_READING;
        return EAGAIN;

    case SSL_ERROR_WANT_WRITE:
        *want = SSL_WRITING;
        return EAGAIN;

    case SSL_ERROR_SYSCALL:
        if (!ERR_peek_error()) {
            int status = errno;
            if (ret < 0 && status) {
                VLOG_DBG_RL(&rl, "%s: %s: %s", conn->name, function,
                            strerror(status));
                ERR_clear_error();
                return status;
            }
            VLOG_WARN_RL(&rl, "%s: %s: unexpected SSL connection close",
                         conn->name, function);
            return EPROTO;
        }
        /* Fall through. */
    case SSL_ERROR_SSL:
        VLOG_WARN_RL(&rl, "%s: %s: %s", conn->name, function,
                     queued_error_string());
        return EPROTO;

    case SSL_ERROR_NONE:
    case SSL_ERROR_ZERO_RETURN:
    default:
        VLOG_ERR_RL(&rl, "%s: %s: unexpected SSL error %d", conn->name,
                    function, error);
        ERR_clear_error();
        return EPROTO;
    }
}

int
ssl_conn_handshake(struct ssl_conn *conn)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(conn->ssl);
    if (ret == 1) {
        if (conn->bootstrap_file) {
            return do_ca_cert_bootstrap(conn);
        }
        free(conn->peer_cn);
        conn->peer_cn = get_peer_common_name(conn->ssl);
        VLOG_DBG("%s: %s handshake done (%s), peer CN %s", conn->name,
                 SSL_get_version(conn->ssl),
                 conn->server ? "server" : "client",
                 conn->peer_cn ? conn->peer_cn : "<none>");
        return 0;
    }

    int error = SSL_get_error(conn->ssl, ret);
    if (ret < 0 && (error == SSL_ERROR_WANT_READ
                    || error == SSL_ERROR_WANT_WRITE)) {
        return EAGAIN;
    }

    const char *function = conn->server ? "SSL_accept" : "SSL_connect";
    long verify = SSL_get_verify_result(conn->ssl);
    if (verify != X509_V_OK) {
        VLOG_WARN_RL(&rl, "%s: %s: peer certificate verification failed: %s",
                     conn->name, function,
                     X509_verify_cert_error_string(verify));
    }
    int unused;
    int retval = interpret_ssl_error(conn, function, ret, error, &unused);
    shutdown(conn->fd, SHUT_RDWR);
    return retval == EAGAIN ? EPROTO : retval;
}

ssize_t
ssl_conn_recv(struct ssl_conn *conn, void *buffer, size_t n)
{
    /* Pending output first: a reader may never call stream_run(). */
    if (conn->txbuf) {
        ssl_conn_run(conn);
    }

    ERR_clear_error();
    int old_state = SSL_get_state(conn->ssl);
    int ret = SSL_read(conn->ssl, buffer, n > INT_MAX ? INT_MAX : n);
    if (old_state != (int) SSL_get_state(conn->ssl)) {
        conn->tx_want = SSL_NOTHING;
    }
    conn->rx_want = SSL_NOTHING;

    if (ret > 0) {
        return ret;
    }
    int error = SSL_get_error(conn->ssl, ret);
    if (error == SSL_ERROR_ZERO_RETURN) {
        return 0;
    }
    return -interpret_ssl_error(conn, "SSL_read", ret, error,
                                &conn->rx_want);
}

/* Offers 'n' bytes at 'buf' to SSL_write() until all are taken or it
 * fails; '*done' counts the bytes taken.  Returns 0, EAGAIN or an errno. */
static int
ssl_write_some(struct ssl_conn *conn, const char *buf, size_t n,
               size_t *done)
{
    *done = 0;
    while (*done < n) {
        ERR_clear_error();
        int old_state = SSL_get_state(conn->ssl);
        int ret = SSL_write(conn->ssl, buf + *done, n - *done);
        if (old_state != (int) SSL_get_state(conn->ssl)) {
            conn->rx_want = SSL_NOTHING;
        }
        conn->tx_want = SSL_NOTHING;
        if (ret > 0) {
            *done += ret;
        } else {
            int error = SSL_get_error(conn->ssl, ret);
            if (error == SSL_ERROR_ZERO_RETURN) {
                return EPIPE;
            }
            return interpret_ssl_error(conn, "SSL_write", ret, error,
                                       &conn->tx_want);
        }
    }
    return 0;
}

void
ssl_conn_run(struct ssl_conn *conn)
{
    if (conn->txbuf) {
        size_t done;
        int error = ssl_write_some(conn, conn->txbuf + conn->tx_ofs,
                                   conn->tx_len - conn->tx_ofs, &done);
        conn->tx_ofs += done;
        if (error != EAGAIN) {
            conn->tx_error = error;
            free(conn->txbuf);
            conn->txbuf = NULL;
            conn->tx_ofs = conn->tx_len = 0;
        }
    }
}

ssize_t
ssl_conn_send(struct ssl_conn *conn, const void *buffer, size_t n)
{
    if (conn->txbuf) {
        ssl_conn_run(conn);
        if (conn->txbuf) {
            return -EAGAIN;
        }
    }
    if (conn->tx_error) {
        return -conn->tx_error;
    }

    size_t len = n < SSL_SEND_MAX ? n : SSL_SEND_MAX;
    size_t done;
    int error = ssl_write_some(conn, buffer, len, &done);
    if (!error) {
        return len;
    } else if (error == EAGAIN) {
        /* SSL_write() may have taken part of the rest into a record that
         * is still being written: the same bytes must be offered again, so
         * keep a copy and report them as sent. */
        conn->tx_len = len - done;
        conn->tx_ofs = 0;
        conn->txbuf = xmemdup((const char *) buffer + done, conn->tx_len);
        return len;
    } else if (done) {
        conn->tx_error = error;
        return done;
    } else {
        return -error;
    }
}

static int
want_to_events(int want)
{
    return (want == SSL_READING ? POLLIN
            : want == SSL_WRITING ? POLLOUT
            : 0);
}

int
ssl_conn_wait_events(const struct ssl_conn *conn,
                     enum stream_wait_type type, bool handshake_done)
{
    if (!handshake_done) {
        return want_to_events(SSL_want(conn->ssl));
    }

    switch (type) {
    case STREAM_CONNECT:
        return 0;

    case STREAM_RECV: {
        int events = want_to_events(conn->rx_want);
        if (events && conn->txbuf) {
            int tx_events = want_to_events(conn->tx_want);
            events = tx_events ? events | tx_events : 0;
        }
        return events;
    }

    case STREAM_SEND:
        return conn->txbuf ? want_to_events(conn->tx_want) : 0;
    }
    return 0;
}

int
ssl_conn_run_wait_events(const struct ssl_conn *conn)
{
    return conn->txbuf ? want_to_events(conn->tx_want) : -1;
}

const char *
ssl_conn_get_peer_cn(const struct ssl_conn *conn)
{
    return conn->peer_cn;
}
