/*
 * peers.h: the peer cache of SPEC §6.2: per short-term key C' its keys,
 * verified client key, highest accepted T and counter window; segmented
 * (probation, protected) LRU eviction; tombstones and the global floor.
 */
#ifndef SECSOCK_PEERS_H
#define SECSOCK_PEERS_H

#include <stddef.h>
#include <stdint.h>

#define WINDOW_WORDS 128 /* 8192 bits, of which 8128 are the window (RFC 6479) */

/* The per-(C', k) session secret of SPEC §14.3: prk chained from prk0
 * with dhE = X25519(esk_k, C'). */
struct peer_epoch {
	int used;
	uint64_t k;
	uint8_t prk[32];
};
#define PEER_EPOCHS 3 /* the accepted set: c-1, c, c+1 */

struct peer {
	uint8_t Ce[32];
	int key;                /* index of the server key that opened it */
	uint8_t prk0[32];
	int has_C;              /* C, V and E below are verified for this C' */
	uint8_t C[32], V[32];
	uint64_t E;
	struct peer_epoch ep[PEER_EPOCHS];
	uint64_t maxT, maxN, last, window[WINDOW_WORDS];
	uint64_t accepted;      /* requests accepted: the second one protects it */
	int protected_seg;
	int prev, next;         /* LRU list of its segment; -1 ends */
	int hnext;              /* hash chain; -1 ends */
};

struct tomb {
	uint8_t Ce[32];
	uint64_t T, N; /* the evicted peer's highest accepted T and N */
	int live, hnext;
};

struct peers {
	int cap, nprot_max, count[2]; /* count[0] probation, count[1] protected */
	struct peer *slot;
	int *hash, nhash, free_head;
	int head[2], tail[2];   /* MRU at head */
	struct tomb *tomb;
	int tcap, tcount, thead; /* tombstones: a ring in arrival order */
	int compact_wait;
	int *thash, ntomb_hash;
	uint64_t floor;         /* the global replay floor */
	uint8_t hkey[16];       /* keys the hash tables, at random per instance */
};

/* cap: peer cache size; tombs: tombstone table size. Returns -1 on ENOMEM. */
int peers_init(struct peers *ps, int cap, int tombs);
void peers_free(struct peers *ps);

struct peer *peers_find(struct peers *ps, const uint8_t Ce[32]);
void peers_forget(struct peers *ps, struct peer *p, uint64_t now, uint64_t W);
/* The replay floor of C' (§6.2): max(tombstone T, global floor). */
int peers_in_doubt(struct peers *ps, const uint8_t Ce[32], uint64_t T, uint64_t N);
/* 1 if N is 8128 or more below p's highest accepted counter. */
int peer_below_window(const struct peer *p, uint64_t N);
/* 1 if N, within the window, was accepted before for p. */
int peer_seen(const struct peer *p, uint64_t N);
/* Step 10: records N and T for a cached peer, or caches fresh (evicting
 * if needed). Returns the cached peer. */
struct peer *peers_accept(struct peers *ps, struct peer *p, const struct peer *fresh, uint64_t N, uint64_t T,
                          uint64_t now, uint64_t W);

/* The cached prk of (C', k), or NULL. */
const uint8_t *peer_epoch_prk(const struct peer *p, uint64_t k);
/* Caches prk for (C', k), replacing the entry of k or the oldest epoch. */
void peer_epoch_put(struct peer *p, uint64_t k, const uint8_t prk[32]);
/* Erases every cached (C', k) with k below floor, in every peer: those
 * epochs left the accepted set (§14.1). */
void peers_erase_epochs(struct peers *ps, uint64_t floor);

#endif
