#!/usr/bin/env python3
# test/fuzz/seeds.py: writes the seed corpus of each libFuzzer target into
# test/fuzz/corpus/TARGET/seed-*. Seeds give the fuzzer well-formed inputs to mutate
# (valid click IDs near "now", real trigger arguments, the three HTTP-date formats);
# crash inputs found later are added beside them as crash-* files and never regenerated.
import os, struct

top = os.path.dirname(os.path.abspath(__file__))
NOW = 1795000000  # 2026-11-18


def write(target, name, data):
    d = os.path.join(top, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def oid(t, rest="0000000000000000"):
    return "%08x%s" % (t, rest)


def click(mode, value, now=NOW, ttl=30 * 86400, skew=300, max_ids=10):
    hdr = bytes([mode]) + struct.pack("<Q", now)[:5] + struct.pack("<I", ttl) + \
        struct.pack("<H", skew) + bytes([(max_ids + 1) % 102])
    return hdr + value.encode()


ids = [oid(NOW - 3600 * i, "%016x" % (i * 7919)) for i in range(12)]
write("click", "one", click(1, ids[0]))
write("click", "upper", click(1, ids[1].upper()))
write("click", "expired", click(1, oid(NOW - 40 * 86400)))
write("click", "future", click(1, oid(NOW + 86400)))
write("click", "swaarm", click(1, "abc_DEF.123~x-y"))
write("click", "cookie", click(0, "-".join(ids[:5])))
write("click", "cookie-dups", click(0, "-".join([ids[0], ids[0].upper(), "junk", "", ids[2]])))
write("click", "cookie-cap", click(0, "-".join(ids), max_ids=3))
write("click", "cookie-nocap", click(0, "-".join(ids + ids[:3]), max_ids=-1))
write("click", "header", click(2, "aecid=" + "-".join(ids[:2]), now=86400 * 30))
write("click", "header-bad", click(2, "aecid=a;b\r\nX: y", now=86400))
write("click", "format", click(3, "name with space"))

F = lambda *fields: b"\0".join(f.encode() for f in fields)
full = ["c-42", "123.45", "EUR", "online", "cust 1", "cv&x=1", "V1;V2", "-".join(ids[:2]),
        "user-1", "purchase", "ev=1", "9.5", "203.0.113.7", "Mozilla/5.0 (X11)\r\nX: y",
        "https://shop.example/p?q=1"]
write("render", "affilae", bytes([0]) + F("https://lb.affilae.com/", "aaaa-bbbb", *full))
write("render", "affilae-query", bytes([0]) + F("https://lb.affilae.com/?a=b", "k", *full))
write("render", "affilae-masked", bytes([4]) + F("https://lb.affilae.com/", "secret", *full))
write("render", "postback-get", bytes([1]) + F("https://t.swaarm-app.com//", "tok", *full))
write("render", "postback-post", bytes([1 | 8]) + F("https://t.swaarm-app.com", "tok", *full))
write("render", "postback-query", bytes([1 | 16 | 4]) + F("https://t.swaarm-app.com", "tok", *full))
write("render", "s2sevent", bytes([2]) + F("https://t.swaarm-app.com/", "tok", *full))
# amounts as numeric(12,4) stores them, in currencies of 0, 2, 3 and 4 decimals and none
# known; an IPv4-mapped client address; Swaarm's attribution-only s2sevent (empty event_id)
def with_(i, v, base=full):
    f = list(base)
    f[i] = v
    return f
write("render", "amount-4dp", bytes([0]) + F("https://lb.affilae.com/", "k", *with_(1, "123.4500")))
write("render", "amount-jpy", bytes([1]) + F("https://t.swaarm-app.com", "tok",
                                             *with_(2, "JPY", with_(1, "100.0000"))))
write("render", "amount-kwd", bytes([0]) + F("https://lb.affilae.com/", "k",
                                             *with_(2, "KWD", with_(1, "1.2"))))
write("render", "amount-clf", bytes([1 | 8]) + F("https://t.swaarm-app.com", "tok",
                                                 *with_(2, "CLF", with_(1, "-2.12345"))))
write("render", "amount-unknown", bytes([0]) + F("https://lb.affilae.com/", "k",
                                                 *with_(2, "XAU", with_(1, "10.500"))))
write("render", "ip-mapped", bytes([0]) + F("https://lb.affilae.com/", "k", *with_(12, "::ffff:192.0.2.1")))
write("render", "ip-mapped-post", bytes([1 | 8 | 16]) + F("https://t.swaarm-app.com", "tok",
                                                         *with_(12, "::FFFF:10.1.2.3")))
write("render", "s2sevent-attribution", bytes([2]) + F("https://t.swaarm-app.com", "tok",
                                                       *with_(9, "", with_(12, "::ffff:198.51.100.4"))))
write("render", "unicode", bytes([2]) + F("https://t.example", "t\u00e9", *[v + " \u20ac" for v in full]))

A = lambda *args: b"\0".join(a.encode() for a in args)
write("trigger_args", "affilae", A("endpoint=affilae", "order_id=id", "amount=total",
                                   "currency=cur", "click_ids=aecid", "status=state",
                                   "validated_status=paid", "validated_status=shipped"))
write("trigger_args", "swaarm", A("endpoint=sw", "order_id=id", "user_id=customer",
                                  "event_id='purchase'", "client_ip=ip", "user_agent='it''s'"))
write("trigger_args", "odd-columns", A("endpoint=e", "order_id=a=b;\"c\"", "amount=x y",
                                       "click_ids=Ids", "cv=''''"))
write("trigger_args", "bad", A("endpoint=e", "endpoint=f", "order_id=", "nokey"))

def retry(value, now=NOW, attempt=3, base=10000, mx=3600000, status=503, kind=0):
    return struct.pack("<IHIIHBH", now // 4, attempt + 100, base - 1, mx - 1, status + 1000,
                       kind, 30000) + value.encode()

write("retry", "delta", retry("120"))
write("retry", "delta-space", retry("  7 \r\n"))
write("retry", "imf", retry("Wed, 18 Nov 2026 07:28:00 GMT"))
write("retry", "rfc850", retry("Wednesday, 18-Nov-26 07:28:00 GMT", status=429))
write("retry", "asctime", retry("Wed Nov 18 07:28:00 2026", status=408))
write("retry", "past", retry("Thu, 01 Jan 1970 00:00:00 GMT", kind=1))
write("retry", "huge", retry("99999999999999999999999"))
write("retry", "status200", retry("", status=200))
write("retry", "status401", retry("", status=401))

def netcheck(mode, addr, text):
    return bytes([mode]) + addr + text.encode()

import socket
v6 = lambda a: socket.inet_pton(socket.AF_INET6, a)
v4 = lambda a: socket.inet_pton(socket.AF_INET, a) + bytes(12)
write("netcheck", "loopback", netcheck(0, v4("127.0.0.1"), "127.0.0.0/8, ::1/128"))
write("netcheck", "metadata", netcheck(1, v4("169.254.169.254"), "169.254.0.0/16"))
write("netcheck", "mapped", netcheck(0, v6("::ffff:10.0.0.1"), "10.0.0.0/8,fd00::/8"))
write("netcheck", "nat64", netcheck(0, v6("64:ff9b::7f00:1"), " 192.168.0.0/24 , 0.0.0.0/0"))
write("netcheck", "bad", netcheck(0, v6("fe80::1"), "10.0.0.1/8,,::/129"))

R = lambda flags, where, text, secret: bytes([flags, where]) + text.encode() + b"\0" + secret.encode()
write("redact", "affilae-echo", R(0, 19, "GET /postback?key=&id=1 HTTP/1.1", "603ed1800000000000000000-5f8a9c000000000000000abc"))
write("redact", "encoded-lower", R(2, 3, "t=;", "to+k/en"))
write("redact", "form-cut", R(3 | 4, 0, "", "a b%c"))
write("redact", "percent", R(1, 1, "a%25b", "%25"))

# Swaarm's /click answers (its other seed-* files predate this list): an ID, escapes that
# no ID holds (jsonapi refuses some of them unless rewritten first), nesting at and past
# the limit of 64
write("swaarm_json", "id", b'{"id": "clk1795000000-0123456789ab"}')
write("swaarm_json", "escapes-no-id", b'{"n": "caf\\u00e9 \\u0000 \\ud800 \\ud83d\\ude00", "id": "a\\u0041\\/"}')
write("swaarm_json", "depth-64", b'{"a": ' + b'[' * 64 + b']' * 64 + b', "id": 7}')
write("swaarm_json", "depth-65", b'{"a": ' + b'[' * 65 + b']' * 65 + b', "id": 7}')
