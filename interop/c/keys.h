/*
 * keys.h: the key rules of SPEC §4.1 and §4.2 and X25519 (§2).
 */
#ifndef SECSOCK_KEYS_H
#define SECSOCK_KEYS_H

#include <stdint.h>

/* 1 if the 32 bytes, little-endian, are below p = 2^255 - 19 (§4.1). */
int key_canonical(const uint8_t u[32]);
/* 1 if u is a valid long-term key: canonical, in the prime-order
 * subgroup, not the identity (§4.1). */
int key_valid_longterm(const uint8_t u[32]);
/* 1 unless the secret key is 32 zero bytes (§4.2). */
int key_secret_ok(const uint8_t s[32]);
/* X25519(k, P) (§2); returns -1 for an all-zero output. */
int x25519(uint8_t out[32], const uint8_t k[32], const uint8_t P[32]);
/* The public key X25519(k, 9). */
void x25519_base(uint8_t out[32], const uint8_t k[32]);

#endif
