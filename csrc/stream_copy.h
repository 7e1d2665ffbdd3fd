/* memcpy with non-temporal stores, for a copy that is written once and read back only in a rare case (the
   optimizer step's undo buffer): the destination's cache lines are neither read first (no read-for-ownership)
   nor kept, which halves the memory traffic of a copy far larger than the caches. SSE2 (the x86-64 baseline);
   plain memcpy elsewhere. Ends with a store fence, so the copy is complete before any later store. */
#ifndef FASTNN_STREAM_COPY_H
#define FASTNN_STREAM_COPY_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64)
#include <emmintrin.h>

static void fnn_stream_copy(void *dst, const void *src, size_t bytes)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    if (bytes < 64) {
        memcpy(d, s, bytes);
        return;
    }
    memcpy(d, s, head);                 /* up to 16-byte alignment of the destination */
    d += head; s += head; bytes -= head;
    for (; bytes >= 64; bytes -= 64, d += 64, s += 64) {
        const __m128i a = _mm_loadu_si128((const __m128i *)s), b = _mm_loadu_si128((const __m128i *)(s + 16));
        const __m128i c = _mm_loadu_si128((const __m128i *)(s + 32)), e = _mm_loadu_si128((const __m128i *)(s + 48));
        _mm_stream_si128((__m128i *)d, a);
        _mm_stream_si128((__m128i *)(d + 16), b);
        _mm_stream_si128((__m128i *)(d + 32), c);
        _mm_stream_si128((__m128i *)(d + 48), e);
    }
    memcpy(d, s, bytes);
    _mm_sfence();
}
#else
static void fnn_stream_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
#endif
#endif
