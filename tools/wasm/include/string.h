/* Freestanding stand-in for <string.h>: the few calls lz4.c and xxhash.h make, as compiler
 * builtins (lowered to wasm `memory.copy` / `memory.fill` with -mbulk-memory). */
#ifndef CACHEKIT_WASM_STRING_H
#define CACHEKIT_WASM_STRING_H
#include <stddef.h>
#define memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define memset(p, v, n) __builtin_memset((p), (v), (n))
#define memcmp(a, b, n) __builtin_memcmp((a), (b), (n))
#endif
