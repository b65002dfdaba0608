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
/* §15.1: Kp = Expand(prk, "secsock v2 push" ‖ suite), in place of Kq for PUSH messages */
void sched_kp(uint8_t kp[32], const uint8_t prk[32], uint8_t suite);
/* prkV = Extract("secsock v2 vouch key", dh2 ‖ C ‖ S) */
void sched_prkv(uint8_t prkv[32], const uint8_t dh2[32], const uint8_t C[32], const uint8_t S[32]);
/* V = HMAC(prkV, "secsock v2 vouch" ‖ C' ‖ C ‖ S ‖ u64(E)) */
void sched_vouch(uint8_t V[32], const uint8_t prkv[32], const uint8_t Ce[32], const uint8_t C[32], const uint8_t S[32],
                 uint64_t E);
/* §15.1: a pusher's V = HMAC(prkV, "secsock v2 push vouch" ‖ C' ‖ C ‖ S ‖ u64(E)) */
void sched_vouch_push(uint8_t V[32], const uint8_t prkv[32], const uint8_t Ce[32], const uint8_t C[32],
                      const uint8_t S[32], uint64_t E);
/* tag = HMAC(prk0, "secsock v2 refusal" ‖ H ‖ reason)[0..16] */
void sched_refusal_tag(uint8_t tag[16], const uint8_t prk0[32], const uint8_t *H, size_t hlen, uint8_t reason);

/* REPLY_EXT's key: Expand(prk, "secsock v2 s2c ext" ‖ suite) (§10) */
void sched_krx(uint8_t krx[32], const uint8_t prk[32], uint8_t suite);
/* §10, §14.3: prk = Extract(prk_prev, "secsock v2 ext" ‖ type ‖ secret ‖ context) */
void sched_ext(uint8_t prk[32], const uint8_t prev[32], uint8_t type, const uint8_t *secret, size_t slen,
               const uint8_t *context, size_t clen, const uint8_t *element, size_t elen);
/* §14.1: seed_{e+1} = HMAC(seed_e, "secsock v2 epoch ratchet"), esk_e = HMAC(seed_e, "secsock v2 epoch key") */
void sched_epoch_ratchet(uint8_t next[32], const uint8_t seed[32]);
void sched_epoch_esk(uint8_t esk[32], const uint8_t seed[32]);

#endif
