/* Tests for lib/metrics (the Prometheus text format), lib/metrics-http
 * (GET /metrics) and chand-host's host-metrics rules. */

#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "host-metrics.h"
#include "latency-hist.h"
#include "metrics-http.h"
#include "metrics.h"
#include "poll-loop.h"
#include "unit.h"
#include "util.h"

/* Renders 'm', destroys it and returns the text (caller frees). */
static char *
render(struct metrics *m)
{
    char *text = metrics_render(m);
    metrics_destroy(m);
    return text;
}

static void
test_escape(void)
{
    char *s = metrics_escape_label_value("a\\b\"c\nd");
    CU_ASSERT_STRING_EQUAL(s, "a\\\\b\\\"c\\nd");
    free(s);
    s = metrics_escape_label_value("");
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
    s = metrics_escape_label_value("vm-1.example:ok");
    CU_ASSERT_STRING_EQUAL(s, "vm-1.example:ok");
    free(s);
}

/* Samples of one family added apart come out together, after one HELP and
 * one TYPE line, families in the order they were first added. */
static void
test_render_groups(void)
{
    struct metrics *m = metrics_create();
    struct metrics_labels a = { 0 }, b = { 0 };
    metrics_labels_add(&a, "vm", "a");
    metrics_labels_add(&b, "vm", "b");
    metrics_labels_add(&b, "chassis", NULL);      /* Left out. */
    metrics_add(m, "x_total", METRICS_COUNTER, "X.\nback\\slash", &a, 1);
    metrics_add(m, "y", METRICS_GAUGE, "Y.", NULL, 2.5);
    metrics_add(m, "x_total", METRICS_COUNTER, "ignored", &b, 3);
    char *text = render(m);
    CU_ASSERT_STRING_EQUAL(text,
                           "# HELP x_total X.\\nback\\\\slash\n"
                           "# TYPE x_total counter\n"
                           "x_total{vm=\"a\"} 1\n"
                           "x_total{vm=\"b\"} 3\n"
                           "# HELP y Y.\n"
                           "# TYPE y gauge\n"
                           "y 2.5\n");
    free(text);

    text = render(metrics_create());
    CU_ASSERT_STRING_EQUAL(text, "");
    free(text);
}

static void
test_histogram(void)
{
    struct latency_hist h;
    latency_hist_init(&h);
    latency_hist_add(&h, 0);
    latency_hist_add(&h, 5);
    latency_hist_add(&h, 100);
    latency_hist_add(&h, 3000000);            /* 3 s. */
    latency_hist_add(&h, 10000000000LL);      /* Beyond the last bound. */
    struct metrics *m = metrics_create();
    struct metrics_labels l = { 0 };
    metrics_labels_add(&l, "stage", "s");
    metrics_add_histogram(m, "lat_seconds", "Latency.", &l, &h);
    char *text = render(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE lat_seconds histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"0.000000\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"0.000003\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"0.000007\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"0.000127\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"2.097151\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"4.194303\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"2147.483647\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_bucket{stage=\"s\",le=\"+Inf\"} 5\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "lat_seconds_sum{stage=\"s\"} 10003.000105\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "lat_seconds_count{stage=\"s\"} 5\n"));
    /* 32 bounds and +Inf. */
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, "_bucket{")); p++) {
        n++;
    }
    CU_ASSERT_EQUAL(n, 33);
    free(text);
}

static const struct metrics_rule rules[] = {
    { "skipped", METRICS_SKIP, NULL, NULL, NULL },
    { "state", METRICS_STATE, "state", "State.", "state" },
    { "named", METRICS_COUNTER, "renamed_total", "Renamed.", NULL },
    { "counters.drop_*", METRICS_COUNTER, "drops_total", "Drops.",
      "reason" },
    { "counters.peak", METRICS_GAUGE, NULL, NULL, NULL },
    { "sub", METRICS_COUNTER, NULL, NULL, NULL },
    { "age_ms_ago", METRICS_GAUGE, "age_seconds", NULL, NULL, 1e-3 },
    { NULL, 0, NULL, NULL, NULL },
};

static void
test_json(void)
{
    json_t *j = json_loads(
        "{\"skipped\": 1, \"state\": \"ready\", \"named\": 7,"
        " \"flag\": true, \"text\": \"x\", \"none\": null, \"list\": [1],"
        " \"wait_us\": 1500000, \"age_ms_ago\": 250,"
        " \"sub\": {\"a\": 1, \"b-c\": 2, \"s\": \"x\"},"
        " \"counters\": {\"rx\": 3, \"peak\": 9, \"drop_bad_mac\": 4,"
        "  \"drop_short\": 5}, \"inner\": {\"counters\": {\"n\": 6}}}",
        0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    struct metrics *m = metrics_create();
    struct metrics_labels l = { 0 };
    metrics_labels_add(&l, "vm", "v");
    metrics_add_json(m, "p", "test", j, &l, rules);
    json_decref(j);
    char *text = render(m);

    static const char *const want[] = {
        "p_state{vm=\"v\",state=\"ready\"} 1\n",
        "# TYPE p_renamed_total counter\np_renamed_total{vm=\"v\"} 7\n",
        "# HELP p_flag test: flag\n# TYPE p_flag gauge\n"
        "p_flag{vm=\"v\"} 1\n",
        "# TYPE p_wait_seconds gauge\np_wait_seconds{vm=\"v\"} 1.5\n",
        "p_age_seconds{vm=\"v\"} 0.25\n",
        "# TYPE p_sub_a_total counter\np_sub_a_total{vm=\"v\"} 1\n",
        "p_sub_b_c_total{vm=\"v\"} 2\n",
        "# TYPE p_rx_total counter\np_rx_total{vm=\"v\"} 3\n",
        "# TYPE p_peak gauge\np_peak{vm=\"v\"} 9\n",
        "# TYPE p_drops_total counter\n"
        "p_drops_total{vm=\"v\",reason=\"bad_mac\"} 4\n"
        "p_drops_total{vm=\"v\",reason=\"short\"} 5\n",
        "# TYPE p_inner_n_total counter\np_inner_n_total{vm=\"v\"} 6\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!strstr(text, want[i])) {
            printf("missing:\n%s\nin:\n%s\n", want[i], text);
            CU_FAIL("sample missing");
        }
    }
    CU_ASSERT_PTR_NULL(strstr(text, "skipped"));
    CU_ASSERT_PTR_NULL(strstr(text, "p_text"));
    CU_ASSERT_PTR_NULL(strstr(text, "p_none"));
    CU_ASSERT_PTR_NULL(strstr(text, "p_list"));
    CU_ASSERT_PTR_NULL(strstr(text, "p_sub_s"));
    free(text);
}

/* A VM name and a chassis with a quote, a backslash and a new-line come out
 * escaped in every series, and nothing else is unescaped. */
static void
test_host_channel_odd_vm(void)
{
    const char *vm = "vm \"one\"\\\nx";
    json_t *ch = json_pack("{ss ss sI sI sI ss ss ss s{sI sI sI}}",
                           "vm", vm, "interface", "tap0", "chan_id",
                           (json_int_t) 7, "vid", (json_int_t) 4094,
                           "ofport", (json_int_t) 3, "state", "ready",
                           "guest_mac", "0a:c4:00:00:00:07",
                           "guest_ip", "169.254.1.7", "counters",
                           "rx_ack", (json_int_t) 5, "rx_drop_bad_mac",
                           (json_int_t) 2, "cwnd", (json_int_t) 256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    struct latency_hist lat[CHANNEL_N_LATENCY];
    memset(lat, 0, sizeof lat);
    latency_hist_add(&lat[CHANNEL_LAT_SEEN_TO_ACKED], 1000);
    struct metrics *m = metrics_create();
    host_metrics_add_channel(m, ch, "hv\"1", lat);
    json_decref(ch);
    char *text = render(m);

    const char *labels = "vm=\"vm \\\"one\\\"\\\\\\nx\",chassis=\"hv\\\"1\"";
    char *want[] = {
        xasprintf("chand_channel_info{%s,interface=\"tap0\",chan_id=\"7\","
                  "vid=\"4094\",guest_mac=\"0a:c4:00:00:00:07\","
                  "guest_ip=\"169.254.1.7\"} 1\n", labels),
        xasprintf("chand_channel_rx_ack_total{%s} 5\n", labels),
        xasprintf("chand_channel_rx_drops_total{%s,reason=\"bad_mac\"} 2\n",
                  labels),
        xasprintf("chand_channel_cwnd_frames{%s} 256\n", labels),
        xasprintf("chand_channel_state{%s,state=\"ready\"} 1\n", labels),
        xasprintf("chand_channel_record_latency_seconds_count{%s,"
                  "stage=\"seen_to_acked\"} 1\n", labels),
        xasprintf("chand_channel_record_latency_seconds_sum{%s,"
                  "stage=\"seen_to_acked\"} 0.001\n", labels),
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!strstr(text, want[i])) {
            printf("missing:\n%s\nin:\n%s\n", want[i], text);
            CU_FAIL("sample missing");
        }
        free(want[i]);
    }
    /* Every line is a comment or a sample: no raw new-line in a label. */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        CU_ASSERT(line[0] == '#' || !strncmp(line, "chand_channel_", 14));
    }
    free(text);
}

/* metrics-http over a real TCP connection. */

static char *
render_fixed(void *aux)
{
    return xstrdup(aux);
}

/* Sends 'request' to 'http' on 'port' and returns the whole answer (caller
 * frees), driving the server until the client reads end of file. */
static char *
http_exchange(struct metrics_http *http, int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(!connect(fd, (struct sockaddr *) &sin, sizeof sin));
    CU_ASSERT_FATAL(write(fd, request, strlen(request))
                    == (ssize_t) strlen(request));
    char *answer = xzalloc(65536);
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        metrics_http_run(http);
        ssize_t r = recv(fd, answer + n, 65535 - n, MSG_DONTWAIT);
        if (r == 0) {
            break;
        } else if (r > 0) {
            n += r;
        } else if (errno == EAGAIN) {
            metrics_http_wait(http);
            poll_fd_wait(fd, POLLIN);
            poll_block();
        } else {
            break;
        }
    }
    close(fd);
    return answer;
}

static void
test_http(void)
{
    struct metrics_http *http;
    char *error;
    CU_ASSERT(!metrics_http_verify_addr("localhost:9"));
    CU_ASSERT(!metrics_http_verify_addr("127.0.0.1"));
    CU_ASSERT(!metrics_http_verify_addr("127.0.0.1:65536"));
    CU_ASSERT(metrics_http_verify_addr("[::1]:9478"));
    CU_ASSERT(metrics_http_verify_addr("0.0.0.0:0"));
    CU_ASSERT_EQUAL(metrics_http_create("nope", render_fixed, "", &http,
                                        &error), EINVAL);
    free(error);

    CU_ASSERT_FATAL(!metrics_http_create("127.0.0.1:0", render_fixed,
                                         "m 1\n", &http, &error));
    int port = metrics_http_port(http);
    CU_ASSERT(port > 0);

    char *a = http_exchange(http, port,
                            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(a, "HTTP/1.1 200 OK\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        a, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a, "Content-Length: 4\r\n"));
    CU_ASSERT(strlen(a) > 4 && !strcmp(a + strlen(a) - 8, "\r\n\r\nm 1\n"));
    free(a);

    a = http_exchange(http, port, "GET / HTTP/1.0\n\n");
    CU_ASSERT(!strncmp(a, "HTTP/1.1 404 ", 13));
    free(a);
    a = http_exchange(http, port, "PUT /metrics HTTP/1.1\r\n\r\n");
    CU_ASSERT(!strncmp(a, "HTTP/1.1 405 ", 13));
    CU_ASSERT_PTR_NOT_NULL(strstr(a, "Allow: GET\r\n"));
    free(a);
    a = http_exchange(http, port, "\x01\x02garbage\r\n\r\n");
    CU_ASSERT(!strncmp(a, "HTTP/1.1 400 ", 13));
    free(a);

    json_t *st = metrics_http_status_json(http);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "connections")),
                    4);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "bad_requests")),
                    3);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(st, "responses"), "200")), 1);
    json_decref(st);

    /* The port is taken: a second server cannot start. */
    char *addr = xasprintf("127.0.0.1:%d", port);
    struct metrics_http *other;
    CU_ASSERT_EQUAL(metrics_http_create(addr, render_fixed, "", &other,
                                        &error), EADDRINUSE);
    CU_ASSERT(error && strstr(error, "cannot serve metrics"));
    free(error);
    free(addr);
    metrics_http_destroy(http);
}

static const struct unit_test tests[] = {
    { "label value escaping", test_escape },
    { "families grouped with HELP and TYPE", test_render_groups },
    { "latency histogram", test_histogram },
    { "JSON members to samples", test_json },
    { "host channel with an odd VM name", test_host_channel_odd_vm },
    { "GET /metrics over HTTP", test_http },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("metrics", tests);
}
