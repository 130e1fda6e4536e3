/* fuzz_floor302.c — libFuzzer harness of bench/floor302.c's parsers (the
 * bench's floor redirect server reads SIPp's bytes): floor302_frame on the
 * input as a TCP stream, floor302_answer on it as one datagram and on each
 * frame; answers must fit their buffer and be SIP responses. */
#define FLOOR302_NO_MAIN
#include "bench/floor302.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_answer(const char *msg, size_t n, size_t cap)
{
	char *out = malloc(cap ? cap : 1);
	size_t a;

	if (!out)
		return;
	a = floor302_answer(msg, n, out, cap);
	if (a > cap || (a && (a < 8 || memcmp(out, "SIP/2.0 ", 8) != 0)))
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so that ASan sees any read past the end. */
	char *s = malloc(size ? size : 1);
	size_t off = 0;

	if (!s)
		return 0;
	memcpy(s, data, size);
	check_answer(s, size, 4096);
	check_answer(s, size, 40);
	while (off < size) {
		size_t m = floor302_frame(s + off, size - off);

		if (m == 0 || m == (size_t)-1)
			break;
		if (m > size - off)
			abort();
		check_answer(s + off, m, 4096);
		off += m;
	}
	free(s);
	return 0;
}
