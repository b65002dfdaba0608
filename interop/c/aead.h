/*
 * aead.h: seal and open of SPEC §2 for both suites, with the nonces and
 * additional data of requests (§5.1) and replies (§5.2).
 */
#ifndef SECSOCK_AEAD_H
#define SECSOCK_AEAD_H

#include <stddef.h>
#include <stdint.h>

int aead_init(void);              /* sodium_init; <0 on failure */
int aead_suite_known(uint8_t suite); /* BOX, and AESGCM where libsodium has it (AES-NI) */
int aead_aesgcm_available(void);

/* A request box (part PART_BODY or PART_IDENTITY) under Kq, for the
 * request whose header is H[0..hlen) (kind, flags, N, T read from H).
 * seal writes len + 16 bytes; open returns 0 on success. */
void aead_seal_request(uint8_t *out, const uint8_t kq[32], const uint8_t *H, size_t hlen, uint8_t part,
                       const uint8_t *m, size_t len);
int aead_open_request(uint8_t *out, const uint8_t kq[32], const uint8_t *H, size_t hlen, uint8_t part,
                      const uint8_t *c, size_t clen);

/* A reply: reply[0..19) = version ‖ kind ‖ suite ‖ R is already written;
 * the box follows it. Nreq is the counter of the request answered. */
void aead_seal_reply(uint8_t *reply, const uint8_t kr[32], uint64_t Nreq, const uint8_t *body, size_t len);
int aead_open_reply(uint8_t *body, const uint8_t kr[32], uint64_t Nreq, const uint8_t *reply, size_t len);

#endif
