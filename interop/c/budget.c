/*
 * budget.c: SPEC §6 step 3, a token bucket.
 */
#include "budget.h"

void budget_init(struct budget *b, uint64_t rate, uint64_t burst, uint64_t now_ms)
{
	b->rate = rate;
	b->burst = burst;
	b->milli = burst * 1000;
	b->last_ms = now_ms;
}

void budget_refill(struct budget *b, uint64_t now_ms)
{
	if (now_ms <= b->last_ms)
		return;
	uint64_t dt = now_ms - b->last_ms, cap = b->burst * 1000;
	b->last_ms = now_ms;
	/* rate tokens per second = rate milli-tokens per ms */
	uint64_t add = dt > cap ? cap : dt * b->rate;
	b->milli = b->milli + add > cap ? cap : b->milli + add;
}

int budget_available(const struct budget *b) { return b->rate == 0 || b->milli >= 1000; }

int budget_take(struct budget *b)
{
	if (b->rate == 0)
		return 0;
	if (b->milli < 1000)
		return -1;
	b->milli -= 1000;
	return 0;
}
