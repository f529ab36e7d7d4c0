/* Copyright (c) 2026 The chand authors.  See replay-pcap.h. */

#include <config.h>
#include "replay-pcap.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void
replay_pcap_init(struct replay_pcap *pcap)
{
    pcap->pkts = NULL;
    pcap->n = pcap->allocated = 0;
}

void
replay_pcap_destroy(struct replay_pcap *pcap)
{
    for (size_t i = 0; i < pcap->n; i++) {
        free(pcap->pkts[i].data);
        free(pcap->pkts[i].meta);
    }
    free(pcap->pkts);
    replay_pcap_init(pcap);
}

void
replay_pcap_add(struct replay_pcap *pcap, const void *data, size_t len,
                const struct timeval *ts, const char *meta)
{
    if (pcap->n >= pcap->allocated) {
        pcap->allocated = pcap->allocated ? 2 * pcap->allocated : 16;
        pcap->pkts = xrealloc(pcap->pkts,
                              pcap->allocated * sizeof *pcap->pkts);
    }
    struct replay_pkt *pkt = &pcap->pkts[pcap->n++];
    pkt->data = memcpy(xmalloc(len), data, len);
    pkt->len = len;
    if (ts) {
        pkt->ts = *ts;
    } else {
        pkt->ts.tv_sec = 0;
        pkt->ts.tv_usec = 0;
    }
    pkt->meta = meta ? xstrdup(meta) : NULL;
}

char *
replay_pcap_meta_path(const char *path)
{
    size_t len = strlen(path);
    if (len >= 5 && !strcmp(path + len - 5, ".pcap")) {
        return xasprintf("%.*s.meta", (int) (len - 5), path);
    }
    return xasprintf("%s.meta", path);
}

/* Attaches the lines of 'meta_path' to the packets 'first'... of 'pcap'. */
static int
read_meta(const char *meta_path, struct replay_pcap *pcap, size_t first,
          char **errp)
{
    FILE *f = fopen(meta_path, "r");
    if (!f) {
        return errno == ENOENT ? 0 : errno;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t i = first;
    int error = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = '\0';
        }
        if (i >= pcap->n) {
            *errp = xasprintf("%s: more lines than the %zu packets of "
                              "its pcap", meta_path, pcap->n - first);
            error = EINVAL;
            break;
        }
        free(pcap->pkts[i].meta);
        pcap->pkts[i++].meta = xstrdup(line);
    }
    if (!error && i != pcap->n) {
        *errp = xasprintf("%s: %zu lines for %zu packets", meta_path,
                          i - first, pcap->n - first);
        error = EINVAL;
    }
    free(line);
    fclose(f);
    return error;
}

int
replay_pcap_read(const char *path, bool missing_ok, struct replay_pcap *pcap,
                 char **errp)
{
    char ebuf[PCAP_ERRBUF_SIZE];
    size_t first = pcap->n;

    *errp = NULL;
    if (missing_ok && access(path, F_OK) && errno == ENOENT) {
        return 0;
    }
    /* A 0-byte file is an empty capture (the DPDK pcap PMD writes the file
     * header only with the first packet). */
    struct stat st;
    if (!stat(path, &st) && S_ISREG(st.st_mode) && !st.st_size) {
        return 0;
    }
    pcap_t *p = pcap_open_offline(path, ebuf);
    if (!p) {
        *errp = xasprintf("%s: %s", path, ebuf);
        return access(path, R_OK) ? errno : EINVAL;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        *errp = xasprintf("%s: link type %d is not Ethernet", path,
                          pcap_datalink(p));
        pcap_close(p);
        return EINVAL;
    }

    struct pcap_pkthdr *hdr;
    const u_char *data;
    int retval;
    int error = 0;
    while ((retval = pcap_next_ex(p, &hdr, &data)) == 1) {
        if (hdr->caplen != hdr->len) {
            *errp = xasprintf("%s: packet %zu truncated by the capture "
                              "(%u of %u bytes)", path,
                              pcap->n - first + 1, hdr->caplen,
                              hdr->len);
            error = EINVAL;
            break;
        }
        replay_pcap_add(pcap, data, hdr->caplen, &hdr->ts, NULL);
    }
    if (!error && retval == PCAP_ERROR) {
        *errp = xasprintf("%s: %s", path, pcap_geterr(p));
        error = EINVAL;
    }
    pcap_close(p);

    if (!error) {
        char *meta_path = replay_pcap_meta_path(path);
        error = read_meta(meta_path, pcap, first, errp);
        if (error && !*errp) {
            *errp = xasprintf("%s: %s", meta_path, strerror(error));
        }
        free(meta_path);
    }
    return error;
}

int
replay_pcap_write(const char *path, const struct replay_pcap *pcap,
                  bool renumber, char **errp)
{
    *errp = NULL;
    pcap_t *p = pcap_open_dead(DLT_EN10MB, REPLAY_PCAP_SNAPLEN);
    if (!p) {
        *errp = xasprintf("%s: pcap_open_dead failed", path);
        return ENOMEM;
    }
    pcap_dumper_t *d = pcap_dump_open(p, path);
    if (!d) {
        *errp = xstrdup(pcap_geterr(p));     /* Names 'path'. */
        pcap_close(p);
        return EIO;
    }
    bool any_meta = false;
    for (size_t i = 0; i < pcap->n; i++) {
        const struct replay_pkt *pkt = &pcap->pkts[i];
        struct pcap_pkthdr hdr;

        memset(&hdr, 0, sizeof hdr);
        if (renumber) {
            hdr.ts.tv_sec = i + 1;
        } else {
            hdr.ts = pkt->ts;
        }
        hdr.caplen = hdr.len = pkt->len;
        pcap_dump((u_char *) d, &hdr, pkt->data);
        any_meta |= pkt->meta != NULL;
    }
    int error = pcap_dump_flush(d) ? EIO : 0;
    pcap_dump_close(d);
    pcap_close(p);
    if (error) {
        *errp = xasprintf("%s: write failed", path);
        return error;
    }

    char *meta_path = replay_pcap_meta_path(path);
    if (any_meta) {
        FILE *f = fopen(meta_path, "w");
        if (!f) {
            error = errno;
        } else {
            for (size_t i = 0; i < pcap->n; i++) {
                const char *meta = pcap->pkts[i].meta;
                fprintf(f, "%s\n", meta ? meta : "");
            }
            if (fclose(f)) {
                error = errno;
            }
        }
    } else if (unlink(meta_path) && errno != ENOENT) {
        error = errno;
    }
    if (error) {
        *errp = xasprintf("%s: %s", meta_path, strerror(error));
    }
    free(meta_path);
    return error;
}
