/*
 * budget.c: SPEC §6 step 3, a token bucket whose burst equals its rate.
 */
#include "budget.h"

void budget_init(struct budget *b, uint64_t rate, uint64_t now_ms)
{
	b->rate = rate;
	b->milli = rate * 1000;
	b->last_ms = now_ms;
}

void budget_refill(struct budget *b, uint64_t now_ms)
{
	uint64_t cap = b->rate * 1000;
	if (now_ms <= b->last_ms)
		return;
	uint64_t dt = now_ms - b->last_ms;
	b->last_ms = now_ms;
	/* rate tokens per second = rate milli-tokens per ms; a full second refills all */
	uint64_t add = dt >= 1000 ? cap : dt * b->rate;
	b->milli = b->milli + add > cap ? cap : b->milli + add;
}

int budget_charge(struct budget *b, unsigned n)
{
	if (b->rate == 0)
		return 0;
	if (b->milli < (uint64_t)n * 1000)
		return -1;
	b->milli -= (uint64_t)n * 1000;
	return 0;
}
