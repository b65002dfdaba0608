/*
 * budget.h: the work budget of SPEC §6 step 3: a token bucket of scalar
 * multiplications for messages that are not from a cached peer.
 */
#ifndef SECSOCK_BUDGET_H
#define SECSOCK_BUDGET_H

#include <stdint.h>

struct budget {
	uint64_t rate;    /* tokens per second, burst the same; 0: unlimited */
	uint64_t milli;   /* tokens × 1000, so that fractions of a token refill */
	uint64_t last_ms; /* clock of the last refill */
};

void budget_init(struct budget *b, uint64_t rate, uint64_t now_ms);
/* Refills for the time since the last call (a clock going back refills nothing). */
void budget_refill(struct budget *b, uint64_t now_ms);
/* Takes n tokens; returns -1 (and takes nothing) when fewer are left. */
int budget_charge(struct budget *b, unsigned n);

#endif
