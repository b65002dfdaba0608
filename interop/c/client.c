/*
 * client.c: SPEC §4.2 and §4.3 on the client side, §5.1 sealing and §7
 * processing of answers.
 */
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "client.h"
#include "keys.h"
#include "proto.h"
#include "schedule.h"

static int fail(const char **why, const char *what)
{
	if (why)
		*why = what;
	return -1;
}

/* dh2, prkV and V = HMAC(prkV, "secsock v2 vouch" ‖ C' ‖ C ‖ S ‖ u64(E)) */
static int make_vouch(struct client *cl, const uint8_t c[32])
{
	uint8_t dh2[32], prkv[32];
	if (!key_secret_ok(c))
		return -1;
	x25519_base(cl->C, c);
	if (x25519(dh2, c, cl->S) != 0)
		return -1;
	sched_prkv(prkv, dh2, cl->C, cl->S);
	sched_vouch(cl->V, prkv, cl->Ce, cl->C, cl->S, cl->E);
	sodium_memzero(dh2, sizeof dh2);
	sodium_memzero(prkv, sizeof prkv);
	cl->vouched = 1;
	return 0;
}

int client_init(struct client *cl, const uint8_t S[32], const uint8_t *c, const uint8_t *ce, uint8_t suite,
                uint64_t E, const char **why)
{
	uint8_t dh1[32];
	memset(cl, 0, sizeof *cl);
	cl->E = E;
	if (!key_valid_longterm(S))
		return fail(why, "server key is not a valid long-term key (SPEC 4.1)");
	memcpy(cl->S, S, 32);
	cl->suite = suite;
	if (ce)
		memcpy(cl->ce, ce, 32);
	else
		randombytes_buf(cl->ce, 32);
	if (!key_secret_ok(cl->ce))
		return fail(why, "short-term secret key is all zero");
	x25519_base(cl->Ce, cl->ce);
	if (x25519(dh1, cl->ce, S) != 0)
		return fail(why, "dh1 is all zero");
	sched_prk0(cl->prk0, dh1, cl->Ce, S);
	sodium_memzero(dh1, sizeof dh1);
	/* Version 2 has no flags: prk = prk0 (§4.2). */
	sched_kq(cl->kq, cl->prk0, suite);
	sched_kr(cl->kr, cl->prk0, suite);
	if (c && make_vouch(cl, c) != 0)
		return fail(why, "client secret key is all zero, or dh2 is all zero");
	return 0;
}

static void header(const struct client *cl, uint8_t kind, uint64_t N, uint64_t T, uint8_t H[HEADER_LEN])
{
	H[0] = VERSION;
	H[OFF_KIND] = kind;
	H[OFF_SUITE] = cl->suite;
	H[OFF_FLAGS] = cl->flags;
	memcpy(H + OFF_CE, cl->Ce, 32);
	put64(H + OFF_N, N);
	put64(H + OFF_T, T);
	H[OFF_X] = H[OFF_X + 1] = 0;
}

size_t client_seal(const struct client *cl, int ping, uint64_t N, uint64_t T, const uint8_t *body, size_t len,
                   uint8_t *out)
{
	uint8_t kind = ping ? (cl->vouched ? KIND_PING_VOUCHED : KIND_PING)
	                    : (cl->vouched ? KIND_REQUEST_VOUCHED : KIND_REQUEST);
	uint8_t *p = out + HEADER_LEN;
	header(cl, kind, N, T, out);
	if (!aead_suite_known(cl->suite))
		return 0;
	if (cl->vouched) {
		uint8_t id[IDENTITY_PLAIN];
		memcpy(id, cl->C, 32);
		memcpy(id + 32, cl->V, 32);
		put64(id + 64, cl->E);
		aead_seal_request(p, cl->kq, out, HEADER_LEN, PART_IDENTITY, id, sizeof id);
		p += IDENTITY_LEN;
	}
	/* A ping's body is empty (§5.1): the caller passes len 0. The vector
	 * runner seals the fields as given, so that ping-with-body, whose
	 * request carries a body in a ping, reproduces. */
	aead_seal_request(p, cl->kq, out, HEADER_LEN, PART_BODY, body, len);
	return (size_t)(p - out) + len + TAG_LEN;
}

static const char *refusal_name(uint8_t reason)
{
	switch (reason) {
	case REFUSE_NOT_AUTHORIZED: return "not-authorized";
	case REFUSE_STALE: return "stale";
	case REFUSE_REPLAYED: return "replayed";
	case REFUSE_UNSUPPORTED_FEATURE: return "unsupported-feature";
	case REFUSE_IN_DOUBT: return "in-doubt";
	default: return "refused"; /* a reason this side does not know (§3) */
	}
}

/* §7 step 3 */
static const char *open_refusal(const struct client *cl, const uint8_t *H, size_t hlen, const uint8_t *in, size_t len)
{
	uint8_t tag[16];
	if (len != REFUSAL_LEN)
		return "malformed";
	sched_refusal_tag(tag, cl->prk0, H, hlen, in[2]);
	if (sodium_memcmp(tag, in + 3, 16) != 0)
		return "auth-failed";
	return refusal_name(in[2]);
}

const char *client_open(const struct client *cl, const uint8_t *H, size_t hlen, uint64_t N, const uint8_t *in,
                        size_t len, uint8_t *body, size_t *body_len)
{
	*body_len = 0;
	if (len == HINT_LEN && in[0] != VERSION && in[1] == KIND_HINT) /* step 1 */
		return "unsupported-version";
	if (len < 2 || in[0] != VERSION)
		return "not-secsock";
	switch (in[1]) {
	case KIND_HINT: /* step 2 */
		if (len != HINT_LEN)
			return "malformed";
		if (in[2] == HINT_UNSUPPORTED_VERSION)
			return "unsupported-version";
		return in[2] == HINT_BUSY ? "busy" : "server-key-mismatch";
	case KIND_REFUSAL:
		return open_refusal(cl, H, hlen, in, len);
	case KIND_REPLY: /* step 4 */
		if (len < REPLY_OVERHEAD || in[2] != cl->suite)
			return "malformed";
		if (aead_open_reply(body, cl->kr, N, in, len) != 0)
			return "auth-failed";
		*body_len = len - REPLY_OVERHEAD;
		return NULL;
	default: /* step 5, also the reserved kinds 0x14 and 0x15 (§10) */
		return "unknown-kind";
	}
}

int client_advisory(const char *err)
{
	static const char *const final[] = {"not-authorized", "stale", "replayed", "unsupported-feature", "in-doubt",
	                                    "refused"};
	if (!err)
		return 0;
	for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
		if (!strcmp(err, final[i]))
			return 0;
	return 1;
}
