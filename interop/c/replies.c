/*
 * replies.c: SPEC §6.3. A ring of REPLY_SLOTS requests in acceptance
 * order; when the byte budget is full the oldest replies are dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "replies.h"

struct kept *replies_find(struct replies *rs, const uint8_t Ce[32], uint64_t N)
{
	for (int i = 0; i < REPLY_SLOTS; i++) {
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
	rs->next = (rs->next + 1) % REPLY_SLOTS;
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
	for (int i = 0; rs->bytes + len > REPLY_BYTES && i < REPLY_SLOTS; i++) {
		struct kept *old = &rs->slot[(rs->next + i) % REPLY_SLOTS];
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
	for (int i = 0; i < REPLY_SLOTS; i++)
		drop_bytes(rs, &rs->slot[i]);
	memset(rs, 0, sizeof *rs);
}
