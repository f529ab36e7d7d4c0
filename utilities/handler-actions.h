/*
 * handler-actions: what chand-handler, the built-in handlers, does
 * (doc/objects.md, "Built-in handlers").
 *
 * Verdict.  For each path of a "verdict/<digest>" record whose file still
 * holds the object (a regular file, not a symbolic link, whose sha256 is
 * the digest), action "quarantine" moves the file into the quarantine
 * directory, as <qdir>/<digest>/<n> (mode 0400) beside <n>.json, its
 * metadata:
 *
 *   {"digest": D, "path": P, "mode": M, "uid": U, "gid": G,
 *    "mtime": seconds, "mtime_nsec": N, "quarantined_at": unix ms}
 *
 * written before the file moves; action "delete" unlinks it.  A path
 * whose content changed, or that is missing or not a regular file, is
 * left alone and reported.
 *
 * Release.  ha_release() puts every quarantined file of a digest back:
 * its content must still be the digest, and its original path must not
 * exist; it gets back its mode, owner (when permitted) and mtime.
 *
 * Install and restore.  For an "install/<digest>" or "restore/<digest>"
 * record, chand-guest gives the handler "content", the path of the
 * object's verified content in its content store, and "path", the target
 * (for install, inside its install directory, with "mode", an octal
 * string).  The handler copies the content into place atomically: into a
 * new temporary file (mode 0600) in the target's directory, checking that
 * what it copied hashes to the digest, fsynced, given its mode, renamed
 * over the target, the directory fsynced.  A target that is a symbolic
 * link, a directory or anything but a regular file is refused, and so is
 * a missing directory (none is created).  Install gives the file its
 * mode; restore keeps the permission bits (and, as root, the owner) of a
 * regular file it replaces, or uses 0644, and leaves alone a target that
 * already holds the object.
 *
 * Every function that returns a message returns it malloc()ed, owned by
 * the caller.
 */
#ifndef HANDLER_ACTIONS_H
#define HANDLER_ACTIONS_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define HA_DEFAULT_QUARANTINE_DIR "/var/lib/chand/quarantine"

/* What a handler's stdin says, for the kinds chand-handler handles. */
struct ha_input {
    char *kind;                 /* "verdict", "notice", "install" or
                                 * "restore". */
    char *digest;               /* 64 lowercase hex digits (install and
                                 * restore: from the key). */
    char *action;               /* Verdict: "quarantine" or "delete". */
    char **paths;               /* Absolute, normalized. */
    size_t n_paths;
    char *superseded_by;        /* Notice: a digest. */
    int64_t size;               /* Notice: bytes of the new object;
                                 * install, restore: of the object; or
                                 * -1. */
    char *content;              /* Install, restore: the verified content's
                                 * path. */
    char *path;                 /* Install, restore: the target, absolute,
                                 * normalized. */
    unsigned int mode;          /* Install: the target's mode, <= 0777
                                 * (0755 if the record gives none). */
};

/* True if 'kind' is one that chand-handler handles: "verdict", "notice",
 * "install" or "restore". */
bool ha_known_kind(const char *kind);

/* Parses a handler's stdin ('text', 'len' bytes) into 'in' (the caller
 * frees it with ha_input_destroy()).  Returns NULL, or a message saying
 * what is wrong (then 'in' holds nothing). */
char *ha_parse_input(const char *text, size_t len, struct ha_input *in);
void ha_input_destroy(struct ha_input *);

/* True if 'digest' is 64 lowercase hex digits. */
bool ha_valid_digest(const char *digest);

/* True if 'path' is absolute and has no empty, "." or ".." component. */
bool ha_valid_path(const char *path);

/* Parses 'text', an octal mode of 1 to 4 digits, into '*modep'.  Returns
 * false if it is not one or is over 0777 (setuid, setgid and sticky bits
 * are refused). */
bool ha_parse_mode(const char *text, unsigned int *modep);

/* Computes the sha256 of the regular file 'path' (not following a final
 * symbolic link) into 'hex'.  Returns 0 or an errno (ELOOP: a symbolic
 * link; EINVAL: not a regular file). */
int ha_sha256_file(const char *path, char hex[65]);

/* What a handler's run came to. */
struct ha_result {
    int exit_code;              /* 0: done (perhaps with paths left
                                 * alone); 1: an error. */
    char *output;               /* For stdout: one JSON object, or NULL
                                 * (install and restore on an error). */
    char *error;                /* For stderr, or NULL. */
};

/* Carries out the verdict 'in' with quarantine directory 'qdir' at time
 * 'now_ms'.  The caller frees 'res''s strings. */
void ha_verdict(const struct ha_input *in, const char *qdir, long long now_ms,
                struct ha_result *res);

/* Answers the notice 'in' (nothing to do yet but to report it). */
void ha_notice(const struct ha_input *in, struct ha_result *res);

/* Installs the content of 'in' (an install record) at its path with its
 * mode.  The detail is "installed <digest12> at P (mode M)". */
void ha_install(const struct ha_input *in, struct ha_result *res);

/* Restores the content of 'in' (a restore record) to its path: "restored
 * <digest12> to P", or "P already holds <digest12>" without writing. */
void ha_restore(const struct ha_input *in, struct ha_result *res);

/* Puts back every file of 'digest' quarantined in 'qdir'.  Stores in
 * '*releasedp' the number released.  Returns NULL, or a message naming
 * every file that could not be put back (the others are). */
char *ha_release(const char *qdir, const char *digest, size_t *releasedp);

#endif /* handler-actions.h */
