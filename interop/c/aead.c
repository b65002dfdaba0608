/*
 * aead.c: SPEC §2 seal/open; §5.1 and §5.2 nonces.
 */
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "proto.h"

static int aesgcm_ok;

int aead_init(void)
{
	if (sodium_init() < 0)
		return -1;
	aesgcm_ok = crypto_aead_aes256gcm_is_available();
	return 0;
}

int aead_aesgcm_available(void) { return aesgcm_ok; }

int aead_suite_known(uint8_t suite) { return suite == SUITE_BOX || (suite == SUITE_AESGCM && aesgcm_ok); }

/* seal(suite, K, n24, n12, m, ad): BOX ignores ad, AESGCM ignores n24. */
static void seal(uint8_t suite, uint8_t *out, const uint8_t k[32], const uint8_t n24[24], const uint8_t n12[12],
                 const uint8_t *m, size_t len, const uint8_t *ad, size_t adlen)
{
	if (suite == SUITE_BOX)
		crypto_secretbox_easy(out, m, len, n24, k); /* tag ‖ ciphertext */
	else
		crypto_aead_aes256gcm_encrypt(out, NULL, m, len, ad, adlen, NULL, n12, k); /* ciphertext ‖ tag */
}

static int open_box(uint8_t suite, uint8_t *out, const uint8_t k[32], const uint8_t n24[24], const uint8_t n12[12],
                    const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen)
{
	if (clen < TAG_LEN)
		return -1;
	if (suite == SUITE_BOX)
		return crypto_secretbox_open_easy(out, c, clen, n24, k);
	if (suite == SUITE_AESGCM && aesgcm_ok)
		return crypto_aead_aes256gcm_decrypt(out, NULL, NULL, c, clen, ad, adlen, n12, k);
	return -1;
}

/* n24(p) = p ‖ kind ‖ flags ‖ 0^5 ‖ u64(N) ‖ u64(T),
 * n12(p) = p ‖ kind ‖ flags ‖ 0x00 ‖ u32(N) ‖ u32(T mod 2^32): the low
 * halves of the big-endian N and T in H (N < 2^32, so u32(N) is all of it). */
static void request_nonces(uint8_t n24[24], uint8_t n12[12], const uint8_t *H, uint8_t part)
{
	memset(n24, 0, 24);
	n24[0] = part;
	n24[1] = H[OFF_KIND];
	n24[2] = H[OFF_FLAGS];
	memcpy(n24 + 8, H + OFF_N, 8);
	memcpy(n24 + 16, H + OFF_T, 8);
	memcpy(n12, n24, 3);
	n12[3] = 0;
	memcpy(n12 + 4, H + OFF_N + 4, 4);
	memcpy(n12 + 8, H + OFF_T + 4, 4);
}

void aead_seal_request(uint8_t *out, const uint8_t kq[32], const uint8_t *H, size_t hlen, uint8_t part,
                       const uint8_t *m, size_t len)
{
	uint8_t n24[24], n12[12];
	request_nonces(n24, n12, H, part);
	seal(H[OFF_SUITE], out, kq, n24, n12, m, len, H, hlen);
}

int aead_open_request(uint8_t *out, const uint8_t kq[32], const uint8_t *H, size_t hlen, uint8_t part,
                      const uint8_t *c, size_t clen)
{
	uint8_t n24[24], n12[12];
	request_nonces(n24, n12, H, part);
	return open_box(H[OFF_SUITE], out, kq, n24, n12, c, clen, H, hlen);
}

/* BOX: nonce R ‖ u64(N_req). AESGCM: nonce R[0..12], ad reply[0..19] ‖ u64(N_req). */
static void reply_nonces(uint8_t n24[24], uint8_t ad[27], const uint8_t *reply, uint64_t Nreq)
{
	memcpy(n24, reply + 3, RANDOM_LEN);
	put64(n24 + RANDOM_LEN, Nreq);
	memcpy(ad, reply, REPLY_HEADER_LEN);
	put64(ad + REPLY_HEADER_LEN, Nreq);
}

void aead_seal_reply(uint8_t *reply, const uint8_t kr[32], uint64_t Nreq, const uint8_t *body, size_t len)
{
	uint8_t n24[24], ad[27];
	reply_nonces(n24, ad, reply, Nreq);
	seal(reply[2], reply + REPLY_HEADER_LEN, kr, n24, reply + 3, body, len, ad, sizeof ad);
}

int aead_open_reply(uint8_t *body, const uint8_t kr[32], uint64_t Nreq, const uint8_t *reply, size_t len)
{
	uint8_t n24[24], ad[27];
	if (len < REPLY_OVERHEAD)
		return -1;
	reply_nonces(n24, ad, reply, Nreq);
	return open_box(reply[2], body, kr, n24, reply + 3, reply + REPLY_HEADER_LEN, len - REPLY_HEADER_LEN, ad, sizeof ad);
}
