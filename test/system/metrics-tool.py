#!/usr/bin/env python3
"""metrics-tool.py: reads chand's Prometheus metrics for test-metrics.sh.

  metrics-tool.py parse FILE
      parses FILE with prometheus_client's text parser and checks that
      every family has its HELP and TYPE lines; prints a summary
  metrics-tool.py value FILE NAME [LABEL=VALUE]...
      prints the value of the one sample NAME with these labels (exit 1 if
      none or several match)
  metrics-tool.py labels FILE PREFIX LABEL=VALUE...
      checks that every sample whose name starts with PREFIX has these
      labels, and that there is at least one
  metrics-tool.py scrape URL OUTFILE
      GETs URL; writes the body to OUTFILE; prints the status code and the
      Content-Type
  metrics-tool.py raw HOST PORT DATA
      sends DATA (Python escapes such as \\r\\n allowed) on a TCP
      connection and prints the first line of the answer

Needs the prometheus_client package (Debian: python3-prometheus-client).
"""

import re
import socket
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def families(path):
    with open(path) as f:
        text = f.read()
    return text, list(text_string_to_metric_families(text))


def cmd_parse(path):
    text, fams = families(path)
    helps = set(re.findall(r'^# HELP (\S+) ', text, re.M))
    types = dict(re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M))
    if not fams:
        print('no metric families')
        return 1
    bad = 0
    n_samples = 0
    for fam in fams:
        # prometheus_client drops "_total" from a counter family's name.
        names = {fam.name, fam.name + '_total'}
        if not names & helps:
            print('%s: no HELP line' % fam.name)
            bad += 1
        if not names & set(types):
            print('%s: no TYPE line' % fam.name)
            bad += 1
        n_samples += len(fam.samples)
    for name, typ in types.items():
        if typ not in ('counter', 'gauge', 'histogram', 'summary'):
            print('%s: type %s' % (name, typ))
            bad += 1
    print('%d families, %d samples, %d histograms, %d counters'
          % (len(fams), n_samples,
             sum(1 for f in fams if f.type == 'histogram'),
             sum(1 for f in fams if f.type == 'counter')))
    return 1 if bad else 0


def matching(path, name, wanted):
    _, fams = families(path)
    out = []
    for fam in fams:
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v
                                      for k, v in wanted.items()):
                out.append(s)
    return out


def parse_labels(args):
    return dict(a.split('=', 1) for a in args)


def cmd_value(path, name, *args):
    found = matching(path, name, parse_labels(args))
    if len(found) != 1:
        print('%d samples match %s %s' % (len(found), name, args),
              file=sys.stderr)
        return 1
    v = found[0].value
    print(int(v) if v == int(v) else v)
    return 0


def cmd_labels(path, prefix, *args):
    wanted = parse_labels(args)
    _, fams = families(path)
    n = 0
    for fam in fams:
        for s in fam.samples:
            if not s.name.startswith(prefix):
                continue
            n += 1
            for k, v in wanted.items():
                if s.labels.get(k) != v:
                    print('%s%s: %s is %r, not %r'
                          % (s.name, s.labels, k, s.labels.get(k), v))
                    return 1
    if not n:
        print('no sample starts with %s' % prefix)
        return 1
    print('%d samples with %s' % (n, wanted))
    return 0


def cmd_scrape(url, outfile):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body, code, ctype = r.read(), r.status, r.headers['Content-Type']
    except urllib.error.HTTPError as e:
        body, code, ctype = e.read(), e.code, e.headers['Content-Type']
    with open(outfile, 'wb') as f:
        f.write(body)
    print(code, ctype)
    return 0


def cmd_raw(host, port, data):
    data = data.encode().decode('unicode_escape').encode('latin-1')
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        answer = b''
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    print(answer.split(b'\r\n', 1)[0].decode('latin-1'))
    return 0


def main():
    cmds = {'parse': cmd_parse, 'value': cmd_value, 'labels': cmd_labels,
            'scrape': cmd_scrape, 'raw': cmd_raw}
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == '__main__':
    sys.exit(main())
