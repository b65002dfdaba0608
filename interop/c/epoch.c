/*
 * epoch.c: SPEC §14.1 seed chain, §14.2 announcement, §14.6 seed files.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "epoch.h"
#include "keys.h"
#include "proto.h"
#include "schedule.h"

void epoch_keys(const uint8_t seed[32], uint8_t esk[32], uint8_t E[32], uint8_t id[EPOCH_ID_LEN])
{
	uint8_t h[crypto_hash_sha256_BYTES];
	sched_epoch_esk(esk, seed);
	x25519_base(E, esk); /* X25519 clamps esk */
	crypto_hash_sha256(h, E, 32);
	memcpy(id, h, EPOCH_ID_LEN);
}

int64_t epoch_of(uint64_t O, uint64_t L, uint64_t t)
{
	if (t < O || L == 0)
		return -1;
	uint64_t e = (t - O) / L;
	return e >= UINT32_MAX ? -1 : (int64_t)e; /* u32(c) and c+1 must fit */
}

/* seed_j -> seed_target, overwriting (erasing) each older seed. */
static int ratchet_to(struct epoch_chain *ch, uint64_t target)
{
	if (target > ch->j && target - ch->j > EPOCH_MAX_RATCHET)
		return -1;
	for (uint64_t i = 0; ch->j < target && i < EPOCH_MAX_RATCHET; i++, ch->j++)
		sched_epoch_ratchet(ch->seed, ch->seed);
	return 0;
}

/* esk, E, id of epochs j .. min(j + 2, c + 1); the rest erased. */
static void derive(struct epoch_chain *ch)
{
	uint8_t s[32];
	int64_t n = ch->c + 2 - (int64_t)ch->j;
	ch->n = n < 0 ? 0 : n > EPOCH_SLOTS ? EPOCH_SLOTS : (int)n;
	memcpy(s, ch->seed, 32);
	for (int i = 0; i < EPOCH_SLOTS; i++) {
		if (i < ch->n)
			epoch_keys(s, ch->esk[i], ch->E[i], ch->id[i]);
		else
			sodium_memzero(ch->esk[i], 32), memset(ch->E[i], 0, 32), memset(ch->id[i], 0, EPOCH_ID_LEN);
		sched_epoch_ratchet(s, s);
	}
	sodium_memzero(s, sizeof s);
}

int64_t epoch_advance(struct epoch_chain *ch, uint64_t now)
{
	int64_t c = epoch_of(ch->O, ch->L, now);
	uint64_t old = ch->j;
	if (c == ch->c)
		return -1;
	ch->c = c;
	if (c >= 1 && (uint64_t)(c - 1) > ch->j && ratchet_to(ch, (uint64_t)(c - 1)) == 0)
		ch->dirty = 1;
	derive(ch);
	return ch->j != old ? (int64_t)ch->j : -1;
}

int epoch_init(struct epoch_chain *ch, const uint8_t chain[16], uint64_t O, uint64_t L, uint64_t j,
               const uint8_t seed[32], uint64_t now, const char **why)
{
	int64_t c = epoch_of(O, L, now);
	memset(ch, 0, sizeof *ch);
	if (L == 0 || L > UINT32_MAX)
		return *why = "epoch length is 0 or does not fit 32 bits", -1;
	if (c < 0 || j > (uint64_t)c)
		return *why = "seed epoch is ahead of the clock's epoch (or the clock is before the origin)", -1;
	if (c >= 1 && j < (uint64_t)c - 1 && (uint64_t)c - 1 - j > EPOCH_MAX_RATCHET)
		return *why = "seed is too many epochs behind the clock", -1;
	memcpy(ch->chain, chain, 16);
	memcpy(ch->seed, seed, 32);
	ch->O = O;
	ch->L = L;
	ch->j = j;
	ch->c = -2; /* nothing derived yet */
	epoch_advance(ch, now);
	return 0;
}

int epoch_accepts(const struct epoch_chain *ch, const uint8_t id[EPOCH_ID_LEN], uint64_t now, uint64_t Z, int *slot,
                  uint64_t *k)
{
	for (int i = 0; i < ch->n; i++) {
		int64_t e = (int64_t)ch->j + i;
		int ok = e == ch->c || e == ch->c - 1 ||
		         (e == ch->c + 1 && now + Z >= ch->O + (uint64_t)(ch->c + 1) * ch->L);
		if (ok && memcmp(ch->id[i], id, EPOCH_ID_LEN) == 0) {
			*slot = i;
			*k = (uint64_t)e;
			return 1;
		}
	}
	return 0;
}

int epoch_announce(const struct epoch_chain *ch, uint8_t out[ANNOUNCE_LEN])
{
	int64_t i = ch->c - (int64_t)ch->j; /* slot of epoch c */
	if (ch->c < 0 || i < 0 || i + 1 >= ch->n)
		return -1;
	uint64_t c = (uint64_t)ch->c, start = ch->O + c * ch->L;
	for (int b = 0; b < 4; b++)
		out[b] = (uint8_t)(c >> (24 - 8 * b)), out[12 + b] = (uint8_t)(ch->L >> (24 - 8 * b));
	put64(out + 4, start);
	memcpy(out + 16, ch->E[i], 32);
	memcpy(out + 48, ch->E[i + 1], 32);
	return 0;
}

void epoch_wipe(struct epoch_chain *ch) { sodium_memzero(ch, sizeof *ch); }

/* ---- seed files ---- */

static int decimal(const char *s, uint64_t *out)
{
	uint64_t x = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*out = x;
	return 0;
}

static int hexfield(const char *s, uint8_t *out, size_t n)
{
	size_t got;
	return strlen(s) == 2 * n && sodium_hex2bin(out, n, s, 2 * n, NULL, &got, NULL) == 0 && got == n ? 0 : -1;
}

/* One "name: value" line; *seen collects the fields (each exactly once). */
static int file_field(struct epoch_file *f, char *line, unsigned *seen)
{
	static const char *const names[] = {"chain", "origin", "length", "epoch", "seed"};
	char *colon = strchr(line, ':');
	if (!colon || colon[1] != ' ')
		return -1;
	*colon = 0;
	const char *v = colon + 2;
	for (unsigned i = 0; i < 5; i++) {
		if (strcmp(line, names[i]) != 0)
			continue;
		if (*seen & 1u << i)
			return -1;
		*seen |= 1u << i;
		switch (i) {
		case 0: return hexfield(v, f->chain, 16);
		case 1: return decimal(v, &f->O);
		case 2: return decimal(v, &f->L);
		case 3: return decimal(v, &f->j);
		default: return hexfield(v, f->seed, 32);
		}
	}
	return -1;
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
}

int epoch_file_read(const char *path, struct epoch_file *f, const char **why)
{
	char line[256];
	unsigned seen = 0;
	int bad = 0;
	struct stat st;
	FILE *fp = fopen(path, "r");
	memset(f, 0, sizeof *f);
	if (!fp)
		return *why = "cannot open the seed file", -1;
	if (fstat(fileno(fp), &st) != 0 || (st.st_mode & 077) != 0)
		bad = 1, *why = "seed file is group- or world-accessible (want mode 0600)";
	if (!bad && (!fgets(line, sizeof line, fp) || (chomp(line), strcmp(line, EPOCH_FILE_HEADER) != 0)))
		bad = 1, *why = "seed file: first line is not \"" EPOCH_FILE_HEADER "\"";
	for (int n = 0; !bad && n < 64 && fgets(line, sizeof line, fp); n++) {
		chomp(line);
		if (line[0] && file_field(f, line, &seen) != 0)
			bad = 1, *why = "seed file: a line is not chain:, origin:, length:, epoch: or seed: with a good value, or repeats";
	}
	sodium_memzero(line, sizeof line);
	fclose(fp);
	if (!bad && seen != 0x1f)
		bad = 1, *why = "seed file: chain:, origin:, length:, epoch: and seed: are not all there";
	if (bad)
		sodium_memzero(f, sizeof *f);
	return bad ? -1 : 0;
}

static int write_all(int fd, const char *s, size_t n)
{
	for (int i = 0; n > 0 && i < 1000; i++) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno != EINTR)
			return -1;
		if (w > 0)
			s += w, n -= (size_t)w;
	}
	return n == 0 ? 0 : -1;
}

int epoch_file_write(const char *path, const struct epoch_chain *ch, const char **why)
{
	char tmp[4096], text[512], chain[33], seed[65];
	int fd, rv = -1;
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
		return *why = "seed file path too long", -1;
	if ((fd = mkstemp(tmp)) < 0) /* mode 0600, a new file */
		return *why = "cannot create a seed file next to the old one", -1;
	sodium_bin2hex(chain, sizeof chain, ch->chain, 16);
	sodium_bin2hex(seed, sizeof seed, ch->seed, 32);
	int n = snprintf(text, sizeof text, "%s\nchain: %s\norigin: %" PRIu64 "\nlength: %" PRIu64 "\nepoch: %" PRIu64
	                 "\nseed: %s\n", EPOCH_FILE_HEADER, chain, ch->O, ch->L, ch->j, seed);
	if (fchmod(fd, 0600) == 0 && write_all(fd, text, (size_t)n) == 0 && fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		rv = rename(tmp, path) == 0 ? 0 : -1;
	}
	if (fd >= 0)
		close(fd);
	if (rv != 0)
		unlink(tmp), *why = "cannot write the seed file";
	sodium_memzero(text, sizeof text);
	sodium_memzero(seed, sizeof seed);
	return rv;
}

int epoch_load(const char *path, struct epoch_chain *ch, uint64_t now, const char **why)
{
	struct epoch_file f;
	int rv = epoch_file_read(path, &f, why);
	if (rv == 0)
		rv = epoch_init(ch, f.chain, f.O, f.L, f.j, f.seed, now, why);
	sodium_memzero(&f, sizeof f);
	if (rv == 0 && ch->dirty) {
		if (epoch_file_write(path, ch, why) != 0)
			return -1;
		fprintf(stderr, "epoch seed file %s: ratcheted forward to epoch %" PRIu64 " and rewritten\n", path, ch->j);
		ch->dirty = 0;
	}
	return rv;
}

/* ---- the client's announcement ---- */

static uint64_t get32(const uint8_t *p) { return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3]; }

int epoch_ann_parse(struct epoch_ann *a, const uint8_t v[ANNOUNCE_LEN])
{
	uint8_t h[crypto_hash_sha256_BYTES];
	memset(a, 0, sizeof *a);
	a->c = get32(v);
	a->start = get64(v + 4);
	a->L = get32(v + 12);
	if (a->L == 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		memcpy(a->E[i], v + 16 + 32 * i, 32);
		crypto_hash_sha256(h, a->E[i], 32);
		memcpy(a->id[i], h, EPOCH_ID_LEN);
	}
	a->have = 1;
	return 0;
}

const uint8_t *epoch_ann_pick(const struct epoch_ann *a, uint64_t t, uint64_t *k, const uint8_t **id, int *want)
{
	*want = 1;
	*id = NULL;
	if (!a->have)
		return NULL;
	/* k = c + floor((t - start) / L), floor also below start */
	int64_t d = t >= a->start ? (int64_t)((t - a->start) / a->L) : -(int64_t)((a->start - t + a->L - 1) / a->L);
	int64_t kk = (int64_t)a->c + d;
	*k = kk < 0 ? 0 : (uint64_t)kk;
	*want = !(d == -1 || d == 0); /* no key for k + 1 */
	if (d != 0 && d != 1)
		return NULL;
	*id = a->id[d];
	return a->E[d];
}
