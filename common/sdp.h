/* sdp.h — SDP offer/answer (RFC 3264, RFC 4566) for one audio stream:
 * PCMU, PCMA and telephone-event/8000, ptime 20. Pure: parses untrusted
 * bodies with sofia-sip's SDP parser into fixed-size structs and writes
 * answers/offers into caller buffers; fuzzed by tests/fuzz/fuzz_sdp.c.
 * The address family of an answer follows the offer, and no c= or o= line
 * ever carries brackets (REFERENCE.md §3, items 1-3). */
#ifndef OPENUM_SDP_H
#define OPENUM_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest SDP body accepted, in bytes. */
#define SDP_BODY_MAX 16384
/* Longest connection address kept: an IPv6 literal (INET6_ADDRSTRLEN - 1). */
#define SDP_ADDR_MAX 45
/* Most m= lines an offer may have (the answer repeats every one). */
#define SDP_MEDIA_MAX 8
/* Longest media / proto / first-format token of a non-chosen m= line kept. */
#define SDP_TOKEN_MAX 31
/* Most payload types kept from the chosen m= line. */
#define SDP_PT_MAX 32
/* a=crypto lines kept, and the longest kept (longer ones are refused). */
#define SDP_CRYPTO_MAX 4
#define SDP_CRYPTO_LEN 255

/* Direction of a stream from the describing side's point of view; the bit
 * values are sofia-sip's sdp_mode_t (send = 1, receive = 2). */
enum sdp_dir {
	SDP_INACTIVE = 0,
	SDP_SENDONLY = 1,
	SDP_RECVONLY = 2,
	SDP_SENDRECV = 3,
};

enum sdp_codec {
	SDP_CODEC_PCMU = 0,
	SDP_CODEC_PCMA = 8,
};

/* One m= line of a description, as the answer must repeat it. */
struct sdp_mline {
	char media[SDP_TOKEN_MAX + 1];  /* "audio", "video", ... */
	char proto[SDP_TOKEN_MAX + 1];  /* "RTP/AVP", ... */
	char fmt[SDP_TOKEN_MAX + 1];    /* its first format */
};

/* A parsed offer (or answer): its audio stream, and the shape of every m=
 * line. All text is copied; nothing points into the body. */
struct sdp_offer {
	int family;                     /* AF_INET or AF_INET6 */
	char addr[SDP_ADDR_MAX + 1];    /* IP literal of the stream's c=, no brackets */
	uint16_t port;                  /* RTP port (RTCP: port + 1) */
	bool savp;                      /* RTP/SAVP: SRTP asked for (not supported yet) */
	enum sdp_dir dir;               /* from a=sendrecv etc.; default sendrecv */
	bool hold;                      /* sendonly, inactive, or c= 0.0.0.0 / :: */
	int pcmu_pt;                    /* PCMU/8000 payload type, -1 if absent */
	int pcma_pt;                    /* PCMA/8000 payload type, -1 if absent */
	int te_pt;                      /* telephone-event/8000 payload type, -1 if absent */
	enum sdp_codec first;           /* the first of PCMU/PCMA in m= order */
	unsigned ptime;                 /* a=ptime in ms, 0 if absent */
	unsigned npt;                   /* payload types in pts[] */
	uint8_t pts[SDP_PT_MAX];        /* the m= line's payload types, in order */
	unsigned ncrypto;
	char crypto[SDP_CRYPTO_MAX][SDP_CRYPTO_LEN + 1]; /* raw a=crypto values */
	uint64_t sess_id, sess_version; /* from o= */
	unsigned nmedia;                /* m= lines in the description */
	unsigned audio;                 /* index of the chosen audio m= line */
	struct sdp_mline media[SDP_MEDIA_MAX];
};

/* Our side of a session: the media socket the call uses. */
struct sdp_local {
	int family;                     /* AF_INET or AF_INET6 of the socket */
	const char *addr;               /* the address it is bound to, a literal without brackets */
	uint16_t port;                  /* its RTP port (even; RTCP on port + 1) */
	uint64_t sess_id, sess_version; /* o= values (version + 1 on each new offer/answer) */
	const char *username;           /* o= username, NULL = "-" */
};

/* What was agreed: what we send, where, and how. */
struct sdp_choice {
	enum sdp_codec codec;
	uint8_t pt;                     /* the codec's payload type */
	int te_pt;                      /* telephone-event payload type, -1 = none */
	unsigned ptime;                 /* ms per packet we send: 20 */
	enum sdp_dir dir;               /* our direction (the answer's a=) */
	bool hold;                      /* the peer put the call on hold */
	int family;                     /* where our RTP goes: */
	char addr[SDP_ADDR_MAX + 1];
	uint16_t port;
};

int sdp_offer_parse(struct sdp_offer *out, const char *body, size_t len,
		    char **cause);
int sdp_answer_parse(struct sdp_offer *out, const char *body, size_t len,
		     char **cause);
int sdp_choose(struct sdp_choice *out, const struct sdp_offer *remote);
int sdp_answer_build(char *buf, size_t cap, const struct sdp_offer *offer,
		     const struct sdp_local *local, struct sdp_choice *chosen);
int sdp_offer_build(char *buf, size_t cap, const struct sdp_local *local);

#endif
