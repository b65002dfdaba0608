/*
 * curve.h: a small reference implementation in C of the secsock "curve"
 * mechanism, version 1, written from SPEC.md alone. Cryptography comes
 * from libsodium; this part knows nothing about sockets (see main.c).
 * Section numbers (§) refer to SPEC.md.
 */
#ifndef SECSOCK_CURVE_H
#define SECSOCK_CURVE_H

#include <stddef.h>
#include <stdint.h>

enum { /* §3 */
	VERSION = 0x01,
	KIND_REQUEST = 0x01, KIND_REQUEST_VOUCHED = 0x02,
	KIND_PING = 0x03, KIND_PING_VOUCHED = 0x04,
	KIND_REPLY = 0x11, KIND_REFUSAL = 0x12, KIND_HINT = 0x13,
	LABEL_IDENTITY = 0x21, LABEL_VOUCH = 0x22,
	SUITE_BOX = 0x01, SUITE_AESGCM = 0x02,
	REFUSE_NOT_AUTHORIZED = 0x01, REFUSE_STALE = 0x02, REFUSE_REPLAYED = 0x03,
	HINT_CANNOT_OPEN = 0x01, HINT_UNSUPPORTED = 0x02,
	HEADER_LEN = 51, IDENTITY_LEN = 96, TAG_LEN = 16,
	REQUEST_OVERHEAD = HEADER_LEN + IDENTITY_LEN + TAG_LEN, /* at most */
	REPLY_OVERHEAD = 3 + 12 + TAG_LEN,                      /* at most */
};

/* K and, for suite AESGCM, the two AES keys derived from it (§4). */
struct keys {
	uint8_t K[32], c2s[32], s2c[32];
};

/* A client with one short-term key c' (§4). The caller numbers the
 * requests N = 1, 2, ... and must make a new client (new c') after 2^20
 * requests or one hour (§8). */
struct client {
	uint8_t suite;
	int vouched;            /* has a long-term key */
	uint8_t C[32];          /* long-term public key */
	uint8_t V[48];          /* vouch for C' */
	uint8_t Ce[32], ce[32]; /* C' and c' */
	struct keys k;
};

/* One request the server accepted, enough to seal its answer (§5.2). */
struct ticket {
	struct keys k;
	uint8_t Ce[32];
	uint64_t N;
	uint8_t suite;
};

enum action { DROP, ANSWER, DELIVER };

struct verdict {
	enum action action;
	const char *what; /* "deliver", "reply" (ping), "refuse:stale", "hint:cannot-open", "drop:malformed", "retry", ... */
	const uint8_t *answer;  /* ANSWER: the bytes to send back */
	size_t answer_len;
	size_t body_len;        /* DELIVER: the opened body (in the caller's buffer) */
	struct ticket t;        /* DELIVER: pass to curve_seal_reply */
	uint8_t buf[64];
};

#define MAX_SERVER_KEYS 4
#define MAX_AUTHORIZED 16
#define PEER_CACHE 1024
#define REPLY_SLOTS 1024
#define REPLY_BYTES (8 << 20)
#define REPLY_MAX (64 << 10)

struct peer { /* §6.1: what the server caches per C' */
	int in_use, key;        /* index of the server key that opened it */
	uint8_t Ce[32];
	struct keys k;
	int proven;             /* C below has a verified vouch for this C' */
	uint8_t C[32];
	uint64_t last, window[128]; /* §6.2: RFC 6479 window, 8192 bits, 8128 usable */
	uint64_t maxT, used;
};

struct kept { /* §6.3: a recently accepted request and its sealed reply */
	int in_use, answered;
	uint8_t Ce[32];
	uint64_t N;
	uint8_t *bytes; /* NULL: not kept */
	size_t len;
};

struct server {
	uint8_t s[MAX_SERVER_KEYS][32]; /* s[0] current, then previous keys */
	int nkeys;
	int policy, allow_anonymous;    /* §7.1 */
	uint8_t authorized[MAX_AUTHORIZED][32];
	int nauthorized;
	uint64_t freshness;             /* W in ms */
	uint64_t max_skew;              /* S in ms: how far ahead T may be */
	const uint8_t *fixed_R;         /* test vectors only: R instead of random bytes */
	uint64_t lowwater, clock;       /* one low-water mark (§6.2 allows one or many) */
	struct peer peers[PEER_CACHE];
	struct kept kept[REPLY_SLOTS];
	int next_kept;
	size_t kept_bytes;
};

int curve_init(void); /* sodium_init; returns <0 on failure */
int curve_aesgcm_available(void);

int curve_client_init(struct client *cl, const uint8_t S[32], const uint8_t *c, const uint8_t *ce, uint8_t suite);
/* out must hold len + REQUEST_OVERHEAD bytes; returns the request length. */
size_t curve_seal_request(const struct client *cl, int ping, uint64_t N, uint64_t T,
                          const uint8_t *body, size_t len, uint8_t *out);
/* body must hold len bytes. Returns NULL and the body, or a client error
 * name of SPEC §10 ("not-authorized", "server-key-mismatch", ...). */
const char *curve_open_reply(const struct client *cl, uint64_t N, const uint8_t *in, size_t len,
                             uint8_t *body, size_t *body_len);

/* Server checks of §6 on one received body; body must hold len bytes. */
enum action curve_server_handle(struct server *sv, uint64_t now, const uint8_t *in, size_t len,
                         uint8_t *body, struct verdict *v);
/* Seals the application's reply to a delivered request (out: len +
 * REPLY_OVERHEAD bytes) and keeps it for retries. Returns its length. */
size_t curve_seal_reply(struct server *sv, const struct ticket *t, const uint8_t *body, size_t len, uint8_t *out);
void curve_server_free(struct server *sv);

#endif
