/*
 * vectors.c: SPEC §12. A file is a header block (keys, policy, limits)
 * and `step:` blocks that run in order against one server instance.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "client.h"
#include "epoch.h"
#include "keys.h"
#include "proto.h"
#include "server.h"
#include "vectors.h"

#define MAX_STEPS 256

struct bytes {
	uint8_t *p;
	size_t n;
	int set;
};

struct step {
	int number, ping, mutated, reply_mutated, has_client_counter;
	int want_epoch;              /* §14: WANT_EPOCH */
	uint64_t now, suite, counter, timestamp, client_counter, vouch_expiry;
	char expect_server[64], expect_client[64];
	struct bytes eph_secret, request_body, request, client_request, reply_random, reply_body, reply;
	struct bytes epoch_key, epoch_id; /* §14.3: E_k sealed with, and the id named when not E_k's */
};

struct vec {
	char name[128];
	struct server_config cfg;
	struct bytes client_secret;
	int seal_to, has_client_S;
	uint8_t client_S[32]; /* client_server_key: sealed to none of the configured keys */
	int has_seed;         /* §14: epoch_seed (seed of epoch_index), epoch_origin, epoch_length */
	uint8_t epoch_seed[32];
	uint64_t epoch_origin, epoch_length, epoch_index;
	struct epoch_chain chain;
	int pipeline;         /* pattern: pipeline (§15): a PULL server and a pusher */
	struct step *steps;
	int nsteps;
};

static int hexval(struct bytes *b, const char *s)
{
	size_t n = strlen(s);
	free(b->p);
	b->p = malloc(n / 2 + 1);
	b->set = 1;
	if (!b->p || sodium_hex2bin(b->p, n / 2 + 1, s, n, NULL, &b->n, NULL) != 0 || b->n * 2 != n)
		return -1;
	return 0;
}

static int key32(uint8_t k[32], const char *s)
{
	size_t n;
	return sodium_hex2bin(k, 32, s, strlen(s), NULL, &n, NULL) == 0 && n == 32 && strlen(s) == 64 ? 0 : -1;
}

static void free_bytes(struct bytes *b) { free(b->p); memset(b, 0, sizeof *b); }

static void free_vec(struct vec *v)
{
	for (int i = 0; i < v->nsteps; i++) {
		struct step *s = &v->steps[i];
		free_bytes(&s->eph_secret), free_bytes(&s->request_body), free_bytes(&s->request), free_bytes(&s->client_request);
		free_bytes(&s->reply_random), free_bytes(&s->reply_body), free_bytes(&s->reply);
		free_bytes(&s->epoch_key), free_bytes(&s->epoch_id);
	}
	free(v->steps);
	free_bytes(&v->client_secret);
}

static int is_true(const char *val) { return strcmp(val, "true") == 0; }

/* A header field; returns -1 for an unknown field or a bad value. */
static int header_field(struct vec *v, const char *k, const char *val)
{
	struct server_config *c = &v->cfg;
	uint64_t u = strtoull(val, NULL, 10);
	if (!strcmp(k, "name")) snprintf(v->name, sizeof v->name, "%s", val);
	else if (!strcmp(k, "server_secret")) return c->nkeys == MAX_SERVER_KEYS ? -1 : key32(c->s[c->nkeys++], val);
	else if (!strcmp(k, "authorized")) {
		c->policy = 1;
		return c->nauthorized == MAX_AUTHORIZED ? -1 : key32(c->authorized[c->nauthorized++], val);
	}
	else if (!strcmp(k, "client_secret")) return hexval(&v->client_secret, val);
	else if (!strcmp(k, "seal_to")) v->seal_to = (int)u;
	else if (!strcmp(k, "client_server_key")) return v->has_client_S = 1, key32(v->client_S, val);
	else if (!strcmp(k, "freshness")) c->freshness = u;
	else if (!strcmp(k, "max_skew")) c->max_skew = u;
	else if (!strcmp(k, "policy")) c->policy |= strcmp(val, "on") == 0;
	else if (!strcmp(k, "allow_anonymous")) c->allow_anonymous = is_true(val);
	else if (!strcmp(k, "peer_cache")) c->peer_cache = (int)u;
	else if (!strcmp(k, "reply_slots")) c->reply_slots = (int)u;
	else if (!strcmp(k, "budget")) c->budget_rate = u;
	else if (!strcmp(k, "max_resends")) c->max_resends = (int)u;
	else if (!strcmp(k, "epoch_seed")) return v->has_seed = 1, key32(v->epoch_seed, val);
	else if (!strcmp(k, "epoch_origin")) v->epoch_origin = u;
	else if (!strcmp(k, "epoch_length")) v->epoch_length = u;
	else if (!strcmp(k, "epoch_index")) v->epoch_index = u;
	else if (!strcmp(k, "pattern")) {
		if (strcmp(val, "pipeline") != 0)
			return -1;
		v->pipeline = c->pull = 1;
	}
	else return -1;
	return 0;
}

static int step_field(struct step *s, const char *k, const char *val)
{
	uint64_t u = strtoull(val, NULL, 10);
	if (!strcmp(k, "now")) s->now = u;
	else if (!strcmp(k, "eph_secret")) return hexval(&s->eph_secret, val);
	else if (!strcmp(k, "suite")) s->suite = u;
	else if (!strcmp(k, "counter")) s->counter = u;
	else if (!strcmp(k, "timestamp")) s->timestamp = u;
	else if (!strcmp(k, "ping")) s->ping = is_true(val);
	else if (!strcmp(k, "request_body")) return hexval(&s->request_body, val);
	else if (!strcmp(k, "request")) return hexval(&s->request, val);
	else if (!strcmp(k, "client_request")) return hexval(&s->client_request, val);
	else if (!strcmp(k, "vouch_expiry")) s->vouch_expiry = u;
	else if (!strcmp(k, "mutated")) s->mutated = is_true(val);
	else if (!strcmp(k, "expect_server")) snprintf(s->expect_server, sizeof s->expect_server, "%s", val);
	else if (!strcmp(k, "reply_random")) return hexval(&s->reply_random, val);
	else if (!strcmp(k, "reply_body")) return hexval(&s->reply_body, val);
	else if (!strcmp(k, "reply")) return hexval(&s->reply, val);
	else if (!strcmp(k, "reply_mutated")) s->reply_mutated = is_true(val);
	else if (!strcmp(k, "client_counter")) s->client_counter = u, s->has_client_counter = 1;
	else if (!strcmp(k, "expect_client")) snprintf(s->expect_client, sizeof s->expect_client, "%s", val);
	else if (!strcmp(k, "epoch_key")) return hexval(&s->epoch_key, val);
	else if (!strcmp(k, "epoch_id")) return hexval(&s->epoch_id, val);
	else if (!strcmp(k, "want_epoch")) s->want_epoch = is_true(val);
	else return -1;
	return 0;
}

/* Splits "name: value" (trimmed) in place; returns 0 for a comment or blank line. */
static int split(char *line, char **k, char **val)
{
	char *c = strchr(line, ':'), *end;
	if (line[0] == '#' || !c)
		return 0;
	*c++ = 0;
	while (*c == ' ' || *c == '\t')
		c++;
	for (end = c + strlen(c); end > c && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ');)
		*--end = 0;
	*k = line;
	*val = c;
	return 1;
}

static int parse_vec(const char *path, struct vec *v, char *why, size_t whylen)
{
	static char line[1 << 20];
	FILE *f = fopen(path, "r");
	int bad = 0, lineno = 0;
	if (!f)
		return snprintf(why, whylen, "cannot open"), -1;
	server_config_defaults(&v->cfg);
	v->cfg.budget_rate = 0; /* §12: budget absent means unlimited */
	v->steps = calloc(MAX_STEPS, sizeof *v->steps);
	while (!bad && fgets(line, sizeof line, f)) {
		char *k, *val;
		lineno++;
		if (!split(line, &k, &val))
			continue;
		if (!strcmp(k, "step")) {
			if (v->nsteps == MAX_STEPS)
				bad = 1;
			else
				v->steps[v->nsteps++].number = atoi(val);
		} else if (v->nsteps == 0) {
			bad = header_field(v, k, val) != 0;
		} else {
			bad = step_field(&v->steps[v->nsteps - 1], k, val) != 0;
		}
		if (bad)
			snprintf(why, whylen, "line %d: field %.40s: unknown or bad value", lineno, k);
	}
	fclose(f);
	if (!bad && (v->cfg.nkeys == 0 || v->nsteps == 0 || v->seal_to >= v->cfg.nkeys))
		bad = 1, snprintf(why, whylen, "no server_secret, no step, or seal_to out of range");
	return bad ? -1 : 0;
}

static int same(const uint8_t *a, size_t an, const struct bytes *b)
{
	return an == b->n && (an == 0 || memcmp(a, b->p, an) == 0);
}

static void hexdump(char *out, size_t outlen, const uint8_t *p, size_t n)
{
	size_t m = n * 2 + 1 > outlen ? (outlen - 1) / 2 : n;
	sodium_bin2hex(out, outlen, p, m);
}

/* The client side of one step: seals (and compares) the request, leaving
 * its header in H. */
static const char *seal_step(const struct vec *v, const struct server *sv, struct step *s, struct client *cl,
                             uint8_t *out, char *why, size_t whylen)
{
	struct reqext x;
	uint8_t id[crypto_hash_sha256_BYTES];
	memset(&x, 0, sizeof x);
	x.want = s->want_epoch;
	if (s->epoch_key.set) { /* id_k = SHA-256(E_k)[0..8], unless epoch_id says otherwise */
		if (s->epoch_key.n != 32 || (s->epoch_id.set && s->epoch_id.n != EPOCH_ID_LEN))
			return "epoch_key is not 32 bytes or epoch_id not 8";
		crypto_hash_sha256(id, s->epoch_key.p, 32);
		x.E = s->epoch_key.p;
		x.id = s->epoch_id.set ? s->epoch_id.p : id;
	}
	const char *err = NULL;
	if (s->eph_secret.n != 32)
		return "eph_secret is not 32 bytes";
	const uint8_t *S = v->has_client_S ? v->client_S : sv->S[v->seal_to];
	if (client_init(cl, S, v->client_secret.set ? v->client_secret.p : NULL, s->eph_secret.p,
	                (uint8_t)s->suite, s->vouch_expiry, &err) != 0) {
		snprintf(why, whylen, "client refused its keys: %s", err);
		return why;
	}
	if (v->pipeline)
		client_set_push(cl);
	size_t n = client_seal(cl, s->ping, s->counter, s->timestamp, s->request_body.p, s->request_body.n, &x, out);
	if (s->mutated)
		return NULL;
	if (n == 0)
		return "suite not sealable here, yet mutated is false";
	if (!same(out, n, &s->request)) {
		char got[161];
		hexdump(got, sizeof got, out, n);
		snprintf(why, whylen, "request: sealed %zu bytes %s..., vector has %zu", n, got, s->request.n);
		return why;
	}
	return NULL;
}

/* The server side of one step; leaves the answer in *reply. */
static const char *serve_step(struct server *sv, struct step *s, uint8_t *body, uint8_t *out,
                              const uint8_t **reply, size_t *reply_len, char *why, size_t whylen)
{
	struct verdict vd;
	sv->cfg.fixed_R = s->reply_random.set ? s->reply_random.p : NULL;
	server_handle(sv, s->now, s->request.p, s->request.n, body, &vd);
	if (strcmp(vd.what, s->expect_server) != 0) {
		snprintf(why, whylen, "expect_server: got %s, want %s", vd.what, s->expect_server);
		return why;
	}
	*reply = NULL;
	*reply_len = 0;
	if (vd.action == DELIVER) {
		if (!same(body, vd.body_len, &s->request_body))
			return "server opened another body than request_body";
		if (!sv->cfg.pull) { /* a PULL worker answers nothing (§15.2) */
			*reply_len = server_seal_reply(sv, &vd.t, s->reply_body.p, s->reply_body.n, out);
			*reply = out;
		}
	} else if (vd.action == ANSWER) {
		*reply = vd.answer;
		*reply_len = vd.answer_len;
	}
	if (!*reply != !s->reply.set)
		return *reply ? "server answered, the step has no reply" : "server did not answer, the step has a reply";
	if (*reply && !s->reply_mutated && !same(*reply, *reply_len, &s->reply)) {
		char got[161];
		hexdump(got, sizeof got, *reply, *reply_len);
		snprintf(why, whylen, "reply: server made %zu bytes %s..., vector has %zu", *reply_len, got, s->reply.n);
		return why;
	}
	return NULL;
}

/* The header H = bytes 0 .. 54 + X of a request (all of it if shorter). */
static size_t header_len(const struct bytes *b)
{
	size_t n = b->n < HEADER_LEN ? b->n : HEADER_LEN + get16(b->p + OFF_X);
	return n > b->n ? b->n : n;
}

/* The client opens the step's reply with the header it sent: that of
 * client_request if given, else of request (§12). */
static const char *open_step(struct client *cl, struct step *s, char *why, size_t whylen)
{
	const struct bytes *sent = s->client_request.set ? &s->client_request : &s->request;
	const uint8_t *H = sent->p;
	size_t hlen = header_len(sent);
	uint8_t *body = malloc(s->reply.n + 1);
	size_t blen = 0;
	char got[80];
	const char *fail = NULL;
	const char *err = client_open(cl, H, hlen, s->has_client_counter ? s->client_counter : s->counter,
	                              s->reply.p, s->reply.n, body, &blen);
	snprintf(got, sizeof got, "%s%s", err ? "error:" : "ok", err ? err : "");
	if (strcmp(got, s->expect_client) != 0) {
		snprintf(why, whylen, "expect_client: got %s, want %s", got, s->expect_client);
		fail = why;
	} else if (!err && s->reply_body.set && !same(body, blen, &s->reply_body)) {
		fail = "client opened another body than reply_body";
	} else if (!err && s->ping && blen != 0) {
		fail = "client opened a non-empty ping reply";
	}
	free(body);
	return fail;
}

static const char *run_step(const struct vec *v, struct server *sv, struct step *s, char *why, size_t whylen)
{
	struct client cl;
	size_t cap = s->request_body.n + s->request.n + s->reply_body.n + s->reply.n + REQUEST_OVERHEAD + EXT_MAX_REQ +
	             ANSWER_OVERHEAD;
	uint8_t *out = malloc(cap), *body = malloc(cap);
	const uint8_t *reply;
	size_t reply_len;
	const char *fail = seal_step(v, sv, s, &cl, out, why, whylen);
	if (!fail)
		fail = serve_step(sv, s, body, out, &reply, &reply_len, why, whylen);
	if (!fail && s->reply.set)
		fail = open_step(&cl, s, why, whylen);
	else if (!fail && s->expect_client[0])
		fail = "expect_client without a reply";
	sodium_memzero(&cl, sizeof cl);
	free(out);
	free(body);
	return fail;
}

static int needs_aesgcm(const struct vec *v)
{
	for (int i = 0; i < v->nsteps; i++)
		if (v->steps[i].suite == SUITE_AESGCM)
			return 1;
	return 0;
}

/* Returns NULL, "skip", or why it failed. */
static const char *run_file(const char *path, char *why, size_t whylen)
{
	struct vec v;
	struct server *sv = NULL;
	const char *fail = NULL, *err = NULL;
	char inner[512];
	memset(&v, 0, sizeof v);
	if (parse_vec(path, &v, inner, sizeof inner) != 0) {
		snprintf(why, whylen, "cannot parse: %s", inner);
		fail = why;
	} else if (needs_aesgcm(&v) && !aead_aesgcm_available()) {
		fail = "skip";
	} else if (v.has_seed && epoch_init(&v.chain, (const uint8_t *)"vector chain....", v.epoch_origin, v.epoch_length,
	                                    v.epoch_index, v.epoch_seed, v.steps[0].now, &err) != 0) {
		snprintf(why, whylen, "epoch seed refused: %s", err);
		fail = why;
	} else if (!(sv = malloc(sizeof *sv)) || (v.cfg.epochs = v.has_seed ? &v.chain : NULL,
	                                          server_init(sv, &v.cfg, v.steps[0].now, &err)) != 0) {
		snprintf(why, whylen, "server refused its configuration: %s", err ? err : "out of memory");
		fail = why;
	} else {
		for (int i = 0; i < v.nsteps && !fail; i++)
			if ((fail = run_step(&v, sv, &v.steps[i], inner, sizeof inner)) != NULL) {
				snprintf(why, whylen, "step %d: %s", v.steps[i].number, fail);
				fail = why;
			}
		server_free(sv);
	}
	free(sv);
	epoch_wipe(&v.chain);
	free_vec(&v);
	return fail;
}

static int filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 4 && strcmp(d->d_name + n - 4, ".vec") == 0;
}

int vectors_run(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, filter, alphasort), passed = 0, failed = 0, skipped = 0;
	if (n < 0) {
		perror(dir);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		char path[4096], why[1024];
		snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
		const char *fail = run_file(path, why, sizeof why);
		if (fail && !strcmp(fail, "skip"))
			printf("skip %s (AES-256-GCM not available in libsodium on this CPU)\n", list[i]->d_name), skipped++;
		else if (fail)
			printf("FAIL %s: %s\n", list[i]->d_name, fail), failed++;
		else
			printf("ok %s\n", list[i]->d_name), passed++;
		free(list[i]);
	}
	free(list);
	printf("vectors: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
