/* hex.h — lower-case hexadecimal for tokens, salts and hashes, and the
 * digit decoder %-escapes use. */
#ifndef OPENUM_HEX_H
#define OPENUM_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2n lower-case hex digits and a NUL to dst (2n + 1 bytes). */
void hex_encode(char *dst, const uint8_t *src, size_t n);
/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);
/* Decodes exactly n hex characters of src into n / 2 bytes of dst:
 * 0, or EINVAL for an odd n or a non-hex character. */
int hex_decode(uint8_t *dst, const char *src, size_t n);
/* Writes 2n hex digits of n random bytes (n <= 32) and a NUL: SIP tags,
 * Call-IDs. From getrandom(2); random() only if that fails. */
void hex_random(char *dst, size_t n);

#endif
