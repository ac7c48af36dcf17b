/*
 * The binary-cache file reader: wl_cache_unpack on the bytes of a cache
 * file, with the key a context would use. Checks: a valid entry points
 * inside the file and packs back to the same bytes; any input packed and
 * unpacked again comes back whole; and that packed entry with one byte
 * changed (the byte and its position from the input) or cut short is
 * refused, so no corrupt binary is ever handed to the OpenCL runtime.
 */
#include "fuzz.h"
#include "program.h"

static const char key[] = "warploss 0.1.0\nplatform: fuzz\ndevice: fuzz\noptions: -cl-std=CL1.2\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the file as read */
    const unsigned char *binary = NULL;
    size_t binary_size = 0;
    if (wl_cache_unpack(data, size, key, &binary, &binary_size) == 0) {
        FUZZ_CHECK(binary >= data && binary_size > 0 && binary + binary_size == data + size,
                   "binary [%p, +%zu) outside the file [%p, +%zu)", (const void *)binary, binary_size,
                   (const void *)data, size);
        size_t packed_size = 0;
        unsigned char *packed = wl_cache_pack(key, binary, binary_size, &packed_size);
        FUZZ_CHECK(packed && packed_size == size && memcmp(packed, data, size) == 0,
                   "a valid entry does not pack back to the same bytes");
        free(packed);
    }

    /* the input as a binary: round trip, then damage */
    size_t packed_size = 0;
    unsigned char *packed = wl_cache_pack(key, data, size, &packed_size);
    FUZZ_CHECK(packed != NULL, "wl_cache_pack failed on %zu bytes", size);
    const int ok = wl_cache_unpack(packed, packed_size, key, &binary, &binary_size);
    if (size == 0) {
        FUZZ_CHECK(ok != 0, "an empty binary was accepted");
    } else {
        FUZZ_CHECK(ok == 0 && binary_size == size && memcmp(binary, data, size) == 0, "round trip lost the binary");
        const size_t at = size >= 4 ? ((size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16) % packed_size
                                    : size % packed_size;
        const unsigned char flip = size >= 4 && data[3] ? data[3] : 0x01;
        packed[at] ^= flip;
        FUZZ_CHECK(wl_cache_unpack(packed, packed_size, key, &binary, &binary_size) != 0,
                   "entry with byte %zu of %zu changed (^0x%02x) was accepted", at, packed_size, flip);
        packed[at] ^= flip;
        FUZZ_CHECK(wl_cache_unpack(packed, packed_size - 1 - at % packed_size, key, &binary, &binary_size) != 0,
                   "entry cut to %zu of %zu bytes was accepted", packed_size - 1 - at, packed_size);
        /* another key (another device, source or version) never matches */
        FUZZ_CHECK(wl_cache_unpack(packed, packed_size, "warploss 0.1.0\nplatform: other\n", &binary, &binary_size) !=
                       0,
                   "entry accepted under another key");
    }
    free(packed);
    return 0;
}
