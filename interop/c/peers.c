/*
 * peers.c: SPEC §6.2. Both tables are fixed-size slot arrays indexed by
 * hash chains under a per-instance random SipHash key, so a client cannot
 * aim its keys at one chain.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "peers.h"

static unsigned hash_of(const struct peers *ps, const uint8_t Ce[32], int n)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t x = 0;
	crypto_shorthash(h, Ce, 32, ps->hkey);
	for (int i = 0; i < 8; i++)
		x = x << 8 | h[i];
	return (unsigned)(x % (uint64_t)n);
}

int peers_init(struct peers *ps, int cap, int tombs)
{
	memset(ps, 0, sizeof *ps);
	if (cap < 1)
		cap = 1;
	ps->cap = cap;
	ps->nprot_max = cap * 3 / 4;
	ps->nhash = 2 * cap;
	ps->tcap = tombs;
	ps->ntomb_hash = 2 * tombs + 1;
	ps->slot = calloc((size_t)cap, sizeof *ps->slot);
	ps->hash = malloc((size_t)ps->nhash * sizeof *ps->hash);
	ps->tomb = calloc((size_t)tombs + 1, sizeof *ps->tomb); /* + 1: scratch for compaction */
	ps->thash = malloc((size_t)ps->ntomb_hash * sizeof *ps->thash);
	if (!ps->slot || !ps->hash || !ps->tomb || !ps->thash)
		return -1;
	randombytes_buf(ps->hkey, sizeof ps->hkey);
	for (int i = 0; i < ps->nhash; i++)
		ps->hash[i] = -1;
	for (int i = 0; i < ps->ntomb_hash; i++)
		ps->thash[i] = -1;
	for (int i = 0; i < cap; i++) /* free list through next */
		ps->slot[i].next = i + 1 < cap ? i + 1 : -1;
	ps->free_head = 0;
	ps->head[0] = ps->head[1] = ps->tail[0] = ps->tail[1] = -1;
	return 0;
}

void peers_free(struct peers *ps)
{
	if (ps->slot)
		sodium_memzero(ps->slot, (size_t)ps->cap * sizeof *ps->slot);
	free(ps->slot);
	free(ps->hash);
	free(ps->tomb);
	free(ps->thash);
	memset(ps, 0, sizeof *ps);
}

/* ---- LRU lists ---- */

static void unlink_lru(struct peers *ps, int i)
{
	struct peer *p = &ps->slot[i];
	int s = p->protected_seg;
	if (p->prev >= 0) ps->slot[p->prev].next = p->next; else ps->head[s] = p->next;
	if (p->next >= 0) ps->slot[p->next].prev = p->prev; else ps->tail[s] = p->prev;
	ps->count[s]--;
}

static void push_mru(struct peers *ps, int i, int s)
{
	struct peer *p = &ps->slot[i];
	p->protected_seg = s;
	p->prev = -1;
	p->next = ps->head[s];
	if (ps->head[s] >= 0) ps->slot[ps->head[s]].prev = i; else ps->tail[s] = i;
	ps->head[s] = i;
	ps->count[s]++;
}

/* ---- hash chains ---- */

struct peer *peers_find(struct peers *ps, const uint8_t Ce[32])
{
	int steps = 0;
	for (int i = ps->hash[hash_of(ps, Ce, ps->nhash)]; i >= 0 && steps <= ps->cap; i = ps->slot[i].hnext, steps++)
		if (memcmp(ps->slot[i].Ce, Ce, 32) == 0)
			return &ps->slot[i];
	return NULL;
}

static void unhash(struct peers *ps, int i)
{
	int *link = &ps->hash[hash_of(ps, ps->slot[i].Ce, ps->nhash)];
	for (int steps = 0; *link >= 0 && steps <= ps->cap; link = &ps->slot[*link].hnext, steps++)
		if (*link == i) {
			*link = ps->slot[i].hnext;
			return;
		}
}

/* ---- tombstones ----
 * A ring in arrival order: position k (0 = oldest) is slot
 * (thead + k) % tcap. The hash chains hold slot numbers. */

static int tslot(const struct peers *ps, int k) { return (ps->thead + k) % ps->tcap; }

static struct tomb *tomb_find(struct peers *ps, const uint8_t Ce[32])
{
	int steps = 0;
	for (int i = ps->thash[hash_of(ps, Ce, ps->ntomb_hash)]; i >= 0 && steps <= ps->tcap; i = ps->tomb[i].hnext, steps++)
		if (ps->tomb[i].live && memcmp(ps->tomb[i].Ce, Ce, 32) == 0)
			return &ps->tomb[i];
	return NULL;
}

static void tomb_hash(struct peers *ps, int i)
{
	unsigned h = hash_of(ps, ps->tomb[i].Ce, ps->ntomb_hash);
	ps->tomb[i].hnext = ps->thash[h];
	ps->thash[h] = i;
}

static void tomb_unhash(struct peers *ps, int i)
{
	int *link = &ps->thash[hash_of(ps, ps->tomb[i].Ce, ps->ntomb_hash)];
	for (int steps = 0; *link >= 0 && steps <= ps->tcap; link = &ps->tomb[*link].hnext, steps++)
		if (*link == i) {
			*link = ps->tomb[i].hnext;
			return;
		}
}

static int expired(uint64_t T, uint64_t now, uint64_t W) { return now >= W && T < now - W; }

/* Drops dead tombstones and those older than now - W, keeping arrival
 * order, and rebuilds the chains. O(M): it runs only when the table is
 * full, and after one that freed little (below M/16) not again for M/16
 * additions, so it costs at most 16 steps per tombstone made. */
static void tomb_compact(struct peers *ps, uint64_t now, uint64_t W)
{
	int n = 0;
	struct tomb *tmp = ps->tomb + ps->tcap; /* scratch slot */
	for (int k = 0; k < ps->tcount; k++) {
		*tmp = ps->tomb[tslot(ps, k)];
		if (tmp->live && !expired(tmp->T, now, W))
			ps->tomb[tslot(ps, n++)] = *tmp;
	}
	if (ps->tcount - n < ps->tcap / 16)
		ps->compact_wait = ps->tcap / 16;
	for (int k = n; k < ps->tcount; k++)
		ps->tomb[tslot(ps, k)].live = 0;
	ps->tcount = n;
	for (int i = 0; i < ps->ntomb_hash; i++)
		ps->thash[i] = -1;
	for (int k = 0; k < n; k++)
		tomb_hash(ps, tslot(ps, k));
}

/* The oldest tombstone goes; if it is not yet older than now - W the
 * global floor rises to its T (§6.2). */
static void tomb_pop(struct peers *ps, uint64_t now, uint64_t W)
{
	struct tomb *t = &ps->tomb[ps->thead];
	if (t->live) {
		if (!expired(t->T, now, W) && t->T > ps->floor)
			ps->floor = t->T;
		tomb_unhash(ps, ps->thead);
	}
	t->live = 0;
	ps->thead = (ps->thead + 1) % ps->tcap;
	ps->tcount--;
}

static void tomb_add(struct peers *ps, const uint8_t Ce[32], uint64_t T, uint64_t N, uint64_t now, uint64_t W)
{
	struct tomb *old = tomb_find(ps, Ce);
	if (ps->tcap == 0)
		return;
	if (old) { /* evicted again: one tombstone per key, the higher T and N, now the newest */
		if (old->T > T)
			T = old->T;
		if (old->N > N)
			N = old->N;
		tomb_unhash(ps, (int)(old - ps->tomb));
		old->live = 0;
	}
	if (ps->compact_wait > 0)
		ps->compact_wait--;
	if (ps->tcount == ps->tcap && ps->compact_wait == 0)
		tomb_compact(ps, now, W);
	if (ps->tcount == ps->tcap)
		tomb_pop(ps, now, W);
	int i = tslot(ps, ps->tcount++);
	memcpy(ps->tomb[i].Ce, Ce, 32);
	ps->tomb[i].T = T;
	ps->tomb[i].N = N;
	ps->tomb[i].live = 1;
	tomb_hash(ps, i);
}

/* §6 step 9: in doubt at or below the global floor, or at or below both
 * the T and the N of C''s tombstone (anything above either was never
 * accepted). An expired tombstone's T is below now - W, which step 8
 * refuses anyway, so it need not be looked at. */
int peers_in_doubt(struct peers *ps, const uint8_t Ce[32], uint64_t T, uint64_t N)
{
	const struct tomb *t;
	if (T <= ps->floor)
		return 1;
	t = tomb_find(ps, Ce);
	return t && T <= t->T && N <= t->N;
}

/* ---- eviction and acceptance ---- */

/* Removes p from the cache, leaving a tombstone with its highest
 * accepted T (§6.2). */
void peers_forget(struct peers *ps, struct peer *p, uint64_t now, uint64_t W)
{
	int i = (int)(p - ps->slot);
	tomb_add(ps, p->Ce, p->maxT, p->maxN, now, W);
	unlink_lru(ps, i);
	unhash(ps, i);
	sodium_memzero(p, sizeof *p);
	p->next = ps->free_head;
	ps->free_head = i;
}

static int take_slot(struct peers *ps, uint64_t now, uint64_t W)
{
	if (ps->free_head < 0) {
		/* Evict the least recently used probationary peer; a protected
		 * one only when probation is empty. */
		int victim = ps->tail[0] >= 0 ? ps->tail[0] : ps->tail[1];
		peers_forget(ps, &ps->slot[victim], now, W);
	}
	int i = ps->free_head;
	ps->free_head = ps->slot[i].next;
	return i;
}

/* The second accepted request moves a peer to the protected segment; when
 * that is full its least recently used peer goes back to probation. */
static void touch(struct peers *ps, int i)
{
	struct peer *p = &ps->slot[i];
	int want = p->protected_seg || p->accepted >= 2;
	unlink_lru(ps, i);
	if (want && !p->protected_seg && ps->count[1] >= ps->nprot_max) {
		if (ps->nprot_max == 0) {
			push_mru(ps, i, 0);
			return;
		}
		int lru = ps->tail[1];
		unlink_lru(ps, lru);
		push_mru(ps, lru, 0);
	}
	push_mru(ps, i, want);
}

int peer_below_window(const struct peer *p, uint64_t N) { return N + 8128 <= p->last; }

int peer_seen(const struct peer *p, uint64_t N)
{
	if (N > p->last || peer_below_window(p, N))
		return 0;
	return (p->window[(N >> 6) % WINDOW_WORDS] >> (N & 63)) & 1;
}

static void window_add(struct peer *p, uint64_t N)
{
	if (N > p->last) {
		uint64_t diff = (N >> 6) - (p->last >> 6);
		for (uint64_t i = 1; i <= diff && i <= WINDOW_WORDS; i++)
			p->window[((p->last >> 6) + i) % WINDOW_WORDS] = 0;
		p->last = N;
	}
	p->window[(N >> 6) % WINDOW_WORDS] |= (uint64_t)1 << (N & 63);
}

struct peer *peers_accept(struct peers *ps, struct peer *p, const struct peer *fresh, uint64_t N, uint64_t T,
                          uint64_t now, uint64_t W)
{
	int i;
	if (p) {
		i = (int)(p - ps->slot);
	} else {
		i = take_slot(ps, now, W);
		p = &ps->slot[i];
		*p = *fresh;
		memset(p->window, 0, sizeof p->window);
		p->last = p->maxT = p->maxN = p->accepted = 0;
		unsigned h = hash_of(ps, p->Ce, ps->nhash);
		p->hnext = ps->hash[h];
		ps->hash[h] = i;
		push_mru(ps, i, 0);
	}
	window_add(p, N);
	if (T > p->maxT)
		p->maxT = T;
	if (N > p->maxN)
		p->maxN = N;
	p->accepted++;
	touch(ps, i);
	return p;
}

/* ---- per-(C', k) epoch secrets (§14.3) ---- */

const uint8_t *peer_epoch_prk(const struct peer *p, uint64_t k)
{
	for (int i = 0; i < PEER_EPOCHS; i++)
		if (p->ep[i].used && p->ep[i].k == k)
			return p->ep[i].prk;
	return NULL;
}

void peer_epoch_put(struct peer *p, uint64_t k, const uint8_t prk[32])
{
	int at = 0;
	for (int i = 0; i < PEER_EPOCHS; i++) {
		if (p->ep[i].used && p->ep[i].k == k) {
			at = i;
			break;
		}
		if (!p->ep[i].used || (p->ep[at].used && p->ep[i].k < p->ep[at].k))
			at = i;
	}
	p->ep[at].used = 1;
	p->ep[at].k = k;
	memcpy(p->ep[at].prk, prk, 32);
}

void peers_erase_epochs(struct peers *ps, uint64_t floor)
{
	for (int i = 0; i < ps->cap; i++)
		for (int e = 0; e < PEER_EPOCHS; e++)
			if (ps->slot[i].ep[e].used && ps->slot[i].ep[e].k < floor)
				sodium_memzero(&ps->slot[i].ep[e], sizeof ps->slot[i].ep[e]);
}
