/* fuzz_rtp.c — libFuzzer harness of common/rtp.c: the input goes to
 * rtp_parse (then the RFC 4733 receiver and the receiver statistics) and to
 * rtcp_parse; a parsed packet must lie inside the input, build back to the
 * same bytes when it has no padding, and any report must build. */
#include "common/rtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rtp_dtmf_rx rx;
static struct rtp_rx_stats st;
static uint32_t arrival;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtp_pkt p;
	struct rtcp_info info;
	struct rtp_dtmf ev;
	uint8_t *copy, out[RTP_PKT_MAX];
	size_t len;
	char key;

	/* an exact-size copy so that ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	if (!rx.pt)
		rtp_dtmf_rx_init(&rx, 101);
	if (rtp_parse(&p, copy, size) == 0) {
		if (p.payload < copy || p.payload + p.plen > copy + size ||
		    p.hdr.cc > RTP_CSRC_MAX)
			abort();
		if (p.hdr.pad == 0 &&
		    (rtp_build(out, sizeof out, &p.hdr, p.payload, p.plen, &len) != 0 ||
		     len != size || memcmp(out, copy, size) != 0))
			abort();
		if (rtp_dtmf_parse(&ev, p.payload, p.plen) == 0 &&
		    ev.volume > 63)
			abort();
		/* every packet, as if it were a telephone-event */
		p.hdr.pt = 101;
		if (rtp_dtmf_rx_feed(&rx, &p, &key) &&
		    !strchr("0123456789*#ABCD", key))
			abort();
		arrival += 160;
		rtp_rx_stats_update(&st, &p, arrival);
	}
	if (rtcp_parse(&info, copy, size) == 0) {
		if (info.packets == 0 || strlen(info.cname) > RTCP_CNAME_MAX)
			abort();
		rtp_rx_stats_sr(&st, info.ntp, (uint64_t)arrival << 16);
	}
	{
		struct rtp_tx tx;

		memset(&tx, 0, sizeof tx);
		tx.ssrc = 1;
		tx.packets = size & 1;
		if (rtcp_build_report(out, sizeof out, &tx, &st, "fuzz", 0, 0, &len) != 0 ||
		    rtcp_parse(&info, out, len) != 0)
			abort();
	}
	free(copy);
	return 0;
}
