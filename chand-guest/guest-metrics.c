/* guest-metrics: chand-guest's metrics (see guest-metrics.h). */

#include <config.h>
#include "guest-metrics.h"

#include <stdio.h>

#include "metrics.h"

/* guest/status.  Members without a rule are named after their path: those
 * under "counters" are counters, the rest gauges. */
static const struct metrics_rule status_rules[] = {
    { "version", METRICS_STATE, "build_info",
      "chand-guest's version (label version); always 1.", "version" },
    { "chan_id", METRICS_SKIP, NULL, NULL, NULL },          /* A label. */
    { "identity.chan_id", METRICS_SKIP, NULL, NULL, NULL },
    { "vid", METRICS_GAUGE, NULL, "The channel's VLAN id.", NULL },
    { "udp_port", METRICS_GAUGE, NULL,
      "The guest's channel UDP port.", NULL },
    { "records", METRICS_GAUGE, NULL,
      "Records in the guest datastore.", NULL },
    { "snapshot", METRICS_STATE, "snapshot_state",
      "Where the datastore is in a snapshot from the host (label "
      "snapshot); always 1.", "snapshot" },
    { "host_epoch", METRICS_GAUGE, NULL,
      "The host's epoch of the session the datastore is in.", NULL },
    { "guest_epoch", METRICS_GAUGE, NULL, "The datastore's epoch.", NULL },
    { "position", METRICS_GAUGE, NULL,
      "The last sequence number applied.", NULL },
    { "in_session", METRICS_GAUGE, NULL,
      "1 while in session with the host.", NULL },
    { "last_rx_ms_ago", METRICS_GAUGE, "last_rx_age_seconds",
      "Time since the last frame from the host.", NULL, 1e-3 },
    { "frames_applied", METRICS_COUNTER, "frames_applied_total",
      "DATA frames applied to the datastore (kept in the datastore).",
      NULL },
    { "ops_applied", METRICS_COUNTER, "ops_applied_total",
      "Record operations applied to the datastore (kept in the "
      "datastore).", NULL },
    { "keys.rx_generation", METRICS_GAUGE, "key_rx_generation",
      "The key generation the host last sent with.", NULL },
    { "keys.tx_generation", METRICS_GAUGE, "key_tx_generation",
      "The key generation the guest sends with.", NULL },
    { "keys.auth_failures", METRICS_COUNTER, "key_auth_failures_total",
      "Frames from the host that failed authentication.", NULL },
    { "keys.verified.*", METRICS_COUNTER, "key_verified_frames_total",
      "Frames verified, by key generation.", "generation" },
    { "mtu.local", METRICS_GAUGE, "mtu_local_bytes",
      "The guest's channel MTU.", NULL },
    { "mtu.host", METRICS_GAUGE, "mtu_host_bytes",
      "The MTU the host announced.", NULL },
    { "mtu.effective", METRICS_GAUGE, "mtu_bytes",
      "The MTU the channel uses.", NULL },
    { "counters.rx_max_frame", METRICS_GAUGE, "rx_max_frame_bytes",
      "The largest frame received from the host.", NULL },
    { "counters.drop_*", METRICS_COUNTER, "rx_drops_total",
      "Frames from the host dropped, by reason.", "reason" },
    { "bridge.ready", METRICS_GAUGE, NULL,
      "1 when the guest bridge is set up.", NULL },
    { "bridge.vnic_ofport", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge.port_ofport", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge.flows", METRICS_GAUGE, NULL,
      "chand flows installed on the guest bridge.", NULL },
    { "bridge.ovsdb_connected", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge.openflow_connected", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge.sync_ms", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge.backoff_ms", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge.next_run_ms", METRICS_GAUGE, NULL, NULL, NULL },
    { "bridge", METRICS_COUNTER, NULL, NULL, NULL },
    { "api.connections", METRICS_GAUGE, NULL,
      "Connections to the local API open now.", NULL },
    { "api.watchers", METRICS_GAUGE, NULL,
      "Local API connections watching records.", NULL },
    { "api.bad_requests", METRICS_COUNTER, "api_bad_requests_total",
      "Local API requests refused as malformed.", NULL },
    { "api", METRICS_COUNTER, NULL, NULL, NULL },
    { "socket", METRICS_COUNTER, NULL, NULL, NULL },
    { "key_file.present", METRICS_GAUGE, NULL,
      "1 if the key file exists.", NULL },
    { "key_file", METRICS_COUNTER, NULL, NULL, NULL },
    { "publisher.state", METRICS_STATE, "publisher_state",
      "The publisher's state (label state); always 1.", "state" },
    { "publisher.snapshot_acked", METRICS_GAUGE, NULL, NULL, NULL },
    { "publisher.sender.mtu", METRICS_GAUGE, "publisher_mtu_bytes",
      "The MTU the publisher sends with.", NULL },
    { "publisher.sender.max_frame", METRICS_GAUGE,
      "publisher_max_frame_sent_bytes",
      "The largest frame the publisher sent.", NULL },
    { "publisher.sender", METRICS_COUNTER, NULL, NULL, NULL },
    { "publisher.limits.max_value_bytes", METRICS_GAUGE,
      "publisher_limit_value_bytes",
      "The host's limit on a published value.", NULL },
    { "publisher.limits.max_total_bytes", METRICS_GAUGE,
      "publisher_limit_total_bytes",
      "The host's limit on all published values.", NULL },
    { "publisher.limits.max_records", METRICS_GAUGE,
      "publisher_limit_records",
      "The host's limit on published records.", NULL },
    { "publisher.limits.max_publish_rate", METRICS_GAUGE,
      "publisher_limit_publish_rate",
      "The host's limit on publications a second.", NULL },
    { "handlers.timeout", METRICS_GAUGE, "handlers_timeout_seconds",
      "How long a handler may run.", NULL },
    { "handlers.running", METRICS_SKIP, NULL, NULL, NULL },
    { "transfer.refused.*", METRICS_COUNTER, "transfer_refused_total",
      "Object requests from the host refused, by reason.", "reason" },
    { "transfer.content_bytes", METRICS_GAUGE, NULL,
      "Bytes of objects being received.", NULL },
    { "watch.watching", METRICS_GAUGE, NULL,
      "1 while the watched directory is watched.", NULL },
    { "watch.queued", METRICS_GAUGE, NULL,
      "Files waiting to be hashed.", NULL },
    { "watch.bytes_hashed", METRICS_COUNTER, "watch_hashed_bytes_total",
      "Bytes of watched files hashed.", NULL },
    { "watch", METRICS_COUNTER, NULL, NULL, NULL },
    { "kvp.n_refusals", METRICS_GAUGE, "kvp_refusals",
      "Records the KVP view refuses now.", NULL },
    { "kvp.refusals", METRICS_SKIP, NULL, NULL, NULL },     /* Keys. */
    { "kvp.unpublishable", METRICS_SKIP, NULL, NULL, NULL },
    { "stats_record.interval", METRICS_GAUGE,
      "stats_record_interval_seconds",
      "How often the guest publishes its statistics record.", NULL },
    { "stats_record.errors", METRICS_COUNTER, "stats_record_errors_total",
      "Failures to publish the statistics record.", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

void
guest_metrics_add_status(struct metrics *m, const json_t *status,
                         const struct ctl_server *ctl)
{
    struct metrics_labels labels = { 0 };
    char chan_id[24];
    snprintf(chan_id, sizeof chan_id, "%lld", (long long) json_integer_value(
                 json_object_get(status, "chan_id")));
    metrics_labels_add(&labels, "chan_id", chan_id);
    metrics_add_json(m, "chand_guest", "chand-guest guest/status", status,
                     &labels, status_rules);
    metrics_add_ctl(m, "chand_guest", ctl, &labels);
}
