#!/usr/bin/env python3
"""A hostile VM for test-hostile.sh: raw frames on a vNIC, no scapy.

Every frame is built by hand (Ethernet, 802.1Q, IPv4, UDP with correct
checksums unless a case breaks one on purpose; chand header and the
HMAC-SHA256 trailer of doc/PROTOCOL.md) and sent with an AF_PACKET socket on
the VM's eth0.  The frames the attacker makes itself carry IPv4
identification MARK_ID (chand sends 0), so a sniffer can tell them apart.

usage:
  hostile-tool.py selftest
      Checks the frame builder against doc/PROTOCOL.md section 9.

  hostile-tool.py capture IFACE SECONDS OUT
      Records the chand frames (UDP port 7433) seen on IFACE, both
      directions, with their 802.1Q tag put back, as JSON lines
      {"dir": "in"|"out", "hex": ...}.

  hostile-tool.py sniff IFACE OUT --guest-mac M --host-mac H --vid V
      Until SIGTERM/SIGINT: classifies every frame arriving on IFACE (a
      victim's eth0) and writes a JSON summary to OUT: "legit" (tagged V,
      host MAC -> guest MAC, IPv4 id 0), "channel_space" (any other frame
      to a 0a:c4 chand MAC, UDP to 169.254.0.0/16 port 7433 behind any
      tags, or from the host daemon's MAC or IP), "foreign_tagged" (any
      other tagged frame), "chand_mac_untagged" (untagged, from a 0a:c4
      chand MAC), "tenant" (untagged, the attacker's ordinary traffic
      mark), "marked_untagged" (untagged, the attacker's mark), with a few
      samples.

  hostile-tool.py attack IFACE PHASE --cfg JSON [--count N]
      Sends one phase of the attack from IFACE and prints a JSON object
      {case: frames sent}.  PHASES: spoof, hostsrc, bcast, lan, isolation,
      tenant, upstream, malformed, jumbo, replay, replay-hello (see the
      phase_* functions).  --cfg holds
      the addresses, vids, the attacker's own key, the captured frames
      file and the host's current epoch for the attacker's channel.

  hostile-tool.py flood IFACE --cfg JSON --min N --max-seconds S --stop FILE
      Valid-looking frames on the attacker's own channel (exact addresses,
      own vid, bad trailer) as fast as possible: at least N frames, then
      until FILE exists or S seconds have passed.  Prints
      {"sent": n, "seconds": s, "pps": r}.

  hostile-tool.py guest-inject --cfg JSON [--count N]
      Inside the attacker VM: datagrams to its own chand-guest's socket
      from the (spoofed) host endpoint address, through chand0 -- garbage,
      wrong trailers, wrong vid, wrong source port, replays of the captured
      host frames.  Prints {case: sent}.

  hostile-tool.py push DB LOG PREFIX SEED N BATCH PAUSE VM...
      Legitimate workload: N operations (mostly new records, some updates
      and deletes; aimed at one VM or at all) in OVSDB transactions of
      BATCH, PAUSE seconds apart; appends each committed operation to LOG
      in push-model.py's format (push-model.py --expect LOG VM... gives the
      expected stores).

  hostile-tool.py capture-summary --cfg JSON
      Counts the captured frames by direction, epoch and type.

  hostile-tool.py xfer-get IFACE CHAN_ID DIGEST SIZE [--vid V] [--key HEX]
      From a VM's IFACE (its eth0): one XFER GET for the first chunks of
      object DIGEST of SIZE bytes, as the VM of CHAN_ID (its own
      addresses, vid V, default 4094, authenticated with key HEX, default
      the empty key), whatever it is entitled to.  Prints {"sent": n}.

  hostile-tool.py flows < dump-flows      -> {"PRIORITY MATCH": n_packets}
  hostile-tool.py meters < meter-stats    -> {"ID": {"in": n, "drop": n}}

  hostile-tool.py check --sent S --flows0 F --flows1 F --host0 H --host1 H
                        --guest0 G --guest1 G --victim-vid V
                        --attacker-vid V --attacker-ofport P
      Checks that every case sent (S: {case: n}) was counted where the
      protection that stops it lives: the flow drop rules (FLOW_CASES),
      chand-host's counters of the attacker's channel (HOST_CASES, exact;
      and no other rx_drop_* reason), the attacker's chand-guest counters
      (GUEST_CASES).  Prints "ok: ..." / "FAIL: ..." lines.

  hostile-tool.py iso-cases
      Prints the names of the cases the attacker's isolation rules drop.

  hostile-tool.py unchanged WHAT BEFORE AFTER PREFIX[,...] [EXCEPT,...]
      "ok"/"FAIL" line: no counter named PREFIX* moved between two status
      JSON documents ("counters" member).

  hostile-tool.py json-get [--zero] PATH...
      Reads JSON on stdin, prints the member at each dotted PATH ("-" if
      absent; "0" with --zero).
"""
import hashlib
import hmac
import json
import os
import random
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time

MARK_ID = 0xBAD0                # IPv4 identification of attacker frames.
TENANT_ID = 0x7E4A              # ... of its ordinary (tenant) frames.
PORT = 7433
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
TPID = 0x8100
TPID_AD = 0x88a8
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
IP_TRANSPARENT = 19
SO_BINDTODEVICE = 25

T_DATA, T_ACK, T_HELLO, T_SYNC, T_HEARTBEAT = 1, 2, 3, 4, 5
T_CHUNK, T_XFER = 6, 7
F_ACK_VALID, F_SNAPSHOT = 0x01, 0x02


# --- Addresses -------------------------------------------------------------

def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ip(s):
    return socket.inet_aton(s)


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def guest_ip(chan_id):
    return "169.254.%d.%d" % (1 + (chan_id >> 8) % 254, chan_id & 0xff)


def guest_mac(chan_id):
    return "0a:c4:" + ":".join("%02x" % b
                               for b in struct.pack(">I", chan_id))


HOST_IP = "169.254.0.1"
HOST_MAC = "0a:c4:00:00:00:00"
BCAST = "ff:ff:ff:ff:ff:ff"


# --- Frame building ----------------------------------------------------------

def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def eth(dst, src, ethertype, payload, vid=None, tpid=TPID, pcp=0):
    """An Ethernet frame; 'vid' is None (untagged), a vid, or a list of
    (tpid, vid) pairs, outermost first, for stacked tags."""
    hdr = mac(dst) + mac(src)
    if isinstance(vid, list):
        for t, v in vid:
            hdr += struct.pack("!HH", t, v)
    elif vid is not None:
        hdr += struct.pack("!HH", tpid, (pcp << 13) | vid)
    return hdr + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, payload, proto=17, ident=MARK_ID, ttl=64, frag=0x4000,
         options=b"", tot_len=None, bad_csum=False, version=4, ihl=None):
    if ihl is None:
        ihl = 5 + len(options) // 4
    if tot_len is None:
        tot_len = 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, tot_len,
                      ident, frag, ttl, proto, 0, ip(src), ip(dst)) + options
    c = csum16(hdr)
    if bad_csum:
        c ^= 0x5a5a
    hdr = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    return hdr + payload


def udp(src, dst, payload, sport=PORT, dport=PORT, length=None,
        bad_csum=False, zero_csum=False):
    if length is None:
        length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    pseudo = ip(src) + ip(dst) + struct.pack("!BBH", 0, 17, length)
    c = csum16(pseudo + hdr + payload) or 0xffff
    if bad_csum:
        c ^= 0x1111
    if zero_csum:
        c = 0
    return struct.pack("!HHHH", sport, dport, length, c) + payload


def chand(ftype, vid, epoch=1, seq=0, ack=0, flags=0, payload=b"", key=b"",
          chunk_index=0, chunk_count=1, plen=None, magic=0x4348, version=1,
          reserved=0, trailer=None):
    if plen is None:
        plen = len(payload)
    hdr = struct.pack("!HBBBBHIQQHHHH", magic, version, ftype, flags,
                      reserved, vid, epoch, seq, ack, chunk_index,
                      chunk_count, plen, 0)
    if trailer is None:
        trailer = hmac.new(key, hdr + payload, hashlib.sha256).digest()[:16]
    return hdr + payload + trailer


class Endpoints:
    """The addresses of one chand packet: Ethernet, IPv4, UDP."""

    def __init__(self, smac, dmac, sip, dip, vid, sport=PORT, dport=PORT):
        self.smac, self.dmac, self.sip, self.dip = smac, dmac, sip, dip
        self.vid, self.sport, self.dport = vid, sport, dport

    def frame(self, udp_payload, ip_kw=None, udp_kw=None):
        u = udp(self.sip, self.dip, udp_payload, self.sport, self.dport,
                **(udp_kw or {}))
        return eth(self.dmac, self.smac, ETH_P_IP,
                   ipv4(self.sip, self.dip, u, **(ip_kw or {})), self.vid)


def arp_request(smac, sip, tip, vid=None):
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, mac(smac),
                       ip(sip), b"\0" * 6, ip(tip))
    return eth(BCAST, smac, ETH_P_ARP, body, vid)


# --- Packet sockets ---------------------------------------------------------

def tx_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return s


def send(s, frame):
    """Sends one frame; returns 1, or 0 if the kernel refused or dropped
    it (EMSGSIZE above the interface MTU; ENOBUFS when the veth peer
    dropped it, e.g. above the peer's MTU)."""
    try:
        s.send(frame)
        return 1
    except OSError:
        return 0


def rx_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                      socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((iface, 0))
    return s


def recv_frame(s):
    """Returns (frame with its 802.1Q tag put back, outgoing?)."""
    data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(32))
    for level, ctype, cdata in anc:
        if level == SOL_PACKET and ctype == PACKET_AUXDATA \
                and len(cdata) >= 20:
            status, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH",
                                                          cdata[:20])
            if status & TP_STATUS_VLAN_VALID:
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = TPID
                data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data, addr[2] == PACKET_OUTGOING


def parse(frame):
    """Minimal parse: dict with dst, src, vid (outer tag, or None), n_tags,
    ethertype, for IPv4 ip_id, sip, dip, and for UDP sport, dport,
    udp_payload, for ARP arp_spa."""
    r = {"dst": mac_str(frame[0:6]), "src": mac_str(frame[6:12]),
         "vid": None, "n_tags": 0}
    off = 12
    et = struct.unpack("!H", frame[off:off + 2])[0]
    while et in (TPID, TPID_AD) and len(frame) >= off + 8:
        if r["vid"] is None:
            r["vid"] = struct.unpack("!H", frame[off + 2:off + 4])[0] & 0xfff
        r["n_tags"] += 1
        off += 4
        et = struct.unpack("!H", frame[off:off + 2])[0]
    r["ethertype"] = et
    off += 2
    if et == ETH_P_ARP and len(frame) >= off + 28:
        r["arp_spa"] = socket.inet_ntoa(frame[off + 14:off + 18])
    if et == ETH_P_IP and len(frame) >= off + 20:
        ihl = (frame[off] & 0xf) * 4
        r["ip_id"] = struct.unpack("!H", frame[off + 4:off + 6])[0]
        r["sip"] = socket.inet_ntoa(frame[off + 12:off + 16])
        r["dip"] = socket.inet_ntoa(frame[off + 16:off + 20])
        if frame[off + 9] == 17 and len(frame) >= off + ihl + 8:
            u = off + ihl
            r["sport"], r["dport"], ulen = struct.unpack(
                "!HHH", frame[u:u + 6])
            r["udp_payload"] = frame[u + 8:u + ulen]
    return r


def chand_header(payload):
    if len(payload) < 36:
        return None
    (magic, version, ftype, flags, _, vid, epoch, seq, ack, ci, cc, plen,
     _) = struct.unpack("!HBBBBHIQQHHHH", payload[:36])
    return {"magic": magic, "type": ftype, "flags": flags, "vid": vid,
            "epoch": epoch, "seq": seq, "ack": ack, "plen": plen}


# --- selftest ---------------------------------------------------------------

def cmd_selftest():
    here = os.path.dirname(os.path.abspath(__file__))
    doc = open(os.path.join(here, "..", "..", "doc", "PROTOCOL.md")).read()
    block = doc.split("```hexdump\n", 1)[1].split("```", 1)[0]
    want = bytearray()
    for line in block.splitlines():
        if not line or line.startswith("#"):
            continue
        hexpart = line[6:].split("  ")[0]
        want += bytes.fromhex(hexpart)
    payload = (b'{"records":[{"op":"put","key":"motd","value":{"text":'
               b'"hello","lang":"en"},"version":3},{"op":"delete","key":'
               b'"old-motd","version":4}]}')
    ep = Endpoints(HOST_MAC, guest_mac(7), HOST_IP, guest_ip(7), 4094)
    got = ep.frame(chand(T_DATA, 4094, epoch=1, seq=42, ack=17,
                         flags=F_ACK_VALID, payload=payload,
                         key=b"example-key"), ip_kw={"ident": 0})
    if bytes(want) != got:
        print("selftest: built frame differs from PROTOCOL.md section 9")
        print(" want", bytes(want).hex())
        print(" got ", got.hex())
        return 1
    print("selftest: frame builder matches PROTOCOL.md section 9 (%d bytes)"
          % len(got))
    return 0


# --- capture and sniff ------------------------------------------------------

def cmd_capture(iface, seconds, out):
    s = rx_socket(iface)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    deadline = time.time() + float(seconds)
    n = 0
    with open(out, "w") as f:
        while not stop:
            left = deadline - time.time()
            if left <= 0:
                break
            try:
                if not select.select([s], [], [], min(left, 0.2))[0]:
                    continue
                frame, outgoing = recv_frame(s)
            except InterruptedError:
                continue
            p = parse(frame)
            if p.get("dport") != PORT and p.get("sport") != PORT:
                continue
            f.write(json.dumps({"dir": "out" if outgoing else "in",
                                "hex": frame.hex()}) + "\n")
            f.flush()
            n += 1
    print(json.dumps({"captured": n}))
    return 0


def in_channel_space(p):
    """True if parsed frame 'p' is in chand's channel space: to a MAC in
    chand's prefix, or UDP to 169.254.0.0/16 on the channel port (behind
    any tags); or using the host daemon's MAC or IP as its source."""
    return (p["dst"].startswith("0a:c4:") or p["src"] == HOST_MAC
            or (p.get("dip", "").startswith("169.254.")
                and p.get("dport") == PORT)
            or p.get("sip") == HOST_IP or p.get("arp_spa") == HOST_IP)


def cmd_sniff(iface, out, gmac, hmac_, vid):
    s = rx_socket(iface)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    counts = {"in": 0, "legit": 0, "channel_space": 0, "foreign_tagged": 0,
              "chand_mac_untagged": 0, "marked_untagged": 0,
              "tenant": 0, "other_untagged": 0}
    samples = {}
    with open(out + ".ready", "w"):
        pass
    while not stop:
        try:
            if not select.select([s], [], [], 0.2)[0]:
                continue
            frame, outgoing = recv_frame(s)
        except InterruptedError:
            continue
        if outgoing:
            continue
        counts["in"] += 1
        p = parse(frame)
        legit = (p["vid"] == vid and p["n_tags"] == 1 and p["src"] == hmac_
                 and p["dst"] == gmac and p.get("ip_id") == 0
                 and p.get("sip") == HOST_IP and p.get("sport") == PORT)
        if legit:
            kind = "legit"
        elif in_channel_space(p):
            kind = "channel_space"
        elif p["vid"] is not None:
            kind = "foreign_tagged"
        elif p.get("ip_id") == TENANT_ID:
            kind = "tenant"
        elif p["src"].startswith("0a:c4:") or p["dst"].startswith("0a:c4:"):
            kind = "chand_mac_untagged"
        elif p.get("ip_id") == MARK_ID:
            kind = "marked_untagged"
        else:
            kind = "other_untagged"
        counts[kind] += 1
        if kind != "legit" and len(samples.setdefault(kind, [])) < 3:
            samples[kind].append(frame[:64].hex())
    counts["samples"] = samples
    with open(out, "w") as f:
        json.dump(counts, f)
    return 0


# --- the attack ---------------------------------------------------------------

class Cfg:
    def __init__(self, path):
        c = json.load(open(path))
        self.victim_id = c["victim_id"]
        self.victim_vid = c["victim_vid"]
        self.attacker_id = c["attacker_id"]
        self.attacker_vid = c["attacker_vid"]
        self.victim_eth_mac = c.get("victim_eth_mac", BCAST)
        self.attacker_eth_mac = c.get("attacker_eth_mac", "02:00:00:00:66:66")
        self.key = bytes.fromhex(c.get("attacker_key", ""))
        self.keyed = bool(self.key)
        self.capture = c.get("capture")
        self.host_epoch = c.get("host_epoch", 0)
        self.victim_vm = c.get("victim_vm")
        self.attacker_vm = c.get("attacker_vm")
        self.vm_mac = guest_mac(self.victim_id)
        self.vm_ip = guest_ip(self.victim_id)
        self.am_mac = guest_mac(self.attacker_id)
        self.am_ip = guest_ip(self.attacker_id)

    def own(self, **kw):
        """Attacker's own channel, guest -> host, exact addresses."""
        return Endpoints(self.am_mac, HOST_MAC, self.am_ip, HOST_IP,
                         self.attacker_vid, **kw)

    def captured(self):
        frames = []
        if self.capture and os.path.exists(self.capture):
            for line in open(self.capture):
                j = json.loads(line)
                frames.append((j["dir"], bytes.fromhex(j["hex"])))
        return frames


def bad_trailer_frame(cfg, ftype=T_HEARTBEAT, size=None, seq=1):
    """A chand frame for the attacker's own channel whose trailer no key
    verifies; 'size' pads the payload so the IPv4 packet is 'size' bytes."""
    payload = b""
    if size:
        payload = b" " * (size - 20 - 8 - 36 - 16)
    f = chand(ftype, cfg.attacker_vid, epoch=cfg.host_epoch or 1, seq=seq,
              payload=payload, key=b"wrong key " + os.urandom(8))
    return f


def phase_spoof(cfg, s, n):
    """Frames claiming to be the victim's guest endpoint."""
    sent = {}
    hello = chand(T_HELLO, cfg.victim_vid, epoch=0, payload=b'{"guest_epoch":1}')
    cases = {
        # Tagged with the victim's vid, victim's addresses, to the host.
        "spoof_victim_vid": Endpoints(cfg.vm_mac, HOST_MAC, cfg.vm_ip,
                                      HOST_IP, cfg.victim_vid),
        # The victim's addresses on the attacker's own vid.
        "spoof_victim_on_own_vid": Endpoints(cfg.vm_mac, HOST_MAC, cfg.vm_ip,
                                             HOST_IP, cfg.attacker_vid),
        # The victim's vid with the attacker's own addresses.
        "own_addr_on_victim_vid": Endpoints(cfg.am_mac, HOST_MAC, cfg.am_ip,
                                            HOST_IP, cfg.victim_vid),
        # Untagged, victim's addresses, to the host endpoint.
        "spoof_victim_untagged": Endpoints(cfg.vm_mac, HOST_MAC, cfg.vm_ip,
                                           HOST_IP, None),
    }
    for name, ep in cases.items():
        sent[name] = sum(send(s, ep.frame(hello)) for _ in range(n))
        time.sleep(0.02)
    return sent


def phase_hostsrc(cfg, s, n):
    """Frames with the host daemon's addresses as source."""
    sent = {}
    data = chand(T_DATA, cfg.victim_vid, epoch=1, seq=1,
                 payload=b'{"records":[{"op":"put","key":"pwned","value":1,'
                         b'"version":1}]}')
    sync = chand(T_SYNC, cfg.victim_vid, epoch=7, payload=b'{"guest_epoch":1,'
                 b'"snapshot_end":0}')
    cases = {
        # To the victim's endpoint, on the victim's vid (what chand-host's
        # own frames look like on the victim's vNIC).
        "hostsrc_to_victim_tagged": (Endpoints(
            HOST_MAC, cfg.vm_mac, HOST_IP, cfg.vm_ip, cfg.victim_vid), data),
        "hostsrc_sync_to_victim_tagged": (Endpoints(
            HOST_MAC, cfg.vm_mac, HOST_IP, cfg.vm_ip, cfg.victim_vid), sync),
        "hostsrc_to_victim_untagged": (Endpoints(
            HOST_MAC, cfg.vm_mac, HOST_IP, cfg.vm_ip, None), data),
        # To the host endpoint itself.
        "hostsrc_to_host_tagged": (Endpoints(
            HOST_MAC, HOST_MAC, HOST_IP, HOST_IP, cfg.attacker_vid), data),
        "hostsrc_to_host_untagged": (Endpoints(
            HOST_MAC, HOST_MAC, HOST_IP, HOST_IP, None), data),
    }
    for name, (ep, payload) in cases.items():
        sent[name] = sum(send(s, ep.frame(payload)) for _ in range(n))
        time.sleep(0.02)
    return sent


def phase_bcast(cfg, s, n):
    """Broadcasts and ARP on the channel vids."""
    sent = {}
    hb = chand(T_HEARTBEAT, cfg.victim_vid, epoch=1)
    for vid, tag in ((cfg.victim_vid, "victim_vid"),
                     (cfg.attacker_vid, "own_vid")):
        ep = Endpoints(cfg.am_mac, BCAST, cfg.am_ip, "255.255.255.255", vid)
        sent["bcast_" + tag] = sum(send(s, ep.frame(hb)) for _ in range(n))
        ep = Endpoints(cfg.am_mac, BCAST, cfg.am_ip, "169.254.255.255", vid)
        sent["bcast_subnet_" + tag] = sum(send(s, ep.frame(hb))
                                          for _ in range(n))
        arp = arp_request(cfg.am_mac, cfg.am_ip, HOST_IP, vid)
        sent["arp_host_" + tag] = sum(send(s, arp) for _ in range(n))
        time.sleep(0.02)
    # Untagged ARP for the host endpoint from the host's MAC.
    arp = arp_request(HOST_MAC, HOST_IP, cfg.vm_ip)
    sent["arp_from_hostmac_untagged"] = sum(send(s, arp) for _ in range(n))
    return sent


def phase_lan(cfg, s, n):
    """Untagged LAN frames from the attacker's own eth0 MAC to the victim's
    eth0 MAC, carrying an IPv4/UDP packet from the host endpoint address to
    the victim's guest endpoint: in the channel space (UDP to the channel
    port in 169.254.0.0/16, the host daemon's IP as source), so the host
    bridge drops them before NORMAL could deliver them."""
    data = chand(T_DATA, cfg.victim_vid, epoch=1, seq=1,
                 payload=b'{"records":[{"op":"put","key":"pwned-lan",'
                         b'"value":1,"version":1}]}')
    ep = Endpoints(cfg.attacker_eth_mac, cfg.victim_eth_mac, HOST_IP,
                   cfg.vm_ip, None)
    return {"lan_l3_spoof_to_victim": sum(send(s, ep.frame(data))
                                          for _ in range(n))}


def phase_isolation(cfg, s, n):
    """Frames into the channel space from the attacker's eth0 that are not
    its own channel's: whatever the tags, whatever the destination MAC
    (the first ones seen: untagged broadcasts to the victim's guest IP,
    and vid 4095 to its guest MAC), and the host daemon's IP as a
    source."""
    sent = {}
    hb = chand(T_HEARTBEAT, cfg.victim_vid, epoch=1)
    am, vm = cfg.attacker_eth_mac, cfg.victim_eth_mac
    cases = {
        "iso_bcast_untagged": Endpoints(am, BCAST, cfg.am_ip, cfg.vm_ip,
                                        None),
        "iso_bcast_vid0": Endpoints(am, BCAST, cfg.am_ip, cfg.vm_ip, 0),
        "iso_vid4095_to_guest_mac": Endpoints(cfg.am_mac, cfg.vm_mac,
                                              cfg.am_ip, cfg.vm_ip, 4095),
        "iso_qinq_to_guest_mac": Endpoints(
            am, cfg.vm_mac, cfg.am_ip, cfg.vm_ip,
            [(TPID_AD, 100), (TPID, cfg.victim_vid)]),
        "iso_qinq_bcast_to_guest_ip": Endpoints(
            am, BCAST, cfg.am_ip, cfg.vm_ip, [(TPID, 100), (TPID, 200)]),
        "iso_tenant_mac_to_guest_ip": Endpoints(am, vm, cfg.am_ip,
                                                cfg.vm_ip, None),
        "iso_mcast_to_guest_ip": Endpoints(am, "01:00:5e:00:00:01",
                                           cfg.am_ip, cfg.vm_ip, None),
        "iso_hostip_src": Endpoints(am, vm, HOST_IP, "10.77.0.1", None,
                                    sport=5000, dport=5000),
    }
    for name, ep in cases.items():
        sent[name] = sum(send(s, ep.frame(hb)) for _ in range(n))
        time.sleep(0.02)
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 2, mac(am),
                       ip(HOST_IP), mac(BCAST), ip(HOST_IP))
    garp = eth(BCAST, am, ETH_P_ARP, body)
    sent["iso_arp_hostip"] = sum(send(s, garp) for _ in range(n))
    return sent


def phase_tenant(cfg, s, n):
    """The control: ordinary link-local traffic from the attacker's eth0 to
    the victim's eth0 that is not UDP to the channel port (UDP to port
    5000, and from port 7433) must still be delivered."""
    sent = {}
    am, vm = cfg.attacker_eth_mac, cfg.victim_eth_mac
    for name, sport, dport in (("tenant_ll_udp", 5000, 5000),
                               ("tenant_ll_udp_from_7433", PORT, 5000)):
        ep = Endpoints(am, vm, "169.254.77.2", "169.254.77.1", None,
                       sport=sport, dport=dport)
        sent[name] = sum(send(s, ep.frame(b"tenant",
                                          ip_kw={"ident": TENANT_ID}))
                         for _ in range(n))
    return sent


def phase_upstream(cfg, s, n):
    """The attacker's own upstream stream written by hand with its own key,
    bypassing its chand-guest: a SYNC of a session of its own, then a
    snapshot DATA (sent n times: duplicates) with a record under from/
    (another VM's origin), a value over its limit, a message to itself
    (a relay loop) and one ordinary record."""
    k = cfg.key
    own = cfg.own()
    epoch = 0x7a7a0000 | random.randint(1, 0xffff)
    victim = cfg.victim_vm or "victim"
    attacker = cfg.attacker_vm or "attacker"
    records = [
        {"op": "put", "key": "from/%s/forged" % victim, "value": 1,
         "version": 1},
        {"op": "put", "key": "big", "value": "x" * 200, "version": 2},
        {"op": "put", "key": "to/%s/loop" % attacker, "value": "again",
         "version": 3},
        {"op": "put", "key": "hand-made", "value": True, "version": 4},
    ]
    payload = json.dumps({"records": records},
                         separators=(",", ":")).encode()
    sync = chand(T_SYNC, cfg.attacker_vid, epoch=epoch,
                 payload=b'{"snapshot_end":1}', key=k)
    data = chand(T_DATA, cfg.attacker_vid, epoch=epoch, seq=1,
                 flags=F_SNAPSHOT, payload=payload, key=k)
    # Back to back: the host's ACK of the SYNC makes the attacker's own
    # chand-guest start a session of its own at once, which would leave
    # hand-made DATA sent later in a dead epoch.
    sent = {"upstream_sync": send(s, own.frame(sync))}
    sent["upstream_data"] = sum(send(s, own.frame(data)) for _ in range(n))
    return sent


def phase_malformed(cfg, s, n):
    """Malformed datagrams on the attacker's own channel, exact addresses
    (so that only the check under test can stop them)."""
    own = cfg.own()
    k = cfg.key
    epoch = cfg.host_epoch or 1
    good = chand(T_HEARTBEAT, cfg.attacker_vid, epoch=epoch, key=k)
    cases = {}
    # IPv4 layer.
    cases["ip_csum"] = own.frame(good, ip_kw={"bad_csum": True})
    cases["ip_options"] = own.frame(good, ip_kw={
        "options": b"\x94\x04\x00\x00"})          # Router alert.
    cases["ip_version"] = own.frame(good, ip_kw={"version": 6})
    cases["ip_frag_mf"] = own.frame(good, ip_kw={"frag": 0x2000})
    cases["ip_frag_offset"] = own.frame(good, ip_kw={"frag": 0x0004})
    cases["ip_len_long"] = own.frame(good, ip_kw={
        "tot_len": 20 + 8 + len(good) + 40})
    cases["ip_proto_tcp"] = eth(HOST_MAC, cfg.am_mac, ETH_P_IP, ipv4(
        cfg.am_ip, HOST_IP, struct.pack("!HH", PORT, PORT) + b"\0" * 16,
        proto=6), cfg.attacker_vid)
    # UDP layer.
    cases["udp_len"] = own.frame(good, udp_kw={"length": 8 + len(good) - 4})
    cases["udp_csum"] = own.frame(good, udp_kw={"bad_csum": True})
    cases["udp_trunc"] = eth(HOST_MAC, cfg.am_mac, ETH_P_IP, ipv4(
        cfg.am_ip, HOST_IP, struct.pack("!HH", PORT, PORT)),
        cfg.attacker_vid)
    # chand framing: garbage and broken headers.
    cases["short"] = own.frame(b"CH\x01\x05" + b"\0" * 20)
    cases["magic"] = own.frame(os.urandom(36) + b"\0" * 16)
    cases["version"] = own.frame(chand(T_HEARTBEAT, cfg.attacker_vid,
                                       epoch=epoch, version=9, key=k))
    cases["truncated"] = own.frame(chand(T_HEARTBEAT, cfg.attacker_vid,
                                         epoch=epoch, plen=200, key=k))
    cases["trailing"] = own.frame(chand(T_HEARTBEAT, cfg.attacker_vid,
                                        epoch=epoch, payload=b"{}", plen=0,
                                        key=k))
    # Wrong trailers: a random key, a flipped bit, and (when the channel
    # has a key) the empty key of an unkeyed channel.
    cases["auth"] = own.frame(bad_trailer_frame(cfg))
    flipped = bytearray(good)
    flipped[-1] ^= 1
    cases["auth_bitflip"] = own.frame(bytes(flipped))
    if cfg.keyed:
        cases["auth_empty_key"] = own.frame(chand(
            T_ACK, cfg.attacker_vid, epoch=epoch, flags=F_ACK_VALID,
            ack=0, key=b""))
    # Near the MTU: a 1500-byte IPv4 packet with a wrong trailer.
    cases["auth_mtu"] = own.frame(bad_trailer_frame(cfg, T_ACK, size=1500))
    # Frames the attacker authenticates properly (it holds its own key)
    # but whose fields are wrong.
    cases["vid"] = own.frame(chand(T_HEARTBEAT, cfg.victim_vid
                                   if cfg.victim_vid != cfg.attacker_vid
                                   else 1, epoch=epoch, key=k))
    cases["type"] = own.frame(chand(9, cfg.attacker_vid, epoch=epoch, key=k))
    # (DATA and SYNC from a guest are its upstream stream; HEARTBEAT is
    # the host's alone.)
    cases["unexpected_type"] = own.frame(chand(
        T_HEARTBEAT, cfg.attacker_vid, epoch=epoch, key=k))
    cases["bad_hello"] = own.frame(chand(T_HELLO, cfg.attacker_vid, epoch=0,
                                         payload=b"{}", key=k))
    cases["json"] = own.frame(chand(T_ACK, cfg.attacker_vid, epoch=epoch,
                                    flags=F_ACK_VALID, payload=b"{nope",
                                    key=k))
    cases["stale_epoch"] = own.frame(chand(
        T_ACK, cfg.attacker_vid, epoch=(epoch ^ 0x5a5a5a5a) or 1,
        flags=F_ACK_VALID, ack=1, key=k))
    if cfg.host_epoch:
        cases["bad_ack"] = own.frame(chand(
            T_ACK, cfg.attacker_vid, epoch=cfg.host_epoch,
            flags=F_ACK_VALID, ack=1 << 40, key=k))
    sent = {}
    for name, frame in cases.items():
        sent[name] = 0
        for i in range(n):
            sent[name] += send(s, frame)
            if i % 10 == 9:
                time.sleep(0.005)
        time.sleep(0.03)            # Stay far below the channel's meter.
    return sent


def phase_jumbo(cfg, s, n):
    """Oversized frames: a 9000-byte IPv4 packet on the attacker's own
    channel (eth0's MTU must be raised first; the hypervisor's end of the
    veth keeps 1500, so the kernel drops them there)."""
    frame = cfg.own().frame(bad_trailer_frame(cfg, T_ACK, size=9000))
    ok = sum(send(s, frame) for _ in range(n))
    return {"jumbo_9000": n, "jumbo_9000_refused": n - ok}


def captured_split(cfg):
    """The captured frames of the attacker's channel as lists of
    (frame, chand header), by direction and by whether their epoch is the
    host's current one for the channel (cfg.host_epoch)."""
    out = {"in_cur": [], "in_old": [], "out_cur": [], "out_old": []}
    for d, f in cfg.captured():
        p = parse(f)
        h = chand_header(p.get("udp_payload", b""))
        if not h:
            continue
        cur = h["epoch"] == cfg.host_epoch
        out[d + ("_cur" if cur else "_old")].append((f, h))
    return out


def cmd_capture_summary(cfg):
    """Prints how many captured frames of each type there are, by
    direction and epoch (current / old), e.g. {"in_cur": {"DATA": 3}}."""
    names = {T_DATA: "DATA", T_ACK: "ACK", T_HELLO: "HELLO", T_SYNC: "SYNC",
             T_HEARTBEAT: "HEARTBEAT"}
    out = {}
    for group, frames in captured_split(cfg).items():
        for _, h in frames:
            t = names.get(h["type"], str(h["type"]))
            out.setdefault(group, {})[t] = out.get(group, {}).get(t, 0) + 1
    print(json.dumps(out, sort_keys=True))
    return 0


def phase_replay(cfg, s, n):
    """Replays of captured legitimate frames of the attacker's own channel:
    its guest's frames back to the host ("out": ACKs of the current epoch,
    which are harmless duplicates; ACKs of an epoch the host has left,
    which it must reject), and the host's frames to it sent back into the
    hypervisor ("in")."""
    c = captured_split(cfg)
    sent = {}

    def replay(name, frames):
        sent[name] = 0
        for f in frames[-n:]:
            sent[name] += send(s, f)
            time.sleep(0.003)

    replay("replay_guest_acks_current",
           [f for f, h in c["out_cur"] if h["type"] == T_ACK])
    replay("replay_guest_acks_old_epoch",
           [f for f, h in c["out_old"] if h["type"] == T_ACK])
    replay("replay_host_frames", [f for f, h in c["in_cur"] + c["in_old"]])
    # The captured host frames, re-addressed to the victim's endpoint and
    # vid (the trailer is the attacker channel's, so they would not verify
    # at the victim even if they got there).
    ep = Endpoints(HOST_MAC, cfg.vm_mac, HOST_IP, cfg.vm_ip, cfg.victim_vid)
    replay("replay_host_frames_to_victim",
           [ep.frame(parse(f)["udp_payload"])
            for f, h in c["in_cur"] + c["in_old"]])
    return sent


def phase_replay_hello(cfg, s, n):
    """Replays the captured HELLOs of the attacker's guest (of any epoch).
    Not sequenced, so nothing can tell them from a fresh HELLO: the host
    may start a new session with the attacker's channel (its own)."""
    c = captured_split(cfg)
    frames = [f for f, h in c["out_cur"] + c["out_old"]
              if h["type"] == T_HELLO][-n:]
    return {"replay_guest_hello": sum(send(s, f) for f in frames)}


PHASES = {"spoof": phase_spoof, "hostsrc": phase_hostsrc,
          "bcast": phase_bcast, "lan": phase_lan,
          "isolation": phase_isolation, "tenant": phase_tenant,
          "upstream": phase_upstream,
          "malformed": phase_malformed, "jumbo": phase_jumbo,
          "replay": phase_replay, "replay-hello": phase_replay_hello}


def cmd_attack(iface, phase, cfg, n):
    s = tx_socket(iface)
    print(json.dumps(PHASES[phase](cfg, s, n), sort_keys=True))
    return 0


def cmd_flood(iface, cfg, min_frames, max_seconds, stopfile):
    s = tx_socket(iface)
    s.setblocking(False)
    own = cfg.own()
    frames = [own.frame(bad_trailer_frame(cfg, T_ACK, seq=i))
              for i in range(64)]
    t0 = time.time()
    sent = 0
    tries = 0
    while True:
        for f in frames:
            tries += 1
            try:
                s.send(f)
                sent += 1
            except OSError:
                pass
        if sent >= min_frames and tries % 4096 < 64:
            if os.path.exists(stopfile) or time.time() - t0 > max_seconds:
                break
        elif tries % 65536 < 64 and time.time() - t0 > 3 * max_seconds:
            break
    dt = time.time() - t0
    print(json.dumps({"sent": sent, "seconds": round(dt, 2),
                      "pps": int(sent / dt)}))
    return 0


def cmd_guest_inject(cfg, n):
    """Datagrams to the attacker's own chand-guest from the spoofed host
    endpoint 169.254.0.1:7433 (IP_TRANSPARENT), through chand0 (so the
    socket bound to that device accepts them)."""

    def sock(sport):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        u.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, b"chand0")
        u.bind((HOST_IP, sport))
        return u

    u = sock(PORT)
    other = sock(PORT + 1)
    dst = (cfg.am_ip, PORT)
    k = cfg.key
    epoch = cfg.host_epoch or 1
    cases = {
        "g_short": (u, b"CH\x01"),
        "g_magic": (u, os.urandom(36) + b"\0" * 16),
        "g_auth": (u, chand(T_HEARTBEAT, cfg.attacker_vid, epoch=epoch,
                            key=b"forged " + os.urandom(8))),
        "g_vid": (u, chand(T_HEARTBEAT, (cfg.attacker_vid % 4094) + 1,
                           epoch=epoch, key=k)),
        # An unknown frame type (an ACK from the host is its answer to the
        # guest's upstream stream now: every type has a use).
        "g_type": (u, chand(9, cfg.attacker_vid, epoch=epoch, key=k)),
        # An upstream ACK of an epoch the attacker's publisher does not
        # have: it starts a new upstream session (it only hurts itself).
        "g_up_ack": (u, chand(T_ACK, cfg.attacker_vid, epoch=epoch,
                              flags=F_ACK_VALID, key=k)),
        "g_source": (other, chand(T_HEARTBEAT, cfg.attacker_vid,
                                  epoch=epoch, key=k)),
    }
    if cfg.keyed:
        cases["g_auth_empty_key"] = (u, chand(
            T_HEARTBEAT, cfg.attacker_vid, epoch=epoch, key=b""))
    sent = {}
    for name, (sk, payload) in cases.items():
        sent[name] = 0
        for _ in range(n):
            sk.sendto(payload, dst)
            sent[name] += 1
        time.sleep(0.02)
    # Replays of the host's DATA frames: of the current epoch (already
    # applied: duplicates), and of an epoch the guest has left.
    c = captured_split(cfg)
    for name, frames in (("g_replay_data_current", c["in_cur"]),
                         ("g_replay_data_old_epoch", c["in_old"])):
        sent[name] = 0
        for f, h in [x for x in frames if x[1]["type"] == T_DATA][-n:]:
            u.sendto(parse(f)["udp_payload"], dst)
            sent[name] += 1
            time.sleep(0.002)
    print(json.dumps(sent, sort_keys=True))
    return 0


# --- legitimate workload -----------------------------------------------------

def ovsdb(db, ops):
    out = subprocess.run(["ovsdb-client", "transact", db,
                          json.dumps(["Chan"] + ops)],
                         capture_output=True, text=True, timeout=60)
    if out.returncode:
        raise RuntimeError("ovsdb-client: %s" % out.stderr.strip())
    return json.loads(out.stdout)


def cmd_push(db, log, prefix, seed, n, batch, pause, vms):
    rng = random.Random(seed)
    live = {}                   # (key, vm) -> version
    done = 0
    while done < n:
        ops, lines = [], []
        touched = set()
        while len(ops) < batch and done + len(ops) < n:
            i = done + len(ops)
            target = rng.choice([None] + vms)
            cond = ["vm", "==", target if target else ["set", []]]
            mine = [k for k in live if k[1] == target and k not in touched]
            r = rng.random()
            value = rng.choice([i, "v%d" % i, {"n": i, "t": [i % 7, None]},
                                [i, True], "caf\u00e9 %d" % i])
            text = json.dumps(value, separators=(",", ":"),
                              ensure_ascii=False)
            if r < 0.07 and mine:
                key = rng.choice(mine)
                ops.append({"op": "delete", "table": "Record",
                            "where": [["key", "==", key[0]], cond]})
                del live[key]
                args = ["delete"] + (["--vm", target] if target else []) \
                    + [key[0]]
            elif r < 0.2 and mine:
                key = rng.choice(mine)
                live[key] += 1
                ops.append({"op": "update", "table": "Record",
                            "where": [["key", "==", key[0]], cond],
                            "row": {"value": text, "version": live[key]}})
                args = ["push"] + (["--vm", target] if target else []) \
                    + [key[0], text]
            else:
                key = ("%s%05d" % (prefix, i), target)
                live[key] = 1
                row = {"key": key[0], "value": text, "version": 1}
                if target:
                    row["vm"] = target
                ops.append({"op": "insert", "table": "Record", "row": row})
                args = ["push"] + (["--vm", target] if target else []) \
                    + [key[0], text]
            touched.add(key)
            lines.append(" ".join(shlex.quote(a) for a in args) + "\n")
        result = ovsdb(db, ops)
        bad = [r for r in result if not isinstance(r, dict) or "error" in r
               or r.get("count", 1) != 1]
        if bad or len(result) != len(ops):
            sys.exit("push: transaction failed: %s" % json.dumps(bad[:3]))
        with open(log, "a") as f:
            f.writelines(lines)
        done += len(ops)
        if pause and done < n:
            time.sleep(pause)
    return 0


def cmd_json_get(paths, zero):
    j = json.load(sys.stdin)
    for p in paths:
        v = j
        for part in p.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is None:
            print("0" if zero else "-")
        else:
            print(v if isinstance(v, str) else json.dumps(v))
    return 0


# --- checks -----------------------------------------------------------------

# Where each case of the attack must be stopped.  Flow rules by name:
# "vid_victim" / "vid_attacker" = priority 40020 dl_vlan=<vid>; "hostmac" =
# the two priority 40010 rules (dl_src / dl_dst = the host MAC; a frame
# from and to the host MAC may hit either, they have the same priority).
FLOW_CASES = {
    # The attacker's frames into the channel space (or with the host
    # daemon's addresses as source): its vNIC's isolation rules (priority
    # 40040, in_port = its vNIC), counted as its isolation_drops.
    "isolation_attacker": [
        "spoof_victim_vid", "own_addr_on_victim_vid",
        "hostsrc_to_victim_tagged", "hostsrc_sync_to_victim_tagged",
        "bcast_subnet_victim_vid", "replay_host_frames_to_victim",
        "spoof_victim_on_own_vid", "hostsrc_to_host_tagged",
        "bcast_subnet_own_vid", "ip_frag_mf", "ip_frag_offset",
        "ip_len_long", "ip_proto_tcp", "udp_trunc", "replay_host_frames",
        "hostsrc_to_victim_untagged", "arp_from_hostmac_untagged",
        "spoof_victim_untagged", "hostsrc_to_host_untagged",
        "lan_l3_spoof_to_victim", "iso_bcast_untagged", "iso_bcast_vid0",
        "iso_vid4095_to_guest_mac", "iso_qinq_to_guest_mac",
        "iso_qinq_bcast_to_guest_ip", "iso_tenant_mac_to_guest_ip",
        "iso_mcast_to_guest_ip", "iso_hostip_src", "iso_arp_hostip"],
    # Outside the channel space, on a channel vid: the per-vid drops.
    "vid_victim": ["bcast_victim_vid", "arp_host_victim_vid"],
    "vid_attacker": ["bcast_own_vid", "arp_host_own_vid"],
}

# chand-host's counters for the attacker's channel, per case (exact: these
# cases are sent far below the channel's meter rate).
HOST_CASES = {
    "rx_drop_ip_csum": ["ip_csum"],
    "rx_drop_ip_options": ["ip_options"],
    "rx_drop_ip_version": ["ip_version"],
    "rx_drop_udp_len": ["udp_len"],
    "rx_drop_udp_csum": ["udp_csum"],
    "rx_drop_short": ["short"],
    "rx_drop_magic": ["magic"],
    "rx_drop_version": ["version"],
    "rx_drop_truncated": ["truncated"],
    "rx_drop_trailing": ["trailing"],
    "rx_drop_auth": ["auth", "auth_bitflip", "auth_mtu", "auth_empty_key"],
    "rx_drop_vid": ["vid"],
    "rx_drop_type": ["type"],
    "rx_drop_unexpected_type": ["unexpected_type"],
    "rx_drop_json": ["json"],
    "rx_bad_hello": ["bad_hello"],
    "rx_stale_epoch": ["stale_epoch", "replay_guest_acks_old_epoch"],
    "rx_bad_ack": ["bad_ack"],
}

# The attacker's chand-guest's counters, per guest-inject case.
GUEST_CASES = {
    "drop_short": ["g_short"],
    "drop_magic": ["g_magic"],
    "drop_auth": ["g_auth", "g_auth_empty_key"],
    "drop_vid": ["g_vid"],
    "drop_type": ["g_type"],
    "drop_source": ["g_source"],
}
# At least this many (duplicates of the session also count there; the
# host's own upstream ACKs count with the hand-made ones).
GUEST_MIN_CASES = {
    "rx_upstream_ack": ["g_up_ack"],
    "rx_duplicate": ["g_replay_data_current"],
    "drop_epoch": ["g_replay_data_old_epoch"],
}


def load(path):
    with open(path) as f:
        return json.load(f)


def get(j, path):
    for part in path.split("."):
        j = j.get(part) if isinstance(j, dict) else None
    return j


def delta(before, after, path):
    return (get(after, path) or 0) - (get(before, path) or 0)


class Report:
    def __init__(self):
        self.failed = False

    def check(self, ok, what):
        print(("ok: " if ok else "FAIL: ") + what)
        self.failed |= not ok


def cmd_flows():
    """dump-flows on stdin -> {"PRIORITY MATCH": n_packets}."""
    out = {}
    for line in sys.stdin:
        if "priority=" not in line:
            continue
        n = int(line.split("n_packets=")[1].split(",")[0])
        rule = line.split("priority=")[1].split(" actions=")[0]
        prio, _, match = rule.partition(",")
        out[prio + " " + match] = n
    print(json.dumps(out, sort_keys=True))
    return 0


def cmd_meters():
    """meter-stats on stdin -> {"ID": {"in": packets, "drop": band}}."""
    out = {}
    text = sys.stdin.read()
    for part in text.split("meter:")[1:]:
        mid = part.split()[0]
        pin = int(part.split("packet_in_count:")[1].split()[0])
        band = part.split("bands:")[1]
        drop = int(band.split("packet_count:")[1].split()[0]) \
            if "packet_count:" in band else 0
        out[mid] = {"in": pin, "drop": drop}
    print(json.dumps(out, sort_keys=True))
    return 0


def flow_delta(f0, f1, prio, match):
    key = "%s %s" % (prio, match)
    return f1.get(key, 0) - f0.get(key, 0), key in f1


def cmd_check(args):
    sent = load(opt(args, "--sent"))
    f0, f1 = load(opt(args, "--flows0")), load(opt(args, "--flows1"))
    h0, h1 = load(opt(args, "--host0")), load(opt(args, "--host1"))
    g0, g1 = load(opt(args, "--guest0")), load(opt(args, "--guest1"))
    vv, va = opt(args, "--victim-vid"), opt(args, "--attacker-vid")
    a_port = opt(args, "--attacker-ofport")
    r = Report()

    def total(cases):
        return sum(sent.get(c, 0) for c in cases)

    # The attacker's isolation rules: every 40040 rule on its vNIC.
    iso = [tuple(k.split(" ", 1)) for k in sorted(f1)
           if k.startswith("40040 ")
           and ("in_port=%s," % a_port) in k.split(" ", 1)[1] + ","]
    rules = {
        "isolation_attacker": iso,
        "vid_victim": [("40020", "dl_vlan=" + vv)],
        "vid_attacker": [("40020", "dl_vlan=" + va)],
    }
    r.check(len(iso) == 5, "the attacker's vNIC (OpenFlow port %s) has its "
            "5 isolation rules (%d)" % (a_port, len(iso)))
    for name, cases in FLOW_CASES.items():
        want = total(cases)
        got, present = 0, bool(rules[name])
        for prio, match in rules[name]:
            d, p = flow_delta(f0, f1, prio, match)
            got += d
            present &= p
        r.check(present and got >= want,
                "flow drop %s (%s): n_packets grew by %d, >= the %d frames "
                "sent that only it can stop%s"
                % (name, " + ".join("priority=%s,%s" % x
                                    for x in rules[name]), got, want,
                   "" if present else " [RULE MISSING]"))
    for counter, cases in HOST_CASES.items():
        want = total(cases)
        if not any(c in sent for c in cases):
            continue
        got = delta(h0, h1, "counters." + counter)
        r.check(got == want, "chand-host %s of the attacker's channel grew "
                "by %d, want %d (%s)" % (counter, got, want,
                                         ", ".join(c for c in cases
                                                   if c in sent)))
    # No other drop reason may move: a frame counted somewhere unexpected
    # got past the layer that should have stopped it (e.g. rx_drop_addresses
    # means a flow let a spoofed frame through to chand-host).
    expected = set(HOST_CASES) | {"rx_drop_meter"}
    for counter in sorted(set(h1.get("counters", {}))
                          | set(h0.get("counters", {}))):
        if counter.startswith("rx_drop_") and counter not in expected:
            got = delta(h0, h1, "counters." + counter)
            r.check(got == 0, "chand-host %s of the attacker's channel "
                    "(no case should reach it) grew by %d" % (counter, got))
    for counter, cases in GUEST_CASES.items():
        if not any(c in sent for c in cases):
            continue
        want = total(cases)
        got = delta(g0, g1, "counters." + counter)
        r.check(got == want, "attacker's chand-guest %s grew by %d, want %d"
                % (counter, got, want))
    for counter, cases in GUEST_MIN_CASES.items():
        if not any(c in sent for c in cases):
            continue
        want = total(cases)
        got = delta(g0, g1, "counters." + counter)
        r.check(got >= want, "attacker's chand-guest %s grew by %d, >= %d "
                "replayed" % (counter, got, want))
    return 1 if r.failed else 0


def cmd_iso_cases():
    """Prints the names of the cases the attacker's isolation rules drop."""
    print(" ".join(FLOW_CASES["isolation_attacker"]))
    return 0


def cmd_unchanged(args):
    """unchanged WHAT BEFORE AFTER PREFIX[,...] [EXCEPT,...]: every counter
    under "counters" whose name starts with a PREFIX has the same value."""
    what, b, a, prefix = args[:4]
    skip = set(args[4].split(",")) if len(args) > 4 else set()
    cb = load(b).get("counters", {})
    ca = load(a).get("counters", {})
    prefixes = tuple(prefix.split(","))
    names = sorted(n for n in set(cb) | set(ca)
                   if n.startswith(prefixes) and n not in skip)
    moved = ["%s %d->%d" % (n, cb.get(n, 0), ca.get(n, 0)) for n in names
             if cb.get(n, 0) != ca.get(n, 0)]
    if moved:
        print("FAIL: %s moved: %s" % (what, "; ".join(moved)))
    else:
        print("ok: %s: no %s counter moved (%d present%s)"
              % (what, "/".join(p + "*" for p in prefixes), len(names),
                 ", not counting " + ",".join(sorted(skip)) if skip else ""))
    return 1 if moved else 0


def opt(args, name, default=None):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return v
    return default


def cmd_xfer_get(iface, chan_id, digest, size, vid, key):
    get = {"op": "get", "digest": digest, "size": size, "chunk_size": 1420,
           "ranges": [[0, min(8, max(1, (size + 1419) // 1420))]]}
    payload = json.dumps(get, separators=(",", ":")).encode()
    ep = Endpoints(guest_mac(chan_id), HOST_MAC, guest_ip(chan_id), HOST_IP,
                   vid)
    frame = ep.frame(chand(T_XFER, vid, epoch=0x6e7a, payload=payload,
                           key=key), ip_kw={"ident": 0})
    s = tx_socket(iface)
    print(json.dumps({"sent": send(s, frame)}))
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "xfer-get":
        return cmd_xfer_get(args[0], int(args[1]), args[2], int(args[3]),
                            int(opt(args, "--vid", "4094")),
                            bytes.fromhex(opt(args, "--key", "")))
    if cmd == "selftest":
        return cmd_selftest()
    if cmd == "capture":
        return cmd_capture(*args[:3])
    if cmd == "sniff":
        gm, hm, vid = (opt(args, "--guest-mac"), opt(args, "--host-mac"),
                       int(opt(args, "--vid")))
        return cmd_sniff(args[0], args[1], gm, hm, vid)
    if cmd == "attack":
        cfg = Cfg(opt(args, "--cfg"))
        n = int(opt(args, "--count", "20"))
        return cmd_attack(args[0], args[1], cfg, n)
    if cmd == "flood":
        cfg = Cfg(opt(args, "--cfg"))
        return cmd_flood(args[0], cfg, int(opt(args, "--min", "50000")),
                         float(opt(args, "--max-seconds", "20")),
                         opt(args, "--stop", "/nonexistent"))
    if cmd == "guest-inject":
        cfg = Cfg(opt(args, "--cfg"))
        return cmd_guest_inject(cfg, int(opt(args, "--count", "20")))
    if cmd == "push":
        db, log, prefix, seed, n, batch, pause = args[:7]
        return cmd_push(db, log, prefix, int(seed), int(n), int(batch),
                        float(pause), args[7:])
    if cmd == "capture-summary":
        return cmd_capture_summary(Cfg(opt(args, "--cfg")))
    if cmd == "iso-cases":
        return cmd_iso_cases()
    if cmd == "flows":
        return cmd_flows()
    if cmd == "meters":
        return cmd_meters()
    if cmd == "check":
        return cmd_check(args)
    if cmd == "unchanged":
        return cmd_unchanged(args)
    if cmd == "json-get":
        zero = "--zero" in args
        return cmd_json_get([a for a in args if a != "--zero"], zero)
    sys.exit("hostile-tool.py: unknown command %s" % cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
