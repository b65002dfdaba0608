/*
 * main.c: command line around curve.c, over NNG REQ/REP sockets.
 *
 *   secsock-c vectors DIR
 *       replays every DIR/NAME.vec (SPEC §10); prints "ok NAME", "skip NAME
 *       (reason)" or "FAIL NAME: why", then a summary; exit 1 on a failure.
 *   secsock-c client URL SERVER_PUBLIC [-k CLIENT_SECRET] [-s box|aesgcm] [-t SKEW_MS] ITEM...
 *       sends one request per ITEM (a body size in bytes, or "ping"); the
 *       body is pattern(size) and the server must echo it. "ITEM@N" uses
 *       counter N (tests of the replay window) instead of the next one. Prints "ok ITEM"
 *       or "error ITEM NAME" (NAME from SPEC §10, or "timeout", "mismatch").
 *   secsock-c server URL SERVER_SECRET [-p PREVIOUS_SECRET]... [-a AUTHORIZED_PUBLIC]... [-A]
 *       echoes every delivered request; -a turns the client policy on, -A
 *       also serves anonymous clients. Prints "listening PORT", then one
 *       line per request: "deliver SIZE", "refuse:stale", "drop:malformed", ...
 *   secsock-c aesgcm
 *       exit status 0 if AES-256-GCM is available (libsodium needs AES-NI).
 *
 * Keys are 64 hex digits. Build: cc -o secsock-c main.c curve.c -lsodium -lnng -lpthread
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "curve.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int key_arg(uint8_t k[32], const char *hex)
{
	size_t n;
	if (sodium_hex2bin(k, 32, hex, strlen(hex), NULL, &n, NULL) != 0 || n != 32) {
		fprintf(stderr, "bad key %s: want 64 hex digits\n", hex);
		return -1;
	}
	return 0;
}

static void pattern(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + n);
}

/* ---- vectors ---- */

struct bytes {
	uint8_t *p;
	size_t n;
	int set;
};

struct vec {
	char name[128], expect_server[64], expect_client[64];
	uint8_t server_secret[MAX_SERVER_KEYS][32], authorized[MAX_AUTHORIZED][32];
	int nserver, nauthorized, allow_anonymous, ping, mutated, reply_mutated, has_client_counter;
	uint64_t suite, counter, timestamp, now, freshness, max_skew, client_counter;
	struct bytes client_secret, eph_secret, request_body, request, reply_random, reply_body, reply;
};

static int hexval(struct bytes *b, const char *s)
{
	size_t n = strlen(s);
	b->p = malloc(n / 2 + 1);
	b->set = 1;
	return sodium_hex2bin(b->p, n / 2 + 1, s, n, NULL, &b->n, NULL);
}

static int parse_vec(const char *path, struct vec *v)
{
	FILE *f = fopen(path, "r");
	static char line[1 << 16];
	int bad = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *k = line, *val = strchr(line, ':'), *end;
		if (line[0] == '#' || !val)
			continue;
		*val++ = 0;
		while (*val == ' ')
			val++;
		for (end = val + strlen(val); end > val && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ');)
			*--end = 0;
		int t = strcmp(val, "true") == 0;
		uint64_t u = strtoull(val, NULL, 10);
		if (!strcmp(k, "name")) snprintf(v->name, sizeof v->name, "%s", val);
		else if (!strcmp(k, "server_secret")) bad |= v->nserver == MAX_SERVER_KEYS || key_arg(v->server_secret[v->nserver++], val);
		else if (!strcmp(k, "authorized")) bad |= v->nauthorized == MAX_AUTHORIZED || key_arg(v->authorized[v->nauthorized++], val);
		else if (!strcmp(k, "client_secret")) bad |= hexval(&v->client_secret, val);
		else if (!strcmp(k, "eph_secret")) bad |= hexval(&v->eph_secret, val);
		else if (!strcmp(k, "request_body")) bad |= hexval(&v->request_body, val);
		else if (!strcmp(k, "request")) bad |= hexval(&v->request, val);
		else if (!strcmp(k, "reply_random")) bad |= hexval(&v->reply_random, val);
		else if (!strcmp(k, "reply_body")) bad |= hexval(&v->reply_body, val);
		else if (!strcmp(k, "reply")) bad |= hexval(&v->reply, val);
		else if (!strcmp(k, "suite")) v->suite = u;
		else if (!strcmp(k, "counter")) v->counter = u;
		else if (!strcmp(k, "timestamp")) v->timestamp = u;
		else if (!strcmp(k, "now")) v->now = u;
		else if (!strcmp(k, "freshness")) v->freshness = u;
		else if (!strcmp(k, "max_skew")) v->max_skew = u;
		else if (!strcmp(k, "client_counter")) v->client_counter = u, v->has_client_counter = 1;
		else if (!strcmp(k, "allow_anonymous")) v->allow_anonymous = t;
		else if (!strcmp(k, "ping")) v->ping = t;
		else if (!strcmp(k, "mutated")) v->mutated = t;
		else if (!strcmp(k, "reply_mutated")) v->reply_mutated = t;
		else if (!strcmp(k, "expect_server")) snprintf(v->expect_server, sizeof v->expect_server, "%s", val);
		else if (!strcmp(k, "expect_client")) snprintf(v->expect_client, sizeof v->expect_client, "%s", val);
		else fprintf(stderr, "%s: unknown field %s\n", path, k), bad = 1;
	}
	fclose(f);
	return bad || v->nserver == 0 || v->eph_secret.n != 32 || !v->request.set ? -1 : 0;
}

static int same(const uint8_t *a, size_t an, const struct bytes *b)
{
	return an == b->n && (an == 0 || memcmp(a, b->p, an) == 0);
}

/* Replays one vector as SPEC §10 says; returns NULL or what failed. */
static const char *run_vector(struct vec *v, char *why, size_t whylen)
{
	struct client cl;
	struct server *sv = calloc(1, sizeof *sv);
	struct verdict vd;
	uint8_t S[32], *out = malloc(v->request_body.n + v->request.n + v->reply_body.n + REQUEST_OVERHEAD + REPLY_OVERHEAD);
	const uint8_t *reply = NULL;
	size_t n, reply_len = 0;
	const char *fail = NULL;

	/* The client sealed to the public key of the last server_secret. */
	crypto_scalarmult_base(S, v->server_secret[v->nserver - 1]);
	if (curve_client_init(&cl, S, v->client_secret.set ? v->client_secret.p : NULL, v->eph_secret.p, (uint8_t)v->suite) != 0) {
		fail = "client keys refused";
		goto done;
	}
	if (!v->mutated) {
		n = curve_seal_request(&cl, v->ping, v->counter, v->timestamp, v->request_body.p, v->request_body.n, out);
		if (!same(out, n, &v->request)) {
			fail = "sealed request differs from request";
			goto done;
		}
	}
	for (int i = 0; i < v->nserver; i++)
		memcpy(sv->s[i], v->server_secret[i], 32);
	sv->nkeys = v->nserver;
	sv->policy = v->nauthorized > 0;
	memcpy(sv->authorized, v->authorized, sizeof v->authorized);
	sv->nauthorized = v->nauthorized;
	sv->allow_anonymous = v->allow_anonymous;
	sv->freshness = v->freshness;
	sv->max_skew = v->max_skew;
	sv->fixed_R = v->reply_random.p;
	curve_server_handle(sv, v->now, v->request.p, v->request.n, out, &vd);
	if (strcmp(vd.what, v->expect_server) != 0) {
		snprintf(why, whylen, "server: got %s, want %s", vd.what, v->expect_server);
		fail = why;
		goto done;
	}
	if (vd.action == DELIVER) {
		if (!same(out, vd.body_len, &v->request_body)) {
			fail = "server opened another body";
			goto done;
		}
		reply_len = curve_seal_reply(sv, &vd.t, v->reply_body.p, v->reply_body.n, out);
		reply = out;
	} else if (vd.action == ANSWER) {
		reply = vd.answer;
		reply_len = vd.answer_len;
	}
	if (!reply != !v->reply.set) {
		fail = reply ? "server answered, vector has no reply" : "server did not answer";
		goto done;
	}
	if (!reply)
		goto done;
	if (!v->reply_mutated && !same(reply, reply_len, &v->reply)) {
		fail = "sealed reply differs from reply";
		goto done;
	}
	/* open `reply` as the client */
	uint8_t *body = malloc(v->reply.n + 1);
	size_t blen = 0;
	const char *err = curve_open_reply(&cl, v->has_client_counter ? v->client_counter : v->counter,
	                                   v->reply.p, v->reply.n, body, &blen);
	char got[64];
	snprintf(got, sizeof got, "%s%s", err ? "error:" : "ok", err ? err : "");
	if (strcmp(got, v->expect_client) != 0) {
		snprintf(why, whylen, "client: got %s, want %s", got, v->expect_client);
		fail = why;
	} else if (!err && !same(body, blen, &v->reply_body))
		fail = "client opened another body";
	free(body);
done:
	curve_server_free(sv);
	free(sv);
	free(out);
	return fail;
}

static int filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 4 && strcmp(d->d_name + n - 4, ".vec") == 0;
}

static int run_vectors(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, filter, alphasort), passed = 0, failed = 0, skipped = 0;
	if (n < 0) {
		perror(dir);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		char path[4096], why[256];
		struct vec *v = calloc(1, sizeof *v);
		const char *fail;
		snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
		if (parse_vec(path, v) != 0)
			fail = "cannot parse";
		else if (v->suite == SUITE_AESGCM && !curve_aesgcm_available()) {
			printf("skip %s (AES-256-GCM not available in libsodium on this CPU)\n", list[i]->d_name);
			skipped++;
			goto next;
		} else
			fail = run_vector(v, why, sizeof why);
		if (fail)
			printf("FAIL %s: %s\n", list[i]->d_name, fail), failed++;
		else
			printf("ok %s\n", list[i]->d_name), passed++;
	next:
		free(v->client_secret.p), free(v->eph_secret.p), free(v->request_body.p), free(v->request.p);
		free(v->reply_random.p), free(v->reply_body.p), free(v->reply.p), free(v), free(list[i]);
	}
	free(list);
	printf("vectors: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

/* ---- sockets ---- */

static int run_client(int argc, char **argv)
{
	uint8_t S[32], c[32], suite = SUITE_BOX;
	int vouched = 0, i, errors = 0;
	int64_t skew = 0; /* -t: added to the clock, to test freshness */
	if (argc < 4 || key_arg(S, argv[3]) != 0)
		return 2;
	for (i = 4; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-k") && key_arg(c, argv[i + 1]) == 0)
			vouched = 1;
		else if (!strcmp(argv[i], "-t"))
			skew = strtoll(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "-s"))
			suite = strcmp(argv[i + 1], "aesgcm") == 0 ? SUITE_AESGCM : SUITE_BOX;
		else
			return 2;
	}
	struct client cl;
	if (curve_client_init(&cl, S, vouched ? c : NULL, NULL, suite) != 0) {
		fprintf(stderr, "weak server key, or suite not available\n");
		return 2;
	}
	nng_socket s;
	int rv;
	if ((rv = nng_req0_open(&s)) != 0 || (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000)) != 0 ||
	    (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0)) != 0 || (rv = nng_dial(s, argv[2], NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "nng: %s\n", nng_strerror(rv));
		return 2;
	}
	for (uint64_t N = 1; i < argc; i++, N++) { /* N: the request counter, from 1 */
		int ping = strncmp(argv[i], "ping", 4) == 0;
		if (strchr(argv[i], '@')) /* tests only: "SIZE@N" sends counter N */
			N = strtoull(strchr(argv[i], '@') + 1, NULL, 10);
		size_t size = ping ? 0 : strtoull(argv[i], NULL, 10), blen;
		uint8_t *body = malloc(size + 1), *got = NULL;
		nng_msg *m;
		const char *err = NULL;
		pattern(body, size);
		nng_msg_alloc(&m, size + REQUEST_OVERHEAD);
		nng_msg_chop(m, nng_msg_len(m) - curve_seal_request(&cl, ping, N, now_ms() + (uint64_t)skew, body, size, nng_msg_body(m)));
		if ((rv = nng_sendmsg(s, m, 0)) != 0 || (rv = nng_recvmsg(s, &m, 0)) != 0)
			err = rv == NNG_ETIMEDOUT ? "timeout" : nng_strerror(rv);
		else {
			got = malloc(nng_msg_len(m) + 1);
			err = curve_open_reply(&cl, N, nng_msg_body(m), nng_msg_len(m), got, &blen);
			if (!err && (blen != size || memcmp(got, body, size) != 0))
				err = "mismatch";
			nng_msg_free(m);
		}
		if (err)
			printf("error %s %s\n", argv[i], err), errors++;
		else
			printf("ok %s\n", argv[i]);
		fflush(stdout);
		free(body);
		free(got);
	}
	nng_close(s);
	return errors ? 1 : 0;
}

static int run_server(int argc, char **argv)
{
	struct server *sv = calloc(1, sizeof *sv);
	if (argc < 4 || key_arg(sv->s[0], argv[3]) != 0)
		return 2;
	sv->nkeys = 1;
	sv->freshness = 120000;
	sv->max_skew = 10000;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "-A"))
			sv->allow_anonymous = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "-p") && sv->nkeys < MAX_SERVER_KEYS && key_arg(sv->s[sv->nkeys], argv[i + 1]) == 0)
			sv->nkeys++, i++;
		else if (i + 1 < argc && !strcmp(argv[i], "-a") && sv->nauthorized < MAX_AUTHORIZED &&
		         key_arg(sv->authorized[sv->nauthorized], argv[i + 1]) == 0)
			sv->nauthorized++, sv->policy = 1, i++;
		else
			return 2;
	}
	nng_socket s;
	nng_listener l;
	int rv, port = 0;
	if ((rv = nng_rep0_open(&s)) != 0 || (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_listener_create(&l, s, argv[2])) != 0 || (rv = nng_listener_start(l, 0)) != 0 ||
	    (rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0) {
		fprintf(stderr, "nng: %s\n", nng_strerror(rv));
		return 2;
	}
	printf("listening %d\n", port);
	fflush(stdout);
	for (;;) {
		nng_msg *m, *r;
		struct verdict v;
		if ((rv = nng_recvmsg(s, &m, 0)) != 0) {
			fprintf(stderr, "nng: %s\n", nng_strerror(rv));
			return 1;
		}
		size_t len = nng_msg_len(m);
		uint8_t *body = malloc(len + 1);
		curve_server_handle(sv, now_ms(), nng_msg_body(m), len, body, &v);
		nng_msg_free(m);
		if (v.action == DELIVER) { /* the application: echo the body */
			printf("deliver %zu\n", v.body_len);
			nng_msg_alloc(&r, v.body_len + REPLY_OVERHEAD);
			nng_msg_chop(r, nng_msg_len(r) - curve_seal_reply(sv, &v.t, body, v.body_len, nng_msg_body(r)));
		} else {
			printf("%s\n", v.what);
			r = NULL;
			if (v.action == ANSWER && nng_msg_alloc(&r, 0) == 0)
				nng_msg_append(r, v.answer, v.answer_len);
		}
		fflush(stdout);
		if (r && (rv = nng_sendmsg(s, r, 0)) != 0) {
			fprintf(stderr, "nng: %s\n", nng_strerror(rv));
			nng_msg_free(r);
		}
		free(body);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (curve_init() != 0)
		return 2;
	if (argc == 2 && !strcmp(argv[1], "aesgcm"))
		return curve_aesgcm_available() ? 0 : 1;
	if (argc == 3 && !strcmp(argv[1], "vectors"))
		return run_vectors(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "client"))
		return run_client(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "server"))
		return run_server(argc, argv);
	fprintf(stderr, "usage: %s vectors DIR | client URL SERVER_PUBLIC [-k SECRET] [-s box|aesgcm] [-t SKEW_MS] SIZE|ping... |"
	                " server URL SECRET [-p PREVIOUS]... [-a AUTHORIZED]... [-A] | aesgcm\n", argv[0]);
	return 2;
}
