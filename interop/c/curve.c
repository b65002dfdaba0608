/*
 * curve.c: the secsock "curve" mechanism, version 1, from SPEC.md.
 * See curve.h. Section numbers (§) refer to SPEC.md.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "curve.h"

static int aesgcm_ok;

int curve_init(void)
{
	if (sodium_init() < 0)
		return -1;
	aesgcm_ok = crypto_aead_aes256gcm_is_available();
	return 0;
}

int curve_aesgcm_available(void) { return aesgcm_ok; }

static void put64(uint8_t *p, uint64_t x)
{
	for (int i = 7; i >= 0; i--, x >>= 8)
		p[i] = (uint8_t)x;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | p[i];
	return x;
}

/* §2: Nonce(kind, suite, A, B) = "secsk" ‖ 0x01 ‖ kind ‖ suite ‖ A ‖ B */
static void nonce(uint8_t n[24], uint8_t kind, uint8_t suite, const uint8_t a[8], const uint8_t b[8])
{
	memcpy(n, "secsk", 5);
	n[5] = VERSION;
	n[6] = kind;
	n[7] = suite;
	memcpy(n + 8, a, 8);
	memcpy(n + 16, b, 8);
}

/* Nonce(kind, 0x01, u64(x), u64(y)) */
static void nonce64(uint8_t n[24], uint8_t kind, uint64_t x, uint64_t y)
{
	uint8_t a[8], b[8];
	put64(a, x);
	put64(b, y);
	nonce(n, kind, SUITE_BOX, a, b);
}

/* §4: K = beforenm(pub, sec); Kc2s and Ks2c = HMAC-SHA256(K, label). */
static int derive(struct keys *k, const uint8_t pub[32], const uint8_t sec[32])
{
	static const char c2s[] = "secsock1 aes256gcm client to server";
	static const char s2c[] = "secsock1 aes256gcm server to client";
	if (crypto_box_beforenm(k->K, pub, sec) != 0)
		return -1; /* pub has small order */
	crypto_auth_hmacsha256(k->c2s, (const uint8_t *)c2s, 35, k->K);
	crypto_auth_hmacsha256(k->s2c, (const uint8_t *)s2c, 35, k->K);
	return 0;
}

/* ---- requests (§5.1) ---- */

static int vouched_kind(uint8_t kind) { return kind == KIND_REQUEST_VOUCHED || kind == KIND_PING_VOUCHED; }

/* The body box of request in[0..len) (header H = in[0..51)). */
static int open_request_body(const struct keys *k, const uint8_t *in, size_t len, uint8_t *body)
{
	size_t off = HEADER_LEN + (vouched_kind(in[1]) ? IDENTITY_LEN : 0);
	uint8_t n[24];
	if (in[2] == SUITE_BOX) {
		nonce64(n, in[1], get64(in + 35), get64(in + 43));
		return crypto_box_open_easy_afternm(body, in + off, len - off, n, k->K);
	}
	memset(n, 0, 12);
	memcpy(n, in + 35, 8); /* u64(N) ‖ 00 00 00 00 */
	return crypto_aead_aes256gcm_decrypt(body, NULL, NULL, in + off, len - off, in, HEADER_LEN, n, k->c2s);
}

int curve_client_init(struct client *cl, const uint8_t S[32], const uint8_t *c, const uint8_t *ce, uint8_t suite)
{
	memset(cl, 0, sizeof *cl);
	if (suite != SUITE_BOX && !(suite == SUITE_AESGCM && aesgcm_ok))
		return -1;
	cl->suite = suite;
	if (ce)
		memcpy(cl->ce, ce, 32);
	else
		randombytes_buf(cl->ce, 32);
	crypto_scalarmult_base(cl->Ce, cl->ce);
	if (derive(&cl->k, S, cl->ce) != 0)
		return -1;
	if (c) { /* V = secretbox(Kv, Nonce(0x22, 0x01, C'[0:8], C'[8:16]), C') */
		uint8_t Kv[32], n[24];
		cl->vouched = 1;
		crypto_scalarmult_base(cl->C, c);
		if (crypto_box_beforenm(Kv, S, c) != 0)
			return -1;
		nonce(n, LABEL_VOUCH, SUITE_BOX, cl->Ce, cl->Ce + 8);
		crypto_box_easy_afternm(cl->V, cl->Ce, 32, n, Kv);
		sodium_memzero(Kv, sizeof Kv);
	}
	return 0;
}

size_t curve_seal_request(const struct client *cl, int ping, uint64_t N, uint64_t T,
                          const uint8_t *body, size_t len, uint8_t *out)
{
	uint8_t kind = ping ? (cl->vouched ? KIND_PING_VOUCHED : KIND_PING)
	                    : (cl->vouched ? KIND_REQUEST_VOUCHED : KIND_REQUEST);
	uint8_t n[24], *p = out + HEADER_LEN;
	out[0] = VERSION;
	out[1] = kind;
	out[2] = cl->suite;
	memcpy(out + 3, cl->Ce, 32);
	put64(out + 35, N);
	put64(out + 43, T);
	if (cl->vouched) { /* identity box: secretbox(K, Nonce(0x21, 0x01, N, T), C ‖ V) */
		uint8_t id[80];
		memcpy(id, cl->C, 32);
		memcpy(id + 32, cl->V, 48);
		nonce64(n, LABEL_IDENTITY, N, T);
		crypto_box_easy_afternm(p, id, sizeof id, n, cl->k.K);
		p += IDENTITY_LEN;
	}
	if (cl->suite == SUITE_BOX) {
		nonce64(n, kind, N, T);
		crypto_box_easy_afternm(p, body, len, n, cl->k.K);
	} else {
		memset(n, 0, 12);
		put64(n, N);
		crypto_aead_aes256gcm_encrypt(p, NULL, body, len, out, HEADER_LEN, NULL, n, cl->k.c2s);
	}
	return (size_t)(p - out) + len + TAG_LEN;
}

/* ---- replies and refusals (§5.2, §5.3) ---- */

static size_t rlen(uint8_t suite) { return suite == SUITE_BOX ? 8 : 12; }

/* Seals body into out = version ‖ kind ‖ suite ‖ R ‖ box. */
static size_t seal_answer(const uint8_t *fixed_R, const struct ticket *t, uint8_t kind,
                          const uint8_t *body, size_t len, uint8_t *out)
{
	size_t r = rlen(t->suite);
	uint8_t *R = out + 3, *box = out + 3 + r;
	out[0] = VERSION;
	out[1] = kind;
	out[2] = t->suite;
	if (fixed_R)
		memcpy(R, fixed_R, r);
	else
		randombytes_buf(R, r);
	if (t->suite == SUITE_BOX) { /* secretbox(K, Nonce(kind, 0x01, u64(N_req), R), body) */
		uint8_t n[24], a[8];
		put64(a, t->N);
		nonce(n, kind, SUITE_BOX, a, R);
		crypto_box_easy_afternm(box, body, len, n, t->k.K);
	} else { /* gcm(Ks2c, R, body, out[0 .. 3+r) ‖ u64(N_req)) */
		uint8_t ad[3 + 12 + 8];
		memcpy(ad, out, 3 + r);
		put64(ad + 3 + r, t->N);
		crypto_aead_aes256gcm_encrypt(box, NULL, body, len, ad, sizeof ad, NULL, R, t->k.s2c);
	}
	return 3 + r + len + TAG_LEN;
}

/* §7 */
const char *curve_open_reply(const struct client *cl, uint64_t N, const uint8_t *in, size_t len,
                             uint8_t *body, size_t *body_len)
{
	size_t r = rlen(cl->suite);
	if (len == 0)
		return "malformed";
	if (in[0] != VERSION)
		return "unknown-version";
	if (len < 2)
		return "malformed";
	if (in[1] == KIND_HINT) {
		if (len != 3)
			return "malformed";
		return in[2] == HINT_UNSUPPORTED ? "unsupported" : "server-key-mismatch";
	}
	if (in[1] != KIND_REPLY && in[1] != KIND_REFUSAL)
		return "unknown-kind";
	if (len < 3 || in[2] != cl->suite || len < 3 + r + TAG_LEN || (in[1] == KIND_REFUSAL && len != 3 + r + TAG_LEN + 1))
		return "malformed";
	int bad;
	const uint8_t *R = in + 3, *box = in + 3 + r;
	if (cl->suite == SUITE_BOX) {
		uint8_t n[24], a[8];
		put64(a, N);
		nonce(n, in[1], SUITE_BOX, a, R);
		bad = crypto_box_open_easy_afternm(body, box, len - 3 - r, n, cl->k.K);
	} else {
		uint8_t ad[3 + 12 + 8];
		memcpy(ad, in, 3 + r);
		put64(ad + 3 + r, N);
		bad = crypto_aead_aes256gcm_decrypt(body, NULL, NULL, box, len - 3 - r, ad, sizeof ad, R, cl->k.s2c);
	}
	if (bad)
		return "auth-failed";
	*body_len = len - 3 - r - TAG_LEN;
	if (in[1] == KIND_REFUSAL) {
		switch (body[0]) {
		case REFUSE_NOT_AUTHORIZED: return "not-authorized";
		case REFUSE_STALE: return "stale";
		case REFUSE_REPLAYED: return "replayed";
		default: return "unknown-kind";
		}
	}
	return NULL;
}

/* ---- server (§6) ---- */

static enum action drop(struct verdict *v, const char *what)
{
	v->what = what;
	return v->action = DROP;
}

static enum action hint(struct verdict *v, uint8_t reason)
{
	v->what = reason == HINT_UNSUPPORTED ? "hint:unsupported" : "hint:cannot-open";
	v->buf[0] = VERSION;
	v->buf[1] = KIND_HINT;
	v->buf[2] = reason;
	v->answer = v->buf;
	v->answer_len = 3;
	return v->action = ANSWER;
}

static enum action refuse(struct server *sv, struct verdict *v, uint8_t reason, const char *what)
{
	v->what = what;
	v->answer = v->buf;
	v->answer_len = seal_answer(sv->fixed_R, &v->t, KIND_REFUSAL, &reason, 1, v->buf);
	return v->action = ANSWER;
}

static struct peer *find_peer(struct server *sv, const uint8_t Ce[32])
{
	for (int i = 0; i < PEER_CACHE; i++) {
		struct peer *p = &sv->peers[i];
		if (p->in_use && memcmp(p->Ce, Ce, 32) == 0) {
			p->used = ++sv->clock;
			return p;
		}
	}
	return NULL;
}

/* Caches a new C' (§6.1), evicting the least recently used peer: its
 * replay window is lost, so the low-water mark rises to its highest T (§6.2). */
static struct peer *add_peer(struct server *sv, const struct peer *fresh)
{
	struct peer *p = &sv->peers[0];
	for (int i = 0; i < PEER_CACHE && p->in_use; i++)
		if (!sv->peers[i].in_use || sv->peers[i].used < p->used)
			p = &sv->peers[i];
	if (p->in_use && p->maxT > sv->lowwater)
		sv->lowwater = p->maxT;
	*p = *fresh;
	p->in_use = 1;
	p->used = ++sv->clock;
	return p;
}

/* §6.2, RFC 6479 with 128 words of 64 bits: 8192 bits, of which 8128 are
 * the window. Returns 1 for a replay (seen, or 8128 or more below). */
static int window_seen(const struct peer *p, uint64_t N)
{
	if (N > p->last)
		return 0;
	if (N + 8128 <= p->last)
		return 1;
	return (p->window[(N >> 6) & 127] >> (N & 63)) & 1;
}

static void window_add(struct peer *p, uint64_t N)
{
	if (N > p->last) {
		uint64_t diff = (N >> 6) - (p->last >> 6);
		for (uint64_t i = 1; i <= diff && i <= 128; i++)
			p->window[((p->last >> 6) + i) & 127] = 0;
		p->last = N;
	}
	p->window[(N >> 6) & 127] |= (uint64_t)1 << (N & 63);
}

/* §6.3: the reply cache. */
static struct kept *find_kept(struct server *sv, const uint8_t Ce[32], uint64_t N)
{
	for (int i = 0; i < REPLY_SLOTS; i++) {
		struct kept *k = &sv->kept[i];
		if (k->in_use && k->N == N && memcmp(k->Ce, Ce, 32) == 0)
			return k;
	}
	return NULL;
}

static void forget_kept(struct server *sv, struct kept *k)
{
	sv->kept_bytes -= k->len;
	free(k->bytes);
	memset(k, 0, sizeof *k);
}

static void start_kept(struct server *sv, const uint8_t Ce[32], uint64_t N)
{
	struct kept *k = &sv->kept[sv->next_kept];
	sv->next_kept = (sv->next_kept + 1) % REPLY_SLOTS;
	forget_kept(sv, k);
	k->in_use = 1;
	memcpy(k->Ce, Ce, 32);
	k->N = N;
}

static void finish_kept(struct server *sv, const struct ticket *t, const uint8_t *reply, size_t len)
{
	struct kept *k = find_kept(sv, t->Ce, t->N);
	if (!k)
		return;
	k->answered = 1;
	if (len > REPLY_MAX)
		return;
	for (int i = 0; sv->kept_bytes + len > REPLY_BYTES && i < REPLY_SLOTS; i++) {
		struct kept *old = &sv->kept[(sv->next_kept + i) % REPLY_SLOTS];
		if (old != k && old->bytes) {
			sv->kept_bytes -= old->len;
			free(old->bytes);
			old->bytes = NULL;
			old->len = 0;
		}
	}
	if ((k->bytes = malloc(len ? len : 1)) != NULL) {
		memcpy(k->bytes, reply, len);
		k->len = len;
		sv->kept_bytes += len;
	}
}

static int authorized(const struct server *sv, const uint8_t *C)
{
	if (!sv->policy)
		return 1;
	if (!C)
		return sv->allow_anonymous;
	for (int i = 0; i < sv->nauthorized; i++)
		if (memcmp(sv->authorized[i], C, 32) == 0)
			return 1;
	return 0;
}

enum action curve_server_handle(struct server *sv, uint64_t now, const uint8_t *in, size_t len,
                         uint8_t *body, struct verdict *v)
{
	memset(v, 0, sizeof *v);
	/* 1. layout */
	if (len == 0)
		return drop(v, "drop:malformed");
	if (in[0] != VERSION)
		return hint(v, HINT_UNSUPPORTED);
	if (len < 3)
		return drop(v, "drop:malformed");
	uint8_t kind = in[1], suite = in[2];
	if (kind < KIND_REQUEST || kind > KIND_PING_VOUCHED)
		return drop(v, "drop:unknown-kind");
	if (suite != SUITE_BOX && !(suite == SUITE_AESGCM && aesgcm_ok))
		return hint(v, HINT_UNSUPPORTED);
	int vouched = vouched_kind(kind), ping = kind == KIND_PING || kind == KIND_PING_VOUCHED;
	size_t off = HEADER_LEN + (vouched ? IDENTITY_LEN : 0);
	if (len < off + TAG_LEN || (ping && len != off + TAG_LEN))
		return drop(v, "drop:malformed");
	const uint8_t *Ce = in + 3;
	uint64_t N = get64(in + 35), T = get64(in + 43);

	/* 2, 3. find K for C' and open the body box. A new C' enters the
	 * cache only once its request passes step 6. */
	struct peer fresh, *p = find_peer(sv, Ce);
	if (p) {
		if (open_request_body(&p->k, in, len, body) != 0)
			return hint(v, HINT_CANNOT_OPEN);
	} else {
		memset(&fresh, 0, sizeof fresh);
		memcpy(fresh.Ce, Ce, 32);
		for (fresh.key = 0; fresh.key < sv->nkeys; fresh.key++) {
			if (derive(&fresh.k, Ce, sv->s[fresh.key]) != 0)
				return drop(v, "drop:weak-key");
			if (open_request_body(&fresh.k, in, len, body) == 0)
				break;
		}
		if (fresh.key == sv->nkeys)
			return hint(v, HINT_CANNOT_OPEN);
		p = &fresh;
	}
	v->t.k = p->k;
	memcpy(v->t.Ce, Ce, 32);
	v->t.N = N;
	v->t.suite = suite;

	/* 4. identity box and vouch */
	uint8_t id[80];
	if (vouched) {
		uint8_t n[24];
		nonce64(n, LABEL_IDENTITY, N, T);
		if (crypto_box_open_easy_afternm(id, in + HEADER_LEN, IDENTITY_LEN, n, p->k.K) != 0)
			return hint(v, HINT_CANNOT_OPEN);
		if (!p->proven || memcmp(p->C, id, 32) != 0) {
			uint8_t Kv[32], Ce2[32];
			if (crypto_box_beforenm(Kv, id, sv->s[p->key]) != 0)
				return drop(v, "drop:weak-key");
			nonce(n, LABEL_VOUCH, SUITE_BOX, Ce, Ce + 8);
			int bad = crypto_box_open_easy_afternm(Ce2, id + 32, 48, n, Kv) != 0 || memcmp(Ce2, Ce, 32) != 0;
			sodium_memzero(Kv, sizeof Kv);
			if (bad)
				return refuse(sv, v, REFUSE_NOT_AUTHORIZED, "refuse:bad-vouch");
			memcpy(p->C, id, 32);
			p->proven = 1;
		}
	}
	/* 5. client policy */
	if (!authorized(sv, vouched ? id : NULL))
		return refuse(sv, v, REFUSE_NOT_AUTHORIZED, "refuse:not-authorized");
	/* 6. freshness: now - W <= T <= now + S, and T above the low-water mark */
	if ((now >= sv->freshness && T < now - sv->freshness) || T > now + sv->max_skew || T <= sv->lowwater)
		return refuse(sv, v, REFUSE_STALE, "refuse:stale");
	/* 7. replay */
	if (p == &fresh)
		p = add_peer(sv, &fresh);
	if (window_seen(p, N)) {
		struct kept *k = find_kept(sv, Ce, N);
		if (k && !k->answered)
			return drop(v, "retry"); /* still being handled */
		if (k && k->bytes) {
			v->what = "retry";
			v->answer = k->bytes;
			v->answer_len = k->len;
			return v->action = ANSWER;
		}
		return refuse(sv, v, REFUSE_REPLAYED, "refuse:replayed");
	}
	window_add(p, N);
	if (T > p->maxT)
		p->maxT = T;
	start_kept(sv, Ce, N);
	/* 8. a ping is answered here, a request delivered */
	if (ping) {
		v->what = "reply";
		v->answer = v->buf;
		v->answer_len = seal_answer(sv->fixed_R, &v->t, KIND_REPLY, body, 0, v->buf);
		finish_kept(sv, &v->t, v->buf, v->answer_len);
		return v->action = ANSWER;
	}
	v->what = "deliver";
	v->body_len = len - off - TAG_LEN;
	return v->action = DELIVER;
}

size_t curve_seal_reply(struct server *sv, const struct ticket *t, const uint8_t *body, size_t len, uint8_t *out)
{
	size_t n = seal_answer(sv->fixed_R, t, KIND_REPLY, body, len, out);
	finish_kept(sv, t, out, n);
	return n;
}

void curve_server_free(struct server *sv)
{
	for (int i = 0; i < REPLY_SLOTS; i++)
		forget_kept(sv, &sv->kept[i]);
	sodium_memzero(sv, sizeof *sv);
}
