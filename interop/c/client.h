/*
 * client.h: the REQ side of SPEC §5.1 and §7.
 */
#ifndef SECSOCK_CLIENT_H
#define SECSOCK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* A client with one short-term key c' for one server key S. The caller
 * numbers the requests N = 1, 2, ... and makes a new client (new c')
 * after at most 2^20 requests or one hour (§8). */
struct client {
	uint8_t suite, flags;
	int vouched;             /* has a long-term key */
	uint8_t S[32];           /* server public key */
	uint8_t C[32], V[32];    /* long-term public key and its vouch for C' */
	uint64_t E;              /* the vouch's expiry, ms since 1970 (§4.3) */
	uint8_t Ce[32], ce[32];  /* C' and c' */
	uint8_t prk0[32], kq[32], kr[32];
};

/* Returns -1 (and says why in *why) for a key SPEC §4 refuses: S not a
 * valid long-term key, a zero secret key, or an all-zero dh1 or dh2.
 * c may be NULL (anonymous); ce NULL makes a random c'. E is the vouch's
 * expiry: the end of c''s lifetime (unused when anonymous). */
int client_init(struct client *cl, const uint8_t S[32], const uint8_t *c, const uint8_t *ce, uint8_t suite,
                uint64_t E, const char **why);

/* Writes the request (at most len + REQUEST_OVERHEAD bytes) into out and
 * returns its length. A ping should have len 0 (§5.1). For a suite this side cannot seal, only the header
 * H = out[0..54) is written and 0 is returned. */
size_t client_seal(const struct client *cl, int ping, uint64_t N, uint64_t T, const uint8_t *body, size_t len,
                   uint8_t *out);

/* Opens the answer to the request with header H and counter N (§7).
 * body must hold len bytes. Returns NULL and the body, or a client error
 * name of SPEC §12. */
const char *client_open(const struct client *cl, const uint8_t *H, size_t hlen, uint64_t N, const uint8_t *in,
                        size_t len, uint8_t *body, size_t *body_len);

/* 1 if the error is advisory (§7): anything but an authenticated refusal. */
int client_advisory(const char *err);

#endif
