/* sipmsg.h — the call router's own SIP message reader and response writer.
 *
 * A redirect server reads a handful of headers and answers every request
 * statelessly, so the router does not need a general SIP stack: this parser
 * frames a message (UDP datagram or TCP stream), checks what RFC 3261 asks of
 * a request (start line, Via, From, To, Call-ID, CSeq, Content-Length, URI
 * hosts), records where the headers the router uses are, and writes
 * responses that echo them. It works in place on the received bytes: no
 * allocation, no I/O (fuzzed by tests/fuzz/fuzz_sipmsg.c). Replacing
 * sofia-sip's parse/encode on this path is what makes the router faster than
 * a Kamailio redirect (issue 3; NOTES-stack.md §5). */
#ifndef OPENUM_SIPMSG_H
#define OPENUM_SIPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest message accepted, headers and body (a UDP datagram is shorter). */
#define SIPMSG_MAX (96u * 1024)
/* Diversion / History-Info header fields kept (more: the request is 400). */
#define SIPMSG_LIST_MAX 32
/* Via header fields kept for the response. */
#define SIPMSG_VIA_MAX 32

enum sipmsg_method {
	SIPMSG_OTHER = 0,	/* a method the router does not know: 501 */
	SIPMSG_INVITE,
	SIPMSG_ACK,
	SIPMSG_CANCEL,
	SIPMSG_OPTIONS,
	SIPMSG_BYE,
	SIPMSG_REGISTER,
	SIPMSG_SUBSCRIBE,
	SIPMSG_NOTIFY,
	SIPMSG_PUBLISH,
	SIPMSG_INFO,
	SIPMSG_PRACK,
	SIPMSG_UPDATE,
	SIPMSG_MESSAGE,
	SIPMSG_REFER,
};

/* A span of the message: not NUL-terminated. */
struct sipmsg_str {
	const char *p;
	size_t n;
};

struct sipmsg {
	bool response;			/* a status line: the router drops it */
	enum sipmsg_method method;
	struct sipmsg_str method_name, ruri;
	/* Header field values, as received (folded lines included); the
	 * lists are at the end. */
	struct sipmsg_str from, to, call_id, cseq;
	size_t n_via, n_diversion, n_history_info;
	struct sipmsg_str body;
	/* The topmost Via value (up to its first comma) and what it says. */
	struct sipmsg_str top_via;
	struct sipmsg_str via_host;	/* sent-by host, IPv6 with brackets */
	unsigned via_port;		/* 0: none given */
	struct sipmsg_str branch;	/* "" when absent */
	bool via_rport;			/* ";rport" without a value */
	size_t via_rport_end;		/* offset in top_via just after "rport" */
	bool to_tag;			/* To has a tag */
	uint32_t cseq_num;
	long content_length;		/* -1: no Content-Length */
	/* Only the first n_via / n_diversion / n_history_info entries are
	 * set: sipmsg_parse clears everything above and leaves these 1.5 KiB
	 * alone (clearing them was 8 % of parsing an INVITE). */
	struct sipmsg_str via[SIPMSG_VIA_MAX];
	struct sipmsg_str diversion[SIPMSG_LIST_MAX];
	struct sipmsg_str history_info[SIPMSG_LIST_MAX];
};

/* Where a message in a TCP stream ends. 0: *len is its length (leading
 * CRLF keep-alives included, which sipmsg_parse skips); EAGAIN: not all
 * there yet; EMSGSIZE: the header part or the announced length passes
 * SIPMSG_MAX; EBADMSG: a Content-Length that is no number. With EBADMSG,
 * and with EMSGSIZE when the headers are all there, *len is the length of
 * the header part (to answer it: 400, 513), else 0. A message without
 * Content-Length is taken to end with its headers. */
int sipmsg_frame(const char *buf, size_t n, size_t *len);

/* True when a stream cannot be carrying SIP: what it starts with (after
 * CRLFs) is neither a method followed by a space nor "SIP/". Lets a TCP
 * connection that sends garbage without a blank line be closed at once
 * instead of filling its buffer. */
bool sipmsg_stream_garbage(const char *buf, size_t n);

/* True when buf holds only CRLFs: an RFC 5626 keep-alive ping. */
bool sipmsg_is_keepalive(const char *buf, size_t n);

/* Parses one message in place: stream (TCP) messages must be framed by
 * sipmsg_frame; a datagram may carry a body shorter than its
 * Content-Length only as an error. 0: *m describes it; otherwise a status
 * for the error response (400, 416, 505, 513) and, in *why, a short
 * reason, or -1 when no response can be formed (no start line, no Via to
 * answer to): the message is dropped. */
int sipmsg_parse(struct sipmsg *m, const char *buf, size_t n, bool stream,
		 const char **why);

/* The Request-URI / To / From URI user (sipuri_user): "" when it has none. */
void sipmsg_ruri_user(const struct sipmsg *m, char *out, size_t len);
void sipmsg_to_user(const struct sipmsg *m, char *out, size_t len);
void sipmsg_from_user(const struct sipmsg *m, char *out, size_t len);

/* Joins the Diversion (or History-Info) values with ", " into out.
 * false: there are none, or they do not fit. */
bool sipmsg_join(const struct sipmsg_str *v, size_t n, char *out, size_t len);

/* A copy of a span as a C string, cut to fit. */
void sipmsg_copy(char *out, size_t len, struct sipmsg_str s);

/* Where a response to m goes over UDP (RFC 3261 18.2.2, RFC 3581): the
 * source address, at the source port when the client asked for rport, else
 * at the Via sent-by port (5060 when none). */
void sipmsg_reply_addr(const struct sipmsg *m, const struct sockaddr *src,
		       struct sockaddr_storage *dst);

/* Writes the headers every response to m carries — the Via fields (the top
 * one with received= and rport=), From, To (with to_tag when it has none),
 * Call-ID, CSeq — into out. Returns the length, 0 when out is too short or
 * m has no Via read (an ACK, which sipmsg_parse reads only to its first
 * line). */
size_t sipmsg_echo(char *out, size_t len, const struct sipmsg *m,
		   const struct sockaddr *src, const char *to_tag);

/* Writes a whole response: status line, echo (from sipmsg_echo), extra
 * header lines (each ending in CRLF, may be ""), Content-Length: 0. Returns
 * the length, 0 when out is too short. */
size_t sipmsg_response(char *out, size_t len, int status, const char *phrase,
		       const char *echo, size_t echo_len, const char *extra);

/* A stable To tag for a request, so that retransmissions get the same one:
 * 16 hex digits from the Call-ID, the branch and secret. */
void sipmsg_to_tag(const struct sipmsg *m, uint64_t secret, char out[17]);

#endif
