/* Freestanding stand-in for <assert.h>: assertions are compiled out. */
#ifndef CACHEKIT_WASM_ASSERT_H
#define CACHEKIT_WASM_ASSERT_H
#undef assert
#define assert(x) ((void)0)
#define static_assert _Static_assert
#endif
