/*
 * ext.h: the request extension field of SPEC §10 (elements
 * type ‖ u16(len) ‖ value in increasing type order, flags bit i set iff
 * type i is present) and the two types of §14: 0 EPOCH and 5 WANT_EPOCH.
 */
#ifndef SECSOCK_EXT_H
#define SECSOCK_EXT_H

#include <stddef.h>
#include <stdint.h>

enum {
	EXT_EPOCH = 0,          /* value id_k, 8 bytes (§14.3) */
	EXT_WANT_EPOCH = 5,     /* empty value (§14.2) */
	EXT_KNOWN = 1 << EXT_EPOCH | 1 << EXT_WANT_EPOCH, /* the flags bits this side implements */
	EXT_ELEM_HEAD = 3,      /* type ‖ u16(len) */
	EPOCH_ID_LEN = 8,
	EPOCH_ELEM_LEN = EXT_ELEM_HEAD + EPOCH_ID_LEN, /* 11 */
	REPLY_EPOCH_KEYS = 0,   /* REPLY_EXT element type 0 (§14.2) */
	ANNOUNCE_LEN = 4 + 8 + 4 + 32 + 32, /* u32(c) ‖ u64(O + c·L) ‖ u32(L) ‖ E_c ‖ E_{c+1} */
	REPLY_EXT_EXTRA = 2 + EXT_ELEM_HEAD + ANNOUNCE_LEN, /* 85 (§14.3 sizes) */
	EXT_MAX_REQ = EPOCH_ELEM_LEN + 7 * EXT_ELEM_HEAD, /* what this side sends, test elements included */
};

struct ext {
	int epoch, want;           /* types 0 and 5 present */
	const uint8_t *epoch_elem; /* the EPOCH element's 11 bytes as sent */
	const uint8_t *id;         /* its value, id_k */
};

/* Parses the extension field x[0..X) under flags (§6 step 2; values of
 * types other than 0 and 5 are skipped). Returns -1 if it is malformed: an
 * element running past X, types out of order or repeated, a type with
 * no flags bit or a bit with no element, a known type's value of the
 * wrong size (§6 step 2). */
int ext_parse(const uint8_t *x, size_t X, uint8_t flags, struct ext *e);

/* Writes the elements this side sends (EPOCH with id, WANT_EPOCH), and
 * for tests an empty element for each type in extra, in type order, into
 * out; returns X. id NULL: no EPOCH element. */
size_t ext_write(uint8_t *out, const uint8_t *id, int want, uint8_t extra);

#endif
