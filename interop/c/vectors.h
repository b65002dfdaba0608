/*
 * vectors.h: replays the test vectors of SPEC §12.
 */
#ifndef SECSOCK_VECTORS_H
#define SECSOCK_VECTORS_H

/* Replays every DIR/NAME.vec; prints "ok NAME", "skip NAME (why)" or
 * "FAIL NAME: step K: why", then a summary line. Returns 0, or 1 if one
 * failed, 2 if DIR cannot be read. */
int vectors_run(const char *dir);

#endif
