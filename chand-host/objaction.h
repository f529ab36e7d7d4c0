/*
 * objaction: the records that ask VMs to act on the objects they hold
 * (doc/objects.md, "Verdicts" and "Update notices").  Pure: no I/O.
 *
 * From the object mapping (Object and Object_Ref, objmap.h) it computes,
 * for every VM that references an object:
 *
 *   - a verdict, when the object's flags hold "infected":
 *       key   "verdict/<digest>"
 *       value {"digest": D, "verdict": "infected", "action": A,
 *              "paths": [the VM's paths]}
 *     where A is the object's params:action ("quarantine" or "delete";
 *     "quarantine" if unset or anything else);
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

/* 'objects' (borrowed): digest -> {"size": N, "flags": [...],
 * "params": {...}}.  'refs' (borrowed): vm -> (digest -> [paths]).
 * Returns a new object vm -> (key -> value_text). */
json_t *objaction_compute(const json_t *objects, const json_t *refs);

#endif /* objaction.h */
