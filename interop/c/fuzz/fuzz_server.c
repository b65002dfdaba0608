/*
 * fuzz_server.c: feeds mutated requests (bit flips, truncations, random
 * lengths, random header fields) to server_handle under a small peer
 * cache, with an epoch seed chain (SPEC §14) and clients that seal with
 * epoch keys (the current, the next, one from another chain) or ask for
 * them, and checks that it never delivers a body that was not sealed.
 * Build (from interop/c):
 *   cc -std=c11 -D_DEFAULT_SOURCE -g -fsanitize=address,undefined -I. -o fz \
 *      fuzz/fuzz_server.c aead.c budget.c client.c epoch.c ext.c keys.c peers.c replies.c schedule.c server.c \
 *      -lsodium -lgmp
 *   ./fz [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "client.h"
#include "server.h"

#define NOW 1790000000000ULL

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 100000;
	static struct server sv;
	struct server_config cfg;
	struct client cl[4];
	uint8_t c[32], req[512 + 200], body[512], msg[512];
	const char *why;
	static struct epoch_chain chain;
	uint8_t seed[32], other_E[32], other_id[EPOCH_ID_LEN], esk[32];
	if (aead_init() != 0)
		return 2;
	randombytes_buf(seed, 32);
	/* epochs of 200 s from NOW - 1000 s: the run spans epochs 5 to about 10 */
	if (epoch_init(&chain, seed, NOW - 1000000, 200000, 0, seed, NOW, &why) != 0)
		return fprintf(stderr, "%s\n", why), 2;
	randombytes_buf(seed, 32);
	epoch_keys(seed, esk, other_E, other_id);
	server_config_defaults(&cfg);
	randombytes_buf(cfg.s[0], 32);
	randombytes_buf(cfg.s[1], 32);
	cfg.nkeys = 2;
	cfg.peer_cache = 3;
	cfg.tombstones = 4;
	cfg.reply_slots = 8;
	cfg.epochs = &chain;
	cfg.budget_rate = 0;
	randombytes_buf(c, 32);
	if (server_init(&sv, &cfg, NOW, &why) != 0)
		return fprintf(stderr, "%s\n", why), 2;
	for (int i = 0; i < 4; i++)
		if (client_init(&cl[i], sv.S[i & 1], i < 2 ? c : NULL, NULL, (uint8_t)(1 + (i & 1)), NOW + 3600000, &why) != 0)
			return fprintf(stderr, "%s\n", why), 2;
	long delivered = 0, answered = 0;
	for (long it = 0; it < iters; it++) {
		struct client *k = &cl[randombytes_uniform(4)];
		size_t blen = randombytes_uniform(64);
		uint64_t N = 1 + randombytes_uniform(20);
		randombytes_buf(msg, blen);
		uint64_t now = NOW + (uint64_t)it * 10;
		struct reqext x = {NULL, NULL, 0, (int)randombytes_uniform(2)};
		int e = (int)randombytes_uniform(4);
		if (e < 2 && chain.n > e + 1) /* epoch c, c + 1 (slots 1, 2 once j = c - 1) */
			x.E = chain.E[e + 1], x.id = chain.id[e + 1], x.k = chain.j + (uint64_t)e + 1;
		else if (e == 2)
			x.E = other_E, x.id = other_id, x.k = 99;
		size_t n = client_seal(k, 0, N, now + randombytes_uniform(2000), msg, blen, &x, req);
		int mutated = 0;
		switch (randombytes_uniform(4)) {
		case 0: break;
		case 1: req[randombytes_uniform((uint32_t)n)] ^= (uint8_t)(1 + randombytes_uniform(255)), mutated = 1; break;
		case 2: n = randombytes_uniform((uint32_t)n), mutated = 1; break;
		case 3: n = randombytes_uniform(sizeof req), randombytes_buf(req + 2, n > 2 ? n - 2 : 0), mutated = 1; break;
		}
		struct verdict v;
		server_handle(&sv, now, req, n, body, &v);
		if (v.action == DELIVER) {
			delivered++;
			if (mutated && !(v.body_len == blen && memcmp(body, msg, blen) == 0)) {
				fprintf(stderr, "delivered a body that was not sealed (%s)\n", v.what);
				return 1;
			}
			uint8_t out[512 + ANSWER_OVERHEAD];
			server_seal_reply(&sv, &v.t, body, v.body_len, out);
		} else if (v.action == ANSWER) {
			answered++;
		}
	}
	printf("%ld iterations: %ld delivered, %ld answered\n", iters, delivered, answered);
	server_free(&sv);
	epoch_wipe(&chain);
	return 0;
}
