/*
 * ext.c: SPEC §10 extension elements in requests.
 */
#include <string.h>

#include "ext.h"
#include "proto.h"

/* -1 for a value of the wrong size (§6 step 2: EPOCH 8 bytes, WANT_EPOCH empty) */
static int element(struct ext *e, const uint8_t *p, unsigned type, unsigned len)
{
	if (type == EXT_EPOCH) {
		e->epoch = 1;
		e->epoch_elem = p;
		e->id = p + EXT_ELEM_HEAD;
		return len == EPOCH_ID_LEN ? 0 : -1;
	}
	if (type == EXT_WANT_EPOCH) {
		e->want = 1;
		return len == 0 ? 0 : -1;
	}
	return 0;
}

int ext_parse(const uint8_t *x, size_t X, uint8_t flags, struct ext *e)
{
	size_t off = 0;
	unsigned seen = 0;
	int last = -1;
	memset(e, 0, sizeof *e);
	for (int i = 0; off < X && i < 256; i++) { /* at most 8 types, each once */
		if (X - off < EXT_ELEM_HEAD)
			return -1;
		unsigned type = x[off], len = get16(x + off + 1);
		if ((int)type <= last || type > 7 || X - off - EXT_ELEM_HEAD < len || element(e, x + off, type, len) != 0)
			return -1;
		seen |= 1u << type;
		last = (int)type;
		off += EXT_ELEM_HEAD + len;
	}
	return off == X && seen == flags ? 0 : -1;
}

size_t ext_write(uint8_t *out, const uint8_t *id, int want, uint8_t extra)
{
	size_t n = 0;
	for (unsigned type = 0; type < 8; type++) {
		int here = (type == EXT_EPOCH && id) || (type == EXT_WANT_EPOCH && want) || (extra >> type & 1);
		if (!here)
			continue;
		out[n++] = (uint8_t)type;
		out[n++] = 0;
		out[n++] = type == EXT_EPOCH && id ? EPOCH_ID_LEN : 0;
		if (type == EXT_EPOCH && id) {
			memcpy(out + n, id, EPOCH_ID_LEN);
			n += EPOCH_ID_LEN;
		}
	}
	return n;
}
