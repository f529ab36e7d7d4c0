# test/unit: CUnit suites, one per lib/ module (and chand-guest's datastore).

UNIT_TESTS =
UNIT_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
UNIT_LDADD = $(CHAND_LIBS) $(CUNIT_LIBS)
UNIT_COMMON = test/unit/unit-main.c test/unit/unit.h

UNIT_TESTS += test/unit/test-packets
test_unit_test_packets_SOURCES = test/unit/test-packets.c $(UNIT_COMMON)
test_unit_test_packets_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_packets_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-chan-endpoint
test_unit_test_chan_endpoint_SOURCES = test/unit/test-chan-endpoint.c $(UNIT_COMMON)
test_unit_test_chan_endpoint_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_chan_endpoint_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-chan-wire
test_unit_test_chan_wire_SOURCES = test/unit/test-chan-wire.c $(UNIT_COMMON)
test_unit_test_chan_wire_CFLAGS = $(UNIT_CFLAGS) \
	-DPROTOCOL_MD='"$(abs_top_srcdir)/doc/PROTOCOL.md"'
test_unit_test_chan_wire_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-latency-hist
test_unit_test_latency_hist_SOURCES = test/unit/test-latency-hist.c $(UNIT_COMMON)
test_unit_test_latency_hist_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_latency_hist_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-chan-mtu
test_unit_test_chan_mtu_SOURCES = test/unit/test-chan-mtu.c $(UNIT_COMMON)
test_unit_test_chan_mtu_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_chan_mtu_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-poll-loop
test_unit_test_poll_loop_SOURCES = test/unit/test-poll-loop.c $(UNIT_COMMON)
test_unit_test_poll_loop_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_poll_loop_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-vlog
test_unit_test_vlog_SOURCES = test/unit/test-vlog.c $(UNIT_COMMON)
test_unit_test_vlog_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_vlog_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-vlog-dir
test_unit_test_vlog_dir_SOURCES = test/unit/test-vlog-dir.c $(UNIT_COMMON)
test_unit_test_vlog_dir_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_vlog_dir_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-daemon
test_unit_test_daemon_SOURCES = test/unit/test-daemon.c $(UNIT_COMMON)
test_unit_test_daemon_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_daemon_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-stream
test_unit_test_stream_SOURCES = test/unit/test-stream.c $(UNIT_COMMON)
test_unit_test_stream_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_stream_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-stream-ssl
test_unit_test_stream_ssl_SOURCES = test/unit/test-stream-ssl.c $(UNIT_COMMON)
test_unit_test_stream_ssl_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_stream_ssl_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-reconnect
test_unit_test_reconnect_SOURCES = test/unit/test-reconnect.c $(UNIT_COMMON)
test_unit_test_reconnect_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_reconnect_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-jsonrpc
test_unit_test_jsonrpc_SOURCES = test/unit/test-jsonrpc.c $(UNIT_COMMON)
test_unit_test_jsonrpc_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_jsonrpc_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-ctl
test_unit_test_ctl_SOURCES = test/unit/test-ctl.c $(UNIT_COMMON)
test_unit_test_ctl_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_ctl_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-ovsdb-msg
test_unit_test_ovsdb_msg_SOURCES = test/unit/test-ovsdb-msg.c $(UNIT_COMMON)
test_unit_test_ovsdb_msg_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_ovsdb_msg_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-ovsdb-replica
test_unit_test_ovsdb_replica_SOURCES = test/unit/test-ovsdb-replica.c $(UNIT_COMMON)
test_unit_test_ovsdb_replica_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_ovsdb_replica_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-ofp13
test_unit_test_ofp13_SOURCES = test/unit/test-ofp13.c $(UNIT_COMMON)
test_unit_test_ofp13_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_ofp13_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-ofp13-flow
test_unit_test_ofp13_flow_SOURCES = test/unit/test-ofp13-flow.c $(UNIT_COMMON)
test_unit_test_ofp13_flow_CFLAGS = $(UNIT_CFLAGS) \
	-DFLOWS_DIR='"$(abs_top_srcdir)/flows"'
test_unit_test_ofp13_flow_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-flow-template
test_unit_test_flow_template_SOURCES = test/unit/test-flow-template.c $(UNIT_COMMON)
test_unit_test_flow_template_CFLAGS = $(UNIT_CFLAGS) \
	-DFLOWS_DIR='"$(abs_top_srcdir)/flows"'
test_unit_test_flow_template_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-flow-counters
test_unit_test_flow_counters_SOURCES = test/unit/test-flow-counters.c $(UNIT_COMMON)
test_unit_test_flow_counters_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_flow_counters_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-datastore
test_unit_test_datastore_SOURCES = test/unit/test-datastore.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_datastore_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
test_unit_test_datastore_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-guest-watch
test_unit_test_guest_watch_SOURCES = test/unit/test-guest-watch.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/watch.c chand-guest/watch.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_guest_watch_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
test_unit_test_guest_watch_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-guest-handler
test_unit_test_guest_handler_SOURCES = test/unit/test-guest-handler.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/keyq.c chand-guest/keyq.h \
	chand-guest/child.c chand-guest/child.h \
	chand-guest/handler.c chand-guest/handler.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_guest_handler_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
test_unit_test_guest_handler_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-guest-kvp
test_unit_test_guest_kvp_SOURCES = test/unit/test-guest-kvp.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/kvp.c chand-guest/kvp.h \
	chand-guest/kvp-pool.c chand-guest/kvp-pool.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_guest_kvp_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
test_unit_test_guest_kvp_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)
UNIT_TESTS += test/unit/test-guest-call
test_unit_test_guest_call_SOURCES = test/unit/test-guest-call.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/keyq.c chand-guest/keyq.h \
	chand-guest/child.c chand-guest/child.h \
	chand-guest/call.c chand-guest/call.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_guest_call_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
test_unit_test_guest_call_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-chand-handler
test_unit_test_chand_handler_SOURCES = test/unit/test-chand-handler.c $(UNIT_COMMON) \
	utilities/handler-actions.c utilities/handler-actions.h
test_unit_test_chand_handler_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/utilities
test_unit_test_chand_handler_LDADD = $(UNIT_LDADD)

check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

# The man pages against the programs' --help and control commands; run by
# scripts/check in the unit tier (once, not per build).
EXTRA_DIST += test/unit/check-manpages.py

UNIT_TESTS += test/unit/test-chan-sender
test_unit_test_chan_sender_SOURCES = test/unit/test-chan-sender.c $(UNIT_COMMON)
test_unit_test_chan_sender_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_chan_sender_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-guest-receiver
test_unit_test_guest_receiver_SOURCES = test/unit/test-guest-receiver.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/receiver.c chand-guest/receiver.h \
	chand-guest/keyring.c chand-guest/keyring.h \
	chand-guest/bridge.c chand-guest/bridge.h \
	chand-guest/api.c chand-guest/api.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_guest_receiver_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest \
	-DFLOWS_DIR='"$(abs_top_srcdir)/flows"'
test_unit_test_guest_receiver_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-upstream
test_unit_test_upstream_SOURCES = test/unit/test-upstream.c $(UNIT_COMMON) \
	chand-host/upstream.c chand-host/upstream.h
test_unit_test_upstream_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_upstream_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-objmap
test_unit_test_objmap_SOURCES = test/unit/test-objmap.c $(UNIT_COMMON) \
	chand-host/objmap.c chand-host/objmap.h \
	chand-host/objaction.c chand-host/objaction.h
test_unit_test_objmap_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_objmap_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-relay
test_unit_test_relay_SOURCES = test/unit/test-relay.c $(UNIT_COMMON) \
	chand-host/relay.c chand-host/relay.h
test_unit_test_relay_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_relay_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-guest-publisher
test_unit_test_guest_publisher_SOURCES = test/unit/test-guest-publisher.c $(UNIT_COMMON) \
	test/unit/guest-fixture.c test/unit/guest-fixture.h \
	chand-guest/publisher.c chand-guest/publisher.h \
	chand-guest/receiver.c chand-guest/receiver.h \
	chand-guest/keyring.c chand-guest/keyring.h \
	chand-guest/datastore.c chand-guest/datastore.h
test_unit_test_guest_publisher_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
test_unit_test_guest_publisher_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-upstream-interop
test_unit_test_upstream_interop_SOURCES = test/unit/test-upstream-interop.c $(UNIT_COMMON) \
	chand-guest/publisher.c chand-guest/publisher.h \
	chand-guest/datastore.c chand-guest/datastore.h \
	chand-host/upstream.c chand-host/upstream.h
test_unit_test_upstream_interop_CFLAGS = $(UNIT_CFLAGS) $(SQLITE_CFLAGS) \
	-I$(top_srcdir)/chand-guest -I$(top_srcdir)/chand-host
test_unit_test_upstream_interop_LDADD = $(UNIT_LDADD) $(SQLITE_LIBS)

UNIT_TESTS += test/unit/test-host-channel
test_unit_test_host_channel_SOURCES = test/unit/test-host-channel.c \
	$(UNIT_COMMON) chand-host/channel.c chand-host/channel.h \
	chand-host/upstream.c chand-host/upstream.h
test_unit_test_host_channel_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_host_channel_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-metrics
test_unit_test_metrics_SOURCES = test/unit/test-metrics.c $(UNIT_COMMON) \
	chand-host/host-metrics.c chand-host/host-metrics.h \
	chand-host/channel.c chand-host/channel.h \
	chand-host/upstream.c chand-host/upstream.h
test_unit_test_metrics_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_metrics_LDADD = $(UNIT_LDADD)
UNIT_TESTS += test/unit/test-host-autoid
test_unit_test_host_autoid_SOURCES = test/unit/test-host-autoid.c \
	$(UNIT_COMMON) chand-host/autoid.c chand-host/autoid.h
test_unit_test_host_autoid_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_host_autoid_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-host-provision
test_unit_test_host_provision_SOURCES = test/unit/test-host-provision.c \
	$(UNIT_COMMON) chand-host/provision.c chand-host/provision.h \
	chand-host/autoid.c chand-host/autoid.h
test_unit_test_host_provision_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_host_provision_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-chan-port
test_unit_test_chan_port_SOURCES = test/unit/test-chan-port.c $(UNIT_COMMON)
test_unit_test_chan_port_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_chan_port_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-util
test_unit_test_util_SOURCES = test/unit/test-util.c $(UNIT_COMMON)
test_unit_test_util_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_util_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-vm-id
test_unit_test_vm_id_SOURCES = test/unit/test-vm-id.c $(UNIT_COMMON)
test_unit_test_vm_id_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_vm_id_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-list
test_unit_test_list_SOURCES = test/unit/test-list.c $(UNIT_COMMON)
test_unit_test_list_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_list_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-hmap
test_unit_test_hmap_SOURCES = test/unit/test-hmap.c $(UNIT_COMMON)
test_unit_test_hmap_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_hmap_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-content-store
test_unit_test_content_store_SOURCES = test/unit/test-content-store.c $(UNIT_COMMON)
test_unit_test_content_store_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_content_store_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-xfer
test_unit_test_xfer_SOURCES = test/unit/test-xfer.c $(UNIT_COMMON)
test_unit_test_xfer_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_xfer_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-xfer-lane
test_unit_test_xfer_lane_SOURCES = test/unit/test-xfer-lane.c $(UNIT_COMMON)
test_unit_test_xfer_lane_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_xfer_lane_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-claim
test_unit_test_claim_SOURCES = test/unit/test-claim.c $(UNIT_COMMON) \
	chand-host/claim.c chand-host/claim.h
test_unit_test_claim_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/chand-host
test_unit_test_claim_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-bench-guests
test_unit_test_bench_guests_SOURCES = test/unit/test-bench-guests.c $(UNIT_COMMON) \
	bench/guests-spec.c bench/guests-spec.h
test_unit_test_bench_guests_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/bench
test_unit_test_bench_guests_LDADD = $(UNIT_LDADD)

UNIT_TESTS += test/unit/test-qga-proto
test_unit_test_qga_proto_SOURCES = test/unit/test-qga-proto.c $(UNIT_COMMON)
test_unit_test_qga_proto_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_qga_proto_LDADD = $(UNIT_LDADD)
