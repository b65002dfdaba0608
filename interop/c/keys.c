/*
 * keys.c: canonical encodings and the prime-order-subgroup check of
 * SPEC §4.1. The Montgomery u-coordinate is mapped to the Edwards
 * y-coordinate with GMP, then libsodium decides whether that is a point
 * of prime order.
 */
#include <string.h>

#include <gmp.h>
#include <sodium.h>

#include "keys.h"

/* p = 2^255 - 19, little-endian */
static const uint8_t P_LE[32] = {
	0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
};

int key_canonical(const uint8_t u[32])
{
	/* Compare from the most significant byte; not secret, so no need
	 * for constant time. */
	for (int i = 31; i >= 0; i--)
		if (u[i] != P_LE[i])
			return u[i] < P_LE[i];
	return 0; /* u == p */
}

/* y = (u - 1) / (u + 1) mod p as 32 little-endian bytes; -1 if u + 1 = 0. */
static int edwards_y(uint8_t y_le[32], const uint8_t u_le[32])
{
	mpz_t p, u, num, den;
	int rv = -1;
	mpz_inits(p, u, num, den, NULL);
	mpz_ui_pow_ui(p, 2, 255);
	mpz_sub_ui(p, p, 19);
	mpz_import(u, 32, -1, 1, 0, 0, u_le);
	mpz_sub_ui(num, u, 1);
	mpz_mod(num, num, p);
	mpz_add_ui(den, u, 1);
	mpz_mod(den, den, p);
	if (mpz_sgn(den) != 0 && mpz_invert(den, den, p) != 0) {
		size_t n = 0;
		mpz_mul(num, num, den);
		mpz_mod(num, num, p);
		memset(y_le, 0, 32);
		mpz_export(y_le, &n, -1, 1, 0, 0, num); /* < p: at most 32 bytes, bit 255 (sign of x) 0 */
		rv = 0;
	}
	mpz_clears(p, u, num, den, NULL);
	return rv;
}

int key_valid_longterm(const uint8_t u[32])
{
	uint8_t y[32];
	if (!key_canonical(u))
		return 0;
	if (edwards_y(y, u) != 0) /* u = p - 1 */
		return 0;
	/* libsodium 1.0.18: canonical, on the curve, not of small order, and
	 * in the main subgroup. */
	return crypto_core_ed25519_is_valid_point(y) == 1;
}

int key_secret_ok(const uint8_t s[32])
{
	return !sodium_is_zero(s, 32);
}

int x25519(uint8_t out[32], const uint8_t k[32], const uint8_t P[32])
{
	/* libsodium returns -1 when the output is all zero. */
	if (crypto_scalarmult(out, k, P) != 0) {
		sodium_memzero(out, 32);
		return -1;
	}
	return 0;
}

void x25519_base(uint8_t out[32], const uint8_t k[32])
{
	crypto_scalarmult_base(out, k);
}
