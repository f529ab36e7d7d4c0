/*
 * objaction: the records that ask VMs to act on the objects they hold
 * (doc/objects.md, "Verdicts" and "Update notices").  Pure: no I/O.
 *
 * From the object mapping (Object and Object_Ref, objmap.h) it computes,
 * for every VM that references an object:
 *
 *   - a verdict, when the object's flags hold "infected" (the control
 *     plane's verdict), or when a VM's scanner published one that a rule
 *     lets count (see objaction_compute()):
 *       key   "verdict/<digest>"
 *       value {"digest": D, "verdict": "infected", "action": A,
 *              "paths": [the VM's paths]}
 *     plus "source": the scanning VM's name, for a scanner's verdict; A is
 *     the object's params:action ("quarantine" or "delete"; "quarantine"
 *     if unset or anything else);
 *   - an update notice, when the object's params:superseded_by names
 *     another digest:
 *       key   "notice/<digest>"
 *       value {"digest": D, "superseded_by": D2, "size": S,
 *              "paths": [the VM's paths]}
 *     where S is the size of the Object row of D2, or params:new_size, or
 *     the notice is not made if neither is known.
 *
 * Only the VMs that reference the object get its records, and each gets
 * its own paths.  chandb keeps Record rows (external_ids:chand-object=true)
 * equal to what objaction_compute() returns.
 */
#ifndef OBJACTION_H
#define OBJACTION_H 1

#include <jansson.h>

#define OBJACTION_VERDICT_PREFIX "verdict/"
#define OBJACTION_NOTICE_PREFIX "notice/"
#define OBJACTION_RESTORE_PREFIX "restore/"
#define OBJACTION_ALLOW_PREFIX "allow/"
#define OBJACTION_INSTALL_PREFIX "install/"

/* 'objects' (borrowed): digest -> {"size": N, "flags": [...],
 * "params": {...}}.  'refs' (borrowed): vm -> (digest -> [paths]).
 * 'scanned' (borrowed, may be NULL): digest -> the name of a VM whose
 * scanner verdict "infected" on it counts (the caller checks that a rule
 * allows it).  The control plane's verdict wins over a scanner's.
 * Returns a new object vm -> (key -> value_text). */
json_t *objaction_compute(const json_t *objects, const json_t *refs,
                          const json_t *scanned);

/* Restore from a sibling (doc/objects.md, "Restore from a sibling").
 *
 * 'objects' as above, each with "held_by" (an array of the VMs that have
 * ever referenced it).  'refs' (borrowed): vm -> (digest -> [flags of the
 * VM's reference]).  'requests' (borrowed): vm -> (digest -> the request's
 * "at", an integer), the VMs' well-formed "restore/<digest>" records.
 * 'content' (borrowed): digest -> "present" when chand-host's content
 * store has it, or {"error": reason, "tried": [vm...]} when fetching it
 * from the VMs in "tried" failed: the error is the answer unless a clean
 * holder outside "tried" has appeared since (then it is needed again).
 *
 * For each request, adds to 'wanted' (vm -> (key -> value_text)) the
 * answer "restore/<digest>":
 *   - {"digest", "request": at, "error": E} when the VM never held the
 *     object and no update notice in 'wanted' for it names the object as
 *     superseding ("not entitled"), the object is flagged infected, no
 *     other VM
 *     holds a clean copy (its reference flags neither "infected" nor
 *     "quarantined"), or fetching failed;
 *   - {"digest", "request": at, "size": S} once the content is present;
 *   - nothing yet while it is on its way.
 * And adds to 'needs' (digest -> {"size": S, "candidates": [vm...]}) each
 * object whose content must be fetched, with the VMs holding a clean copy
 * (the requester excluded), sorted by name.  Returns the number of
 * requests refused as not entitled. */
unsigned int objaction_restore(const json_t *objects, const json_t *refs,
                               const json_t *requests, const json_t *content,
                               json_t *wanted, json_t *needs);

/* Parses a VM's "restore/<digest>" request: {"digest": D, "path": P,
 * "at": T} with D the key's digest, P a string and T an integer.  Returns
 * the digest's start in 'key' and stores T in '*atp', or returns NULL. */
const char *objaction_parse_restore(const char *key, const char *value_text,
                                    json_int_t *atp);

/* The allowlist (Allowlist rows, 'allow': digest -> name, borrowed) for
 * every VM of 'vms' (an array of names, borrowed): "allow/<digest>" with
 * {"digest": D, "name": N}, added to 'wanted'. */
void objaction_allow(const json_t *allow, const json_t *vms,
                     json_t *wanted);

/* Parses a VM's published scanner verdict: 'key' must be "verdict/" and a
 * digest, 'value_text' {"verdict": "infected"}.  Returns the digest's
 * start in 'key', or NULL if it is not one. */
const char *objaction_parse_scan(const char *key, const char *value_text);

#endif /* objaction.h */
