/*
 * replies.c: SPEC §6.3. A ring of nslots requests in acceptance
 * order; when the byte budget is full the oldest replies are dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "replies.h"

int replies_init(struct replies *rs, int nslots)
{
	memset(rs, 0, sizeof *rs);
	rs->nslots = nslots > 0 ? nslots : 1;
	rs->slot = calloc((size_t)rs->nslots, sizeof *rs->slot);
	return rs->slot ? 0 : -1;
}

struct kept *replies_find(struct replies *rs, const uint8_t Ce[32], uint64_t N)
{
	for (int i = 0; i < rs->nslots; i++) {
		struct kept *k = &rs->slot[i];
		if (k->in_use && k->N == N && memcmp(k->Ce, Ce, 32) == 0)
			return k;
	}
	return NULL;
}

static void drop_bytes(struct replies *rs, struct kept *k)
{
	rs->bytes -= k->len;
	free(k->bytes);
	k->bytes = NULL;
	k->len = 0;
}

void replies_start(struct replies *rs, const uint8_t Ce[32], uint64_t N)
{
	struct kept *k = &rs->slot[rs->next];
	rs->next = (rs->next + 1) % rs->nslots;
	drop_bytes(rs, k);
	memset(k, 0, sizeof *k);
	k->in_use = 1;
	memcpy(k->Ce, Ce, 32);
	k->N = N;
}

void replies_finish(struct replies *rs, const uint8_t Ce[32], uint64_t N, const uint8_t *reply, size_t len)
{
	struct kept *k = replies_find(rs, Ce, N);
	if (!k)
		return;
	k->answered = 1;
	if (len > REPLY_MAX)
		return;
	/* Oldest first: from the slot reused next. */
	for (int i = 0; rs->bytes + len > REPLY_BYTES && i < rs->nslots; i++) {
		struct kept *old = &rs->slot[(rs->next + i) % rs->nslots];
		if (old != k && old->bytes)
			drop_bytes(rs, old);
	}
	if ((k->bytes = malloc(len ? len : 1)) != NULL) {
		memcpy(k->bytes, reply, len);
		k->len = len;
		rs->bytes += len;
	}
}

void replies_free(struct replies *rs)
{
	for (int i = 0; rs->slot && i < rs->nslots; i++)
		drop_bytes(rs, &rs->slot[i]);
	free(rs->slot);
	memset(rs, 0, sizeof *rs);
}
