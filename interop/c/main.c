/*
 * main.c: command line around the secsock v2 implementation, over NNG
 * REQ/REP sockets. Section numbers (§) refer to SPEC.md.
 *
 *   secsock-c vectors DIR
 *       replays every DIR/NAME.vec (SPEC §12); prints "ok NAME", "skip NAME
 *       (reason)" or "FAIL NAME: step K: why", then a summary; exit 1 on a failure.
 *   secsock-c client URL SERVER_PUBLIC [-k CLIENT_SECRET] [-s box|aesgcm|NUMBER] [-f FLAGS]
 *                    [-t SKEW_MS] [-g GRACE_MS] [-w WAIT_MS] [-x 1] [-E off|auto|require] ITEM...
 *       sends one request per ITEM (a body size in bytes, or "ping"); the
 *       body is pattern(size) and the server must echo it. "ITEM@N" uses
 *       counter N instead of the next one; "sleep=MS" waits. Prints "ok ITEM" or "error ITEM
 *       NAME" (NAME from SPEC §12, or "timeout", "mismatch"). An advisory
 *       outcome (§7) resends the identical request once and waits GRACE_MS
 *       (default 1000) for an authenticated answer before it is reported.
 *       -w: how long to wait for an answer (default 10000 ms).
 *       Tests only: -s NUMBER and -f FLAGS put a suite or flags this side
 *       cannot seal into the header (-f: with an empty element of each
 *       type set, §10), with zero bytes for the boxes; -x 1
 *       sends a vouch made for another C' (§4.3: the server must drop it).
 *       -E (default off): epoch keys (§14): auto asks for them (WANT_EPOCH
 *       on every ping, and on requests while it has no key for the next
 *       epoch), seals with them once known, and on a verified UNKNOWN_EPOCH
 *       forgets them and resends the body sealed to the long-term key only;
 *       require never falls back ("error ITEM unknown-epoch") and never
 *       seals a body to the long-term key only (without an epoch key it
 *       pings for one first, and reports unknown-epoch if it gets none). With -E,
 *       "ok ITEM" is followed by "epoch" (sealed with an epoch key),
 *       "long-term" or "fallback" (UNKNOWN_EPOCH, then long-term).
 *   secsock-c server URL SERVER_SECRET [-p PREVIOUS_SECRET]... [-a AUTHORIZED_PUBLIC]... [-A]
 *                    [-b BUDGET_PER_S] [-c PEER_CACHE] [-m TOMBSTONES] [-r MAX_RESENDS]
 *                    [-e SEED_FILE] [-o CLOCK_OFFSET_MS]
 *       echoes every delivered request; -a turns the client policy on, -A
 *       also serves anonymous clients; -b 0 is an unlimited work budget.
 *       Prints "listening PORT", then one line per request: "deliver
 *       SIZE", "reply", "resend", "refuse:stale", "drop:malformed", ...
 *       -e: the epoch seed file (§14.6), ratcheted forward and rewritten
 *       as the clock passes epochs; with it, "deliver SIZE" and "reply"
 *       are followed by "epoch K" or "long-term". -o: added to the
 *       server's clock.
 *   secsock-c push URL SERVER_PUBLIC [-k CLIENT_SECRET] [-s box|aesgcm] [-w SEND_TIMEOUT_MS] SIZE...
 *       sends one sealed PUSH message (§15) per SIZE, body pattern(SIZE),
 *       and prints "sent SIZE"; nothing comes back.
 *   secsock-c pull URL SERVER_SECRET [-p PREVIOUS_SECRET]... [-a AUTHORIZED_PUBLIC]... [-A] [-b BUDGET_PER_S]
 *       a PULL worker (§15.2): prints "listening PORT", then per message
 *       "deliver SIZE" (" mismatch" if the body is not pattern(SIZE)) or
 *       "drop:REASON".
 *   secsock-c epoch-seed new FILE ORIGIN_MS LENGTH_MS [EPOCH]
 *       writes a new seed file (random chain and seed_EPOCH, default 0)
 *   secsock-c epoch-seed advance FILE
 *       ratchets a seed file to the clock's epoch - 1 (idempotent)
 *   secsock-c epoch-seed ids FILE [CLOCK_OFFSET_MS]
 *       prints "EPOCH ID" for the epochs the file's holder accepts now
 *   secsock-c x25519          reads "SCALAR POINT" lines, prints X25519 or "zero"
 *   secsock-c validkey        reads keys, prints "valid" or "invalid" (§4.1)
 *   secsock-c aesgcm          exit status 0 if AES-256-GCM is available (AES-NI)
 *
 * Keys are 64 hex digits. Build:
 *   cc -o secsock-c *.c -lsodium -lnng -lgmp -lpthread
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>

#include "aead.h"
#include "client.h"
#include "epoch.h"
#include "keys.h"
#include "server.h"
#include "vectors.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int key_arg(uint8_t k[32], const char *hex)
{
	size_t n;
	if (strlen(hex) != 64 || sodium_hex2bin(k, 32, hex, 64, NULL, &n, NULL) != 0 || n != 32) {
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

/* ---- client ---- */

enum epochs { EPOCHS_OFF, EPOCHS_AUTO, EPOCHS_REQUIRE };

struct client_opts {
	uint8_t S[32], c[32], suite, flags;
	int vouched;
	enum epochs epochs;  /* -E */
	int64_t skew;        /* -t: added to the clock, to test freshness */
	int grace_ms, wait_ms, bad_vouch;
};

static int client_args(int argc, char **argv, struct client_opts *o)
{
	int i;
	memset(o, 0, sizeof *o);
	o->suite = SUITE_BOX;
	o->grace_ms = 1000;
	o->wait_ms = 10000;
	if (key_arg(o->S, argv[3]) != 0)
		return -1;
	for (i = 4; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		const char *a = argv[i + 1];
		if (!strcmp(argv[i], "-k") && key_arg(o->c, a) == 0)
			o->vouched = 1;
		else if (!strcmp(argv[i], "-t"))
			o->skew = strtoll(a, NULL, 10);
		else if (!strcmp(argv[i], "-g"))
			o->grace_ms = atoi(a);
		else if (!strcmp(argv[i], "-w"))
			o->wait_ms = atoi(a);
		else if (!strcmp(argv[i], "-x"))
			o->bad_vouch = atoi(a);
		else if (!strcmp(argv[i], "-f"))
			o->flags = (uint8_t)strtoul(a, NULL, 0);
		else if (!strcmp(argv[i], "-E") && (!strcmp(a, "off") || !strcmp(a, "auto") || !strcmp(a, "require")))
			o->epochs = a[0] == 'o' ? EPOCHS_OFF : a[0] == 'a' ? EPOCHS_AUTO : EPOCHS_REQUIRE;
		else if (!strcmp(argv[i], "-s"))
			o->suite = !strcmp(a, "aesgcm") ? SUITE_AESGCM : !strcmp(a, "box") ? SUITE_BOX : (uint8_t)strtoul(a, NULL, 0);
		else
			return -1;
	}
	return i;
}

/* Seals one item into m; for a suite or flags this side cannot seal, the
 * header is followed by zero boxes of the right size (tests of §6 step 4). */
static size_t seal_item(struct client *cl, const struct client_opts *o, int ping, uint64_t N, uint64_t T,
                        const uint8_t *body, size_t size, int *epoch, uint8_t *out)
{
	struct reqext x;
	client_pick(cl, T, ping, &x);
	*epoch = x.id != NULL;
	size_t n = client_seal(cl, ping, N, T, body, size, o->epochs == EPOCHS_OFF ? NULL : &x, out);
	if (n == 0 || cl->flags != 0) {
		size_t hlen = client_header_len(out);
		n = hlen + (cl->vouched ? (size_t)IDENTITY_LEN : 0) + (ping ? 0 : size) + TAG_LEN;
		memset(out + hlen, 0, n - hlen);
	}
	return n;
}

/* Sends req and waits for one answer; returns the answer's error name
 * (NULL: the body is in *got) or "timeout"/an NNG error. */
static const char *exchange(nng_socket s, struct client *cl, const uint8_t *req, size_t reqlen, uint64_t N,
                            uint8_t **got, size_t *glen)
{
	nng_msg *m;
	int rv;
	const char *err;
	if ((rv = nng_msg_alloc(&m, 0)) != 0 || (rv = nng_msg_append(m, req, reqlen)) != 0 ||
	    (rv = nng_sendmsg(s, m, 0)) != 0 || (rv = nng_recvmsg(s, &m, 0)) != 0)
		return rv == NNG_ETIMEDOUT ? "timeout" : nng_strerror(rv);
	free(*got);
	*got = malloc(nng_msg_len(m) + 1);
	err = client_open(cl, req, client_header_len(req), N, nng_msg_body(m), nng_msg_len(m), *got, glen);
	nng_msg_free(m);
	return err;
}

/* §7: an advisory outcome does not end the request at once: resend the
 * identical bytes once and wait a grace for an authenticated answer. */
static const char *request(nng_socket s, struct client *cl, const struct client_opts *o, const uint8_t *req,
                           size_t reqlen, uint64_t N, uint8_t **got, size_t *glen)
{
	const char *first = exchange(s, cl, req, reqlen, N, got, glen);
	if (!client_advisory(first) || !strcmp(first, "timeout"))
		return first;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, o->grace_ms < o->wait_ms ? o->grace_ms : o->wait_ms);
	const char *second = exchange(s, cl, req, reqlen, N, got, glen);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, o->wait_ms);
	return client_advisory(second) ? first : second;
}

/* With -E require, a body is never sealed to the long-term key only: with
 * no epoch key, ping (WANT_EPOCH) for one first. 0: a key is known now. */
static int require_key(nng_socket s, struct client *cl, const struct client_opts *o, uint64_t *N, uint8_t *req,
                       uint8_t **got, size_t *glen)
{
	struct reqext x;
	int epoch;
	client_pick(cl, now_ms() + (uint64_t)o->skew, 0, &x);
	if (x.id)
		return 0;
	size_t reqlen = seal_item(cl, o, 1, *N, now_ms() + (uint64_t)o->skew, NULL, 0, &epoch, req);
	request(s, cl, o, req, reqlen, *N, got, glen);
	++*N;
	client_pick(cl, now_ms() + (uint64_t)o->skew, 0, &x);
	return x.id ? 0 : -1;
}

/* One item: seal, send, and with -E auto the fallback of §14.3 (a new
 * request, N + 1, long-term key only, WANT_EPOCH). *how says which. */
static const char *run_item(nng_socket s, struct client *cl, const struct client_opts *o, int ping, uint64_t *N,
                            const uint8_t *body, size_t size, uint8_t *req, uint8_t **got, size_t *glen,
                            const char **how)
{
	int epoch;
	/* §14.2: a client that once held epoch keys pings for fresh ones when
	 * they no longer cover T, rather than seal to the long-term key alone;
	 * with -E require it never seals without one. */
	int refresh = o->epochs == EPOCHS_REQUIRE || (o->epochs == EPOCHS_AUTO && cl->ann.have);
	if (refresh && !ping && require_key(s, cl, o, N, req, got, glen) != 0 && o->epochs == EPOCHS_REQUIRE)
		return "unknown-epoch";
	size_t reqlen = seal_item(cl, o, ping, *N, now_ms() + (uint64_t)o->skew, body, size, &epoch, req);
	const char *err = request(s, cl, o, req, reqlen, *N, got, glen);
	*how = epoch ? "epoch" : "long-term";
	if (!err || strcmp(err, "unknown-epoch") != 0 || o->epochs != EPOCHS_AUTO || !epoch)
		return err;
	++*N; /* client_open has forgotten the epoch keys */
	reqlen = seal_item(cl, o, ping, *N, now_ms() + (uint64_t)o->skew, body, size, &epoch, req);
	*how = "fallback";
	return request(s, cl, o, req, reqlen, *N, got, glen);
}

static int run_items(nng_socket s, struct client *cl, const struct client_opts *o, int argc, char **argv, int i)
{
	int errors = 0;
	for (uint64_t N = 1; i < argc; i++, N++) { /* N: the request counter, from 1 */
		int ping = strncmp(argv[i], "ping", 4) == 0;
		if (!strncmp(argv[i], "sleep=", 6)) { /* tests: let the clock pass an epoch boundary */
			struct timespec ts = {atoi(argv[i] + 6) / 1000, (long)(atoi(argv[i] + 6) % 1000) * 1000000};
			nanosleep(&ts, NULL);
			printf("ok %s\n", argv[i]);
			N--;
			continue;
		}
		if (strchr(argv[i], '@'))
			N = strtoull(strchr(argv[i], '@') + 1, NULL, 10);
		size_t size = ping ? 0 : strtoull(argv[i], NULL, 10), glen = 0;
		uint8_t *body = malloc(size + 1), *req = malloc(size + REQUEST_OVERHEAD + EXT_MAX_REQ), *got = NULL;
		const char *how;
		pattern(body, size);
		const char *err = run_item(s, cl, o, ping, &N, body, size, req, &got, &glen, &how);
		if (!err && (glen != (ping ? 0 : size) || (size && memcmp(got, body, size) != 0)))
			err = "mismatch";
		if (err)
			printf("error %s %s\n", argv[i], err), errors++;
		else if (o->epochs != EPOCHS_OFF)
			printf("ok %s %s\n", argv[i], how);
		else
			printf("ok %s\n", argv[i]);
		free(body), free(req), free(got);
	}
	return errors;
}

static int run_client(int argc, char **argv)
{
	struct client_opts o;
	struct client cl;
	const char *why = NULL;
	int i = client_args(argc, argv, &o), rv;
	if (i < 0)
		return 2;
	/* E: the end of this short-term key's lifetime, one hour (§4.2, §4.3) */
	uint64_t E = now_ms() + (uint64_t)o.skew + 3600000;
	if (client_init(&cl, o.S, o.vouched ? o.c : NULL, NULL, o.suite, E, &why) != 0) {
		fprintf(stderr, "client: %s\n", why);
		return 2;
	}
	cl.flags = o.flags;
	if (o.bad_vouch && o.vouched) { /* the vouch of another C' for the same C and S */
		struct client other;
		client_init(&other, o.S, o.c, NULL, o.suite, E, &why);
		memcpy(cl.V, other.V, 32);
		sodium_memzero(&other, sizeof other);
	}
	nng_socket s;
	if ((rv = nng_req0_open(&s)) != 0 || (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, o.wait_ms)) != 0 ||
	    (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0)) != 0 || (rv = nng_dial(s, argv[2], NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "nng: %s\n", nng_strerror(rv));
		return 2;
	}
	int errors = run_items(s, &cl, &o, argc, argv, i);
	nng_close(s);
	sodium_memzero(&cl, sizeof cl);
	return errors ? 1 : 0;
}

/* ---- server ---- */

struct server_opts {
	const char *seed_file; /* -e */
	int64_t offset;        /* -o */
};

static int server_args(int argc, char **argv, struct server_config *cfg, struct server_opts *o)
{
	memset(o, 0, sizeof *o);
	server_config_defaults(cfg);
	if (key_arg(cfg->s[0], argv[3]) != 0)
		return -1;
	cfg->nkeys = 1;
	for (int i = 4; i < argc; i++) {
		const char *a = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "-A"))
			cfg->allow_anonymous = 1;
		else if (a && !strcmp(argv[i], "-p") && cfg->nkeys < MAX_SERVER_KEYS && key_arg(cfg->s[cfg->nkeys], a) == 0)
			cfg->nkeys++, i++;
		else if (a && !strcmp(argv[i], "-a") && cfg->nauthorized < MAX_AUTHORIZED &&
		         key_arg(cfg->authorized[cfg->nauthorized], a) == 0)
			cfg->nauthorized++, cfg->policy = 1, i++;
		else if (a && !strcmp(argv[i], "-b"))
			cfg->budget_rate = strtoull(a, NULL, 10), i++;
		else if (a && !strcmp(argv[i], "-c"))
			cfg->peer_cache = atoi(a), i++;
		else if (a && !strcmp(argv[i], "-m"))
			cfg->tombstones = atoi(a), i++;
		else if (a && !strcmp(argv[i], "-r"))
			cfg->max_resends = atoi(a), i++;
		else if (a && !strcmp(argv[i], "-e"))
			o->seed_file = a, i++;
		else if (a && !strcmp(argv[i], "-o"))
			o->offset = strtoll(a, NULL, 10), i++;
		else
			return -1;
	}
	return 0;
}

/* Handles one received message; returns the answer to send, or NULL. */
static nng_msg *serve(struct server *sv, uint64_t now, nng_msg *m)
{
	struct verdict v;
	nng_msg *r = NULL;
	size_t len = nng_msg_len(m);
	uint8_t *body = malloc(len + 1);
	server_handle(sv, now, nng_msg_body(m), len, body, &v);
	if (sv->cfg.epochs && (v.action == DELIVER || !strcmp(v.what, "reply"))) /* with -e: how it was sealed */
		snprintf(v.what + strlen(v.what), sizeof v.what - strlen(v.what), v.epoch ? " epoch %" PRIu64 : " long-term", v.k);
	if (v.action == DELIVER) { /* the application: echo the body */
		printf("deliver %zu%s\n", v.body_len, v.what + strlen("deliver"));
		if (nng_msg_alloc(&r, v.body_len + ANSWER_OVERHEAD) == 0 &&
		    nng_msg_realloc(r, server_seal_reply(sv, &v.t, body, v.body_len, nng_msg_body(r))) != 0)
			nng_msg_free(r), r = NULL;
		sodium_memzero(&v.t, sizeof v.t);
	} else {
		printf("%s\n", v.what);
		if (v.action == ANSWER && nng_msg_alloc(&r, 0) == 0 && nng_msg_append(r, v.answer, v.answer_len) != 0) {
			nng_msg_free(r);
			r = NULL;
		}
	}
	free(body);
	return r;
}

/* §14.1: ratchet as the clock passes epochs, and rewrite the seed file (§14.6). */
static void epoch_tick(struct server *sv, const struct server_opts *o, uint64_t now)
{
	const char *why = NULL;
	struct epoch_chain *ch = sv->cfg.epochs;
	if (!ch)
		return;
	server_epoch_tick(sv, now);
	if (ch->dirty && epoch_file_write(o->seed_file, ch, &why) != 0)
		fprintf(stderr, "epoch seed file %s: %s\n", o->seed_file, why);
	else if (ch->dirty)
		fprintf(stderr, "epoch seed file %s: ratcheted to epoch %" PRIu64 "\n", o->seed_file, ch->j), ch->dirty = 0;
}

static int listen_rep(nng_socket *s, const char *url, int (*open)(nng_socket *))
{
	nng_listener l;
	int rv, port = 0;
	if ((rv = open(s)) != 0 || (rv = nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 1000)) != 0 || (rv = nng_listener_create(&l, *s, url)) != 0 ||
	    (rv = nng_listener_start(l, 0)) != 0 || (rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0) {
		fprintf(stderr, "nng: %s\n", nng_strerror(rv));
		return -1;
	}
	printf("listening %d\n", port);
	return 0;
}

static int run_server(int argc, char **argv)
{
	static struct server sv;
	static struct epoch_chain chain;
	struct server_config cfg;
	struct server_opts o;
	const char *why = NULL;
	nng_socket s;
	int rv;
	if (server_args(argc, argv, &cfg, &o) != 0)
		return 2;
	if (o.seed_file && epoch_load(o.seed_file, &chain, now_ms() + (uint64_t)o.offset, &why) != 0) {
		fprintf(stderr, "server: %s: %s\n", o.seed_file, why);
		return 2;
	}
	cfg.epochs = o.seed_file ? &chain : NULL;
	if (server_init(&sv, &cfg, now_ms() + (uint64_t)o.offset, &why) != 0) {
		fprintf(stderr, "server: %s\n", why);
		return 2;
	}
	if (listen_rep(&s, argv[2], nng_rep0_open) != 0)
		return 2;
	for (;;) {
		nng_msg *m, *r;
		uint64_t now = now_ms() + (uint64_t)o.offset;
		epoch_tick(&sv, &o, now);
		if ((rv = nng_recvmsg(s, &m, 0)) == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			fprintf(stderr, "nng: %s\n", nng_strerror(rv));
			return 1;
		}
		r = serve(&sv, now_ms() + (uint64_t)o.offset, m);
		nng_msg_free(m);
		if (r && (rv = nng_sendmsg(s, r, 0)) != 0) {
			fprintf(stderr, "nng: %s\n", nng_strerror(rv));
			nng_msg_free(r);
		}
	}
}

/* ---- pipeline (§15) ---- */

/* secsock-c push: one PUSH message per SIZE item, body pattern(SIZE),
 * from one short-term key with N = 1, 2, ... (§15.3). Nothing comes back. */
static int run_push(int argc, char **argv)
{
	struct client_opts o;
	struct client cl;
	const char *why = NULL;
	int i = client_args(argc, argv, &o), rv;
	nng_socket s;
	if (i < 0)
		return 2;
	uint64_t E = now_ms() + 3600000;
	if (client_init(&cl, o.S, o.vouched ? o.c : NULL, NULL, o.suite, E, &why) != 0) {
		fprintf(stderr, "push: %s\n", why);
		return 2;
	}
	client_set_push(&cl);
	if ((rv = nng_push0_open(&s)) != 0 || (rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, o.wait_ms)) != 0 ||
	    (rv = nng_dial(s, argv[2], NULL, 0)) != 0) {
		fprintf(stderr, "nng: %s\n", nng_strerror(rv));
		return 2;
	}
	int errors = 0;
	for (uint64_t N = 1; i < argc; i++, N++) {
		size_t size = strtoul(argv[i], NULL, 10);
		uint8_t *body = malloc(size + 1), *out = malloc(size + REQUEST_OVERHEAD + EXT_MAX_REQ);
		nng_msg *m;
		pattern(body, size);
		size_t n = client_seal(&cl, 0, N, now_ms(), body, size, NULL, out);
		if ((rv = nng_msg_alloc(&m, 0)) != 0 || (rv = nng_msg_append(m, out, n)) != 0 || (rv = nng_sendmsg(s, m, 0)) != 0) {
			printf("error %s %s\n", argv[i], nng_strerror(rv));
			errors++;
		} else {
			printf("sent %s\n", argv[i]);
		}
		free(body);
		free(out);
	}
	nng_msleep(300); /* let the queue drain before close drops it */
	nng_close(s);
	sodium_memzero(&cl, sizeof cl);
	return errors ? 1 : 0;
}

/* secsock-c pull: a PULL worker (§15.2). Prints "deliver SIZE" (with
 * " mismatch" when the body is not pattern(SIZE)) or "drop:REASON" per
 * message; nothing is ever sent. */
static int run_pull(int argc, char **argv)
{
	static struct server sv;
	struct server_config cfg;
	struct server_opts o;
	const char *why = NULL;
	nng_socket s;
	int rv;
	if (server_args(argc, argv, &cfg, &o) != 0 || o.seed_file)
		return 2;
	cfg.pull = 1;
	if (server_init(&sv, &cfg, now_ms() + (uint64_t)o.offset, &why) != 0) {
		fprintf(stderr, "pull: %s\n", why);
		return 2;
	}
	if (listen_rep(&s, argv[2], nng_pull0_open) != 0)
		return 2;
	for (;;) {
		nng_msg *m;
		struct verdict v;
		if ((rv = nng_recvmsg(s, &m, 0)) == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			fprintf(stderr, "nng: %s\n", nng_strerror(rv));
			return 1;
		}
		size_t len = nng_msg_len(m);
		uint8_t *body = malloc(len + 1), *want = malloc(len + 1);
		server_handle(&sv, now_ms() + (uint64_t)o.offset, nng_msg_body(m), len, body, &v);
		if (v.action == DELIVER) {
			pattern(want, v.body_len);
			printf("deliver %zu%s\n", v.body_len, memcmp(body, want, v.body_len) ? " mismatch" : "");
		} else {
			printf("%s\n", v.what);
		}
		free(body);
		free(want);
		nng_msg_free(m);
	}
}

/* ---- epoch seed files (§14.6) ---- */

static int seed_new(int argc, char **argv)
{
	struct epoch_chain ch;
	const char *why = NULL;
	memset(&ch, 0, sizeof ch);
	randombytes_buf(ch.chain, sizeof ch.chain);
	randombytes_buf(ch.seed, sizeof ch.seed);
	ch.O = strtoull(argv[4], NULL, 10);
	ch.L = strtoull(argv[5], NULL, 10);
	ch.j = argc > 6 ? strtoull(argv[6], NULL, 10) : 0;
	int rv = ch.L == 0 || ch.L > UINT32_MAX ? (why = "length must be 1 to 2^32-1 ms", -1)
	                                       : epoch_file_write(argv[3], &ch, &why);
	epoch_wipe(&ch);
	if (rv != 0)
		fprintf(stderr, "epoch-seed new: %s\n", why);
	return rv ? 1 : 0;
}

static int seed_cmd(int argc, char **argv)
{
	struct epoch_chain ch;
	const char *why = NULL;
	if (!strcmp(argv[2], "new") && argc >= 6)
		return seed_new(argc, argv);
	uint64_t now = now_ms() + (argc > 4 ? (uint64_t)strtoll(argv[4], NULL, 10) : 0);
	if ((strcmp(argv[2], "advance") && strcmp(argv[2], "ids")) || epoch_load(argv[3], &ch, now, &why) != 0) {
		fprintf(stderr, "epoch-seed: %s\n", why ? why : "usage: epoch-seed new|advance|ids FILE ...");
		return 1;
	}
	for (int i = 0; !strcmp(argv[2], "ids") && i < ch.n; i++) {
		char hex[2 * EPOCH_ID_LEN + 1];
		int ok;
		uint64_t k;
		sodium_bin2hex(hex, sizeof hex, ch.id[i], EPOCH_ID_LEN);
		printf("%" PRIu64 " %s%s\n", ch.j + (uint64_t)i, hex,
		       epoch_accepts(&ch, ch.id[i], now, 0, &ok, &k) ? "" : " (not yet accepted)");
	}
	epoch_wipe(&ch);
	return 0;
}

/* ---- checks driven by the test harness ---- */

static int run_x25519(void)
{
	char a[256], b[256];
	while (scanf("%255s %255s", a, b) == 2) {
		uint8_t k[32], P[32], out[32];
		char hex[65];
		if (key_arg(k, a) != 0 || key_arg(P, b) != 0)
			return 2;
		if (x25519(out, k, P) != 0)
			printf("zero\n");
		else
			printf("%s\n", sodium_bin2hex(hex, sizeof hex, out, 32));
	}
	return 0;
}

static int run_validkey(void)
{
	char a[256];
	while (scanf("%255s", a) == 1) {
		uint8_t k[32];
		if (key_arg(k, a) != 0)
			return 2;
		printf("%s %s\n", key_canonical(k) ? "canonical" : "noncanonical", key_valid_longterm(k) ? "valid" : "invalid");
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (aead_init() != 0)
		return 2;
	if (argc == 2 && !strcmp(argv[1], "aesgcm"))
		return aead_aesgcm_available() ? 0 : 1;
	if (argc == 2 && !strcmp(argv[1], "x25519"))
		return run_x25519();
	if (argc == 2 && !strcmp(argv[1], "validkey"))
		return run_validkey();
	if (argc == 3 && !strcmp(argv[1], "vectors"))
		return vectors_run(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "client"))
		return run_client(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "server"))
		return run_server(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "push"))
		return run_push(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "pull"))
		return run_pull(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "epoch-seed"))
		return seed_cmd(argc, argv);
	fprintf(stderr, "usage: %s vectors DIR | client URL SERVER_PUBLIC [-k SECRET] [-s box|aesgcm|N] [-f FLAGS] [-t SKEW_MS]"
	                " [-g GRACE_MS] [-w WAIT_MS] [-x 1] [-E off|auto|require] SIZE|ping... | server URL SECRET [-p PREVIOUS]... [-a AUTHORIZED]..."
	                " [-A] [-b BUDGET] [-c PEER_CACHE] [-m TOMBSTONES] [-r MAX_RESENDS] [-e SEED_FILE] [-o OFFSET_MS]"
	                " | epoch-seed new FILE ORIGIN LENGTH [EPOCH] | epoch-seed advance|ids FILE | x25519 | validkey | aesgcm\n", argv[0]);
	return 2;
}
