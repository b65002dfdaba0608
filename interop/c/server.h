/*
 * server.h: the REP side of SPEC §6: every check in its order, the peer
 * and reply caches, the work budget, replies and refusals.
 */
#ifndef SECSOCK_SERVER_H
#define SECSOCK_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "epoch.h"
#include "proto.h"
#include "peers.h"
#include "replies.h"

#define MAX_SERVER_KEYS 8
#define MAX_AUTHORIZED 64
#define VOUCH_CACHE 1024 /* (C, S) -> prkV, direct-mapped */

struct server_config {
	uint8_t s[MAX_SERVER_KEYS][32]; /* s[0] current, then previous keys (§8) */
	int nkeys;
	int policy, allow_anonymous;    /* §7.1 */
	uint8_t authorized[MAX_AUTHORIZED][32];
	int nauthorized;
	uint64_t freshness, max_skew;   /* W and Z in ms */
	int peer_cache, reply_slots, max_resends;
	int tombstones;                 /* 0: sized by the budget as §6.2 says */
	uint64_t budget_rate;           /* scalar multiplications per second (burst the same); 0: unlimited */
	const uint8_t *fixed_R;         /* test vectors only: R instead of random bytes */
	struct epoch_chain *epochs;     /* §14: the epoch seed chain; NULL: no seed */
	int pull;                       /* §15.2: a PULL worker: PUSH kinds only, Kp, drops instead of answers */
};

/* Defaults of SPEC §6: W 120 s, Z 10 s, 4096 peers, 1024 reply slots, 4
 * resends, a budget of 2048 per second with a burst of 2048, tombstones
 * sized by the budget (§6.2). */
void server_config_defaults(struct server_config *cfg);

struct vouch_entry {
	int in_use, key;
	uint8_t C[32], prkv[32];
};

struct server {
	struct server_config cfg;
	uint8_t S[MAX_SERVER_KEYS][32]; /* public keys of cfg.s */
	struct peers peers;
	struct replies replies;
	struct budget budget;
	struct vouch_entry vouches[VOUCH_CACHE];
	uint8_t vkey[16];               /* keys the vouch cache index */
};

/* Returns -1 and a reason for a configuration SPEC §4 refuses (a zero
 * secret key, an authorized key that is not a valid long-term key). */
int server_init(struct server *sv, const struct server_config *cfg, uint64_t now, const char **why);
void server_free(struct server *sv);

enum action { DROP, ANSWER, DELIVER };

/* What the server needs to seal its reply to a delivered request. */
struct ticket {
	uint8_t Ce[32], kr[32], krx[32]; /* Kr and REPLY_EXT's key (§10) */
	uint64_t N;
	uint8_t suite;
	int want_epoch;                  /* the request carried WANT_EPOCH (§14.2) */
};

/* The largest answer beyond a reply's body: a REPLY_EXT with the epoch
 * announcement (§14.3 sizes). */
#define ANSWER_OVERHEAD (REPLY_OVERHEAD + REPLY_EXT_EXTRA)

struct verdict {
	enum action action;
	char what[40];          /* SPEC §12 expect_server: "deliver", "reply", "resend", "refuse:stale", ... */
	const uint8_t *answer;  /* ANSWER: the bytes to send back */
	size_t answer_len;
	size_t body_len;        /* DELIVER: the opened body (in the caller's buffer) */
	struct ticket t;        /* DELIVER: pass to server_seal_reply */
	int epoch;              /* DELIVER or a ping's reply: sealed with epoch key k (§14.3) */
	int pull;               /* set by server_handle: a PULL worker never answers (§15.2) */
	uint64_t k;
	uint8_t buf[ANSWER_OVERHEAD];
};

/* SPEC §6 on one received body; body must hold len bytes. */
enum action server_handle(struct server *sv, uint64_t now, const uint8_t *in, size_t len, uint8_t *body,
                          struct verdict *v);
/* Seals the application's reply to a delivered request (out: len +
 * ANSWER_OVERHEAD bytes) and keeps it for retries: a REPLY_EXT with the
 * epoch announcement when the request asked for it and there is a seed,
 * else a REPLY. Returns its length. */
size_t server_seal_reply(struct server *sv, const struct ticket *t, const uint8_t *body, size_t len, uint8_t *out);

/* §14.1: moves the epoch chain to the clock, erasing the per-(C', k)
 * secrets of epochs that left the accepted set. server_handle calls it;
 * call it also when idle. After it, cfg.epochs->dirty says the seed
 * file must be rewritten. */
void server_epoch_tick(struct server *sv, uint64_t now);

#endif
