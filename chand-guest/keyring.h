/*
 * keyring: chand-guest's channel message authentication keys
 * (doc/design.md §5, doc/SESSION.md "Keys and rotation").
 *
 * Each key is 32 random bytes with a generation number (1, 2, ...).  The
 * host gets them from the Chan DB (table Channel_Key); the guest from its
 * key file (--key-file, default /etc/chand/channel.key), one key a line:
 *
 *     # chand channel keys: GENERATION HEXKEY
 *     1 4f1c...(64 hex digits)...
 *     2 9a0b...
 *
 * Blank lines and comments (from '#' to the end of the line) are ignored;
 * fields are separated by spaces or tabs.  Parsing is strict: a generation
 * is a decimal number 1..2147483647 without sign or leading zeros, a key
 * is exactly 64 hex digits (either case), no generation appears twice, at
 * most KEYRING_MAX keys.  The first problem is reported with its line.
 *
 * A keyring with no keys means "unauthenticated": frames carry the HMAC of
 * the empty key (PROTOCOL.md §6).  With keys, only they are accepted.
 *
 * Two parts:
 *   - struct keyring: a set of keys, newest generation first, and pure
 *     functions on it (parsing text, finding a key, decoding a frame with
 *     whichever key verifies it).  No I/O, no logging.
 *   - struct keyring_file: the key file, loaded at start and reloaded when
 *     its inode, size or modification time changes (checked every
 *     KEYRING_CHECK_MS) or on request.  An invalid file at start is an
 *     error; on reload it is logged and counted and the previous keys stay.
 *     A missing file means no keys (logged as a warning, once per
 *     disappearance).
 */
#ifndef KEYRING_H
#define KEYRING_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-wire.h"

#define KEYRING_KEY_LEN 32              /* Bytes per key. */
#define KEYRING_MAX 16                  /* Keys per keyring, at most. */
#define KEYRING_GEN_MAX 2147483647u     /* Highest generation (2^31 - 1). */
#define KEYRING_FILE_MAX (64 * 1024)    /* Longest key file accepted. */
#define KEYRING_CHECK_MS 1000           /* Key file check period. */
#define KEYRING_ERROR_LEN 256           /* Room for an error message. */
#define KEYRING_DEFAULT_FILE "/etc/chand/channel.key"

struct keyring_key {
    uint32_t generation;                /* 1..KEYRING_GEN_MAX. */
    uint8_t key[KEYRING_KEY_LEN];
};

struct keyring {
    size_t n;
    struct keyring_key keys[KEYRING_MAX];   /* Newest generation first. */
};

/* Makes 'ring' empty. */
void keyring_init(struct keyring *ring);

/* Adds generation 'generation' with the KEYRING_KEY_LEN bytes at 'key'
 * (copied) to 'ring'.  Returns 0, EINVAL if 'generation' is out of range,
 * EEXIST if 'ring' already has it, or ENOSPC if 'ring' is full. */
int keyring_add(struct keyring *ring, uint32_t generation, const void *key);

/* Parses the 'len' bytes at 'text' (a key file's contents; need not be
 * null-terminated) into '*ring'.  Returns 0, or EINVAL with a message such
 * as "line 3: key is 63 hex digits, not 64" in 'error' (of 'error_size'
 * bytes), leaving '*ring' unspecified. */
int keyring_parse(const char *text, size_t len, struct keyring *ring,
                  char *error, size_t error_size);

/* Returns the key of generation 'generation' in 'ring' (borrowed), or NULL
 * if there is none. */
const struct keyring_key *keyring_find(const struct keyring *ring,
                                       uint32_t generation);

/* Returns the newest key of 'ring' (borrowed), or NULL if it is empty. */
const struct keyring_key *keyring_newest(const struct keyring *ring);

/* True if 'a' and 'b' hold the same generations with the same keys. */
bool keyring_equal(const struct keyring *a, const struct keyring *b);

/* Decodes the 'len'-byte frame at 'frame' with chan_wire_decode(), trying
 * each key of 'ring' newest generation first, or the empty key if 'ring'
 * is empty.  The result is that of the first key that does not fail with
 * CHAN_WIRE_ERR_AUTH (errors found before authentication are the same for
 * every key), or CHAN_WIRE_ERR_AUTH if none verifies the trailer.  On
 * success stores the generation that verified it in '*generationp' (0 for
 * the empty key) and fills '*hdr' and '*payloadp' as chan_wire_decode()
 * does (pointing into 'frame'). */
enum chan_wire_error keyring_decode(const struct keyring *ring,
                                    const void *frame, size_t len,
                                    struct chan_wire_header *hdr,
                                    const uint8_t **payloadp,
                                    uint32_t *generationp);

/* The same, trying first the key of generation 'first' if 'ring' holds it
 * (0: none), then the others newest first.  The receiver passes the
 * generation that verified the host's last frame, so that while the host
 * still signs with an older key (a rotation in progress) a frame costs
 * one HMAC, not one for each newer key tried first. */
enum chan_wire_error keyring_decode_first(const struct keyring *ring,
                                          uint32_t first, const void *frame,
                                          size_t len,
                                          struct chan_wire_header *hdr,
                                          const uint8_t **payloadp,
                                          uint32_t *generationp);

/* Returns a new JSON array (owned by the caller) of the generations in
 * 'ring', ascending. */
json_t *keyring_generations_json(const struct keyring *ring);

/* Writes the generations of 'ring', ascending, as "1, 2" (or "none") into
 * 'buf' of 'size' bytes, truncating if needed.  Returns 'buf'. */
char *keyring_format(const struct keyring *ring, char *buf, size_t size);

/* The key file. */

struct keyring_file;

/* Loads the key file at 'path' (copied).  A missing file is no keys, with
 * a warning logged.  Returns 0 and stores the new keyring_file in '*kfp'
 * (the caller frees it with keyring_file_destroy()), or a positive errno
 * (EINVAL: invalid contents) with the reason in 'error' (of 'error_size'
 * bytes, e.g. "/etc/chand/channel.key: line 2: ...") and stores NULL. */
int keyring_file_open(const char *path, long long now,
                      struct keyring_file **kfp, char *error,
                      size_t error_size);

/* Frees 'kf'.  NULL is a no-op. */
void keyring_file_destroy(struct keyring_file *kf);

/* If KEYRING_CHECK_MS have passed since the last check, checks whether the
 * file changed (inode, size or modification time, or it appeared or
 * vanished) and reloads it if so.  Returns true if the keys changed. */
bool keyring_file_run(struct keyring_file *kf, long long now);

/* Returns the time of the next check. */
long long keyring_file_next_check(const struct keyring_file *kf);

/* Reloads the file now, whether or not it changed.  Returns 0 (and stores
 * in '*changedp', if nonnull, whether the keys changed) or a positive
 * errno with the reason in 'error' (the previous keys are kept). */
int keyring_file_reload(struct keyring_file *kf, bool *changedp,
                        char *error, size_t error_size);

/* The keys now loaded (borrowed; valid until the next call that may
 * reload). */
const struct keyring *keyring_file_get(const struct keyring_file *kf);

/* The path (borrowed). */
const char *keyring_file_path(const struct keyring_file *kf);

/* Returns a new JSON object (owned by the caller): "path", "present"
 * (whether the file existed at the last load), "loads" (successful loads),
 * "load_errors" and "last_error" (the latest failure's message, or ""). */
json_t *keyring_file_status_json(const struct keyring_file *kf);

#endif /* keyring.h */
