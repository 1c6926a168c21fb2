/* Freestanding stand-in for <stdlib.h>. Nothing in codec.c allocates: these exist only because
 * xxhash.h defines (unused, so dropped) allocating helpers; they return NULL. */
#ifndef CACHEKIT_WASM_STDLIB_H
#define CACHEKIT_WASM_STDLIB_H
#include <stddef.h>
static inline void* malloc(size_t s) { (void)s; return (void*)0; }
static inline void free(void* p) { (void)p; }
#endif
