#!/bin/sh
# Prints XXH64 reference values for Tests/CheckpointTests/HashingTests.swift, computed by the
# xxHash copy inside libzstd (libzstd.a exports it as ZSTD_XXH64; the shared library hides it).
# Input of length n: byte i = (i * 131 + 7) mod 256. Needs libzstd-dev and a C compiler.
set -e
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/vectors.c" <<'C'
#include <stdio.h>
#include <stddef.h>
unsigned long long ZSTD_XXH64(const void *input, size_t length, unsigned long long seed);
int main(void) {
    static unsigned char buf[4096];
    for (int i = 0; i < 4096; i++) buf[i] = (unsigned char)((i * 131 + 7) & 255);
    const size_t lengths[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4096};
    const unsigned long long seeds[] = {0ULL, 0x9E3779B97F4A7C15ULL};
    for (size_t s = 0; s < 2; s++)
        for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++)
            printf("(%zu, 0x%016llX, 0x%016llX),\n", lengths[k], seeds[s], ZSTD_XXH64(buf, lengths[k], seeds[s]));
    printf("abc: 0x%016llX\n", ZSTD_XXH64("abc", 3, 0));
    printf("empty: 0x%016llX\n", ZSTD_XXH64("", 0, 0));
    return 0;
}
C
cc -O2 -o "$dir/vectors" "$dir/vectors.c" /usr/lib/x86_64-linux-gnu/libzstd.a
"$dir/vectors"
