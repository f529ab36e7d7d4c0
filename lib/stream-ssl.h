/*
 * stream-ssl: TLS for lib/stream's "ssl:" and "pssl:" streams, with OpenSSL,
 * after Open vSwitch's lib/stream-ssl.
 *
 * Configuration is process-wide, as in OVS: one private key, one
 * certificate (a PEM file that may carry the certificate's chain after it)
 * and one CA certificate file used both to verify the peer and, on the
 * server side, as the list of CAs announced to clients.  Both sides always
 * verify the peer's certificate (SSL_VERIFY_PEER |
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT); TLS 1.2 is the oldest protocol
 * accepted.
 *
 * The setters only record file names.  The files are (re)read when the next
 * ssl stream is created, and again whenever one of them changes (by name or
 * modification time), so a long-running program may call the setters in
 * every iteration of its main loop, as OVS programs do.  Each stream keeps
 * the configuration it was created with.  A stream created without a
 * usable configuration fails with ENOPROTOOPT, and the reason ("CA
 * certificate must be configured to use SSL", a file that cannot be read, a
 * key that does not match the certificate...) is logged once per
 * configuration change.
 *
 * CA bootstrap (OVS semantics): with stream_ssl_set_ca_cert_file(FILE,
 * true) and no FILE yet, an active ssl stream accepts the server's
 * certificate without verification, saves the top certificate of the chain
 * the server presents (which must be self-signed, i.e. a CA certificate;
 * the server should send it, see stream_ssl_set_peer_ca_cert_file()) to FILE
 * with mode 0444, and then fails that first connection with EPROTO so that
 * the caller reconnects, this time verifying the server against FILE.  A
 * FILE created meanwhile by another process is used instead.
 */
#ifndef STREAM_SSL_H
#define STREAM_SSL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "stream.h"

/* Returns true if any of the key, certificate or CA certificate files has
 * been set. */
bool stream_ssl_is_configured(void);

/* Sets the PEM file holding this side's private key. */
void stream_ssl_set_private_key_file(const char *file_name);

/* Sets the PEM file holding this side's certificate, optionally followed by
 * the certificates of its chain (sent to the peer along with it). */
void stream_ssl_set_certificate_file(const char *file_name);

/* Both of the above in one call (as OVS offers, since a key and certificate
 * only make sense together). */
void stream_ssl_set_key_and_cert(const char *private_key_file,
                                 const char *certificate_file);

/* Sets the PEM file of CA certificates that the peer's certificate must be
 * signed by.  If 'bootstrap' is true and the file does not exist, the first
 * server contacted provides it (see above). */
void stream_ssl_set_ca_cert_file(const char *file_name, bool bootstrap);

/* Sets a PEM file of certificates (normally this side's CA certificate) to
 * send to the peer after this side's certificate, so that a peer can
 * bootstrap its CA certificate from it.  NULL stops sending them. */
void stream_ssl_set_peer_ca_cert_file(const char *file_name);

/* Forgets the whole SSL configuration (the file names and bootstrap flag),
 * as if no setter had been called.  Streams already open are unaffected. */
void stream_ssl_reset(void);

/* Internal interface for lib/stream.c.  An 'ssl_conn' is the TLS session of
 * one stream on a connected (or connecting) nonblocking TCP socket that the
 * stream owns. */
struct ssl_conn;

/* Creates the TLS session for socket 'fd', as a client (server_side false;
 * 'host' is the host named in the stream name, for server name indication
 * if it is not an IP address) or a server.  'name' is used in log messages.
 * Returns 0 or a positive errno (ENOPROTOOPT if SSL is not configured
 * properly). */
int ssl_conn_create(int fd, bool server_side, const char *host,
                    const char *name, struct ssl_conn **);
void ssl_conn_destroy(struct ssl_conn *);

/* Advances the handshake: returns 0 when done (the peer is verified),
 * EAGAIN, or a positive errno (EPROTO for a failed handshake). */
int ssl_conn_handshake(struct ssl_conn *);

/* As stream_recv() and stream_send() once the handshake is done; 'n' > 0. */
ssize_t ssl_conn_recv(struct ssl_conn *, void *buffer, size_t n);
ssize_t ssl_conn_send(struct ssl_conn *, const void *buffer, size_t n);

/* Sends data that ssl_conn_send() had to queue. */
void ssl_conn_run(struct ssl_conn *);

/* The poll events to wait for on the socket: for the handshake (type
 * STREAM_CONNECT, or any type before the handshake is done) or for the
 * given kind of progress afterwards.  Returns 0 if the caller should not
 * wait at all (progress is possible now), -1 if there is nothing to wait
 * for (only for ssl_conn_run_wait_events()). */
int ssl_conn_wait_events(const struct ssl_conn *, enum stream_wait_type,
                         bool handshake_done);
int ssl_conn_run_wait_events(const struct ssl_conn *);

/* The common name (CN) of the peer's certificate once the handshake is
 * done, otherwise NULL. */
const char *ssl_conn_get_peer_cn(const struct ssl_conn *);

#endif /* stream-ssl.h */
