// md5x: MD5 of many independent buffers at once, one buffer per SIMD lane (16 lanes with AVX-512; with AVX2, 8
// lanes, or two interleaved groups of 8 for calls of 12 buffers or more).
// MD5 is serial within one stream, so OpenSSL hashes one block at ~650 MB/s per core; the workers verify many
// independent blocks, and lanes turn that independence into throughput. Loaded by workers/md5-multi.ts, which
// falls back to node:crypto where neither kernel runs (or the addon did not build).
//
// Layout: the lanes' chaining values live in a structure of arrays (word w of lane l at st[w][l]). A lane runs
// its buffer's whole 64-byte blocks straight from the caller's memory, then one or two padding blocks built in a
// small per-lane buffer. When a lane finishes, it takes the next buffer of the call, so unequal lengths and more
// buffers than lanes keep every lane busy; an idle lane re-reads a busy lane's block and its result is ignored.
// The kernels are compiled with per-function target attributes and chosen per call by the loader from the list
// `kernels` reports (the CPU's support, probed once at load); the module keeps no mutable state, so every worker
// thread can load it.

#define NAPI_VERSION 8
#include <node_api.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAX_LANES 16
#define MAX_BUFFERS 4096

static const uint32_t K[64] = {
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint32_t IV[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };

/** A kernel runs `n` 64-byte blocks in every lane: lane l reads p[l], p[l] + 64, ...; `st` is [4][MAX_LANES]. */
typedef void (*kernel_fn)(uint32_t st[4][MAX_LANES], const uint8_t *const p[MAX_LANES], size_t n);

// The 64 steps, shared by both kernels. Each kernel defines ADD, ROL, SET1 and the round functions F, G, H, I over
// its vector type, and W[16] (the block's words, lane-wise). a + W + K does not depend on the previous step, so it
// is summed first and the dependency chain of a step is f(b, c, d), one add, the rotate and the add of b.
#define STEP(f, a, b, c, d, w, i, s)            \
  do {                                                \
    a = ADD(a, ADD(W[w], SET1(K[i])));                \
    __asm__("" : "+v"(a)); /* keep that sum first */ \
    a = ADD(b, ROL(ADD(a, f(b, c, d)), s));           \
  } while (0)
#define ROUNDS(S, a, b, c, d) \
  S(F, a, b, c, d, 0, 0, 7);   S(F, d, a, b, c, 1, 1, 12);  S(F, c, d, a, b, 2, 2, 17);  S(F, b, c, d, a, 3, 3, 22); \
  S(F, a, b, c, d, 4, 4, 7);   S(F, d, a, b, c, 5, 5, 12);  S(F, c, d, a, b, 6, 6, 17);  S(F, b, c, d, a, 7, 7, 22); \
  S(F, a, b, c, d, 8, 8, 7);   S(F, d, a, b, c, 9, 9, 12);  S(F, c, d, a, b, 10, 10, 17); S(F, b, c, d, a, 11, 11, 22); \
  S(F, a, b, c, d, 12, 12, 7); S(F, d, a, b, c, 13, 13, 12); S(F, c, d, a, b, 14, 14, 17); S(F, b, c, d, a, 15, 15, 22); \
  S(G, a, b, c, d, 1, 16, 5);  S(G, d, a, b, c, 6, 17, 9);  S(G, c, d, a, b, 11, 18, 14); S(G, b, c, d, a, 0, 19, 20); \
  S(G, a, b, c, d, 5, 20, 5);  S(G, d, a, b, c, 10, 21, 9); S(G, c, d, a, b, 15, 22, 14); S(G, b, c, d, a, 4, 23, 20); \
  S(G, a, b, c, d, 9, 24, 5);  S(G, d, a, b, c, 14, 25, 9); S(G, c, d, a, b, 3, 26, 14);  S(G, b, c, d, a, 8, 27, 20); \
  S(G, a, b, c, d, 13, 28, 5); S(G, d, a, b, c, 2, 29, 9);  S(G, c, d, a, b, 7, 30, 14);  S(G, b, c, d, a, 12, 31, 20); \
  S(H, a, b, c, d, 5, 32, 4);  S(H, d, a, b, c, 8, 33, 11); S(H, c, d, a, b, 11, 34, 16); S(H, b, c, d, a, 14, 35, 23); \
  S(H, a, b, c, d, 1, 36, 4);  S(H, d, a, b, c, 4, 37, 11); S(H, c, d, a, b, 7, 38, 16);  S(H, b, c, d, a, 10, 39, 23); \
  S(H, a, b, c, d, 13, 40, 4); S(H, d, a, b, c, 0, 41, 11); S(H, c, d, a, b, 3, 42, 16);  S(H, b, c, d, a, 6, 43, 23); \
  S(H, a, b, c, d, 9, 44, 4);  S(H, d, a, b, c, 12, 45, 11); S(H, c, d, a, b, 15, 46, 16); S(H, b, c, d, a, 2, 47, 23); \
  S(I, a, b, c, d, 0, 48, 6);  S(I, d, a, b, c, 7, 49, 10); S(I, c, d, a, b, 14, 50, 15); S(I, b, c, d, a, 5, 51, 21); \
  S(I, a, b, c, d, 12, 52, 6); S(I, d, a, b, c, 3, 53, 10); S(I, c, d, a, b, 10, 54, 15); S(I, b, c, d, a, 1, 55, 21); \
  S(I, a, b, c, d, 8, 56, 6);  S(I, d, a, b, c, 15, 57, 10); S(I, c, d, a, b, 6, 58, 15); S(I, b, c, d, a, 13, 59, 21); \
  S(I, a, b, c, d, 4, 60, 6);  S(I, d, a, b, c, 11, 61, 10); S(I, c, d, a, b, 2, 62, 15); S(I, b, c, d, a, 9, 63, 21)

// ---- AVX-512: 16 lanes; vpternlogd computes each round function in one instruction, vprold rotates. ----------
// Truth tables over (b, c, d) = (0xF0, 0xCC, 0xAA): F = b ? c : d, G = d ? b : c, H = b ^ c ^ d, I = c ^ (b | ~d).
#define ADD(x, y) _mm512_add_epi32(x, y)
#define ROL(x, s) _mm512_rol_epi32(x, s)
#define SET1(k) _mm512_set1_epi32((int)(k))
#define F(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0xCA)
#define G(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0xE4)
#define H(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0x96)
#define I(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0x39)

__attribute__((target("avx512f")))
static void md5_avx512x16(uint32_t st[4][MAX_LANES], const uint8_t *const p[MAX_LANES], size_t n) {
  __m512i a = _mm512_loadu_si512(st[0]), b = _mm512_loadu_si512(st[1]);
  __m512i c = _mm512_loadu_si512(st[2]), d = _mm512_loadu_si512(st[3]);
  for (size_t blk = 0; blk < n; blk++) {
    const size_t off = blk * 64;
    __m512i r[16], t[16], v[16], W[16];
    for (int l = 0; l < 16; l++) r[l] = _mm512_loadu_si512(p[l] + off);
    // Transpose 16x16 words: lane rows in, word columns out. Within 128-bit chunks first (32- then 64-bit
    // interleaves), then the 4x4 matrix of chunks.
    for (int i = 0; i < 8; i++) {
      t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // v[4g + m]: rows 4g..4g+3 of word 4q+m in chunk q.
    for (int g = 0; g < 4; g++) {
      v[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
      v[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
      v[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      v[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int m = 0; m < 4; m++) {
      __m512i x0 = _mm512_shuffle_i32x4(v[m], v[4 + m], 0x88), x1 = _mm512_shuffle_i32x4(v[m], v[4 + m], 0xDD);
      __m512i x2 = _mm512_shuffle_i32x4(v[8 + m], v[12 + m], 0x88), x3 = _mm512_shuffle_i32x4(v[8 + m], v[12 + m], 0xDD);
      W[m] = _mm512_shuffle_i32x4(x0, x2, 0x88);
      W[4 + m] = _mm512_shuffle_i32x4(x1, x3, 0x88);
      W[8 + m] = _mm512_shuffle_i32x4(x0, x2, 0xDD);
      W[12 + m] = _mm512_shuffle_i32x4(x1, x3, 0xDD);
    }
    const __m512i a0 = a, b0 = b, c0 = c, d0 = d;
    ROUNDS(STEP, a, b, c, d);
    a = ADD(a, a0); b = ADD(b, b0); c = ADD(c, c0); d = ADD(d, d0);
  }
  _mm512_storeu_si512(st[0], a); _mm512_storeu_si512(st[1], b);
  _mm512_storeu_si512(st[2], c); _mm512_storeu_si512(st[3], d);
}

#undef ADD
#undef ROL
#undef SET1
#undef F
#undef G
#undef H
#undef I

// ---- AVX2: 8 lanes; round functions from and/or/xor, rotates from two shifts. ---------------------------------
#define ADD(x, y) _mm256_add_epi32(x, y)
#define ROL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
#define SET1(k) _mm256_set1_epi32((int)(k))
#define F(b, c, d) _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(c, d), b), d)
#define G(b, c, d) _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(b, c), d), c)
#define H(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define I(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)))

__attribute__((target("avx2")))
static void md5_avx2x8(uint32_t st[4][MAX_LANES], const uint8_t *const p[MAX_LANES], size_t n) {
  const __m256i ones = _mm256_set1_epi32(-1);
  __m256i a = _mm256_loadu_si256((const __m256i *)st[0]), b = _mm256_loadu_si256((const __m256i *)st[1]);
  __m256i c = _mm256_loadu_si256((const __m256i *)st[2]), d = _mm256_loadu_si256((const __m256i *)st[3]);
  for (size_t blk = 0; blk < n; blk++) {
    const size_t off = blk * 64;
    __m256i W[16];
    // Two 8x8 transposes: words 0..7 and 8..15 of the 8 lanes.
    for (int h = 0; h < 2; h++) {
      __m256i r[8], t[8], v[8];
      for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_si256((const __m256i *)(p[l] + off + 32 * h));
      for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
      }
      for (int g = 0; g < 2; g++) {
        v[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        v[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        v[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        v[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
      }
      for (int m = 0; m < 4; m++) {
        W[8 * h + m] = _mm256_permute2x128_si256(v[m], v[4 + m], 0x20);
        W[8 * h + 4 + m] = _mm256_permute2x128_si256(v[m], v[4 + m], 0x31);
      }
    }
    const __m256i a0 = a, b0 = b, c0 = c, d0 = d;
    ROUNDS(STEP, a, b, c, d);
    a = ADD(a, a0); b = ADD(b, b0); c = ADD(c, c0); d = ADD(d, d0);
  }
  _mm256_storeu_si256((__m256i *)st[0], a); _mm256_storeu_si256((__m256i *)st[1], b);
  _mm256_storeu_si256((__m256i *)st[2], c); _mm256_storeu_si256((__m256i *)st[3], d);
}

#undef ADD
#undef ROL
#undef SET1
#undef F
#undef G
#undef H
#undef I

// ---- AVX2, 16 lanes: two interleaved groups of 8 ----------------------------------------------------------
// One group's steps are a long dependency chain (xor-and-xor, two shifts and an or for the rotate); two
// independent groups per step fill the vector ports: 4.7 GB/s against 3.3 for one group of 8, with 16 buffers.
// With fewer buffers the idle group costs as much as a busy one, so md5_many uses it only for 12 or more.
// (An AVX-512VL flavour, vpternlogd and vprold on 256-bit registers, measured no faster than avx512x16.)

/** Words 0..15 of the 64-byte blocks at p[l0..l0+7] + off, transposed into W[0..15] (one word of 8 lanes each). */
#define TRANSPOSE8(W, p, l0, off)                                                                      \
  for (int h = 0; h < 2; h++) {                                                                        \
    __m256i r[8], t[8], v[8];                                                                          \
    for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_si256((const __m256i *)((p)[(l0) + l] + (off) + 32 * h)); \
    for (int i = 0; i < 4; i++) {                                                                      \
      t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);                                        \
      t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);                                    \
    }                                                                                                  \
    for (int g = 0; g < 2; g++) {                                                                      \
      v[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);                                    \
      v[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);                                    \
      v[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);                                \
      v[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);                                \
    }                                                                                                  \
    for (int m = 0; m < 4; m++) {                                                                      \
      W[8 * h + m] = _mm256_permute2x128_si256(v[m], v[4 + m], 0x20);                                  \
      W[8 * h + 4 + m] = _mm256_permute2x128_si256(v[m], v[4 + m], 0x31);                              \
    }                                                                                                  \
  }

/** One step in both groups: (a, b, c, d) with W, (ax, bx, cx, dx) with X. */
#define STEP2(f, a, b, c, d, w, i, s)                           \
  do {                                                          \
    a = ADD(a, ADD(W[w], SET1(K[i])));                          \
    a##x = ADD(a##x, ADD(X[w], SET1(K[i])));                    \
    __asm__("" : "+v"(a), "+v"(a##x));                          \
    a = ADD(b, ROL(ADD(a, f(b, c, d)), s));                     \
    a##x = ADD(b##x, ROL(ADD(a##x, f(b##x, c##x, d##x)), s));   \
  } while (0)

#define KERNEL_2X8_BODY                                                                                   \
  __m256i a = _mm256_loadu_si256((const __m256i *)st[0]), b = _mm256_loadu_si256((const __m256i *)st[1]);  \
  __m256i c = _mm256_loadu_si256((const __m256i *)st[2]), d = _mm256_loadu_si256((const __m256i *)st[3]);  \
  __m256i ax = _mm256_loadu_si256((const __m256i *)(st[0] + 8)), bx = _mm256_loadu_si256((const __m256i *)(st[1] + 8)); \
  __m256i cx = _mm256_loadu_si256((const __m256i *)(st[2] + 8)), dx = _mm256_loadu_si256((const __m256i *)(st[3] + 8)); \
  for (size_t blk = 0; blk < n; blk++) {                                                                  \
    const size_t off = blk * 64;                                                                          \
    __m256i W[16], X[16];                                                                                 \
    TRANSPOSE8(W, p, 0, off);                                                                             \
    TRANSPOSE8(X, p, 8, off);                                                                             \
    const __m256i a0 = a, b0 = b, c0 = c, d0 = d, ax0 = ax, bx0 = bx, cx0 = cx, dx0 = dx;                 \
    ROUNDS(STEP2, a, b, c, d);                                                                            \
    a = ADD(a, a0); b = ADD(b, b0); c = ADD(c, c0); d = ADD(d, d0);                                       \
    ax = ADD(ax, ax0); bx = ADD(bx, bx0); cx = ADD(cx, cx0); dx = ADD(dx, dx0);                           \
  }                                                                                                       \
  _mm256_storeu_si256((__m256i *)st[0], a); _mm256_storeu_si256((__m256i *)st[1], b);                     \
  _mm256_storeu_si256((__m256i *)st[2], c); _mm256_storeu_si256((__m256i *)st[3], d);                     \
  _mm256_storeu_si256((__m256i *)(st[0] + 8), ax); _mm256_storeu_si256((__m256i *)(st[1] + 8), bx);       \
  _mm256_storeu_si256((__m256i *)(st[2] + 8), cx); _mm256_storeu_si256((__m256i *)(st[3] + 8), dx)

#define ADD(x, y) _mm256_add_epi32(x, y)
#define SET1(k) _mm256_set1_epi32((int)(k))
#define ROL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
#define F(b, c, d) _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(c, d), b), d)
#define G(b, c, d) _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(b, c), d), c)
#define H(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define I(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)))

__attribute__((target("avx2")))
static void md5_avx2_2x8(uint32_t st[4][MAX_LANES], const uint8_t *const p[MAX_LANES], size_t n) {
  const __m256i ones = _mm256_set1_epi32(-1);
  KERNEL_2X8_BODY;
}

#undef ADD
#undef ROL
#undef SET1
#undef F
#undef G
#undef H
#undef I

// ---- Lane scheduling -----------------------------------------------------------------------------------------

typedef struct {
  const uint8_t *data;
  size_t len;
} span;

typedef struct {
  int busy;
  size_t job;        /* index of the buffer this lane hashes */
  const uint8_t *p;  /* next block to run */
  size_t left;       /* blocks left in the current segment */
  int in_tail;       /* 0: the buffer's own blocks; 1: the padding blocks in tail[] */
  size_t tail_blocks;
  uint8_t tail[128]; /* the last partial block, 0x80, zeros and the bit length: one or two blocks */
} lane;

static void lane_start(lane *ln, uint32_t st[4][MAX_LANES], int l, const span *s, size_t job) {
  const size_t full = s->len / 64, rest = s->len % 64;
  ln->busy = 1;
  ln->job = job;
  ln->p = s->data;
  ln->left = full;
  ln->in_tail = 0;
  ln->tail_blocks = rest < 56 ? 1 : 2;
  memset(ln->tail, 0, sizeof ln->tail);
  if (rest > 0) memcpy(ln->tail, s->data + full * 64, rest);
  ln->tail[rest] = 0x80;
  const uint64_t bits = (uint64_t)s->len * 8;
  uint8_t *end = ln->tail + ln->tail_blocks * 64 - 8;
  for (int i = 0; i < 8; i++) end[i] = (uint8_t)(bits >> (8 * i));
  for (int w = 0; w < 4; w++) st[w][l] = IV[w];
  if (ln->left == 0) {
    ln->in_tail = 1;
    ln->p = ln->tail;
    ln->left = ln->tail_blocks;
  }
}

/** Hash `count` spans with a `width`-lane kernel; digest k goes to out + 16k. */
static void md5_many(kernel_fn kernel, int width, const span *spans, size_t count, uint8_t *out) {
  uint32_t st[4][MAX_LANES];
  lane lanes[MAX_LANES];
  const uint8_t *ptr[MAX_LANES];
  memset(st, 0, sizeof st);
  for (int l = 0; l < MAX_LANES; l++) lanes[l].busy = 0;
  size_t next = 0;
  for (;;) {
    for (int l = 0; l < width; l++) {
      if (!lanes[l].busy && next < count) {
        lane_start(&lanes[l], st, l, &spans[next], next);
        next++;
      }
    }
    size_t run = SIZE_MAX;
    int any = -1;
    for (int l = 0; l < width; l++) {
      if (!lanes[l].busy) continue;
      if (lanes[l].left < run) run = lanes[l].left;
      any = l;
    }
    if (any < 0) break;
    for (int l = 0; l < width; l++) ptr[l] = lanes[lanes[l].busy ? l : any].p;
    // An idle lane reads the same bytes as lane `any`, but the busy lane's tail[] must hold as many blocks as
    // `run`: it does, since run <= that lane's left.
    kernel(st, ptr, run);
    for (int l = 0; l < width; l++) {
      lane *ln = &lanes[l];
      if (!ln->busy) continue;
      ln->left -= run;
      ln->p += run * 64;
      if (ln->left > 0) continue;
      if (!ln->in_tail) {
        ln->in_tail = 1;
        ln->p = ln->tail;
        ln->left = ln->tail_blocks;
        continue;
      }
      uint8_t *o = out + 16 * ln->job;
      for (int w = 0; w < 4; w++) {
        const uint32_t x = st[w][l];
        o[4 * w] = (uint8_t)x;
        o[4 * w + 1] = (uint8_t)(x >> 8);
        o[4 * w + 2] = (uint8_t)(x >> 16);
        o[4 * w + 3] = (uint8_t)(x >> 24);
      }
      ln->busy = 0;
    }
  }
}

// ---- N-API -----------------------------------------------------------------------------------------------------

typedef struct {
  const char *name;
  kernel_fn fn;
  int width;
  /** A wider kernel for calls of at least `wide_from` buffers, or NULL. */
  kernel_fn wide;
  int wide_width, wide_from;
} kernel_info;

static const kernel_info KERNELS[] = {
  { "avx512x16", md5_avx512x16, 16, NULL, 0, 0 },
  { "avx2x8", md5_avx2x8, 8, md5_avx2_2x8, 16, 12 },
};
#define KERNEL_COUNT ((int)(sizeof KERNELS / sizeof KERNELS[0]))

static int kernel_supported(int k) {
  __builtin_cpu_init();
  if (k == 0) return __builtin_cpu_supports("avx512f");
  if (k == 1) return __builtin_cpu_supports("avx2");
  return 0;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "KF_E_MD5X_ARG", msg);
  return NULL;
}

/** Bytes and data pointer of a typed array or DataView, or 0 when `v` is neither. */
static int view_bytes(napi_env env, napi_value v, uint8_t **data, size_t *bytes) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok) return 0;
  if (is) {
    napi_typedarray_type type;
    size_t length, offset;
    void *p;
    if (napi_get_typedarray_info(env, v, &type, &length, &p, NULL, &offset) != napi_ok) return 0;
    size_t size = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: size = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: size = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: size = 8; break;
      default: size = 1;
    }
    *data = p;
    *bytes = length * size;
    return 1;
  }
  if (napi_is_dataview(env, v, &is) != napi_ok || !is) return 0;
  void *p;
  if (napi_get_dataview_info(env, v, bytes, &p, NULL, NULL) != napi_ok) return 0;
  *data = p;
  return 1;
}

/** md5(kernel: number, views: ArrayBufferView[], out: ArrayBufferView): writes 16 bytes per view into out. */
static napi_value js_md5(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3) return throw_type(env, "md5x.md5(kernel, views, out): three arguments");
  int32_t k;
  if (napi_get_value_int32(env, argv[0], &k) != napi_ok || k < 0 || k >= KERNEL_COUNT || !kernel_supported(k)) {
    return throw_type(env, "md5x.md5: kernel is not one this CPU runs");
  }
  bool is_array;
  uint32_t count;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) return throw_type(env, "md5x.md5: views must be an array");
  if (napi_get_array_length(env, argv[1], &count) != napi_ok) return NULL;
  if (count > MAX_BUFFERS) return throw_type(env, "md5x.md5: at most 4096 views per call");
  uint8_t *out;
  size_t out_bytes;
  if (!view_bytes(env, argv[2], &out, &out_bytes)) return throw_type(env, "md5x.md5: out must be an ArrayBufferView");
  if (out_bytes < (size_t)count * 16) {
    napi_throw_range_error(env, "KF_E_MD5X_ARG", "md5x.md5: out holds fewer than 16 bytes per view");
    return NULL;
  }
  span spans[64];
  // Views in groups of 64 keep the span table on the stack; lanes refill within a group.
  for (uint32_t base = 0; base < count; base += 64) {
    const uint32_t n = count - base < 64 ? count - base : 64;
    for (uint32_t i = 0; i < n; i++) {
      napi_value v;
      uint8_t *data;
      size_t bytes;
      if (napi_get_element(env, argv[1], base + i, &v) != napi_ok) return NULL;
      if (!view_bytes(env, v, &data, &bytes)) return throw_type(env, "md5x.md5: every view must be an ArrayBufferView");
      spans[i].data = data;
      spans[i].len = bytes;
    }
    const kernel_info *ki = &KERNELS[k];
    if (ki->wide != NULL && n >= (uint32_t)ki->wide_from) md5_many(ki->wide, ki->wide_width, spans, n, out + 16 * (size_t)base);
    else md5_many(ki->fn, ki->width, spans, n, out + 16 * (size_t)base);
  }
  return NULL;
}

/**
 * threadCpuNs(): the calling thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID), for the download's CPU account:
 * exact at any moment, where Linux's /proc schedstat lags a running thread by up to a scheduler tick.
 */
static napi_value js_thread_cpu_ns(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec ts;
  napi_value v;
  const double ns = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 ? (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec : -1;
  if (napi_create_double(env, ns, &v) != napi_ok) return NULL;
  return v;
}

NAPI_MODULE_INIT() {
  napi_value fn, list, name;
  if (napi_create_function(env, "md5", NAPI_AUTO_LENGTH, js_md5, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "md5", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "threadCpuNs", NAPI_AUTO_LENGTH, js_thread_cpu_ns, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "threadCpuNs", fn) != napi_ok) return NULL;
  // The kernels this CPU runs, fastest first, each as { name, index, lanes } (lanes: buffers a call keeps busy).
  if (napi_create_array(env, &list) != napi_ok) return NULL;
  uint32_t at = 0;
  for (int k = 0; k < KERNEL_COUNT; k++) {
    if (!kernel_supported(k)) continue;
    napi_value o, idx, lanes;
    if (napi_create_object(env, &o) != napi_ok) return NULL;
    if (napi_create_string_utf8(env, KERNELS[k].name, NAPI_AUTO_LENGTH, &name) != napi_ok) return NULL;
    const int width = KERNELS[k].wide != NULL ? KERNELS[k].wide_width : KERNELS[k].width;
    if (napi_create_int32(env, k, &idx) != napi_ok || napi_create_int32(env, width, &lanes) != napi_ok) return NULL;
    if (napi_set_named_property(env, o, "name", name) != napi_ok || napi_set_named_property(env, o, "index", idx) != napi_ok ||
        napi_set_named_property(env, o, "lanes", lanes) != napi_ok || napi_set_element(env, list, at++, o) != napi_ok) {
      return NULL;
    }
  }
  if (napi_set_named_property(env, exports, "kernels", list) != napi_ok) return NULL;
  return exports;
}
