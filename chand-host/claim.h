/*
 * claim: which chand-host serves a VM when several share one Chan DB
 * (doc/operations.md, "Migration").  Pure: no I/O, time passed in.
 *
 * Every chand-host writes its own Channel row per VM (the Chan DB indexes
 * Channel by vm and chassis).  A row's 'claim' orders the hosts that served
 * the VM: a host that finds the VM's vNIC on its bridge while another
 * chassis holds the newest claim takes it over with that claim plus one.
 * The newest claim wins:
 *
 *   - the host whose claim was overtaken yields at once: it stops sending
 *     to the VM, writes its row one last time in state "released" with the
 *     exact position the guest acknowledged, and keeps its flows while the
 *     vNIC is still there (a split brain during live migration);
 *
 *   - the host that took over waits until the previous holder's row says
 *     "released" (or until a deadline, for a holder that died), then
 *     resumes from that row: a guest found exactly where the previous host
 *     left it gets only what it lacks, no snapshot.
 *
 * A host that yielded does not take the VM back while its vNIC stays: only
 * a vNIC that leaves and comes back (a migration back), or a newest holder
 * that released the VM, lets it claim again.  Rows of chassis "" (written
 * before chassis names existed) never release: they count as released.
 */
#ifndef CLAIM_H
#define CLAIM_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One Channel row of a VM (all borrowed). */
struct claim_row {
    const char *chassis;
    int64_t claim;
    int64_t migrations;
    const char *state;          /* "ready", ..., "released"; may be NULL. */
};

enum claim_action {
    CLAIM_SERVE,                /* This host serves the VM. */
    CLAIM_TAKE,                 /* Another chassis holds the newest claim:
                                 * write our row with a newer one. */
    CLAIM_WAIT,                 /* We hold the newest claim; the previous
                                 * holder has not released the VM yet. */
    CLAIM_YIELD,                /* Another chassis claimed it after us. */
};

struct claim_decision {
    enum claim_action action;
    int64_t claim;              /* Our row's claim (SERVE, TAKE, WAIT). */
    int64_t migrations;         /* Our row's migrations (same). */
    const struct claim_row *holder;     /* The newest other row, or NULL. */
};

/* Decides for chassis 'me' about one VM whose vNIC is on our bridge, from
 * the VM's Channel rows 'rows' (n of them, any order; at most one is
 * ours).  'serving': we have a channel for it now.  'yielded': we yielded it
 * while its vNIC stayed.  'waiting': we took it over and the deadline for
 * the previous holder's release has not passed. */
void claim_decide(const char *me, const struct claim_row *rows, size_t n,
                  bool serving, bool yielded, bool waiting,
                  struct claim_decision *);

/* True if 'row' let the VM go: state "released", or chassis "". */
bool claim_row_released(const struct claim_row *row);

const char *claim_action_name(enum claim_action);

#endif /* claim.h */
