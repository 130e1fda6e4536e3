/* hex.c — hexadecimal encoding and decoding. */
#include "common/hex.h"

#include <stdlib.h>
#include <sys/random.h>

#include <errno.h>

/* See the header. */
void hex_encode(char *dst, const uint8_t *src, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 15];
	}
	dst[2 * n] = '\0';
}

/* See the header. */
int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* See the header. */
int hex_decode(uint8_t *dst, const char *src, size_t n)
{
	if (n % 2)
		return EINVAL;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_digit((unsigned char)src[i]);
		int lo = hex_digit((unsigned char)src[i + 1]);

		if (hi < 0 || lo < 0)
			return EINVAL;
		dst[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void hex_random(char *dst, size_t n)
{
	uint8_t r[32];

	if (n > sizeof r)
		n = sizeof r;
	if (getrandom(r, n, GRND_NONBLOCK) != (ssize_t)n) {
		for (size_t i = 0; i < n; i++)
			r[i] = (uint8_t)random();
	}
	hex_encode(dst, r, n);
}
