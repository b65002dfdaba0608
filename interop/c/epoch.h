/*
 * epoch.h: epoch keys of SPEC §14: the seed chain (§14.1), the accepted
 * epochs, the announcement (§14.2) on both sides, seed files (§14.6).
 */
#ifndef SECSOCK_EPOCH_H
#define SECSOCK_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#include "ext.h"

#define EPOCH_SLOTS 3                  /* c-1, c, c+1 */
#define EPOCH_MAX_RATCHET (1u << 24)   /* bounds the ratchet loop */
#define EPOCH_FILE_HEADER "# secsock epoch seed v1 (keep private)"

/* A worker's state: seed_j (j = c-1 once the clock is past epoch 0) and
 * the keys of epochs j .. j+n-1, which are c-1, c, c+1 or fewer. */
struct epoch_chain {
	uint8_t chain[16];
	uint64_t O, L;            /* origin and length, ms */
	uint64_t j;               /* epoch of the stored seed */
	uint8_t seed[32];         /* seed_j */
	int64_t c;                /* the clock's epoch at the last advance; -1 before O */
	int n;                    /* epochs j .. j+n-1 derived */
	uint8_t esk[EPOCH_SLOTS][32], E[EPOCH_SLOTS][32], id[EPOCH_SLOTS][EPOCH_ID_LEN];
	int dirty;                /* seed ratcheted since the file was written */
};

/* esk_e, E_e = X25519(esk_e, 9) and id_e = SHA-256(E_e)[0..8] from seed_e. */
void epoch_keys(const uint8_t seed[32], uint8_t esk[32], uint8_t E[32], uint8_t id[EPOCH_ID_LEN]);
/* The epoch of time t: floor((t - O) / L), or -1 before O. */
int64_t epoch_of(uint64_t O, uint64_t L, uint64_t t);

/* Loads seed_j of epoch j and advances to now. Returns -1 and why if j
 * is ahead of the clock's epoch, L is 0 or does not fit a u32, or the
 * ratchet would take more than EPOCH_MAX_RATCHET steps. */
int epoch_init(struct epoch_chain *ch, const uint8_t chain[16], uint64_t O, uint64_t L, uint64_t j,
               const uint8_t seed[32], uint64_t now, const char **why);
/* Moves to the clock's epoch: ratchets the stored seed to c-1, erasing
 * the older seed and keys. Returns the new j if it moved, else -1
 * (callers erase what they derived from epochs below j). */
int64_t epoch_advance(struct epoch_chain *ch, uint64_t now);
/* 1 if id names an accepted epoch at now with skew Z (§14.1): c-1, c,
 * or c+1 once now >= O + (c+1)L - Z; *slot and *k say which. */
int epoch_accepts(const struct epoch_chain *ch, const uint8_t id[EPOCH_ID_LEN], uint64_t now, uint64_t Z, int *slot,
                  uint64_t *k);
/* u32(c) ‖ u64(O + c·L) ‖ u32(L) ‖ E_c ‖ E_{c+1} for the current epoch;
 * -1 if those keys are not derived (clock before O or behind the seed). */
int epoch_announce(const struct epoch_chain *ch, uint8_t out[ANNOUNCE_LEN]);
void epoch_wipe(struct epoch_chain *ch);

/* Seed files (§14.6). read fills the chain fields (not advanced). */
struct epoch_file {
	uint8_t chain[16], seed[32];
	uint64_t O, L, j;
};
int epoch_file_read(const char *path, struct epoch_file *f, const char **why);
/* Writes ch's chain, O, L, j and seed_j: a new file, mode 0600, renamed into place. */
int epoch_file_write(const char *path, const struct epoch_chain *ch, const char **why);
/* Reads path and advances it to now, rewriting it if it ratcheted (and
 * saying so on stderr). */
int epoch_load(const char *path, struct epoch_chain *ch, uint64_t now, const char **why);

/* The client's view (§14.2): the latest announcement from one server key. */
struct epoch_ann {
	int have;
	uint64_t c, start, L;
	uint8_t E[2][32], id[2][EPOCH_ID_LEN];
};
/* Parses an EPOCH_KEYS value; -1 if L is 0. */
int epoch_ann_parse(struct epoch_ann *a, const uint8_t v[ANNOUNCE_LEN]);
/* At client time t: *k and its key (NULL when k is neither c nor c+1),
 * and whether to ask for the next (no key for k+1). */
const uint8_t *epoch_ann_pick(const struct epoch_ann *a, uint64_t t, uint64_t *k, const uint8_t **id, int *want);

#endif
