/*
 * client.h: the REQ side of SPEC §5.1 and §7.
 */
#ifndef SECSOCK_CLIENT_H
#define SECSOCK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "epoch.h"

/* A per-(C', k) session secret (§14.3): dhE is computed once per epoch. */
struct client_epoch {
	int used;
	uint64_t k;
	uint8_t id[EPOCH_ID_LEN], prk[32];
};
#define CLIENT_EPOCHS 3

/* A client with one short-term key c' for one server key S. The caller
 * numbers the requests N = 1, 2, ... and makes a new client (new c')
 * after at most 2^20 requests or one hour (§8). */
struct client {
	uint8_t suite, flags;    /* flags: for tests, an empty element of each type set here */
	int push;                /* a pusher (§15): PUSH kinds, Kp for Kq, no answers */
	int vouched;             /* has a long-term key */
	uint8_t S[32];           /* server public key */
	uint8_t C[32], V[32];    /* long-term public key and its vouch for C' */
	uint64_t E;              /* the vouch's expiry, ms since 1970 (§4.3) */
	uint8_t prkv[32];        /* prkV of (C, S), kept to make a pusher's V (§15.1) */
	uint8_t Ce[32], ce[32];  /* C' and c' */
	uint8_t prk0[32], kq[32], kr[32]; /* kq, kr: long-term only (prk = prk0) */
	struct epoch_ann ann;    /* §14.2: the latest announcement from S */
	struct client_epoch ecache[CLIENT_EPOCHS];
};

/* What a request carries beyond version 2's fields (§14.2, §14.3). */
struct reqext {
	const uint8_t *E, *id;   /* EPOCH: sealed with E_k named by id_k; NULL: long-term key only */
	uint64_t k;
	int want;                /* WANT_EPOCH */
};

/* Returns -1 (and says why in *why) for a key SPEC §4 refuses: S not a
 * valid long-term key, a zero secret key, or an all-zero dh1 or dh2.
 * c may be NULL (anonymous); ce NULL makes a random c'. E is the vouch's
 * expiry: the end of c''s lifetime (unused when anonymous). */
int client_init(struct client *cl, const uint8_t S[32], const uint8_t *c, const uint8_t *ce, uint8_t suite,
                uint64_t E, const char **why);

/* Makes cl a pusher (§15): PUSH kinds, Kp, and a pusher's vouch. */
void client_set_push(struct client *cl);

/* §14.2: the epoch key at client time t from the announcement, and
 * whether to ask for the next one (always for a ping, as Authenticate). */
void client_pick(const struct client *cl, uint64_t t, int ping, struct reqext *x);

/* Writes the request (at most len + REQUEST_OVERHEAD + EXT_MAX_REQ bytes)
 * into out and returns its length; x may be NULL (version 2 without
 * extensions). A ping should have len 0 (§5.1). For a suite this side
 * cannot seal, only the header H = out[0..54 + X) is written and 0 is
 * returned. An E_k giving an all-zero dhE is left out (long-term only). */
size_t client_seal(struct client *cl, int ping, uint64_t N, uint64_t T, const uint8_t *body, size_t len,
                   const struct reqext *x, uint8_t *out);
/* The length of the header H client_seal wrote into out. */
size_t client_header_len(const uint8_t *out);

/* Opens the answer to the request with header H and counter N (§7).
 * body must hold len bytes. Returns NULL and the body, or a client error
 * name of SPEC §12 ("unknown-epoch" for a verified UNKNOWN_EPOCH, after
 * which the client has forgotten its epoch keys, §14.3). A REPLY_EXT's
 * announcement is learned. */
const char *client_open(struct client *cl, const uint8_t *H, size_t hlen, uint64_t N, const uint8_t *in,
                        size_t len, uint8_t *body, size_t *body_len);
/* Forgets the announcement and every per-(C', k) secret. */
void client_forget_epochs(struct client *cl);

/* 1 if the error is advisory (§7): anything but an authenticated refusal. */
int client_advisory(const char *err);

#endif
