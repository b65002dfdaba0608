/*
 * client.c: SPEC §4.2 and §4.3 on the client side, §5.1 sealing and §7
 * processing of answers.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "ext.h"
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
	memcpy(cl->prkv, prkv, 32);
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

void client_set_push(struct client *cl)
{
	cl->push = 1;
	if (cl->vouched) /* the vouch names the pattern (§15.1) */
		sched_vouch_push(cl->V, cl->prkv, cl->Ce, cl->C, cl->S, cl->E);
}

static void header(const struct client *cl, uint8_t kind, uint64_t N, uint64_t T, uint8_t flags, size_t X,
                   uint8_t *H)
{
	H[0] = VERSION;
	H[OFF_KIND] = kind;
	H[OFF_SUITE] = cl->suite;
	H[OFF_FLAGS] = flags;
	memcpy(H + OFF_CE, cl->Ce, 32);
	put64(H + OFF_N, N);
	put64(H + OFF_T, T);
	H[OFF_X] = (uint8_t)(X >> 8);
	H[OFF_X + 1] = (uint8_t)X;
}

void client_pick(const struct client *cl, uint64_t t, int ping, struct reqext *x)
{
	memset(x, 0, sizeof *x);
	x->E = epoch_ann_pick(&cl->ann, t, &x->k, &x->id, &x->want);
	if (!x->E)
		x->id = NULL;
	x->want |= ping; /* a ping asks, as Authenticate does (§14.2) */
}

static struct client_epoch *ecache_find(struct client *cl, const uint8_t id[EPOCH_ID_LEN])
{
	for (int i = 0; i < CLIENT_EPOCHS; i++)
		if (cl->ecache[i].used && memcmp(cl->ecache[i].id, id, EPOCH_ID_LEN) == 0)
			return &cl->ecache[i];
	return NULL;
}

/* The slot for a new (C', k): a free one, else the oldest epoch's. */
static struct client_epoch *ecache_slot(struct client *cl)
{
	struct client_epoch *at = &cl->ecache[0];
	for (int i = 0; i < CLIENT_EPOCHS; i++) {
		if (!cl->ecache[i].used)
			return &cl->ecache[i];
		if (cl->ecache[i].k < at->k)
			at = &cl->ecache[i];
	}
	return at;
}

/* prk = Extract(prk0, "secsock v2 ext" ‖ 0x00 ‖ dhE ‖ E_k ‖ element), dhE once per (C', k). */
static const uint8_t *epoch_prk(struct client *cl, const struct reqext *x, const uint8_t element[EPOCH_ELEM_LEN])
{
	struct client_epoch *e = ecache_find(cl, x->id);
	uint8_t dhE[32];
	if (e)
		return e->prk;
	if (x25519(dhE, cl->ce, x->E) != 0)
		return NULL;
	e = ecache_slot(cl);
	e->used = 1;
	e->k = x->k;
	memcpy(e->id, x->id, EPOCH_ID_LEN);
	sched_ext(e->prk, cl->prk0, EXT_EPOCH, dhE, 32, x->E, 32, element, EPOCH_ELEM_LEN);
	sodium_memzero(dhE, sizeof dhE);
	return e->prk;
}

size_t client_header_len(const uint8_t *out) { return HEADER_LEN + get16(out + OFF_X); }

size_t client_seal(struct client *cl, int ping, uint64_t N, uint64_t T, const uint8_t *body, size_t len,
                   const struct reqext *x, uint8_t *out)
{
	uint8_t kind = ping ? (cl->vouched ? KIND_PING_VOUCHED : KIND_PING)
	                    : (cl->vouched ? KIND_REQUEST_VOUCHED : KIND_REQUEST);
	if (cl->push)
		kind = cl->vouched ? KIND_PUSH_VOUCHED : KIND_PUSH; /* §15.1 */
	uint8_t elems[EXT_MAX_REQ], kq[32];
	const uint8_t *prk = cl->prk0, *id = x ? x->id : NULL;
	int want = x && x->want;
	uint8_t eelem[EPOCH_ELEM_LEN];
	if (id && (ext_write(eelem, id, 0, 0), !(prk = epoch_prk(cl, x, eelem)))) { /* all-zero dhE: long-term only */
		id = NULL;
		prk = cl->prk0;
	}
	size_t X = ext_write(elems, id, want, cl->flags);
	uint8_t flags = (uint8_t)(cl->flags | (id ? 1u << EXT_EPOCH : 0) | (want ? 1u << EXT_WANT_EPOCH : 0));
	size_t hlen = HEADER_LEN + X;
	uint8_t *p = out + hlen;
	header(cl, kind, N, T, flags, X, out);
	memcpy(out + HEADER_LEN, elems, X);
	if (!aead_suite_known(cl->suite))
		return 0;
	(cl->push ? sched_kp : sched_kq)(kq, prk, cl->suite);
	if (cl->vouched) {
		uint8_t id[IDENTITY_PLAIN];
		memcpy(id, cl->C, 32);
		memcpy(id + 32, cl->V, 32);
		put64(id + 64, cl->E);
		aead_seal_request(p, kq, out, hlen, PART_IDENTITY, id, sizeof id);
		p += IDENTITY_LEN;
	}
	/* A ping's body is empty (§5.1): the caller passes len 0. The vector
	 * runner seals the fields as given, so that ping-with-body, whose
	 * request carries a body in a ping, reproduces. */
	aead_seal_request(p, kq, out, hlen, PART_BODY, body, len);
	sodium_memzero(kq, sizeof kq);
	return (size_t)(p - out) + len + TAG_LEN;
}

void client_forget_epochs(struct client *cl)
{
	sodium_memzero(&cl->ann, sizeof cl->ann);
	sodium_memzero(cl->ecache, sizeof cl->ecache);
}

static const char *refusal_name(uint8_t reason)
{
	switch (reason) {
	case REFUSE_NOT_AUTHORIZED: return "not-authorized";
	case REFUSE_STALE: return "stale";
	case REFUSE_REPLAYED: return "replayed";
	case REFUSE_UNSUPPORTED_FEATURE: return "unsupported-feature";
	case REFUSE_IN_DOUBT: return "in-doubt";
	case REFUSE_UNKNOWN_EPOCH: return "unknown-epoch";
	case REFUSE_STORE_UNAVAILABLE: return "store-unavailable"; /* §17.3: did not run now */
	case REFUSE_TOO_LARGE: return "too-large";
	default: return "refused"; /* a reason this side does not know (§3) */
	}
}

/* §7 step 3; a verified UNKNOWN_EPOCH forgets the epoch keys (§14.3) */
static const char *open_refusal(struct client *cl, const uint8_t *H, size_t hlen, const uint8_t *in, size_t len)
{
	uint8_t tag[16];
	if (len != REFUSAL_LEN)
		return "malformed";
	sched_refusal_tag(tag, cl->prk0, H, hlen, in[2]);
	if (sodium_memcmp(tag, in + 3, 16) != 0)
		return "auth-failed";
	if (in[2] == REFUSE_UNKNOWN_EPOCH)
		client_forget_epochs(cl);
	return refusal_name(in[2]);
}

/* The session secret of the request with header H (§4.2, §14.3): prk0,
 * or the (C', k) secret its EPOCH element names; NULL if unknown. */
static const uint8_t *session_prk(struct client *cl, const uint8_t *H, size_t hlen, int *want)
{
	struct ext x;
	*want = 0;
	if (hlen < HEADER_LEN || H[OFF_FLAGS] == 0)
		return cl->prk0;
	if ((H[OFF_FLAGS] & ~EXT_KNOWN) != 0 || ext_parse(H + HEADER_LEN, hlen - HEADER_LEN, H[OFF_FLAGS], &x) != 0)
		return cl->prk0; /* not sent by this side's sealing; only a refusal can verify */
	*want = x.want;
	if (!x.epoch)
		return cl->prk0;
	const struct client_epoch *e = ecache_find(cl, x.id);
	return e ? e->prk : NULL;
}

/* The elements of a REPLY_EXT (§10): EPOCH_KEYS is learned, if it is
 * the latest (§14.2); other types are skipped. */
static const char *reply_elements(struct client *cl, const uint8_t *p, size_t n)
{
	struct epoch_ann a;
	int last = -1;
	for (size_t off = 0, i = 0; off < n && i < 256; i++) {
		if (n - off < EXT_ELEM_HEAD)
			return "malformed";
		unsigned type = p[off], len = get16(p + off + 1);
		if ((int)type <= last || n - off - EXT_ELEM_HEAD < len)
			return "malformed";
		if (type == REPLY_EPOCH_KEYS) {
			if (len != ANNOUNCE_LEN || epoch_ann_parse(&a, p + off + EXT_ELEM_HEAD) != 0)
				return "malformed";
			if (!cl->ann.have || a.c >= cl->ann.c)
				cl->ann = a;
		}
		last = (int)type;
		off += EXT_ELEM_HEAD + len;
	}
	return NULL;
}

/* §7 step 4 for REPLY and REPLY_EXT (whose plaintext is u16(len) ‖ elements ‖ body) */
static const char *open_reply(struct client *cl, const uint8_t *H, size_t hlen, uint64_t N, const uint8_t *in,
                              size_t len, uint8_t *body, size_t *body_len)
{
	int want;
	uint8_t k[32];
	const uint8_t *prk = session_prk(cl, H, hlen, &want);
	if (in[1] == KIND_REPLY_EXT && !want)
		return "unknown-kind"; /* not asked for (§10) */
	if (len < REPLY_OVERHEAD + (in[1] == KIND_REPLY_EXT ? 2u : 0u) || in[2] != cl->suite)
		return "malformed"; /* a REPLY_EXT has at least its u16(len) (§7 step 4) */
	if (!prk)
		return "auth-failed";
	(in[1] == KIND_REPLY_EXT ? sched_krx : sched_kr)(k, prk, cl->suite);
	int rv = aead_open_reply(body, k, N, in, len);
	sodium_memzero(k, sizeof k);
	if (rv != 0)
		return "auth-failed";
	*body_len = len - REPLY_OVERHEAD;
	if (in[1] == KIND_REPLY) {
		/* §14.2: a verified REPLY to a request that asked for epoch keys
		 * means the server has no seed: forget the keys learned before. */
		if (want)
			cl->ann.have = 0;
		return NULL;
	}
	size_t elen = *body_len >= 2 ? get16(body) : SIZE_MAX;
	if (elen > *body_len - 2)
		return *body_len = 0, "malformed";
	const char *err = reply_elements(cl, body + 2, elen);
	*body_len -= 2 + elen;
	memmove(body, body + 2 + elen, *body_len);
	return err;
}

const char *client_open(struct client *cl, const uint8_t *H, size_t hlen, uint64_t N, const uint8_t *in,
                        size_t len, uint8_t *body, size_t *body_len)
{
	*body_len = 0;
	if (len == HINT_LEN && in[0] != VERSION && in[1] == KIND_HINT) /* step 1 */
		return "unsupported-version";
	if (len < 2 || in[0] != VERSION)
		return "not-secsock";
	if (kind_request(in[1])) /* our request came back: a plain echoing peer */
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
	case KIND_REPLY_EXT:
		return open_reply(cl, H, hlen, N, in, len, body, body_len);
	default: /* step 5, also REFUSAL_EXT (§10), which no request of this side asks for */
		return "unknown-kind";
	}
}

int client_advisory(const char *err)
{
	static const char *const final[] = {"not-authorized", "stale", "replayed", "unsupported-feature", "in-doubt",
	                                    "unknown-epoch", "store-unavailable", "too-large", "refused"};
	if (!err)
		return 0;
	for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
		if (!strcmp(err, final[i]))
			return 0;
	return 1;
}
