/*
 * The envelope codec of @cachekit/core compiled to WebAssembly: LZ4 block compress/decompress
 * (liblz4 1.9.4, vendor/lz4.c) and xxHash3-64 (xxHash 0.8.1, vendor/xxhash.h; tools/build_wasm.ts
 * lays both out from Debian's archive at build time, they are not kept here), over buffers in
 * this module's linear memory that the JavaScript side (protocol/_wasm_codec.ts) lays out and
 * grows. Nothing here allocates: the compression state is one static LZ4_stream_t reused with
 * LZ4's "fast reset", and every buffer is passed in by address.
 *
 * Rebuild: `deno run -A tools/build_wasm.ts` (needs clang and lld with the wasm32 target).
 */
#define LZ4_FREESTANDING 1
#define LZ4_STATIC_LINKING_ONLY_DISABLE_MEMORY_ALLOCATION 1
#define LZ4_memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define LZ4_memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define LZ4_memset(p, v, n) __builtin_memset((p), (v), (n))
#include "vendor/lz4.c"

#define XXH_INLINE_ALL 1
#include "vendor/xxhash.h"

#define EXPORT(name) __attribute__((export_name(name)))

static LZ4_stream_t state;
static int state_ready = 0;

/* Where xxh3 writes its 8-byte digest (big-endian, the canonical form Python's digest() gives). */
static unsigned char digest[8];

EXPORT("digest_ptr") unsigned char* digest_ptr(void) { return digest; }

/* Worst-case block size for n input bytes (LZ4_COMPRESSBOUND), 0 when n is too large. */
EXPORT("bound") int bound(int n) { return LZ4_compressBound(n); }

/* Compress src[0..n) into dst (capacity cap) as one raw LZ4 block; returns its size, 0 on error. */
EXPORT("compress") int compress(const char* src, int n, char* dst, int cap) {
  if (!state_ready) {
    LZ4_initStream(&state, sizeof(state));
    state_ready = 1;
  }
  return LZ4_compress_fast_extState_fastReset(&state, src, dst, n, cap, 1);
}

/*
 * Decompress the raw block src[0..n) into dst, which holds exactly `size` bytes. Returns the number
 * of bytes written, or a negative number when the block is malformed. LZ4_decompress_safe never
 * reads outside src[0..n) nor writes outside dst[0..size).
 */
EXPORT("decompress") int decompress(const char* src, int n, char* dst, int size) {
  return LZ4_decompress_safe(src, dst, n, size);
}

static void put_digest(XXH64_hash_t h) {
  for (int i = 7; i >= 0; i--) {
    digest[i] = (unsigned char)(h & 0xff);
    h >>= 8;
  }
}

/* xxHash3-64 (seed 0) of p[0..n), written big-endian to `digest`. */
EXPORT("xxh3") void xxh3(const void* p, int n) { put_digest(XXH3_64bits(p, (size_t)n)); }

/* The same hash over input passed in pieces (large inputs are hashed through a small buffer). */
static XXH3_state_t stream;
EXPORT("xxh3_reset") void xxh3_reset(void) { XXH3_64bits_reset(&stream); }
EXPORT("xxh3_update") void xxh3_update(const void* p, int n) {
  XXH3_64bits_update(&stream, p, (size_t)n);
}
EXPORT("xxh3_digest") void xxh3_digest(void) { put_digest(XXH3_64bits_digest(&stream)); }
