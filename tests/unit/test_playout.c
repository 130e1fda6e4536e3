/* test_playout.c — the fixed-delay playout buffer: packets of any size and
 * order come out as a continuous timeline, a fixed delay later; lost audio
 * is silence; late packets and new streams are handled. */
#include "tests/unit/unit.h"
#include "umservice/playout.h"

int test_playout_sizes_and_order(void);
int test_playout_late_and_restart(void);

static struct playout po;

/* Sample value = its timestamp's low 15 bits (never 0 for ts >= 1). */
static void put(uint32_t ssrc, uint32_t ts, size_t n)
{
	int16_t pcm[640];

	for (size_t i = 0; i < n; i++)
		pcm[i] = (int16_t)(((ts + i) & 0x7fff) | 1);
	playout_put(&po, ssrc, ts, pcm, n);
}

/* Checks that the next n samples are the stream's from timestamp ts on. */
static int expect(uint32_t ts, size_t n)
{
	int16_t out[640];

	playout_get(&po, out, n);
	for (size_t i = 0; i < n; i++) {
		if (out[i] != (int16_t)(((ts + i) & 0x7fff) | 1))
			return 1;
	}
	return 0;
}

static int expect_silence(size_t n)
{
	int16_t out[640];

	playout_get(&po, out, n);
	for (size_t i = 0; i < n; i++) {
		if (out[i])
			return 1;
	}
	return 0;
}

int test_playout_sizes_and_order(void)
{
	uint32_t t0 = 4000000000u;	/* wraps during the test */

	playout_init(&po, 800);
	UT_ASSERT_INT(expect_silence(160), 0);	/* nothing yet */
	/* 30 ms packets, two of them swapped, delivered in 20 ms frames */
	put(7, t0, 240);
	put(7, t0 + 480, 240);
	put(7, t0 + 240, 240);
	for (int i = 0; i < 5; i++)			/* the 100 ms delay */
		UT_ASSERT_INT(expect_silence(160), 0);
	for (uint32_t k = 0; k < 720; k += 160)
		UT_ASSERT_INT(expect(t0 + k, k + 160 <= 720 ? 160 : 720 - k), 0);
	/* 10 ms and 80 ms packets continue the timeline seamlessly */
	playout_init(&po, 0);
	put(9, 100, 80);
	put(9, 180, 80);
	put(9, 260, 640);
	UT_ASSERT_INT(expect(100, 160), 0);
	UT_ASSERT_INT(expect(260, 640), 0);
	/* a lost packet is silence, the next one is back in place */
	put(9, 900, 160);
	put(9, 1220, 160);
	UT_ASSERT_INT(expect(900, 160), 0);
	UT_ASSERT_INT(expect_silence(160), 0);
	UT_ASSERT_INT(expect(1220, 160), 0);
	return 0;
}

int test_playout_late_and_restart(void)
{
	playout_init(&po, 160);
	put(1, 10000, 160);
	UT_ASSERT_INT(expect_silence(160), 0);
	UT_ASSERT_INT(expect(10000, 160), 0);
	/* too late: already delivered */
	put(1, 10000, 160);
	UT_ASSERT_INT((int)po.late, 1);
	/* straddling the read point: its future half is kept */
	put(1, 10080, 160);
	UT_ASSERT_INT(expect(10160, 80), 0);
	UT_ASSERT_INT(expect_silence(80), 0);
	/* a new SSRC restarts the timeline with the delay */
	put(2, 555555, 160);
	UT_ASSERT_INT(expect_silence(160), 0);
	UT_ASSERT_INT(expect(555555, 160), 0);
	/* a jump far ahead restarts too, rather than waiting seconds */
	put(2, 555555 + 100000, 160);
	UT_ASSERT(po.resyncs >= 2);
	UT_ASSERT_INT(expect_silence(160), 0);
	UT_ASSERT_INT(expect(555555 + 100000, 160), 0);
	/* garbage sizes are ignored */
	playout_put(&po, 2, 1, NULL, 0);
	return 0;
}
