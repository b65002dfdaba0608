/*
 * schedule.h: the key schedule of SPEC §4.2, the vouch of §4.3 and the
 * refusal tag of §5.3, all HMAC-SHA-256 (HKDF with one output block, §2).
 */
#ifndef SECSOCK_SCHEDULE_H
#define SECSOCK_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

/* prk0 = Extract("secsock v2 request", dh1 ‖ C' ‖ S) */
void sched_prk0(uint8_t prk0[32], const uint8_t dh1[32], const uint8_t Ce[32], const uint8_t S[32]);
/* Kq = Expand(prk, "secsock v2 c2s" ‖ suite), Kr = Expand(prk, "secsock v2 s2c" ‖ suite) */
void sched_kq(uint8_t kq[32], const uint8_t prk[32], uint8_t suite);
void sched_kr(uint8_t kr[32], const uint8_t prk[32], uint8_t suite);
/* prkV = Extract("secsock v2 vouch key", dh2 ‖ C ‖ S) */
void sched_prkv(uint8_t prkv[32], const uint8_t dh2[32], const uint8_t C[32], const uint8_t S[32]);
/* V = HMAC(prkV, "secsock v2 vouch" ‖ C' ‖ C ‖ S ‖ u64(E)) */
void sched_vouch(uint8_t V[32], const uint8_t prkv[32], const uint8_t Ce[32], const uint8_t C[32], const uint8_t S[32],
                 uint64_t E);
/* tag = HMAC(prk0, "secsock v2 refusal" ‖ H ‖ reason)[0..16] */
void sched_refusal_tag(uint8_t tag[16], const uint8_t prk0[32], const uint8_t *H, size_t hlen, uint8_t reason);

#endif
