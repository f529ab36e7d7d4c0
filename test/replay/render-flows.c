/* Copyright (c) 2026 The chand authors.
 *
 * render-flows: prints the flows file that chand-host (host bridge) or
 * chand-guest (guest bridge) would install for the given channels, rendered
 * from a flows/ template with the same variables (lib/chan-flows.h), the
 * same cookies and in the same form:
 *
 *   host:  "add cookie=...,RULE" lines for `ovs-ofctl --bundle add-flows`
 *          (chand-host adds its rules beside the bridge's other flows):
 *          [bridge] once, then for each channel its [channel] rules and,
 *          the first time its vid appears, the [vid] rules (as
 *          chand-host/flowmgr.c does);
 *   guest: "cookie=...,RULE" lines for `ovs-ofctl --bundle replace-flows`
 *          (chand-guest owns the whole guest bridge): [bridge], [vid],
 *          [channel] for the one channel (as chand-guest/bridge.c does).
 *
 * Usage:
 *   render-flows host [--inject-ofport=N] [--count=DUMP] TEMPLATE
 *                ID:VID:VNIC_OFPORT...
 *   render-flows guest [--count=DUMP] TEMPLATE
 *                ID:VID:VNIC_OFPORT:CHAND_OFPORT
 *   render-flows meter-ids ID...
 *
 * --count=DUMP prints, instead of the flows, what the daemons make of the
 * counted flows ("%counter" in the template) given DUMP, the output of
 * `ovs-ofctl dump-flows` on that bridge: one "CHAN_ID COUNTER PACKETS" line
 * per channel and counter (chan-id 0: the shared rules), added up by
 * lib/flow-counters as chand-host and chand-guest do.
 *
 * --inject-ofport=N renders the host rules for chand-host meeting the bridge
 * through a chand port (doc/ovs-port.md) at OpenFlow port N: INJECT_PORT
 * "N", TO_HOST "output:N", and the [port] section.  Without it (or with
 * N = 0) they are rendered for OpenFlow PACKET_OUT / PACKET_IN:
 * "CONTROLLER", "controller(id=17224)".
 *
 * The last form prints the OpenFlow meter id of each channel
 * (chan_flows_meter_id(), the METER_ID variable of the host template), one
 * per line, for the meters that must exist before the host flows load.
 *
 * Endpoint addresses are the defaults derived from each chan-id.  Exit
 * status 0 on success, 1 on a template or rendering error, 2 on bad usage.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-endpoint.h"
#include "chan-flows.h"
#include "flow-counters.h"
#include "flow-template.h"
#include "util.h"

static void
usage(void)
{
    fprintf(stderr,
            "usage: render-flows host [--inject-ofport=N] [--count=DUMP] "
            "TEMPLATE ID:VID:VNIC_OFPORT...\n"
            "       render-flows guest [--count=DUMP] TEMPLATE "
            "ID:VID:VNIC_OFPORT:CHAND_OFPORT\n"
            "       render-flows meter-ids ID...\n");
    exit(2);
}

/* Parses a decimal port number 1..65279 (OpenFlow's physical range). */
static bool
parse_ofport(const char *s, int64_t *port)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 0xfeff) {
        return false;
    }
    *port = v;
    return true;
}

/* Parses "ID:VID:PORT[:PORT]" into 'cfg' and the 'n_ports' ports. */
static bool
parse_channel(const char *arg, struct chan_config *cfg, int64_t ports[],
              int n_ports)
{
    char *copy = strdup(arg), *save = NULL;
    if (!copy) {
        fprintf(stderr, "render-flows: out of memory\n");
        exit(1);
    }
    char *id = strtok_r(copy, ":", &save);
    char *vid = strtok_r(NULL, ":", &save);
    bool ok = id && vid;
    enum chan_ep_error e = CHAN_EP_OK;

    for (int i = 0; ok && i < n_ports; i++) {
        char *p = strtok_r(NULL, ":", &save);
        ok = p && parse_ofport(p, &ports[i]);
    }
    ok = ok && !strtok_r(NULL, ":", &save);
    if (ok) {
        e = chan_config_from_strings(id, vid, NULL, NULL, cfg);
        ok = !e;
    }
    if (!ok) {
        fprintf(stderr, "render-flows: bad channel \"%s\"%s%s\n", arg,
                e ? ": " : "", e ? chan_ep_strerror(e) : "");
    }
    free(copy);
    return ok;
}

static void
print_render_error(const char *path, enum flow_template_section section,
                   enum flow_template_error e,
                   const struct flow_template_diag *diag)
{
    fprintf(stderr, "render-flows: %s:%u: [%s] %s%s%s\n", path, diag->line,
            flow_template_section_name(section), flow_template_strerror(e),
            *diag->detail ? ": " : "", diag->detail);
}

/* Renders 'section' of 'ft' with 'v' into 'flows', as chand-host does. */
static bool
render(const struct flow_template *ft, const char *path,
       enum flow_template_section section, uint32_t chan_id,
       const struct chan_flows_vars *v, struct flow_template_flows *flows)
{
    struct flow_template_diag diag;
    enum flow_template_error e;

    e = flow_template_render(ft, section, chan_id, v->vars, v->n, flows,
                             &diag);
    if (e) {
        print_render_error(path, section, e, &diag);
        return false;
    }
    return true;
}

/* Renders the guest bridge's flows, as chand-guest does. */
static bool
render_guest(const struct flow_template *ft, const char *path,
             const struct chan_config *cfg, int64_t vnic_ofport,
             int64_t chand_ofport, struct flow_template_flows *flows)
{
    enum flow_template_section section;
    struct flow_template_diag diag;
    enum flow_template_error e;

    e = chan_flows_render_guest(ft, cfg, vnic_ofport, chand_ofport, flows,
                                &diag, &section);
    if (e) {
        print_render_error(path, section, e, &diag);
        return false;
    }
    return true;
}

/* Parses the host form's "--inject-ofport=N" option, if 'arg' is one, into
 * '*ofport' (0: OpenFlow).  Returns true if 'arg' was the option; exits on a
 * bad value. */
static bool
parse_inject_option(const char *arg, int64_t *ofport)
{
    static const char option[] = "--inject-ofport=";
    const char *value;

    if (strncmp(arg, option, sizeof option - 1)) {
        return false;
    }
    value = arg + sizeof option - 1;
    if (!strcmp(value, "0")) {
        *ofport = 0;
    } else if (!parse_ofport(value, ofport)) {
        fprintf(stderr, "render-flows: bad OpenFlow port \"%s\"\n", value);
        exit(2);
    }
    return true;
}

/* Prints the counts of the counted flows in 'flows' that the dump-flows
 * output in file 'path' gives. */
static bool
print_counts(const char *path, const struct flow_template_flows *flows)
{
    struct flow_count *counts;
    size_t len, n;
    char *dump = read_file(path, &len);

    if (!dump) {
        fprintf(stderr, "render-flows: %s: %s\n", path, strerror(errno));
        return false;
    }
    n = flow_counters_sum(flows, dump, &counts);
    for (size_t i = 0; i < n; i++) {
        printf("%"PRIu32" %s %"PRIu64"\n", counts[i].chan_id, counts[i].name,
               counts[i].packets);
    }
    free(counts);
    free(dump);
    return true;
}

int
main(int argc, char *argv[])
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    struct flow_template *ft;
    struct chan_flows_vars v;
    int64_t inject_ofport = 0;  /* The chand port, or 0 for OpenFlow. */
    bool host, ok = true;
    int first = 2;              /* Index of TEMPLATE in 'argv'. */
    const char *count_path = NULL;
    size_t len;
    char *text;

    if (argc >= 3 && !strcmp(argv[1], "meter-ids")) {
        for (int i = 2; i < argc; i++) {
            uint32_t id;
            if (chan_parse_id(argv[i], &id)) {
                fprintf(stderr, "render-flows: bad chan-id \"%s\"\n",
                        argv[i]);
                return 2;
            }
            printf("%"PRIu32"\n", chan_flows_meter_id(id));
        }
        return 0;
    }
    if (argc < 4) {
        usage();
    }
    if (!strcmp(argv[1], "host")) {
        host = true;
    } else if (!strcmp(argv[1], "guest")) {
        host = false;
    } else {
        usage();
    }
    for (; first < argc && !strncmp(argv[first], "--", 2); first++) {
        if (!strncmp(argv[first], "--count=", 8)) {
            count_path = argv[first] + 8;
        } else if (!host || !parse_inject_option(argv[first],
                                                 &inject_ofport)) {
            usage();
        }
    }
    if (host ? argc < first + 2 : argc != first + 2) {
        usage();
    }

    const char *path = argv[first];
    text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "render-flows: %s: %s\n", path, strerror(errno));
        return 1;
    }
    enum flow_template_error e = flow_template_parse(text, len, &ft, &diag);
    free(text);
    if (e) {
        fprintf(stderr, "render-flows: %s:%u: %s%s%s\n", path, diag.line,
                flow_template_strerror(e), *diag.detail ? ": " : "",
                diag.detail);
        return 1;
    }

    if (host) {
        uint16_t vids[64];
        size_t n_vids = 0;

        chan_flows_host_vars(NULL, 0, inject_ofport, &v);
        ok = render(ft, path, FLOW_TEMPLATE_BRIDGE, 0, &v, &flows);
        if (ok && inject_ofport) {
            /* Like chand-host's flowmgr: [port] only with a chand port. */
            ok = render(ft, path, FLOW_TEMPLATE_PORT, 0, &v, &flows);
        }
        for (int i = first + 1; ok && i < argc; i++) {
            struct chan_config cfg;
            int64_t port;
            bool seen = false;

            if (!parse_channel(argv[i], &cfg, &port, 1)) {
                flow_template_flows_destroy(&flows);
                flow_template_destroy(ft);
                return 2;
            }
            chan_flows_host_vars(&cfg, port, inject_ofport, &v);
            ok = render(ft, path, FLOW_TEMPLATE_CHANNEL, cfg.chan_id, &v,
                        &flows);
            for (size_t j = 0; j < n_vids; j++) {
                seen |= vids[j] == cfg.vid;
            }
            if (ok && !seen && n_vids < sizeof vids / sizeof *vids) {
                vids[n_vids++] = cfg.vid;
                ok = render(ft, path, FLOW_TEMPLATE_VID, 0, &v, &flows);
            }
        }
    } else {
        struct chan_config cfg;
        int64_t ports[2];

        if (!parse_channel(argv[first + 1], &cfg, ports, 2)) {
            flow_template_destroy(ft);
            return 2;
        }
        ok = render_guest(ft, path, &cfg, ports[0], ports[1], &flows);
    }

    if (ok && count_path) {
        ok = print_counts(count_path, &flows);
    } else if (ok && host) {
        char *bundle = flow_template_format_bundle(NULL, 0, &flows);
        if (!bundle) {
            fprintf(stderr, "render-flows: out of memory\n");
            ok = false;
        } else {
            fputs(bundle, stdout);
            free(bundle);
        }
    } else if (ok) {
        for (size_t i = 0; ok && i < flows.n; i++) {
            char *line = flow_template_format_flow(&flows.flows[i]);
            if (!line) {
                fprintf(stderr, "render-flows: out of memory\n");
                ok = false;
            } else {
                printf("%s\n", line);
                free(line);
            }
        }
    }
    if (ok) {
        ok = !fflush(stdout) && !ferror(stdout);
    }
    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
    return ok ? 0 : 1;
}
