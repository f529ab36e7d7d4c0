#!/usr/bin/env python3
"""Writes a capture of one chand channel, as tcpdump records it on the VM's
vNIC, for test/replay/guest-replay.sh (chand-guest-replay).

Usage: make-guest-capture.py OUT.pcap KEY_FILE

Writes OUT.pcap (classic pcap, Ethernet, microsecond timestamps) and
KEY_FILE (the guest's key file: generations 1 and 2).  Pure Python: the
Ethernet/802.1Q/IPv4/UDP headers with their checksums and the chand frames
with their HMAC-SHA256 trailers (doc/PROTOCOL.md) are built here, not by
chand's C code, so that the replay is checked against an independent
encoder.

The scenario (channel of chan-id 7: vid 4094, guest 169.254.1.7:7433, host
169.254.0.1:7433; host epoch 0x1234abcd, guest epoch 0x0badcafe).  The
expected outcome is spelled out in guest-replay.sh; keep the two in step.

  1  guest -> host  HELLO (epoch 0, keys [1, 2])            from the guest
  2  host -> guest  SYNC, snapshot_end 4 (key 1)
  3  guest -> host  ACK 0                                   from the guest
  4  DATA 1 SNAPSHOT  put net/dns                            key 1
  5  DATA 2 SNAPSHOT  put motd "hello"                       key 1
  6  DATA 3 SNAPSHOT  chunk 0/2 of put big (300 x "b")       key 1
  7  DATA 4 SNAPSHOT  chunk 1/2                               key 1
     (the snapshot is complete at 4)
  8  DATA 5  put motd "hello again" v2                        key 2
  9  DATA 5  again (retransmission)                 duplicate key 2
 10  DATA 7  put late                                   gap  key 2
 11  DATA 6  delete net/dns                                  key 2
 12  DATA 7  put late (retransmission)                       key 2
 13  DATA 1 for chan-id 8 (vid 4093, 169.254.1.8)       other vid
 14  DATA 1 for 169.254.1.99 on our vid                 other address
 15  DATA 8  put forged, under a key the guest lacks        auth
 16  HEARTBEAT                                               key 2
 17  DATA 8  put untagged, no 802.1Q tag (as on chand0)      key 2
 18  ARP request                                            not UDP
 19  DATA 9  put spoofed, from 169.254.0.9                  drop_source
"""

import hashlib
import hmac
import json
import struct
import sys

KEY1 = bytes.fromhex(
    "00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978")
KEY2 = bytes.fromhex(
    "f0e1d2c3b4a5968778695a4b3c2d1e0ffedcba98765432100123456789abcdef")
KEY_WRONG = bytes.fromhex("55" * 32)

HOST_IP = "169.254.0.1"
HOST_MAC = "0a:c4:00:00:00:00"
PORT = 7433
VID = 4094
GUEST_IP = "169.254.1.7"
GUEST_MAC = "0a:c4:00:00:00:07"
HOST_EPOCH = 0x1234abcd
GUEST_EPOCH = 0x0badcafe

DATA, ACK, HELLO, SYNC, HEARTBEAT = 1, 2, 3, 4, 5
F_ACK_VALID, F_SNAPSHOT = 0x01, 0x02


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ip_bytes(ip):
    return bytes(int(x) for x in ip.split("."))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def chand_frame(ftype, epoch, seq=0, ack=None, payload=b"", key=KEY1,
                flags=0, index=0, count=1, vid=VID):
    if ack is not None:
        flags |= F_ACK_VALID
    header = struct.pack("!HBBBBHIQQHHHH", 0x4348, 1, ftype, flags, 0, vid,
                         epoch, seq, ack or 0, index, count, len(payload), 0)
    body = header + payload
    return body + hmac.new(key, body, hashlib.sha256).digest()[:16]


def udp_packet(src_ip, dst_ip, src_mac, dst_mac, payload, vid=VID,
               tagged=True, src_port=PORT, dst_port=PORT):
    udp_len = 8 + len(payload)
    pseudo = ip_bytes(src_ip) + ip_bytes(dst_ip) + struct.pack(
        "!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", src_port, dst_port, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64,
                     17, 0, ip_bytes(src_ip), ip_bytes(dst_ip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = mac_bytes(dst_mac) + mac_bytes(src_mac)
    if tagged:
        eth += struct.pack("!HH", 0x8100, vid & 0xfff)
    eth += struct.pack("!H", 0x0800)
    return eth + ip + udp


def to_guest(frame, **kw):
    return udp_packet(HOST_IP, GUEST_IP, HOST_MAC, GUEST_MAC, frame, **kw)


def to_host(frame):
    return udp_packet(GUEST_IP, HOST_IP, GUEST_MAC, HOST_MAC, frame)


def js(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def batch(*records):
    return js({"records": list(records)})


def put(key, value, version=1):
    return {"op": "put", "key": key, "value": value, "version": version}


def delete(key, version):
    return {"op": "delete", "key": key, "version": version}


def data(seq, payload, key=KEY2, flags=0, **kw):
    return to_guest(chand_frame(DATA, HOST_EPOCH, seq, payload=payload,
                                key=key, flags=flags), **kw)


def arp_request():
    eth = b"\xff" * 6 + mac_bytes(GUEST_MAC) + struct.pack("!HH", 0x8100,
                                                          VID)
    eth += struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
                      mac_bytes(GUEST_MAC), ip_bytes(GUEST_IP), b"\0" * 6,
                      ip_bytes(HOST_IP))
    return eth + arp


def scenario():
    """Returns [(seconds from start, frame bytes)]."""
    big = batch(put("big", "b" * 300))
    half = len(big) // 2
    snap = F_SNAPSHOT
    frames = [
        (0.000, to_host(chand_frame(
            HELLO, 0, ack=0,
            payload=js({"guest_epoch": GUEST_EPOCH, "keys": [1, 2]})))),
        (0.010, to_guest(chand_frame(
            SYNC, HOST_EPOCH,
            payload=js({"guest_epoch": GUEST_EPOCH, "snapshot_end": 4})))),
        (0.020, to_host(chand_frame(ACK, HOST_EPOCH, ack=0,
                                    payload=js({"keys": [1, 2]})))),
        (0.030, data(1, batch(put("net/dns", {"servers": ["10.0.0.2"]})),
                     key=KEY1, flags=snap)),
        (0.0302, data(2, batch(put("motd", "hello")), key=KEY1, flags=snap)),
        (0.0304, to_guest(chand_frame(DATA, HOST_EPOCH, 3, payload=big[:half],
                                      key=KEY1, flags=snap, index=0,
                                      count=2))),
        (0.0306, to_guest(chand_frame(DATA, HOST_EPOCH, 4, payload=big[half:],
                                      key=KEY1, flags=snap, index=1,
                                      count=2))),
        (0.100, data(5, batch(put("motd", "hello again", 2)))),
        (0.1002, data(5, batch(put("motd", "hello again", 2)))),
        (0.200, data(7, batch(put("late", [1, 2, 3])))),
        (0.2002, data(6, batch(delete("net/dns", 2)))),
        (0.2004, data(7, batch(put("late", [1, 2, 3])))),
        (0.300, udp_packet(HOST_IP, "169.254.1.8", HOST_MAC,
                           "0a:c4:00:00:00:08",
                           chand_frame(DATA, HOST_EPOCH, 1, key=KEY2,
                                       payload=batch(put("intruder", 1)),
                                       vid=4093),
                           vid=4093)),
        (0.310, udp_packet(HOST_IP, "169.254.1.99", HOST_MAC,
                           "0a:c4:00:00:00:63",
                           chand_frame(DATA, HOST_EPOCH, 1, key=KEY2,
                                       payload=batch(put("intruder", 2))))),
        (0.400, data(8, batch(put("forged", True)), key=KEY_WRONG)),
        (0.500, to_guest(chand_frame(HEARTBEAT, HOST_EPOCH, key=KEY2))),
        (0.600, data(8, batch(put("untagged", None)), tagged=False)),
        (0.700, arp_request()),
        (0.800, udp_packet("169.254.0.9", GUEST_IP, HOST_MAC, GUEST_MAC,
                           chand_frame(DATA, HOST_EPOCH, 9, key=KEY2,
                                       payload=batch(put("spoofed", 1))))),
    ]
    return frames


def write_pcap(path, frames, start=1700000000):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for t, frame in frames:
            usec = int(round(t * 1e6))
            f.write(struct.pack("<IIII", start + usec // 1000000,
                                usec % 1000000, len(frame), len(frame)))
            f.write(frame)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    write_pcap(sys.argv[1], scenario())
    with open(sys.argv[2], "w") as f:
        f.write("# chand channel keys of the test capture\n")
        f.write("1 %s\n" % KEY1.hex())
        f.write("2 %s\n" % KEY2.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
