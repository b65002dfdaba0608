/*
 * server.c: SPEC §6, the checks in their order; each step is one
 * function returning 1 to go on or 0 when it has decided (v is filled).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "ext.h"
#include "keys.h"
#include "schedule.h"
#include "server.h"

void server_config_defaults(struct server_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->freshness = 120000;
	cfg->max_skew = 10000;
	cfg->peer_cache = 4096;
	cfg->reply_slots = REPLY_SLOTS;
	cfg->max_resends = 4;
	cfg->budget_rate = 2048;
}

/* §6.2: with a budget b, at most b (W + Z) / 1000 + b tombstones can still
 * matter; without one, 65536. */
static int tombstones(const struct server_config *cfg)
{
	if (cfg->tombstones > 0)
		return cfg->tombstones;
	if (cfg->budget_rate == 0)
		return 65536;
	uint64_t n = cfg->budget_rate * (cfg->freshness + cfg->max_skew) / 1000 + cfg->budget_rate;
	return n > (1 << 26) ? 1 << 26 : (int)n;
}

int server_init(struct server *sv, const struct server_config *cfg, uint64_t now, const char **why)
{
	memset(sv, 0, sizeof *sv);
	sv->cfg = *cfg;
	if (cfg->nkeys < 1 || cfg->nkeys > MAX_SERVER_KEYS)
		return *why = "no server key", -1;
	for (int i = 0; i < cfg->nkeys; i++) {
		if (!key_secret_ok(cfg->s[i]))
			return *why = "a server secret key is all zero", -1;
		x25519_base(sv->S[i], cfg->s[i]);
	}
	/* §7.1: an authorized list holding a key that is not a valid
	 * long-term key is refused when loaded. */
	for (int i = 0; i < cfg->nauthorized; i++)
		if (!key_valid_longterm(cfg->authorized[i]))
			return *why = "an authorized key is not a valid long-term key", -1;
	if (sv->cfg.max_skew > sv->cfg.freshness)
		sv->cfg.max_skew = sv->cfg.freshness; /* Z is at most W (§6 step 8) */
	if (cfg->epochs && cfg->epochs->L < sv->cfg.freshness + sv->cfg.max_skew)
		return *why = "epoch length is below W + Z (SPEC 14.1)", -1;
	if (peers_init(&sv->peers, cfg->peer_cache, tombstones(&sv->cfg)) != 0 ||
	    replies_init(&sv->replies, cfg->reply_slots) != 0)
		return *why = "out of memory", -1;
	budget_init(&sv->budget, cfg->budget_rate, now);
	randombytes_buf(sv->vkey, sizeof sv->vkey);
	return 0;
}

void server_free(struct server *sv)
{
	peers_free(&sv->peers);
	replies_free(&sv->replies);
	sodium_memzero(sv, sizeof *sv);
}

/* ---- one request in flight ---- */

struct req {
	const uint8_t *in;
	size_t len, hlen;        /* hlen: H = in[0 .. 54 + X) */
	size_t id_off, body_off; /* identity box, body box */
	uint8_t kind, suite, flags;
	const uint8_t *Ce;
	uint64_t N, T;
	int vouched, ping;
	int pull;                /* §15.2 */
	struct peer *p;          /* the cached peer, or NULL: then work is charged */
	int key;                 /* index of the server key that opened it */
	struct ext x;            /* the extension field (§10), parsed when flags has only known bits */
	uint8_t feature;         /* 0, or the refusal of step 4: UNSUPPORTED_FEATURE, UNKNOWN_EPOCH */
	int eslot;               /* EPOCH: the chain slot of epoch k */
	uint64_t k;
	uint8_t dhE[32];
	uint8_t prk0[32], prk[32], kq[32]; /* prk: the session secret (§4.2, §14.3) */
	int has_C;               /* C, V, E verified by this request (or the cache) */
	uint8_t C[32], V[32];
	uint64_t E;
	uint8_t *body;
};

static int decide(struct verdict *v, enum action a, const char *what)
{
	snprintf(v->what, sizeof v->what, "%s", what);
	v->action = a;
	return 0;
}

static int drop(struct verdict *v, const char *reason)
{
	char what[40];
	snprintf(what, sizeof what, "drop:%s", reason);
	return decide(v, DROP, what);
}

static int hint(struct verdict *v, uint8_t reason)
{
	static const char *const what[] = {"hint:?", "hint:cannot-open", "hint:unsupported-version", "hint:busy"};
	static const char *const dropped[] = {"?", "forged", "unknown-version", "busy"};
	if (v->pull) /* §15.2: nothing is sent; the hint's case is counted as a drop */
		return drop(v, dropped[reason <= HINT_BUSY ? reason : 0]);
	v->buf[0] = VERSION;
	v->buf[1] = KIND_HINT;
	v->buf[2] = reason;
	v->answer = v->buf;
	v->answer_len = HINT_LEN;
	return decide(v, ANSWER, what[reason <= HINT_BUSY ? reason : 0]);
}

/* §5.3: 0x02 ‖ 0x12 ‖ reason ‖ HMAC(prk0, "secsock v2 refusal" ‖ H ‖ reason)[0..16] */
static int refuse(struct verdict *v, const struct req *r, const uint8_t prk0[32], uint8_t reason, const char *what)
{
	if (r->pull) /* §15.2: "refuse x" becomes "drop (x)" */
		return drop(v, what + strlen("refuse:"));
	v->buf[0] = VERSION;
	v->buf[1] = KIND_REFUSAL;
	v->buf[2] = reason;
	sched_refusal_tag(v->buf + 3, prk0, r->in, r->hlen, reason);
	v->answer = v->buf;
	v->answer_len = REFUSAL_LEN;
	return decide(v, ANSWER, what);
}

/* n scalar multiplications, charged unless from a cached peer (step 3). */
static int charge(struct server *sv, const struct req *r, struct verdict *v, unsigned n)
{
	if (!r->p && budget_charge(&sv->budget, n) != 0)
		return hint(v, HINT_BUSY);
	return 1;
}

/* dhE of a (C', k) not cached, for a cached peer too (§14.3). */
static int charge_always(struct server *sv, struct verdict *v, unsigned n)
{
	return budget_charge(&sv->budget, n) == 0 ? 1 : hint(v, HINT_BUSY);
}

/* ---- steps ---- */

/* 1. version and kind */
static int step_kind(const struct req *r, struct verdict *v)
{
	if (r->len < 2)
		return drop(v, "malformed");
	if (r->in[0] != VERSION) {
		/* A request of another version (SPEC §9) is hinted; anything else
		 * is a plain SP body, dropped unanswered: an answer would read as
		 * a successful reply to a plain client. */
		if (r->len >= MIN_OTHER_VERSION_REQUEST && r->in[0] >= 0x01 && r->in[0] <= MAX_VERSION &&
		    (kind_request(r->in[1]) || kind_push(r->in[1])))
			return hint(v, HINT_UNSUPPORTED_VERSION);
		return drop(v, "not-secsock");
	}
	if (r->pull ? !kind_push(r->in[1]) : !kind_request(r->in[1]))
		return drop(v, "unknown-kind"); /* §15.1: the patterns never mix */
	return 1;
}

/* 2. layout */
static int step_layout(struct req *r, struct verdict *v)
{
	const uint8_t *in = r->in;
	if (r->len < HEADER_LEN)
		return drop(v, "malformed");
	r->kind = in[OFF_KIND];
	r->suite = in[OFF_SUITE];
	r->flags = in[OFF_FLAGS];
	r->Ce = in + OFF_CE;
	r->N = get64(in + OFF_N);
	r->T = get64(in + OFF_T);
	r->hlen = HEADER_LEN + get16(in + OFF_X);
	r->vouched = kind_vouched(r->kind);
	r->ping = kind_ping(r->kind);
	r->id_off = r->hlen;
	r->body_off = r->hlen + (r->vouched ? IDENTITY_LEN : 0);
	if (!key_canonical(r->Ce) || r->N < 1 || r->N >= COUNTER_LIMIT)
		return drop(v, "malformed");
	if (r->flags == 0 && r->hlen != HEADER_LEN)
		return drop(v, "malformed");
	if (r->len < r->body_off + TAG_LEN || (r->ping && r->len != r->body_off + TAG_LEN))
		return drop(v, "malformed");
	/* the element framing, and the value sizes of the types known here */
	if (r->flags != 0 && ext_parse(in + HEADER_LEN, r->hlen - HEADER_LEN, r->flags, &r->x) != 0)
		return drop(v, "malformed");
	return 1;
}

/* What step 4 will say: an unknown suite or type, or an EPOCH this
 * server does not accept. */
static void classify(struct server *sv, struct req *r, uint64_t now)
{
	unsigned known = r->pull ? 1u << EXT_EPOCH : EXT_KNOWN; /* §15.1: no WANT_EPOCH in a PUSH message */
	if (!aead_suite_known(r->suite) || (r->flags & ~known) != 0)
		r->feature = REFUSE_UNSUPPORTED_FEATURE;
	else if (r->x.epoch && (!sv->cfg.epochs ||
	                        !epoch_accepts(sv->cfg.epochs, r->x.id, now, sv->cfg.max_skew, &r->eslot, &r->k)))
		r->feature = REFUSE_UNKNOWN_EPOCH;
}

/* 3. work budget: every server key step 5 may try, plus one dhE for an
 * EPOCH whose (C', k) is not cached (§14.3; charged for a cached peer
 * too), charged together, or the one X25519 of step 4's refusal */
static int step_budget(struct server *sv, struct req *r, struct verdict *v, uint64_t now)
{
	classify(sv, r, now);
	r->p = peers_find(&sv->peers, r->Ce);
	budget_refill(&sv->budget, now);
	if (r->feature && r->pull) /* §15.2 step 3: before the budget, nothing charged */
		return drop(v, r->feature == REFUSE_UNKNOWN_EPOCH ? "unknown-epoch" : "unsupported-feature");
	if (r->feature)
		return charge(sv, r, v, 1);
	if (r->p)
		/* §15.2 step 4: a PULL worker keeps a cached peer's (C', k) secret
		 * once computed and does not charge it */
		return r->x.epoch && !r->pull && !peer_epoch_prk(r->p, r->k) ? charge_always(sv, v, 1) : 1;
	return charge(sv, r, v, (unsigned)sv->cfg.nkeys + (r->x.epoch ? 1u : 0u));
}

/* prk0 for server key i: dh1 = X25519(s_i, C'), charged in step 3 */
static int derive_prk0(struct server *sv, struct req *r, struct verdict *v, int i, uint8_t prk0[32])
{
	uint8_t dh1[32];
	if (x25519(dh1, sv->cfg.s[i], r->Ce) != 0)
		return drop(v, "weak-key");
	sched_prk0(prk0, dh1, r->Ce, sv->S[i]);
	sodium_memzero(dh1, sizeof dh1);
	return 1;
}

/* 4. unknown suite or flags (or EPOCH not accepted, §14.3): an
 * authenticated refusal with the cached peer's prk0, or the current key's */
static int step_feature(struct server *sv, struct req *r, struct verdict *v)
{
	uint8_t prk0[32];
	if (!r->feature)
		return 1;
	if (r->p)
		memcpy(prk0, r->p->prk0, 32);
	else if (!derive_prk0(sv, r, v, 0, prk0))
		return 0;
	if (r->feature == REFUSE_UNKNOWN_EPOCH)
		return refuse(v, r, prk0, REFUSE_UNKNOWN_EPOCH, "refuse:unknown-epoch");
	return refuse(v, r, prk0, REFUSE_UNSUPPORTED_FEATURE, "refuse:unsupported-feature");
}

/* dhE = X25519(esk_k, C') (§14.3), charged by the caller */
static int derive_dhe(struct server *sv, struct req *r, struct verdict *v)
{
	if (x25519(r->dhE, sv->cfg.epochs->esk[r->eslot], r->Ce) != 0)
		return drop(v, "weak-key");
	return 1;
}

/* prk = prk0, or with EPOCH: Extract(prk0, "secsock v2 ext" ‖ 0x00 ‖ dhE ‖ E_k ‖ element).
 * WANT_EPOCH has no secret and does not enter the chain. */
static void chain_prk(const struct server *sv, struct req *r)
{
	memcpy(r->prk, r->prk0, 32);
	if (r->x.epoch)
		sched_ext(r->prk, r->prk0, EXT_EPOCH, r->dhE, 32, sv->cfg.epochs->E[r->eslot], 32, r->x.epoch_elem,
		          EPOCH_ELEM_LEN);
}

static int open_body(struct req *r)
{
	(r->pull ? sched_kp : sched_kq)(r->kq, r->prk, r->suite); /* §15.1 */
	return aead_open_request(r->body, r->kq, r->in, r->hlen, PART_BODY, r->in + r->body_off, r->len - r->body_off);
}

/* A cached peer's session secret: prk0, or its cached (C', k) secret, or
 * dhE (charged in step 3) for a k not cached */
static int cached_prk(struct server *sv, struct req *r, struct verdict *v)
{
	const uint8_t *prk = r->x.epoch ? peer_epoch_prk(r->p, r->k) : NULL;
	memcpy(r->prk0, r->p->prk0, 32);
	if (prk) {
		memcpy(r->prk, prk, 32);
		return 1;
	}
	if (r->x.epoch && !derive_dhe(sv, r, v))
		return 0;
	chain_prk(sv, r);
	if (r->pull && r->x.epoch) /* §15.2 step 4: kept whether or not the body opens */
		peer_epoch_put(r->p, r->k, r->prk);
	return 1;
}

/* 5. request key: the cached peer's, or the first server key that opens */
static int step_request_key(struct server *sv, struct req *r, struct verdict *v)
{
	if (r->p) {
		r->key = r->p->key;
		if (!cached_prk(sv, r, v))
			return 0;
		return open_body(r) == 0 ? 1 : hint(v, HINT_CANNOT_OPEN);
	}
	if (r->x.epoch && !derive_dhe(sv, r, v)) /* once: dhE does not depend on S */
		return 0;
	for (r->key = 0; r->key < sv->cfg.nkeys; r->key++) {
		if (!derive_prk0(sv, r, v, r->key, r->prk0))
			return 0;
		chain_prk(sv, r);
		if (open_body(r) == 0)
			return 1;
	}
	return hint(v, HINT_CANNOT_OPEN);
}

static int authorized(const struct server *sv, const uint8_t C[32])
{
	for (int i = 0; i < sv->cfg.nauthorized; i++)
		if (memcmp(sv->cfg.authorized[i], C, 32) == 0)
			return 1;
	return 0;
}

static struct vouch_entry *vouch_slot(struct server *sv, const uint8_t C[32])
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, C, 32, sv->vkey);
	return &sv->vouches[(h[0] | h[1] << 8) % VOUCH_CACHE];
}

/* prkV for (C, S): cached, or (charged) the valid-key check of C and dh2.
 * A cached prkV was made after C passed the check, so it is not redone. */
static int get_prkv(struct server *sv, struct req *r, struct verdict *v, uint8_t prkv[32], struct vouch_entry *e)
{
	uint8_t dh2[32];
	if (e->in_use && e->key == r->key && memcmp(e->C, r->C, 32) == 0) {
		memcpy(prkv, e->prkv, 32);
		return 1;
	}
	/* §6 step 3: the valid-key check and dh2, two at once, all or nothing,
	 * for a cached C' too (a cached anonymous C' may present a vouch) */
	if (!charge_always(sv, v, 2))
		return 0;
	if (!key_valid_longterm(r->C))
		return drop(v, "weak-key");
	if (x25519(dh2, sv->cfg.s[r->key], r->C) != 0)
		return drop(v, "weak-key");
	sched_prkv(prkv, dh2, r->C, sv->S[r->key]);
	sodium_memzero(dh2, sizeof dh2);
	return 1;
}

/* 6c. V in constant time; prkV is cached only once V verified */
static int check_vouch(struct server *sv, struct req *r, struct verdict *v)
{
	struct vouch_entry *e = vouch_slot(sv, r->C);
	uint8_t prkv[32], want[32];
	if (!get_prkv(sv, r, v, prkv, e))
		return 0;
	(r->pull ? sched_vouch_push : sched_vouch)(want, prkv, r->Ce, r->C, sv->S[r->key], r->E); /* §15.1 */
	if (sodium_memcmp(want, r->V, 32) != 0)
		return drop(v, "bad-vouch"); /* a forgery: no refusal */
	e->in_use = 1;
	e->key = r->key;
	memcpy(e->C, r->C, 32);
	memcpy(e->prkv, prkv, 32);
	sodium_memzero(prkv, sizeof prkv);
	r->has_C = 1;
	if (r->p) { /* remembered for this C' at once; a new C' at step 10 */
		r->p->has_C = 1;
		memcpy(r->p->C, r->C, 32);
		memcpy(r->p->V, r->V, 32);
		r->p->E = r->E;
	}
	return 1;
}

/* 6a, 6b: a C' speaks for one C, with one verified V and E */
static int check_cached_identity(const struct req *r, struct verdict *v)
{
	const struct peer *p = r->p;
	if (memcmp(p->C, r->C, 32) != 0 || sodium_memcmp(p->V, r->V, 32) != 0 || p->E != r->E)
		return drop(v, "forged");
	return 1;
}

/* 6. identity (vouched kinds) */
static int step_identity(struct server *sv, struct req *r, struct verdict *v)
{
	uint8_t id[IDENTITY_PLAIN];
	if (!r->vouched)
		return 1;
	if (aead_open_request(id, r->kq, r->in, r->hlen, PART_IDENTITY, r->in + r->id_off, IDENTITY_LEN) != 0)
		return hint(v, HINT_CANNOT_OPEN);
	memcpy(r->C, id, 32);
	memcpy(r->V, id + 32, 32);
	r->E = get64(id + 64);
	if (r->p && r->p->has_C) {
		if (!check_cached_identity(r, v))
			return 0;
		r->has_C = 1;
	} else if (!check_vouch(sv, r, v)) {
		return 0;
	}
	if (r->T > r->E || r->E > r->T + VOUCH_MAX_AHEAD) /* d */
		return refuse(v, r, r->prk0, REFUSE_STALE, "refuse:stale");
	if (sv->cfg.policy && !authorized(sv, r->C)) /* e: on every request */
		return refuse(v, r, r->prk0, REFUSE_NOT_AUTHORIZED, "refuse:not-authorized");
	return 1;
}

/* 7. anonymous policy */
static int step_anonymous(struct server *sv, struct req *r, struct verdict *v)
{
	if (!r->vouched && sv->cfg.policy && !sv->cfg.allow_anonymous)
		return refuse(v, r, r->prk0, REFUSE_NOT_AUTHORIZED, "refuse:not-authorized");
	return 1;
}

/* 8. freshness: now - W <= T <= now + Z */
static int step_fresh(struct server *sv, struct req *r, struct verdict *v, uint64_t now)
{
	uint64_t W = sv->cfg.freshness, Z = sv->cfg.max_skew;
	if ((now >= W && r->T < now - W) || r->T > now + Z)
		return refuse(v, r, r->prk0, REFUSE_STALE, "refuse:stale");
	return 1;
}

/* 9. replay: the reply cache first (§6.3), then the floor and the window */
static int step_replay(struct server *sv, struct req *r, struct verdict *v)
{
	struct kept *k = r->pull ? NULL : replies_find(&sv->replies, r->Ce, r->N); /* §15.2: no reply cache */
	if (k && !k->answered)
		return drop(v, "retry"); /* still with the application; a cooked NNG REP never gets here */
	if (k && k->bytes && k->resends < sv->cfg.max_resends) {
		k->resends++;
		v->answer = k->bytes;
		v->answer_len = k->len;
		return decide(v, ANSWER, "resend");
	}
	if (k)
		return refuse(v, r, r->prk0, REFUSE_REPLAYED, "refuse:replayed");
	if (peers_in_doubt(&sv->peers, r->Ce, r->T, r->N) || (r->p && peer_below_window(r->p, r->N)))
		return refuse(v, r, r->prk0, REFUSE_IN_DOUBT, "refuse:in-doubt");
	if (r->p && peer_seen(r->p, r->N)) /* accepted here, its reply no longer kept */
		return refuse(v, r, r->prk0, REFUSE_REPLAYED, "refuse:replayed");
	return 1;
}

static void make_ticket(struct ticket *t, const struct req *r)
{
	memcpy(t->Ce, r->Ce, 32);
	sched_kr(t->kr, r->prk, r->suite);
	sched_krx(t->krx, r->prk, r->suite);
	t->N = r->N;
	t->suite = r->suite;
	t->want_epoch = r->x.want;
}

/* 10. accept */
static int step_accept(struct server *sv, struct req *r, struct verdict *v, uint64_t now)
{
	struct peer fresh;
	memset(&fresh, 0, sizeof fresh);
	memcpy(fresh.Ce, r->Ce, 32);
	fresh.key = r->key;
	memcpy(fresh.prk0, r->prk0, 32);
	if (r->has_C) {
		fresh.has_C = 1;
		memcpy(fresh.C, r->C, 32);
		memcpy(fresh.V, r->V, 32);
		fresh.E = r->E;
	}
	struct peer *p = peers_accept(&sv->peers, r->p, &fresh, r->N, r->T, now, sv->cfg.freshness);
	if (r->x.epoch) /* the per-(C', k) secret (§14.3) */
		peer_epoch_put(p, r->k, r->prk);
	v->epoch = r->x.epoch;
	v->k = r->k;
	if (r->pull) { /* §15.2 step 10: deliver, nothing to answer later */
		v->body_len = r->len - r->body_off - TAG_LEN;
		return decide(v, DELIVER, "deliver");
	}
	replies_start(&sv->replies, r->Ce, r->N);
	make_ticket(&v->t, r);
	v->epoch = r->x.epoch;
	v->k = r->k;
	if (r->ping) {
		v->answer_len = server_seal_reply(sv, &v->t, (const uint8_t *)"", 0, v->buf);
		v->answer = v->buf;
		return decide(v, ANSWER, "reply");
	}
	v->body_len = r->len - r->body_off - TAG_LEN;
	return decide(v, DELIVER, "deliver");
}

enum action server_handle(struct server *sv, uint64_t now, const uint8_t *in, size_t len, uint8_t *body,
                          struct verdict *v)
{
	struct req r;
	memset(v, 0, sizeof *v);
	memset(&r, 0, sizeof r);
	r.in = in;
	r.len = len;
	r.body = body;
	r.pull = v->pull = sv->cfg.pull;
	server_epoch_tick(sv, now);
	(void)(step_kind(&r, v) && step_layout(&r, v) && step_budget(sv, &r, v, now) && step_feature(sv, &r, v) &&
	       step_request_key(sv, &r, v) && step_identity(sv, &r, v) && step_anonymous(sv, &r, v) &&
	       step_fresh(sv, &r, v, now) && step_replay(sv, &r, v) && step_accept(sv, &r, v, now));
	sodium_memzero(r.prk0, sizeof r.prk0);
	sodium_memzero(r.prk, sizeof r.prk);
	sodium_memzero(r.dhE, sizeof r.dhE);
	sodium_memzero(r.kq, sizeof r.kq);
	return v->action;
}

void server_epoch_tick(struct server *sv, uint64_t now)
{
	int64_t floor;
	if (sv->cfg.epochs && (floor = epoch_advance(sv->cfg.epochs, now)) >= 0)
		peers_erase_epochs(&sv->peers, (uint64_t)floor);
}

/* REPLY_EXT plaintext: u16(83) ‖ EPOCH_KEYS element (0x00 ‖ u16(80) ‖
 * announcement) ‖ body (§10, §14.2). NULL if there is nothing to announce. */
static uint8_t *announce_plain(struct server *sv, const struct ticket *t, const uint8_t *body, size_t len)
{
	uint8_t ann[ANNOUNCE_LEN], *m;
	if (!t->want_epoch || !sv->cfg.epochs || epoch_announce(sv->cfg.epochs, ann) != 0 ||
	    !(m = malloc(len + REPLY_EXT_EXTRA)))
		return NULL;
	m[0] = 0;
	m[1] = EXT_ELEM_HEAD + ANNOUNCE_LEN;
	m[2] = REPLY_EPOCH_KEYS;
	m[3] = 0;
	m[4] = ANNOUNCE_LEN;
	memcpy(m + 5, ann, ANNOUNCE_LEN);
	if (len)
		memcpy(m + REPLY_EXT_EXTRA, body, len);
	return m;
}

size_t server_seal_reply(struct server *sv, const struct ticket *t, const uint8_t *body, size_t len, uint8_t *out)
{
	uint8_t *ext = announce_plain(sv, t, body, len);
	out[0] = VERSION;
	out[1] = ext ? KIND_REPLY_EXT : KIND_REPLY;
	out[2] = t->suite;
	if (sv->cfg.fixed_R)
		memcpy(out + 3, sv->cfg.fixed_R, RANDOM_LEN);
	else
		randombytes_buf(out + 3, RANDOM_LEN);
	if (ext) {
		len += REPLY_EXT_EXTRA;
		aead_seal_reply(out, t->krx, t->N, ext, len);
		free(ext);
	} else {
		aead_seal_reply(out, t->kr, t->N, body, len);
	}
	replies_finish(&sv->replies, t->Ce, t->N, out, REPLY_OVERHEAD + len);
	return REPLY_OVERHEAD + len;
}
