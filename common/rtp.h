/* rtp.h — RTP (RFC 3550) packets, the sender's SSRC/sequence/timestamp state,
 * RFC 4733 telephone-events, receiver statistics and compound RTCP; pure
 * code over byte buffers (no sockets, no clocks: the caller passes times in),
 * fuzzed by tests/fuzz/fuzz_rtp.c. */
#ifndef OPENUM_RTP_H
#define OPENUM_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest RTP or RTCP datagram accepted or built, in bytes: an Ethernet MTU.
 * G.711 at 20 ms is 172 bytes; anything near this size on a voice call is
 * hostile or broken, and nothing larger survives the path unfragmented. */
#define RTP_PKT_MAX 1500
/* Fixed RTP header length. */
#define RTP_HDR_LEN 12
/* Most CSRCs a header can carry (the CC field is 4 bits). */
#define RTP_CSRC_MAX 15

/* An RTP header, as parsed or as to be built. */
struct rtp_hdr {
	uint8_t pt;                     /* payload type 0..127 */
	bool marker;
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
	uint8_t cc;                     /* CSRCs in csrc[] */
	uint32_t csrc[RTP_CSRC_MAX];
	bool ext;                       /* header extension present */
	uint16_t ext_profile;           /* its "defined by profile" field */
	uint16_t ext_words;             /* its length in 32-bit words */
	const uint8_t *ext_data;        /* its ext_words * 4 bytes (parse: into buf) */
	uint8_t pad;                    /* padding bytes, counting the count
					 * byte (parse: removed; build: 0 = none) */
};

/* A parsed RTP packet; payload points into the parsed buffer. */
struct rtp_pkt {
	struct rtp_hdr hdr;
	const uint8_t *payload;
	size_t plen;
};

int rtp_parse(struct rtp_pkt *out, const uint8_t *buf, size_t len);
int rtp_build(uint8_t *buf, size_t cap, const struct rtp_hdr *h,
	      const uint8_t *payload, size_t n, size_t *len);

/* ---- sender ---------------------------------------------------------------- */

/* The sending side of one RTP stream. Fields are readable; spp may be set
 * after rtp_tx_init for another packetization. */
struct rtp_tx {
	uint32_t ssrc;          /* random */
	uint16_t seq;           /* sequence number of the next packet */
	uint32_t ts;            /* timestamp of the next packet */
	uint8_t pt;
	uint32_t clock_rate;    /* Hz */
	uint32_t spp;           /* timestamp units per packet (clock_rate / 50: 20 ms) */
	bool talkspurt;         /* false: the next packet starts a talkspurt */
	uint32_t last_ts;       /* timestamp of the last packet sent */
	uint32_t packets;       /* packets sent (RTCP SR sender's packet count) */
	uint32_t octets;        /* payload octets sent (SR sender's octet count) */
};

int rtp_tx_init(struct rtp_tx *tx, uint8_t pt, uint32_t clock_rate);
int rtp_tx_next(struct rtp_tx *tx, uint8_t *buf, size_t cap,
		const uint8_t *payload, size_t n, bool marker_hint, size_t *len);
void rtp_tx_skip(struct rtp_tx *tx, uint32_t units);

/* ---- RFC 4733 telephone-events --------------------------------------------- */

/* One telephone-event payload. */
struct rtp_dtmf {
	uint8_t event;          /* 0..255 as sent */
	char key;               /* '0'..'9', '*', '#', 'A'..'D' for events 0..15, else 0 */
	bool end;               /* E bit */
	uint8_t volume;         /* 0..63, in -dBm0 */
	uint16_t duration;      /* in timestamp units */
};

int rtp_dtmf_parse(struct rtp_dtmf *out, const uint8_t *payload, size_t n);

/* Receiver state that turns telephone-event packets into key presses. */
struct rtp_dtmf_rx {
	uint8_t pt;             /* telephone-event payload type of the stream */
	bool seen;              /* an event has been seen: the fields below are valid */
	uint32_t ssrc;          /* of the stream the last event came from */
	uint32_t ts;            /* RTP timestamp of the newest event */
	uint8_t event;          /* its event code */
	uint16_t duration;      /* its largest duration seen */
	bool ended;             /* an end packet of it was seen */
};

void rtp_dtmf_rx_init(struct rtp_dtmf_rx *rx, uint8_t pt);
bool rtp_dtmf_rx_feed(struct rtp_dtmf_rx *rx, const struct rtp_pkt *p,
		      char *key_out);

/* ---- receiver statistics (RFC 3550 A.1, A.3, A.8) --------------------------- */

/* One RTCP report block. */
struct rtcp_rb {
	uint32_t ssrc;          /* the source reported on */
	uint8_t fraction;       /* lost since the previous report, /256 */
	int32_t lost;           /* cumulative lost (24-bit signed) */
	uint32_t ext_max_seq;   /* extended highest sequence number received */
	uint32_t jitter;        /* interarrival jitter, timestamp units */
	uint32_t lsr;           /* middle 32 bits of the last SR's NTP time, 0 = none */
	uint32_t dlsr;          /* delay since that SR, 1/65536 s */
};

/* Statistics of the stream received from one source. */
struct rtp_rx_stats {
	int jitter_pt;          /* payload type the jitter is measured on, -1 = all */
	bool seen;              /* a packet has been counted */
	uint32_t ssrc;
	uint16_t max_seq;       /* highest sequence number seen */
	uint32_t cycles;        /* sequence wraps, shifted left 16 */
	uint32_t base_seq;
	uint32_t bad_seq;       /* last "big jump" seq + 1 (A.1 resync) */
	uint32_t received;      /* packets received */
	uint32_t expected_prior, received_prior;  /* at the previous report */
	bool transit_set;
	uint32_t transit;       /* relative transit time of the previous packet */
	uint32_t jitter_q4;     /* jitter estimate * 16 */
	uint32_t lsr;           /* of the last SR received, 0 = none */
	uint64_t lsr_arrival;   /* our NTP time when it arrived */
	uint64_t invalid;       /* packets rejected by the sequence check */
};

void rtp_rx_stats_init(struct rtp_rx_stats *st, int jitter_pt);
bool rtp_rx_stats_update(struct rtp_rx_stats *st, const struct rtp_pkt *p,
			 uint32_t arrival);
void rtp_rx_stats_sr(struct rtp_rx_stats *st, uint64_t sr_ntp,
		     uint64_t arrival_ntp);
void rtp_rx_stats_block(struct rtcp_rb *out, struct rtp_rx_stats *st,
			uint64_t now_ntp);

/* ---- RTCP ------------------------------------------------------------------ */

#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_SDES 202
#define RTCP_BYE 203
#define RTCP_APP 204
/* Longest SDES item (the length field is one byte). */
#define RTCP_CNAME_MAX 255

/* What rtcp_parse reports of a compound packet. */
struct rtcp_info {
	unsigned packets;       /* RTCP packets in the compound */
	uint32_t ssrc;          /* sender SSRC of the first (SR or RR) packet */
	bool sr;                /* the first packet is a sender report: */
	uint64_t ntp;           /*   its NTP timestamp */
	uint32_t rtp_ts;        /*   its RTP timestamp */
	uint32_t pkt_count;     /*   sender's packet count */
	uint32_t octet_count;   /*   sender's octet count */
	unsigned rb_count;      /* report blocks in the first packet */
	struct rtcp_rb rb;      /* the first of them, when rb_count > 0 */
	bool bye;               /* a BYE packet is present */
	char cname[RTCP_CNAME_MAX + 1]; /* first CNAME of the first SDES chunk, "" if none */
};

int rtcp_build_report(uint8_t *buf, size_t cap, const struct rtp_tx *tx,
		      struct rtp_rx_stats *rx, const char *cname,
		      uint64_t now_ntp, uint32_t now_rtp, size_t *len);
int rtcp_parse(struct rtcp_info *out, const uint8_t *buf, size_t len);

#endif
