// A second implementation of the hybrid mode's key schedule (SPEC.md §16),
// on an ML-KEM-768 that is not Go's (@noble/post-quantum) and X25519,
// XSalsa20-Poly1305 from @noble/curves and @noble/ciphers, HMAC and
// AES-256-GCM from node:crypto. It replays the client and key-derivation
// side of every file in testdata/vectors/hybrid from the SPEC's formulas:
// the epoch's ML-KEM key from the seed, each ciphertext re-encapsulated
// from kem_random, each shared secret, each ticket, and the request and
// reply boxes under the hybrid keys. Usage: node check.mjs DIR
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, createHash, createDecipheriv } from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

const enc = (s) => Buffer.from(s, 'ascii');
const hmac = (key, ...parts) => {
  const m = createHmac('sha256', key);
  for (const p of parts) m.update(p);
  return m.digest();
};
const expand = (prk, ...info) => hmac(prk, ...info, Buffer.from([1]));
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
const eq = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

function parse(path) {
  const head = {}, steps = [];
  let cur = head;
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    const k = line.slice(0, i).trim(), v = line.slice(i + 1).trim();
    if (k === 'step') { cur = {}; steps.push(cur); }
    (cur[k] ??= []).push(v);
  }
  return { head, steps };
}
const hex = (f, k) => (f[k] ? Buffer.from(f[k][0], 'hex') : null);
const num = (f, k) => (f[k] ? Number(f[k][0]) : undefined);

// Epoch e's keys (SPEC.md §14.1, §16.1).
function epochKeys(seed0, index0, e) {
  let seed = seed0;
  for (let i = index0; i < e; i++) seed = hmac(seed, enc('secsock v2 epoch ratchet'));
  const esk = hmac(seed, enc('secsock v2 epoch key'));
  const E = Buffer.from(x25519.getPublicKey(esk));
  const id = createHash('sha256').update(E).digest().subarray(0, 8);
  const dz = Buffer.concat([hmac(seed, enc('secsock v2 epoch kem'), Buffer.from([1])),
    hmac(seed, enc('secsock v2 epoch kem'), Buffer.from([2]))]);
  const kem = ml_kem768.keygen(dz);
  const tk = hmac(seed, enc('secsock v2 epoch ticket'));
  return { e, E, id, ek: Buffer.from(kem.publicKey), dk: kem.secretKey, tk };
}

// Request layout (SPEC.md §5.1, §10).
function parseRequest(b) {
  const x = b.readUInt16BE(52);
  const elems = {};
  for (let o = 54; o < 54 + x;) {
    const t = b[o], n = b.readUInt16BE(o + 1);
    elems[t] = { all: b.subarray(o, o + 3 + n), value: b.subarray(o + 3, o + 3 + n) };
    o += 3 + n;
  }
  return { kind: b[1], suite: b[2], flags: b[3], eph: b.subarray(4, 36), H: b.subarray(0, 54 + x), rest: b.subarray(54 + x), elems };
}

function openAEAD(suite, key, n24, n12, c, ad) {
  if (suite === 1) return Buffer.from(xsalsa20poly1305(key, n24).decrypt(c));
  const d = createDecipheriv('aes-256-gcm', key, n12);
  d.setAAD(ad);
  d.setAuthTag(c.subarray(c.length - 16));
  return Buffer.concat([d.update(c.subarray(0, c.length - 16)), d.final()]);
}

function openTicket(ep, t, eph, S, suite) {
  const r = t.subarray(0, 16);
  const kt = hmac(ep.tk, enc('secsock v2 ticket'), r);
  const ad = Buffer.concat([eph, S, u32(ep.e), ep.id, Buffer.from([1, suite])]);
  try { return openAEAD(2, kt, null, Buffer.alloc(12), t.subarray(16), ad); } catch { return null; }
}

function checkStep(file, head, st, epochs, S) {
  const fail = (msg) => { throw new Error(`${file} step ${st.step[0]}: ${msg}`); };
  const req = hex(st, 'request'), sent = hex(st, 'client_request') ?? req;
  const r = parseRequest(sent), got = parseRequest(req);
  const suite = num(st, 'suite'), eph = hex(st, 'eph_secret');
  const ephPub = Buffer.from(x25519.getPublicKey(eph));
  if (!eq(ephPub, r.eph)) fail("C' is not the public key of eph_secret");
  const ep = st.epoch_key ? epochs.find((k) => eq(k.E, hex(st, 'epoch_key'))) : null;
  if (st.epoch_key && !ep) fail('epoch_key is none of the chain\'s epoch keys');
  let q = null, element = null, ekBound = null;
  if (st.kem_epoch) {
    const kep = epochs[num(st, 'kem_epoch')];
    let ct = hex(st, 'kem_ciphertext');
    if (st.kem_random) {
      const e = ml_kem768.encapsulate(kep.ek, hex(st, 'kem_random'));
      if (!eq(e.sharedSecret, hex(st, 'kem_shared'))) fail('encapsulation gives another shared secret');
      ct = Buffer.from(e.cipherText);
      if (st.mutated[0] === 'false' && !eq(ct, r.elems[1].value)) fail('the request does not carry the re-encapsulated ciphertext');
    }
    const ss = Buffer.from(ml_kem768.decapsulate(ct, kep.dk));
    if (!eq(ss, hex(st, 'kem_shared'))) fail('decapsulation gives another shared secret');
    if (got.elems[1] && got.elems[1].value.length === 1088 && !eq(got.elems[1].value, ct)) {
      // Changed in transit: FIPS 203 implicit rejection gives another secret.
      if (eq(Buffer.from(ml_kem768.decapsulate(got.elems[1].value, kep.dk)), ss)) fail('a changed ciphertext decapsulates to the same secret');
    }
    q = ss; element = r.elems[1]?.all; ekBound = kep.ek;
  }
  if (st.ticket_sent) {
    const t = got.elems[2]?.value; // the ticket the server received
    const opened = t && t.length === 64 ? openTicket(ep, t, ephPub, S, suite) : null;
    const refused = ['refuse:unknown-ticket', 'drop:malformed'].includes(st.expect_server[0]);
    if (refused === (opened !== null)) fail(`the ticket ${opened ? 'opens' : 'does not open'}, the server says ${st.expect_server[0]}`);
    if (opened && !eq(opened, hex(st, 'ticket_secret'))) fail('the ticket holds another secret');
    q = hex(st, 'ticket_secret'); element = r.elems[2]?.all;
  }
  const opens = ['deliver', 'reply'].includes(st.expect_server[0]);
  if (!opens && st.mutated[0] === 'true') return; // nothing the client's keys must open
  // The key schedule (SPEC.md §4.2, §14.3, §16.3, §16.4).
  const dh1 = Buffer.from(x25519.getSharedSecret(eph, S));
  const prk0 = hmac(enc('secsock v2 request'), dh1, ephPub, S);
  let prk = prk0;
  if (ep) {
    const dhE = Buffer.from(x25519.getSharedSecret(eph, ep.E));
    prk = hmac(prk0, enc('secsock v2 ext'), Buffer.from([0]), dhE, ep.E, r.elems[0].all);
  }
  let resumption = null;
  if (q && element && ekBound) {
    prk = hmac(prk, enc('secsock v2 ext'), Buffer.from([1]), q, ekBound, element);
    resumption = expand(prk, enc('secsock v2 resumption')); // what its ticket holds (§16.4)
  } else if (q && element) prk = hmac(prk, enc('secsock v2 ext'), Buffer.from([2]), q, element);
  const a = Buffer.from([suite]);
  const kq = expand(prk, enc('secsock v2 c2s'), a), kr = expand(prk, enc('secsock v2 s2c'), a);
  const krx = expand(prk, enc('secsock v2 s2c ext'), a);
  const H = r.H, N = sent.subarray(36, 44), T = sent.subarray(44, 52);
  const n24 = (p) => Buffer.concat([Buffer.from([p, H[1], H[3]]), Buffer.alloc(5), N, T]);
  const n12 = (p) => Buffer.concat([Buffer.from([p, H[1], H[3], 0]), N.subarray(4), T.subarray(4)]);
  {
    let rest = r.rest;
    if (r.kind === 2 || r.kind === 4) {
      const id = openAEAD(suite, kq, n24(2), n12(2), rest.subarray(0, 88), H);
      const c = Buffer.from(x25519.getPublicKey(hex(head, 'client_secret')));
      if (!eq(id.subarray(0, 32), c)) fail('the identity box does not name the client');
      rest = rest.subarray(88);
    }
    const body = openAEAD(suite, kq, n24(1), n12(1), rest, H);
    if (!eq(body, hex(st, 'request_body'))) fail('the body box holds another body');
  }
  const reply = hex(st, 'reply');
  if (!reply || st.expect_client[0] !== 'ok') return;
  const R = reply.subarray(3, 19), c = reply.subarray(19), nreq = u64(num(st, 'counter'));
  const key = reply[1] === 0x14 ? krx : kr;
  const plain = openAEAD(suite, key, Buffer.concat([R, nreq]), R.subarray(0, 12), c, Buffer.concat([reply.subarray(0, 19), nreq]));
  let body = plain, elems = {};
  if (reply[1] === 0x14) {
    const n = plain.readUInt16BE(0);
    for (let o = 2; o < 2 + n;) { const t = plain[o], l = plain.readUInt16BE(o + 1); elems[t] = plain.subarray(o + 3, o + 3 + l); o += 3 + l; }
    body = plain.subarray(2 + n);
  }
  if (!eq(body, hex(st, 'reply_body') ?? Buffer.alloc(0))) fail('the reply holds another body');
  if (!!elems[2] !== !!st.ticket || (elems[2] && !eq(elems[2], hex(st, 'ticket')))) fail('the reply does not hold the vector\'s ticket');
  if (st.ticket) {
    const opened = openTicket(ep, hex(st, 'ticket'), ephPub, S, suite);
    if (!opened || !resumption || !eq(opened, resumption)) fail('the issued ticket does not hold the ciphertext request\'s resumption secret');
  }
  if (st.kem_key) {
    const v = hex(st, 'kem_key'), k = epochs[v.readUInt32BE(0)];
    if (!k || !eq(v.subarray(4, 12), k.id) || !eq(v.subarray(12), k.ek) || !eq(elems[1], v)) fail('KEM_KEY is not u32(e) ‖ id_e ‖ ek_e of an epoch');
  }
}

const dir = process.argv[2];
let passed = 0, failed = 0, steps = 0;
for (const f of readdirSync(dir).filter((n) => n.endsWith('.vec')).sort()) {
  const { head, steps: st } = parse(join(dir, f));
  try {
    const seed = hex(head, 'epoch_seed'), index = num(head, 'epoch_index');
    const epochs = [];
    for (let e = 0; e < 8; e++) epochs.push(e < index ? null : epochKeys(seed, index, e));
    const S = Buffer.from(x25519.getPublicKey(hex(head, 'server_secret')));
    for (const s of st) { checkStep(f, head, s, epochs, S); steps++; }
    passed++;
  } catch (e) {
    console.log(`FAIL ${f}: ${e.message}`);
    failed++;
  }
}
console.log(`hybrid vectors (${steps} steps, @noble/post-quantum ML-KEM-768): ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
