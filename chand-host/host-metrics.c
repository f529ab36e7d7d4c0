/* host-metrics: chand-host's metrics (see host-metrics.h). */

#include <config.h>
#include "host-metrics.h"

#include "channel.h"
#include "latency-hist.h"
#include "metrics.h"

/* host/status, and transfer/list's host-wide part. */
static const struct metrics_rule status_rules[] = {
    { "bridge", METRICS_STATE, "bridge_info",
      "The bridge chand-host serves (label bridge); always 1.", "bridge" },
    { "bridge_fail_mode", METRICS_STATE, "bridge_fail_mode",
      "The bridge's fail_mode (label mode); always 1.", "mode" },
    { "chassis", METRICS_SKIP, NULL, NULL, NULL },
    { "ovs_db_connected", METRICS_GAUGE, NULL,
      "1 if the local Open_vSwitch database is connected and in sync.",
      NULL },
    { "chan_db_connected", METRICS_GAUGE, NULL,
      "1 if the Chan DB is connected.", NULL },
    { "openflow_connected", METRICS_GAUGE, NULL,
      "1 if the OpenFlow connection for packet-in/out is up.", NULL },
    { "flow_connection", METRICS_GAUGE, "flow_connection_up",
      "1 if the flow manager's OpenFlow connection is up.", NULL },
    { "flows_installed", METRICS_GAUGE, NULL,
      "1 if chand's flows are in place on the bridge.", NULL },
    { "chand_flows", METRICS_GAUGE, "flows",
      "Flows chand-host has installed on the bridge.", NULL },
    { "flow_errors", METRICS_COUNTER, "flow_errors_total",
      "Errors the switch reported to flow syncs.", NULL },
    { "channels", METRICS_GAUGE, NULL, "Channels chand-host runs.", NULL },
    { "packet_outs", METRICS_COUNTER, "packet_outs_total",
      "Frames sent to the bridge as OpenFlow packet-outs.", NULL },
    { "packet_ins", METRICS_COUNTER, "packet_ins_total",
      "Frames received from the bridge as OpenFlow packet-ins.", NULL },
    { "packet_out_drops", METRICS_COUNTER, "packet_out_drops_total",
      "Packet-outs dropped because the OpenFlow connection was full or "
      "down.", NULL },
    { "counters.isolation_drops", METRICS_COUNTER, "isolation_drops_total",
      "Frames the isolation flows dropped (per the flows' counters).",
      NULL },
    { "counters.*", METRICS_COUNTER, "drops_total",
      "Frames chand-host dropped before a channel saw them, by reason.",
      "reason" },
    { "inject.path", METRICS_STATE, "inject_path",
      "How frames meet the bridge (label path: port or openflow); "
      "always 1.", "path" },
    { "inject.mode", METRICS_SKIP, NULL, NULL, NULL },
    { "inject.reason", METRICS_SKIP, NULL, NULL, NULL },
    { "inject.port.ofport", METRICS_SKIP, NULL, NULL, NULL },
    { "inject.port.connected", METRICS_GAUGE, NULL,
      "1 if the chand port's socket is connected.", NULL },
    { "inject.port.*", METRICS_COUNTER, NULL, NULL, NULL },
    { "chan_db.vms_monitored", METRICS_GAUGE, NULL,
      "VMs whose Chan DB rows chand-host monitors (--monitor=own).", NULL },
    { "chan_db.conditions_pending", METRICS_GAUGE, NULL,
      "1 while a monitor condition change is pending.", NULL },
    { "chan_db.monitor_version", METRICS_GAUGE, NULL,
      "The OVSDB monitor method in use (1: monitor, 2: monitor_cond, "
      "3: monitor_cond_since).", NULL },
    { "chan_db.bytes_received", METRICS_COUNTER,
      "chan_db_received_bytes_total",
      "Bytes received from the Chan DB server.", NULL },
    { "chan_db.row_updates.*", METRICS_COUNTER, "chan_db_row_updates_total",
      "Row updates received from the Chan DB, by table.", "table" },
    { "chan_db.*", METRICS_COUNTER, NULL, NULL, NULL },
    { "latency", METRICS_SKIP, NULL, NULL, NULL },  /* Per channel. */
    { "metrics_http.active", METRICS_GAUGE, "metrics_http_connections",
      "Connections to --metrics open now.", NULL },
    { "metrics_http.connections", METRICS_COUNTER,
      "metrics_http_connections_total",
      "Connections accepted on --metrics.", NULL },
    { "metrics_http.responses.*", METRICS_COUNTER,
      "metrics_http_responses_total",
      "Answers on --metrics, by HTTP status code.", "code" },
    { "metrics_http.bad_requests", METRICS_COUNTER,
      "metrics_http_bad_requests_total",
      "Requests on --metrics answered with an error (4xx): not HTTP, not "
      "GET, not /metrics, too large.", NULL },
    { "metrics_http.timeouts", METRICS_COUNTER,
      "metrics_http_timeouts_total",
      "Connections on --metrics closed because no complete request and "
      "answer came within the timeout.", NULL },
    { "transfer.content_bytes", METRICS_GAUGE, "content_store_bytes",
      "Bytes in the content store.", NULL },
    { "transfer.content_cap", METRICS_GAUGE, "content_store_cap_bytes",
      "The content store's cap (--content-cap).", NULL },
    { "transfer.counters.*", METRICS_COUNTER, NULL, NULL, NULL },
    { "transfer.lanes", METRICS_SKIP, NULL, NULL, NULL },   /* Per channel. */
    { NULL, 0, NULL, NULL, NULL },
};

/* channel/show. */
static const struct metrics_rule channel_rules[] = {
    { "vm", METRICS_SKIP, NULL, NULL, NULL },
    { "interface", METRICS_SKIP, NULL, NULL, NULL },    /* In _info. */
    { "chan_id", METRICS_SKIP, NULL, NULL, NULL },
    { "vid", METRICS_SKIP, NULL, NULL, NULL },
    { "guest_mac", METRICS_SKIP, NULL, NULL, NULL },
    { "guest_ip", METRICS_SKIP, NULL, NULL, NULL },
    { "ofport", METRICS_GAUGE, NULL,
      "The VM's vNIC's OpenFlow port number.", NULL },
    { "state", METRICS_STATE, "state",
      "The channel's state (label state: down, connecting, ready, "
      "degraded); always 1.", "state" },
    { "host_epoch", METRICS_GAUGE, NULL,
      "chand-host's epoch of the channel.", NULL },
    { "guest_epoch", METRICS_GAUGE, NULL,
      "The guest's epoch, as the host last heard it.", NULL },
    { "desired", METRICS_GAUGE, "desired_records",
      "Records the Chan DB wants in the VM.", NULL },
    { "applied", METRICS_GAUGE, "applied_records",
      "Records the guest acknowledged.", NULL },
    { "synced", METRICS_GAUGE, NULL,
      "1 if the guest has every desired record.", NULL },
    { "counters.rx_drop_*", METRICS_COUNTER, "rx_drops_total",
      "Frames from the VM the channel dropped, by reason.", "reason" },
    { "counters.latency_*", METRICS_SKIP, NULL, NULL, NULL },
    { "counters.cwnd", METRICS_GAUGE, "cwnd_frames",
      "The sender's congestion window.", NULL },
    { "counters.in_flight", METRICS_GAUGE, "in_flight_frames",
      "Frames sent and not acknowledged yet.", NULL },
    { "counters.queued_msgs", METRICS_GAUGE, "queued_messages",
      "Messages queued for the guest, not sent yet.", NULL },
    { "counters.tx_key_generation", METRICS_GAUGE, NULL,
      "The key generation the host sends with.", NULL },
    { "counters.rx_key_generation", METRICS_GAUGE, NULL,
      "The key generation the guest last sent with.", NULL },
    { "counters.max_frame_sent", METRICS_GAUGE, "max_frame_sent_bytes",
      "The largest frame sent to the guest.", NULL },
    { "counters.relayed", METRICS_GAUGE, "relayed_records",
      "Records relayed to other VMs from this VM's published ones.", NULL },
    { "counters.objects_refused", METRICS_GAUGE, "objects_refused",
      "Object references of this VM refused.", NULL },
    { "counters.relay_refused", METRICS_GAUGE, "relay_refused_records",
      "Published records of this VM not relayed (refused).", NULL },
    { "counters.msgs_acked", METRICS_COUNTER, "messages_acked_total",
      "Messages the guest acknowledged.", NULL },
    { "upstream.counters", METRICS_SKIP, NULL, NULL, NULL }, /* up_*. */
    { "upstream.epoch", METRICS_GAUGE, NULL,
      "The guest's upstream (published records) epoch.", NULL },
    { "upstream.position", METRICS_GAUGE, NULL,
      "The upstream sequence number committed to the Chan DB.", NULL },
    { "upstream.next_seq", METRICS_GAUGE, NULL,
      "The next upstream sequence number expected.", NULL },
    { "upstream.snapshot", METRICS_GAUGE, "upstream_in_snapshot",
      "1 while the guest sends a snapshot of its published records.",
      NULL },
    { "upstream.records", METRICS_GAUGE, "upstream_records",
      "Published records of the VM held by chand-host.", NULL },
    { "upstream.writing", METRICS_GAUGE, NULL,
      "1 while published records are being written to the Chan DB.",
      NULL },
    { "mtu.local", METRICS_GAUGE, "mtu_local_bytes",
      "The channel's MTU on the host side.", NULL },
    { "mtu.guest", METRICS_GAUGE, "mtu_guest_bytes",
      "The MTU the guest announced.", NULL },
    { "mtu.effective", METRICS_GAUGE, "mtu_bytes",
      "The MTU the channel uses.", NULL },
    { "latency", METRICS_SKIP, NULL, NULL, NULL },  /* Histograms. */
    { "transfer.counters.*", METRICS_COUNTER, NULL, NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

void
host_metrics_add_status(struct metrics *m, const json_t *status,
                        const json_t *transfer, const char *chassis)
{
    struct metrics_labels labels = { 0 };
    metrics_labels_add(&labels, "chassis", chassis);
    metrics_add_json(m, "chand_host", "chand-host host/status", status,
                     &labels, status_rules);
    if (transfer) {
        json_t *t = json_pack("{sO}", "transfer", transfer);
        metrics_add_json(m, "chand_host", "chand-host transfer/list", t,
                         &labels, status_rules);
        json_decref(t);
    }
}

/* chand_channel_info: the channel's identity, as labels. */
static void
add_channel_info(struct metrics *m, const json_t *channel,
                 const struct metrics_labels *base)
{
    struct metrics_labels labels = *base;
    char chan_id[24], vid[24];
    snprintf(chan_id, sizeof chan_id, "%lld", (long long) json_integer_value(
                 json_object_get(channel, "chan_id")));
    snprintf(vid, sizeof vid, "%lld", (long long) json_integer_value(
                 json_object_get(channel, "vid")));
    metrics_labels_add(&labels, "interface", json_string_value(
                           json_object_get(channel, "interface")));
    metrics_labels_add(&labels, "chan_id", chan_id);
    metrics_labels_add(&labels, "vid", vid);
    metrics_labels_add(&labels, "guest_mac", json_string_value(
                           json_object_get(channel, "guest_mac")));
    metrics_labels_add(&labels, "guest_ip", json_string_value(
                           json_object_get(channel, "guest_ip")));
    metrics_add(m, "chand_channel_info", METRICS_GAUGE,
                "A channel's identity: its vNIC, channel id, VLAN and the "
                "guest's addresses; always 1.", &labels, 1);
}

void
host_metrics_add_channel(struct metrics *m, const json_t *channel,
                         const char *chassis,
                         const struct latency_hist *latency)
{
    struct metrics_labels labels = { 0 };
    metrics_labels_add(&labels, "vm", json_string_value(
                           json_object_get(channel, "vm")));
    metrics_labels_add(&labels, "chassis", chassis);
    add_channel_info(m, channel, &labels);
    metrics_add_json(m, "chand_channel", "chand-host channel/show", channel,
                     &labels, channel_rules);
    for (int i = 0; i < CHANNEL_N_LATENCY; i++) {
        struct metrics_labels stage = labels;
        metrics_labels_add(&stage, "stage", channel_latency_name(i));
        metrics_add_histogram(m, "chand_channel_record_latency_seconds",
                              "Time from one stage of a push to another "
                              "(label stage): seen in the Chan DB, sent, "
                              "acknowledged by the guest, applied in the "
                              "Chan DB.", &stage, &latency[i]);
    }
}
