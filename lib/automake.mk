# lib/: the shared chand library.  Pure codecs do no I/O.

noinst_LIBRARIES += lib/libchand.a
lib_libchand_a_SOURCES = \
	lib/packets.c lib/packets.h \
	lib/base64.c lib/base64.h \
	lib/chan-endpoint.c lib/chan-endpoint.h \
	lib/chan-wire.c lib/chan-wire.h \
	lib/chan-sender.c lib/chan-sender.h \
	lib/chan-mtu.c lib/chan-mtu.h \
	lib/poll-loop.c lib/poll-loop.h \
	lib/vlog.c lib/vlog.h \
	lib/stream.c lib/stream.h \
	lib/stream-ssl.c lib/stream-ssl.h \
	lib/reconnect.c lib/reconnect.h \
	lib/jsonrpc.c lib/jsonrpc.h \
	lib/ctl.c lib/ctl.h \
	lib/ovsdb-msg.c lib/ovsdb-msg.h \
	lib/ovsdb-replica.c lib/ovsdb-replica.h \
	lib/ofp13.c lib/ofp13.h \
	lib/ofp13-flow.c lib/ofp13-flow.h \
	lib/ofconn.c lib/ofconn.h \
	lib/ofctrl.c lib/ofctrl.h \
	lib/flow-template.c lib/flow-template.h \
	lib/daemon.c lib/daemon.h \
	lib/chan-flows.c lib/chan-flows.h \
	lib/flow-counters.c lib/flow-counters.h \
	lib/chan-port.c lib/chan-port.h \
	lib/util.c lib/util.h \
	lib/list.h \
	lib/hmap.c lib/hmap.h \
	lib/latency-hist.c lib/latency-hist.h \
	lib/metrics.c lib/metrics.h \
	lib/metrics-http.c lib/metrics-http.h \
	lib/content-store.c lib/content-store.h \
	lib/xfer-lane.c lib/xfer-lane.h \
	lib/xfer.c lib/xfer.h \
	lib/vm-id.c lib/vm-id.h \
	lib/qga-proto.c lib/qga-proto.h

# Link flags every chand program and test needs along with lib/libchand.a.
CHAND_LIBS = lib/libchand.a $(JANSSON_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS)
