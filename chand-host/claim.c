/* Copyright (c) 2026 The chand authors.  See claim.h. */

#include <config.h>
#include "claim.h"

#include <string.h>

bool
claim_row_released(const struct claim_row *row)
{
    return !row->chassis || !row->chassis[0]
           || (row->state && !strcmp(row->state, "released"));
}

/* True if row 'a' holds a newer claim than row 'b': a higher claim number,
 * or the same one and the greater chassis name (two hosts that took the VM
 * at once). */
static bool
claim_newer(const struct claim_row *a, const struct claim_row *b)
{
    return a->claim != b->claim ? a->claim > b->claim
                                : strcmp(a->chassis ? a->chassis : "",
                                         b->chassis ? b->chassis : "") > 0;
}

/* The row of the chassis that held the VM before our claim 'own' (the
 * newest older claim), if it has not released the VM.  A row with the
 * same claim (a tie we won) held nothing. */
static const struct claim_row *
previous_holder(const struct claim_row *rows, size_t n,
                const struct claim_row *own)
{
    const struct claim_row *prev = NULL;
    for (size_t i = 0; own && i < n; i++) {
        const struct claim_row *r = &rows[i];
        if (r != own && r->claim < own->claim
            && (!prev || claim_newer(r, prev))) {
            prev = r;
        }
    }
    return prev && !claim_row_released(prev) ? prev : NULL;
}

void
claim_decide(const char *me, const struct claim_row *rows, size_t n,
             bool serving, bool yielded, bool waiting,
             struct claim_decision *d)
{
    const struct claim_row *own = NULL, *other = NULL;

    for (size_t i = 0; i < n; i++) {
        const struct claim_row *r = &rows[i];
        if (r->chassis && !strcmp(r->chassis, me)) {
            own = r;
        } else if (!other || claim_newer(r, other)) {
            other = r;
        }
    }
    memset(d, 0, sizeof *d);
    d->holder = other;
    d->claim = own && own->claim > 0 ? own->claim : 1;
    d->migrations = own ? own->migrations : 0;

    if (other && (!own || claim_newer(other, own))) {
        bool tie_lost = own && own->claim == other->claim;
        if (serving) {
            d->action = CLAIM_YIELD;
        } else if ((yielded || tie_lost) && !claim_row_released(other)) {
            d->action = CLAIM_YIELD;
        } else {
            d->action = CLAIM_TAKE;
            d->claim = other->claim + 1;
            d->migrations = other->migrations + 1;
        }
    } else if (waiting && previous_holder(rows, n, own)) {
        d->action = CLAIM_WAIT;
    } else {
        d->action = CLAIM_SERVE;
    }
}

const char *
claim_action_name(enum claim_action a)
{
    switch (a) {
    case CLAIM_SERVE: return "serve";
    case CLAIM_TAKE: return "take";
    case CLAIM_WAIT: return "wait";
    case CLAIM_YIELD: return "yield";
    }
    return "?";
}
