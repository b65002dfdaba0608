/*
 * proto.h: constants and byte layouts of the secsock curve mechanism,
 * version 2 (SPEC.md §3, §5). Section numbers (§) refer to SPEC.md.
 */
#ifndef SECSOCK_PROTO_H
#define SECSOCK_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum { /* §3 */
	VERSION = 0x02,
	KIND_REQUEST = 0x01, KIND_REQUEST_VOUCHED = 0x02,
	KIND_PING = 0x03, KIND_PING_VOUCHED = 0x04,
	KIND_PUSH = 0x05, KIND_PUSH_VOUCHED = 0x06, /* §15.1 */
	KIND_REPLY = 0x11, KIND_REFUSAL = 0x12, KIND_HINT = 0x13,
	KIND_REPLY_EXT = 0x14, KIND_REFUSAL_EXT = 0x15, /* §10 */
	SUITE_BOX = 0x01, SUITE_AESGCM = 0x02,
	PART_BODY = 0x01, PART_IDENTITY = 0x02,
	REFUSE_NOT_AUTHORIZED = 0x01, REFUSE_STALE = 0x02, REFUSE_REPLAYED = 0x03,
	REFUSE_UNSUPPORTED_FEATURE = 0x04, REFUSE_IN_DOUBT = 0x05,
	REFUSE_UNKNOWN_EPOCH = 0x06, /* §14.3 */
	REFUSE_STORE_UNAVAILABLE = 0x07, /* §17.3: the server's shared replay store did not answer */
	REFUSE_TOO_LARGE = 0x0a,     /* §6, size check after step 7 */
	HINT_CANNOT_OPEN = 0x01, HINT_UNSUPPORTED_VERSION = 0x02, HINT_BUSY = 0x03,
};

enum { /* §5 sizes */
	KEY_LEN = 32,
	TAG_LEN = 16,
	HEADER_LEN = 54,                 /* H in version 2 (X = 0) */
	IDENTITY_PLAIN = 32 + 32 + 8,    /* C ‖ V ‖ u64(E) */
	IDENTITY_LEN = IDENTITY_PLAIN + TAG_LEN,
	REQUEST_OVERHEAD = HEADER_LEN + IDENTITY_LEN + TAG_LEN, /* at most */
	REPLY_HEADER_LEN = 19,           /* version ‖ kind ‖ suite ‖ R */
	REPLY_OVERHEAD = REPLY_HEADER_LEN + TAG_LEN,
	REFUSAL_LEN = 3 + 16,
	HINT_LEN = 3,
	RANDOM_LEN = 16,
	MAX_HEADER = HEADER_LEN + 0xffff, /* with the largest extension field */
	MIN_OTHER_VERSION_REQUEST = 70,   /* §9: every version's request is at least this long */
	MAX_VERSION = 0x07,               /* §9: no version byte is ever larger */
};

/* Offsets in a request header (§5.1). */
enum { OFF_KIND = 1, OFF_SUITE = 2, OFF_FLAGS = 3, OFF_CE = 4, OFF_N = 36, OFF_T = 44, OFF_X = 52 };

#define COUNTER_LIMIT ((uint64_t)1 << 32) /* N < 2^32 (§5.1) */
#define VOUCH_MAX_AHEAD ((uint64_t)86400000) /* E at most 24 hours after T (§6 step 6d) */

static inline void put64(uint8_t *p, uint64_t x)
{
	for (int i = 7; i >= 0; i--, x >>= 8)
		p[i] = (uint8_t)x;
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | p[i];
	return x;
}

static inline unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

static inline int kind_vouched(uint8_t kind)
{
	return kind == KIND_REQUEST_VOUCHED || kind == KIND_PING_VOUCHED || kind == KIND_PUSH_VOUCHED;
}
static inline int kind_ping(uint8_t kind) { return kind == KIND_PING || kind == KIND_PING_VOUCHED; }
static inline int kind_request(uint8_t kind) { return kind >= KIND_REQUEST && kind <= KIND_PING_VOUCHED; }
static inline int kind_push(uint8_t kind) { return kind == KIND_PUSH || kind == KIND_PUSH_VOUCHED; }

#endif
