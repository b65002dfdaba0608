#!/usr/bin/env python3
"""Writes hand-made SPEC §12 vectors for the C implementation from a
second, independent reading of SPEC.md in Python (hmac, hashlib, the
cryptography package for X25519 and AES-GCM, and a small XSalsa20-Poly1305
below). It shares no code with the C side, so a slip in either shows up
as a disagreement. Run: python3 gen.py OUTDIR"""
import hashlib, hmac, struct, sys, os
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import serialization

def pub(s):
    return X25519PrivateKey.from_private_bytes(s).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def dh(s, P):
    return X25519PrivateKey.from_private_bytes(s).exchange(X25519PublicKey.from_public_bytes(P))

# ---- XSalsa20-Poly1305 (NaCl secretbox) ----
M32 = 0xffffffff
def rotl(x, n): return ((x << n) | (x >> (32 - n))) & M32
def salsa_rounds(x):
    x = list(x)
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11),
                           (0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= rotl((x[a] + x[d]) & M32, 7)
            x[c] ^= rotl((x[b] + x[a]) & M32, 9)
            x[d] ^= rotl((x[c] + x[b]) & M32, 13)
            x[a] ^= rotl((x[d] + x[c]) & M32, 18)
    return x
SIGMA = struct.unpack('<4I', b'expand 32-byte k')
def state(k, n16):
    kw = struct.unpack('<8I', k); nw = struct.unpack('<4I', n16)
    return [SIGMA[0], kw[0], kw[1], kw[2], kw[3], SIGMA[1], nw[0], nw[1], nw[2], nw[3], SIGMA[2],
            kw[4], kw[5], kw[6], kw[7], SIGMA[3]]
def hsalsa(k, n16):
    x = salsa_rounds(state(k, n16))
    return struct.pack('<8I', *[x[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)])
def salsa_stream(k, n8, length):
    out = b''
    for ctr in range((length + 63) // 64):
        st = state(k, n8 + struct.pack('<Q', ctr))
        x = salsa_rounds(st)
        out += struct.pack('<16I', *[(a + b) & M32 for a, b in zip(x, st)])
    return out[:length]
def poly1305(k, m):
    r = int.from_bytes(k[:16], 'little') & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(k[16:], 'little'); p = (1 << 130) - 5; a = 0
    for i in range(0, len(m), 16):
        a = (a + int.from_bytes(m[i:i + 16] + b'\x01', 'little')) * r % p
    return ((a + s) % (1 << 128)).to_bytes(16, 'little')
def secretbox(k, n, m):
    sub = hsalsa(k, n[:16])
    ks = salsa_stream(sub, n[16:], 32 + len(m))
    c = bytes(a ^ b for a, b in zip(m, ks[32:]))
    return poly1305(ks[:32], c) + c

def gcm(k, n, m, ad): return AESGCM(k).encrypt(n, m, ad)

# ---- SPEC §2, §4 ----
def H(k, *parts): return hmac.new(k, b''.join(parts), hashlib.sha256).digest()
def extract(salt, ikm): return H(salt, ikm)
def expand(prk, info): return H(prk, info, b'\x01')
def u64(x): return struct.pack('>Q', x)

def seal(suite, K, n24, n12, m, ad):
    return secretbox(K, n24, m) if suite == 1 else gcm(K, n12, m, ad)

class Client:
    def __init__(self, S, ce, c=None, suite=1, E=0):
        self.S, self.suite, self.Ce = S, suite, pub(ce)
        self.prk0 = extract(b'secsock v2 request', dh(ce, S) + self.Ce + S)
        self.kq = expand(self.prk0, b'secsock v2 c2s' + bytes([suite]))
        self.kr = expand(self.prk0, b'secsock v2 s2c' + bytes([suite]))
        self.C = None
        if c:
            self.C = pub(c)
            prkv = extract(b'secsock v2 vouch key', dh(c, S) + self.C + S)
            self.E = E
            self.V = H(prkv, b'secsock v2 vouch', self.Ce, self.C, S, u64(E))
    def request(self, N, T, body, ping=False, flags=0, ext=b''):
        kind = (4 if ping else 2) if self.C else (3 if ping else 1)
        h = bytes([2, kind, self.suite, flags]) + self.Ce + u64(N) + u64(T) + struct.pack('>H', len(ext)) + ext
        n24 = lambda p: bytes([p, kind, flags]) + b'\0' * 5 + u64(N) + u64(T)
        n12 = lambda p: bytes([p, kind, flags, 0]) + struct.pack('>II', N, T % 2**32)
        out = h
        if self.C:
            out += seal(self.suite, self.kq, n24(2), n12(2), self.C + self.V + u64(self.E), h)
        return h, out + seal(self.suite, self.kq, n24(1), n12(1), b'' if ping else body, h)
    def reply(self, R, N, body):  # what the server seals (§5.2)
        head = bytes([2, 0x11, self.suite]) + R
        if self.suite == 1:
            return head + secretbox(self.kr, R + u64(N), body)
        return head + gcm(self.kr, R[:12], body, head + u64(N))
    def refusal(self, h, reason):
        return bytes([2, 0x12, reason]) + H(self.prk0, b'secsock v2 refusal', h, bytes([reason]))[:16]

def det(label, i=0): return hashlib.sha256(b'%s %d' % (label.encode(), i)).digest()

NOW = 1790000000000

def step(f, n, ce, suite, N, T, body, req, expect_server, R=None, reply_body=None, reply=None,
         expect_client=None, ping=False, mutated=False, now=NOW, E=None, client_request=None):
    f.write('\nstep: %d\nnow: %d\neph_secret: %s\nsuite: %d\ncounter: %d\ntimestamp: %d\nping: %s\n' %
            (n, now, ce.hex(), suite, N, T, 'true' if ping else 'false'))
    if E is not None: f.write('vouch_expiry: %d\n' % E)
    if client_request is not None: f.write('client_request: %s\n' % client_request.hex())
    f.write('request_body: %s\nrequest: %s\nmutated: %s\nexpect_server: %s\n' %
            (body.hex(), req.hex(), 'true' if mutated else 'false', expect_server))
    if R is not None: f.write('reply_random: %s\n' % R.hex())
    if reply_body is not None: f.write('reply_body: %s\n' % reply_body.hex())
    if reply is not None: f.write('reply: %s\nreply_mutated: false\nexpect_client: %s\n' % (reply.hex(), expect_client))

def header(f, name, s, c=None, authorized=(), anon=False, extra=''):
    f.write('# hand-made (interop/c/testvec/gen.py)\nname: %s\n' % name)
    for k in s: f.write('server_secret: %s\n' % k.hex())
    if c: f.write('client_secret: %s\n' % c.hex())
    f.write('freshness: 120000\nmax_skew: 10000\n')
    for a in authorized: f.write('authorized: %s\n' % a.hex())
    f.write('allow_anonymous: %s\n%s' % ('true' if anon else 'false', extra))

def main(out):
    os.makedirs(out, exist_ok=True)
    s, c, ce, ce2 = det('s'), det('c'), det('ce'), det('ce', 2)
    S = pub(s)
    for suite, sname in ((1, 'box'), (2, 'aesgcm')):
        # vouched, authorized: deliver, resend x4, then REPLAYED; a ping
        with open(f'{out}/hand-vouched-{sname}.vec', 'w') as f:
            header(f, f'hand-vouched-{sname}', [s], c, [pub(c)])
            E = NOW + 3600000
            cl = Client(S, ce, c, suite, E)
            h, req = cl.request(1, NOW, b'hello')
            R = det('R')[:16]
            rep = cl.reply(R, 1, b'world')
            step(f, 1, ce, suite, 1, NOW, b'hello', req, 'deliver', R, b'world', rep, 'ok', E=E)
            for i in range(4):
                step(f, 2 + i, ce, suite, 1, NOW, b'hello', req, 'resend', None, b'world', rep, 'ok', E=E)
            step(f, 6, ce, suite, 1, NOW, b'hello', req, 'refuse:replayed', None, None, cl.refusal(h, 3), 'error:replayed', E=E)
            h, req = cl.request(2, NOW + 5, b'', ping=True)
            step(f, 7, ce, suite, 2, NOW + 5, b'', req, 'reply', R, None, cl.reply(R, 2, b''), 'ok', ping=True, E=E)
            h, req = cl.request(3, NOW - 120001, b'old')
            step(f, 8, ce, suite, 3, NOW - 120001, b'old', req, 'refuse:stale', None, None, cl.refusal(h, 2), 'error:stale', E=E)
            h, req = cl.request(4, NOW + 1, b'again')
            step(f, 9, ce, suite, 4, NOW + 1, b'again', req, 'deliver', R, b'w', cl.reply(R, 4, b'w'), 'ok', E=E)
            # the same C' with another E (a vouch made for it, but not the one verified): forged
            other = Client(S, ce, c, suite, E + 1)
            h, req = other.request(5, NOW + 2, b'x')
            step(f, 10, ce, suite, 5, NOW + 2, b'x', req, 'drop:forged', E=E + 1)
            h, req = cl.request(1, NOW + 3, b'x')  # counter 1 again: in the reply cache
            step(f, 11, ce, suite, 1, NOW + 3, b'x', req, 'refuse:replayed', None, None, cl.refusal(h, 3), 'error:replayed', E=E)
        # anonymous with a policy: NOT_AUTHORIZED; an element of an unassigned
        # type (6, §10) with its flags bit: UNSUPPORTED_FEATURE
        with open(f'{out}/hand-anon-{sname}.vec', 'w') as f:
            header(f, f'hand-anon-{sname}', [s], None, [pub(c)])
            cl = Client(S, ce2, None, suite)
            h, req = cl.request(1, NOW, b'x')
            step(f, 1, ce2, suite, 1, NOW, b'x', req, 'refuse:not-authorized', None, None, cl.refusal(h, 1), 'error:not-authorized')
            h0, req0 = cl.request(2, NOW, b'x')
            h, req = cl.request(2, NOW, b'x', flags=0x40, ext=b'\x06\x00\x00')
            step(f, 2, ce2, suite, 2, NOW, b'x', req, 'refuse:unsupported-feature', None, None, cl.refusal(h, 4),
                 'error:auth-failed', mutated=True, client_request=req0)  # the client sent flags 0: its H differs
            step(f, 3, ce2, suite, 2, NOW, b'x', req, 'refuse:unsupported-feature', None, None, cl.refusal(h, 4),
                 'error:unsupported-feature', mutated=True)  # with the H that was refused, it verifies
    # a vouch made for another C' is dropped
    with open(f'{out}/hand-vouch-other-eph.vec', 'w') as f:
        header(f, 'hand-vouch-other-eph', [s], c)
        E = NOW + 1000
        a, b = Client(S, ce, c, 1, E), Client(S, ce2, c, 1, E)
        a.V = b.V
        h, req = a.request(1, NOW, b'hi')
        step(f, 1, ce, 1, 1, NOW, b'hi', req, 'drop:bad-vouch', mutated=True, E=E)
        # an expired vouch (T > E) and one too far ahead: STALE, after the vouch verified
        for i, E2 in enumerate((NOW - 1, NOW + 86400001)):
            cl = Client(S, ce2, c, 1, E2)
            h, req = cl.request(1 + i, NOW, b'hi')
            step(f, 2 + i, ce2, 1, 1 + i, NOW, b'hi', req, 'refuse:stale', None, None, cl.refusal(h, 2), 'error:stale', E=E2)
        cl = Client(S, ce2, c, 1, NOW + 86400000)
        h, req = cl.request(3, NOW, b'hi')
        step(f, 4, ce2, 1, 3, NOW, b'hi', req, 'deliver', det('R')[:16], b'', cl.reply(det('R')[:16], 3, b''), 'ok', E=NOW + 86400000)
    # an unknown suite is refused with the current key
    with open(f'{out}/hand-unknown-suite.vec', 'w') as f:
        header(f, 'hand-unknown-suite', [s, det('s', 2)])
        cl = Client(S, ce, None, 7)
        h = bytes([2, 1, 7, 0]) + cl.Ce + u64(1) + u64(NOW) + b'\0\0'
        req = h + b'\0' * 16
        step(f, 1, ce, 7, 1, NOW, b'', req, 'refuse:unsupported-feature', None, None, cl.refusal(h, 4),
             'error:unsupported-feature', mutated=True)

    # another encoding of C' opens nothing (§4.1): u -> 1/u adds the point
    # of order 2, which X25519 with a clamped scalar does not see; bit 255
    # set is not canonical
    with open(f'{out}/hand-reencoded-eph.vec', 'w') as f:
        header(f, 'hand-reencoded-eph', [s])
        cl = Client(S, ce)
        h, req = cl.request(1, NOW, b'hi')
        P = 2**255 - 19
        u = int.from_bytes(cl.Ce, 'little')
        other = pow(u, P - 2, P).to_bytes(32, 'little')
        assert dh(det('x'), other) == dh(det('x'), cl.Ce)
        step(f, 1, ce, 1, 1, NOW, b'hi', req[:4] + other + req[36:], 'hint:cannot-open', None, None,
             bytes([2, 0x13, 1]), 'error:server-key-mismatch', mutated=True)
        top = bytearray(req); top[35] |= 0x80
        step(f, 2, ce, 1, 1, NOW, b'hi', bytes(top), 'drop:malformed', mutated=True)
        step(f, 3, ce, 1, 1, NOW, b'hi', req, 'deliver', det('R')[:16], b'', cl.reply(det('R')[:16], 1, b''), 'ok')
    # the reply cache holds 2 requests: an older counter falls back to the window (REPLAYED)
    with open(f'{out}/hand-reply-slots.vec', 'w') as f:
        header(f, 'hand-reply-slots', [s], extra='reply_slots: 2\nmax_resends: 1\n')
        cl, R = Client(S, ce), det('R')[:16]
        for N in (1, 2, 3):
            h, req = cl.request(N, NOW, b'q')
            step(f, N, ce, 1, N, NOW, b'q', req, 'deliver', R, b'a', cl.reply(R, N, b'a'), 'ok')
        h, req = cl.request(1, NOW, b'q')
        step(f, 4, ce, 1, 1, NOW, b'q', req, 'refuse:replayed', None, None, cl.refusal(h, 3), 'error:replayed')
        h, req = cl.request(3, NOW, b'q')
        step(f, 5, ce, 1, 3, NOW, b'q', req, 'resend', None, b'a', cl.reply(R, 3, b'a'), 'ok')
        step(f, 6, ce, 1, 3, NOW, b'q', req, 'refuse:replayed', None, None, cl.refusal(h, 3), 'error:replayed')
    # a budget of 1 scalar multiplication per second: the second new C' gets BUSY
    with open(f'{out}/hand-budget.vec', 'w') as f:
        header(f, 'hand-budget', [s], extra='budget: 1\n')
        R = det('R')[:16]
        a, b = Client(S, ce), Client(S, ce2)
        h, req = a.request(1, NOW, b'q')
        step(f, 1, ce, 1, 1, NOW, b'q', req, 'deliver', R, b'a', a.reply(R, 1, b'a'), 'ok')
        h, req = b.request(1, NOW, b'q')
        step(f, 2, ce2, 1, 1, NOW, b'q', req, 'hint:busy', None, None, bytes([2, 0x13, 3]), 'error:busy')
        h, req = a.request(2, NOW, b'q')  # a cached peer is never charged
        step(f, 3, ce, 1, 2, NOW, b'q', req, 'deliver', R, b'a', a.reply(R, 2, b'a'), 'ok')
        h, req = b.request(1, NOW + 1000, b'q')
        step(f, 4, ce2, 1, 1, NOW + 1000, b'q', req, 'deliver', R, b'a', b.reply(R, 1, b'a'), 'ok', now=NOW + 1000)
    # the segmented peer cache (§6.2): 4 peers, at most 3 protected
    with open(f'{out}/hand-peer-cache.vec', 'w') as f:
        header(f, 'hand-peer-cache', [s], extra='peer_cache: 4\n')
        R = det('R')[:16]
        n = [0]
        def go(ce, N, T, expect, body=b'b'):
            cl = Client(S, ce)
            h, req = cl.request(N, T, body)
            n[0] += 1
            if expect == 'deliver':
                step(f, n[0], ce, 1, N, T, body, req, 'deliver', R, b'r', cl.reply(R, N, b'r'), 'ok')
            elif expect == 'resend':
                step(f, n[0], ce, 1, N, T, body, req, 'resend', None, b'r', cl.reply(R, N, b'r'), 'ok')
            else:
                step(f, n[0], ce, 1, N, T, body, req, 'refuse:' + expect, None, None,
                     cl.refusal(h, {'stale': 2, 'replayed': 3, 'in-doubt': 5}[expect]), 'error:' + expect)
        A = det('A')
        go(A, 1, NOW, 'deliver'); go(A, 2, NOW + 1, 'deliver')     # A protected
        one = [det('one', i) for i in range(5)]
        for i, k in enumerate(one):
            go(k, 1, NOW + 10 + i, 'deliver')                      # one-shot keys evict each other
        go(A, 1, NOW, 'resend')                                    # A still cached
        go(one[0], 1, NOW + 10, 'resend')                          # evicted, but its reply is kept
        go(one[0], 2, NOW + 10, 'deliver')                         # at the tombstone's T but above its N: never accepted, served
        go(one[0], 3, NOW + 11, 'deliver')                         # above both: served
        go(one[0], 2, NOW + 10, 'resend')                          # re-admitted: its new window and reply cache
        go(one[4], 1, NOW + 14, 'resend')                          # the newest one-shot key is cached
        go(one[4], 2, NOW + 14, 'deliver')
        go(one[4], 2, NOW + 14, 'resend')

main(sys.argv[1])
