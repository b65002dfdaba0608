/*
 * schedule.c: SPEC §2, §4.2, §4.3, §5.3.
 *
 * The salts of Extract are ASCII labels of 18 and 20 bytes, not 32-byte
 * keys, so the one-shot crypto_auth_hmacsha256 (whose key is exactly
 * crypto_auth_hmacsha256_KEYBYTES) cannot take them: HMAC here goes
 * through crypto_auth_hmacsha256_init, which takes a key of any length,
 * as RFC 2104 and RFC 5869 do.
 */
#include <string.h>

#include <sodium.h>

#include "schedule.h"

struct part {
	const void *p;
	size_t n;
};

/* HMAC-SHA-256(key, part[0] ‖ part[1] ‖ ...) */
static void hmac(uint8_t out[32], const void *key, size_t keylen, const struct part *parts, size_t nparts)
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, keylen);
	for (size_t i = 0; i < nparts; i++)
		crypto_auth_hmacsha256_update(&st, parts[i].p, parts[i].n);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

#define LABEL(s) (s), (sizeof(s) - 1)

void sched_prk0(uint8_t prk0[32], const uint8_t dh1[32], const uint8_t Ce[32], const uint8_t S[32])
{
	const struct part m[] = {{dh1, 32}, {Ce, 32}, {S, 32}};
	hmac(prk0, LABEL("secsock v2 request"), m, 3);
}

/* Expand(prk, info) = HMAC(prk, info ‖ 0x01): the first HKDF block. */
static void expand(uint8_t out[32], const uint8_t prk[32], const char *label, size_t len, uint8_t suite)
{
	const uint8_t tail[2] = {suite, 0x01};
	const struct part m[] = {{label, len}, {tail, 2}};
	hmac(out, prk, 32, m, 2);
}

void sched_kq(uint8_t kq[32], const uint8_t prk[32], uint8_t suite) { expand(kq, prk, LABEL("secsock v2 c2s"), suite); }
void sched_kr(uint8_t kr[32], const uint8_t prk[32], uint8_t suite) { expand(kr, prk, LABEL("secsock v2 s2c"), suite); }

void sched_kp(uint8_t kp[32], const uint8_t prk[32], uint8_t suite) { expand(kp, prk, LABEL("secsock v2 push"), suite); }

void sched_krx(uint8_t krx[32], const uint8_t prk[32], uint8_t suite)
{
	expand(krx, prk, LABEL("secsock v2 s2c ext"), suite);
}

void sched_ext(uint8_t prk[32], const uint8_t prev[32], uint8_t type, const uint8_t *secret, size_t slen,
               const uint8_t *context, size_t clen, const uint8_t *element, size_t elen)
{
	uint8_t out[32];
	const struct part m[] = {{LABEL("secsock v2 ext")}, {&type, 1}, {secret, slen}, {context, clen}, {element, elen}};
	hmac(out, prev, 32, m, 5);
	memcpy(prk, out, 32); /* prk may be prev */
	sodium_memzero(out, sizeof out);
}

void sched_epoch_ratchet(uint8_t next[32], const uint8_t seed[32])
{
	uint8_t out[32];
	const struct part m[] = {{LABEL("secsock v2 epoch ratchet")}};
	hmac(out, seed, 32, m, 1);
	memcpy(next, out, 32); /* next may be seed */
	sodium_memzero(out, sizeof out);
}

void sched_epoch_esk(uint8_t esk[32], const uint8_t seed[32])
{
	const struct part m[] = {{LABEL("secsock v2 epoch key")}};
	hmac(esk, seed, 32, m, 1);
}

void sched_prkv(uint8_t prkv[32], const uint8_t dh2[32], const uint8_t C[32], const uint8_t S[32])
{
	const struct part m[] = {{dh2, 32}, {C, 32}, {S, 32}};
	hmac(prkv, LABEL("secsock v2 vouch key"), m, 3);
}

void sched_vouch(uint8_t V[32], const uint8_t prkv[32], const uint8_t Ce[32], const uint8_t C[32], const uint8_t S[32],
                 uint64_t E)
{
	uint8_t e[8];
	for (int i = 7; i >= 0; i--, E >>= 8)
		e[i] = (uint8_t)E;
	const struct part m[] = {{LABEL("secsock v2 vouch")}, {Ce, 32}, {C, 32}, {S, 32}, {e, 8}};
	hmac(V, prkv, 32, m, 5);
}

void sched_vouch_push(uint8_t V[32], const uint8_t prkv[32], const uint8_t Ce[32], const uint8_t C[32],
                      const uint8_t S[32], uint64_t E)
{
	uint8_t e[8];
	for (int i = 7; i >= 0; i--, E >>= 8)
		e[i] = (uint8_t)E;
	const struct part m[] = {{LABEL("secsock v2 push vouch")}, {Ce, 32}, {C, 32}, {S, 32}, {e, 8}};
	hmac(V, prkv, 32, m, 5);
}

void sched_refusal_tag(uint8_t tag[16], const uint8_t prk0[32], const uint8_t *H, size_t hlen, uint8_t reason)
{
	uint8_t full[32];
	const struct part m[] = {{LABEL("secsock v2 refusal")}, {H, hlen}, {&reason, 1}};
	hmac(full, prk0, 32, m, 3);
	memcpy(tag, full, 16);
	sodium_memzero(full, sizeof full);
}
