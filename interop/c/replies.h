/*
 * replies.h: the reply cache of SPEC §6.3: the sealed replies of recent
 * requests, resent to retries a bounded number of times.
 */
#ifndef SECSOCK_REPLIES_H
#define SECSOCK_REPLIES_H

#include <stddef.h>
#include <stdint.h>

#define REPLY_SLOTS 1024           /* default: the last 1024 requests */
#define REPLY_BYTES (8 << 20)      /* at most 8 MiB of replies */
#define REPLY_MAX (64 << 10)       /* replies above 65536 bytes are not kept */

struct kept {
	int in_use, answered;
	uint8_t Ce[32];
	uint64_t N;
	uint8_t *bytes; /* NULL: not kept */
	size_t len;
	int resends;
};

struct replies {
	struct kept *slot;
	int nslots;
	int next;   /* the oldest slot, reused next */
	size_t bytes;
};

int replies_init(struct replies *rs, int nslots); /* -1 on ENOMEM */
struct kept *replies_find(struct replies *rs, const uint8_t Ce[32], uint64_t N);
/* An accepted request, not answered yet. */
void replies_start(struct replies *rs, const uint8_t Ce[32], uint64_t N);
/* Keeps the sealed reply of an accepted request (if it fits). */
void replies_finish(struct replies *rs, const uint8_t Ce[32], uint64_t N, const uint8_t *reply, size_t len);
void replies_free(struct replies *rs);

#endif
