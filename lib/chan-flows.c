/* Copyright (c) 2026 The chand authors.  See chan-flows.h. */

#include <config.h>
#include "chan-flows.h"

#include <inttypes.h>
#include <stdio.h>

#include "packets.h"

static char *
add_var(struct chan_flows_vars *v, const char *name)
{
    char *value = v->values[v->n];
    v->vars[v->n].name = name;
    v->vars[v->n].value = value;
    v->vars[v->n].action = false;
    v->n++;
    return value;
}

static void
add_int(struct chan_flows_vars *v, const char *name, long long value)
{
    snprintf(add_var(v, name), sizeof v->values[0], "%lld", value);
}

static void
add_endpoint(struct chan_flows_vars *v, const char *mac_name,
             const char *ip_name, const struct chan_endpoint *ep)
{
    eth_addr_to_string(&ep->mac, add_var(v, mac_name));
    ip_to_string(ep->ip, add_var(v, ip_name));
}

static void
add_common(const struct chan_config *cfg, struct chan_flows_vars *v)
{
    struct chan_endpoint host;
    chan_endpoint_host(&host);
    v->n = 0;
    add_endpoint(v, "HOST_MAC", "HOST_IP", cfg ? &cfg->host : &host);
    add_int(v, "PORT", cfg ? cfg->host.port : host.port);
    if (cfg) {
        add_int(v, "VID", cfg->vid);
        add_endpoint(v, "GUEST_MAC", "GUEST_IP", &cfg->guest);
    }
}

uint32_t
chan_flows_meter_id(uint32_t chan_id)
{
    if (chan_id <= CHAN_FLOWS_METER_DIRECT) {
        return chan_id;
    }
    return CHAN_FLOWS_METER_DIRECT + 1
           + chan_id % (CHAN_FLOWS_MAX_METER - CHAN_FLOWS_METER_DIRECT);
}

void
chan_flows_host_vars(const struct chan_config *cfg, int64_t vnic_ofport,
                     int64_t inject_ofport, struct chan_flows_vars *v)
{
    add_common(cfg, v);
    if (cfg) {
        add_int(v, "CHAN_ID", cfg->chan_id);
        add_int(v, "VNIC_OFPORT", vnic_ofport);
        add_int(v, "METER_ID", chan_flows_meter_id(cfg->chan_id));
    }
    char *inject = add_var(v, "INJECT_PORT");
    char *to_host = add_var(v, "TO_HOST");
    v->vars[v->n - 1].action = true;
    if (inject_ofport > 0) {
        snprintf(inject, sizeof v->values[0], "%"PRId64, inject_ofport);
        snprintf(to_host, sizeof v->values[0], "output:%"PRId64,
                 inject_ofport);
    } else {
        snprintf(inject, sizeof v->values[0], "CONTROLLER");
        snprintf(to_host, sizeof v->values[0], "controller(id=%d)",
                 CHAN_FLOWS_CONTROLLER_ID);
    }
}

void
chan_flows_guest_vars(const struct chan_config *cfg, int64_t vnic_ofport,
                      int64_t chand_ofport, struct chan_flows_vars *v)
{
    add_common(cfg, v);
    add_int(v, "VNIC_OFPORT", vnic_ofport);
    add_int(v, "CHAND_OFPORT", chand_ofport);
}

enum flow_template_error
chan_flows_render_guest(const struct flow_template *ft,
                        const struct chan_config *chan,
                        int64_t vnic_ofport, int64_t chand_ofport,
                        struct flow_template_flows *flows,
                        struct flow_template_diag *diag,
                        enum flow_template_section *sectionp)
{
    static const enum flow_template_section sections[] = {
        FLOW_TEMPLATE_BRIDGE, FLOW_TEMPLATE_VID, FLOW_TEMPLATE_CHANNEL,
    };
    struct chan_flows_vars v;

    chan_flows_guest_vars(chan, vnic_ofport, chand_ofport, &v);
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        uint32_t chan_id = (sections[i] == FLOW_TEMPLATE_CHANNEL
                            ? chan->chan_id : 0);
        enum flow_template_error e;

        e = flow_template_render(ft, sections[i], chan_id, v.vars, v.n,
                                 flows, diag);
        if (e) {
            if (sectionp) {
                *sectionp = sections[i];
            }
            return e;
        }
    }
    return 0;
}
