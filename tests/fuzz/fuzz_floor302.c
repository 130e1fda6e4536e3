/* fuzz_floor302.c — libFuzzer harness of bench/floor302.c's parser (the
 * bench's floor redirect server reads SIPp's bytes): floor302_answer on the
 * input as one datagram, and on each message of it as a TCP stream framed
 * by sipmsg_frame, as floor302 does; answers must fit their buffer and be
 * SIP responses. */
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
		size_t m = 0;

		if (sipmsg_frame(s + off, size - off, &m) || m == 0)
			break;
		if (m > size - off)
			abort();
		check_answer(s + off, m, 4096);
		off += m;
	}
	free(s);
	return 0;
}
