/* sdp.c — audio SDP offer/answer over sofia-sip's SDP parser: untrusted
 * bodies in, fixed-size structs out; answers and offers written as text with
 * the family of the offer and never a bracketed address. */
#include "common/cause.h"
#include "common/sdp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <sofia-sip/sdp.h>

/* A token fit to repeat in an answer: 1..SDP_TOKEN_MAX visible ASCII chars. */
static int copy_token(char *dst, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n == 0 || n > SDP_TOKEN_MAX)
		return EBADMSG;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7f)
			return EBADMSG;
	memcpy(dst, src, n + 1);
	return 0;
}

/* "PCMU/8000" or "PCMU/8000/1", case-insensitive (RFC 4855 §3). */
static bool rtpmap_is(const sdp_rtpmap_t *rm, const char *enc)
{
	return rm->rm_encoding && strcasecmp(rm->rm_encoding, enc) == 0 &&
	       rm->rm_rate == 8000 &&
	       (!rm->rm_params || strcmp(rm->rm_params, "1") == 0);
}

/* Checks a c= line: IN, IP4/IP6, an IP literal of that family (so no
 * brackets and no host names), not multicast; sets family, addr and whether
 * it is the all-zero "hold" address. EBADMSG or ENOTSUP with a cause. */
static int check_conn(struct sdp_offer *o, const sdp_connection_t *c,
		      char **cause)
{
	unsigned char bin[16];
	int family;
	size_t n;

	if (c->c_nettype != sdp_net_in || !c->c_address) {
		cause_first(cause, "c= is not an IN address");
		return EBADMSG;
	}
	if (c->c_addrtype == sdp_addr_ip4)
		family = AF_INET;
	else if (c->c_addrtype == sdp_addr_ip6)
		family = AF_INET6;
	else {
		cause_first(cause, "c= address type is neither IP4 nor IP6");
		return EBADMSG;
	}
	n = strlen(c->c_address);
	if (n > SDP_ADDR_MAX || inet_pton(family, c->c_address, bin) != 1) {
		cause_first(cause, "c= address is not an %s literal%s",
			  family == AF_INET ? "IPv4" : "IPv6",
			  strchr(c->c_address, '[') ? " (brackets)" : "");
		return EBADMSG;
	}
	if (c->c_mcast || (family == AF_INET && bin[0] >= 224 && bin[0] < 240) ||
	    (family == AF_INET6 && bin[0] == 0xff)) {
		cause_first(cause, "c= address is multicast");
		return ENOTSUP;
	}
	o->family = family;
	memcpy(o->addr, c->c_address, n + 1);
	o->hold = true;
	for (size_t i = 0; i < (family == AF_INET ? 4u : 16u); i++)
		if (bin[i])
			o->hold = false;
	return 0;
}

/* The attribute named name of m, else of the session; NULL if neither. */
static const char *attr_value(const sdp_media_t *m, const sdp_session_t *s,
			      const char *name)
{
	const sdp_attribute_t *a;

	for (a = m->m_attributes; a; a = a->a_next)
		if (a->a_name && strcasecmp(a->a_name, name) == 0)
			return a->a_value ? a->a_value : "";
	for (a = s->sdp_attributes; a; a = a->a_next)
		if (a->a_name && strcasecmp(a->a_name, name) == 0)
			return a->a_value ? a->a_value : "";
	return NULL;
}

/* Codecs of an RTP/AVP-style m= line (sofia gives its formats as rtpmaps). */
static void read_codecs(struct sdp_offer *o, const sdp_media_t *m)
{
	for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
		if (o->npt < SDP_PT_MAX)
			o->pts[o->npt++] = (uint8_t)rm->rm_pt;
		if (o->pcmu_pt < 0 && rtpmap_is(rm, "PCMU")) {
			o->pcmu_pt = rm->rm_pt;
			if (o->pcma_pt < 0)
				o->first = SDP_CODEC_PCMU;
		} else if (o->pcma_pt < 0 && rtpmap_is(rm, "PCMA")) {
			o->pcma_pt = rm->rm_pt;
			if (o->pcmu_pt < 0)
				o->first = SDP_CODEC_PCMA;
		} else if (o->te_pt < 0 && rm->rm_encoding &&
			   strcasecmp(rm->rm_encoding, "telephone-event") == 0 &&
			   rm->rm_rate == 8000) {
			o->te_pt = rm->rm_pt;
		}
	}
}

static bool has_codec(const sdp_media_t *m)
{
	for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next)
		if (rtpmap_is(rm, "PCMU") || rtpmap_is(rm, "PCMA"))
			return true;
	return false;
}

/* Fills o from the chosen audio m= line. */
static int read_stream(struct sdp_offer *o, const sdp_session_t *s,
		       const sdp_media_t *m, char **cause)
{
	const sdp_connection_t *c = m->m_connections ? m->m_connections :
				    s->sdp_connection;
	const char *v;
	bool zero;
	int err;

	if (!c) {
		cause_first(cause, "no c= for the audio stream");
		return EBADMSG;
	}
	if ((err = check_conn(o, c, cause)) != 0)
		return err;
	zero = o->hold;
	if (m->m_port == 0 || m->m_port > 65535) {
		cause_first(cause, "audio port %lu out of range", m->m_port);
		return EBADMSG;
	}
	o->port = (uint16_t)m->m_port;
	o->savp = m->m_proto == sdp_proto_srtp;
	o->dir = (enum sdp_dir)(m->m_mode & 3);
	o->hold = zero || o->dir == SDP_SENDONLY || o->dir == SDP_INACTIVE;
	read_codecs(o, m);
	v = attr_value(m, s, "ptime");
	if (v) {
		char *end;
		unsigned long pt = strtoul(v, &end, 10);

		if (end != v && *end == '\0' && pt > 0 && pt <= 1000)
			o->ptime = (unsigned)pt;
	}
	for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next) {
		size_t n;

		if (!a->a_name || strcasecmp(a->a_name, "crypto") != 0)
			continue;
		n = a->a_value ? strlen(a->a_value) : 0;
		if (n == 0 || n > SDP_CRYPTO_LEN) {
			cause_first(cause, "a=crypto value empty or too long");
			return EBADMSG;
		}
		if (o->ncrypto < SDP_CRYPTO_MAX)
			memcpy(o->crypto[o->ncrypto++], a->a_value, n + 1);
	}
	return 0;
}

/* RFC 4566 token characters. */
static bool is_token_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("-!#$%&'*+.^_`{|}~", c) != NULL);
}

/* Whether v[0..n) is 1*DIGIT. */
static bool all_digits(const char *v, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/* Whether v[0..n) is 1*token-char, or with slashes token *("/" token). */
static bool all_token(const char *v, size_t n, bool slashes)
{
	if (n == 0 || v[0] == '/' || v[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '/' && slashes && v[i + 1] != '/')
			continue;
		if (!is_token_char(c))
			return false;
	}
	return true;
}

/* Checks one m= value (after "m=") against RFC 4566's grammar, exactly:
 * media SP port ["/" integer] SP proto 1*(SP fmt), single spaces, nothing
 * trailing.
 *
 * Why: sofia-sip's parser of a non-RTP format list loops for ever, allocating
 * at each turn, when a format starts with a character outside its token set
 * or when only whitespace follows the proto ("m=audio 1 X @",
 * "m=audio 1 X<TAB>", "m=audio 1crypT / 0"): one such 100-byte body cost
 * 150 s of CPU and 19 GB of memory before the allocation failed. So no m=
 * line reaches it unless it is plainly well-formed. */
static bool mline_ok(const char *v, size_t n)
{
	unsigned field = 0;
	size_t i = 0;

	while (i < n) {
		size_t e = i;
		const char *slash;

		while (e < n && v[e] != ' ')
			e++;
		switch (field++) {
		case 0:
			if (!all_token(v + i, e - i, false))
				return false;
			break;
		case 1:
			slash = memchr(v + i, '/', e - i);
			if (slash ? !all_digits(v + i, (size_t)(slash - (v + i))) ||
				    !all_digits(slash + 1, (size_t)(v + e - slash - 1)) :
				    !all_digits(v + i, e - i))
				return false;
			break;
		case 2:
			if (!all_token(v + i, e - i, true))
				return false;
			break;
		default:
			if (!all_token(v + i, e - i, false))
				return false;
		}
		if (e == n)
			break;
		i = e + 1;
		if (i == n)
			return false; /* trailing space */
	}
	return field >= 4;
}

/* Runs mline_ok over every line that sofia-sip would take for an m= line
 * (lines split at CR or LF, leading spaces and tabs skipped). */
static bool mlines_ok(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t e = i;

		while (e < len && body[e] != '\r' && body[e] != '\n')
			e++;
		while (i < e && (body[i] == ' ' || body[i] == '\t'))
			i++;
		if (e - i >= 2 && body[i] == 'm' && body[i + 1] == '=' &&
		    !mline_ok(body + i + 2, e - i - 2))
			return false;
		i = e + 1;
	}
	return true;
}

/* The shared parser of offers and answers. */
static int parse_desc(struct sdp_offer *out, const char *body, size_t len,
		      char **cause)
{
	struct sdp_offer *o = NULL;
	sdp_parser_t *parser = NULL;
	const sdp_session_t *s;
	const sdp_media_t *m, *avp = NULL, *savp = NULL;
	unsigned i, iavp = 0, isavp = 0;
	bool audio = false;
	int err = 0;

	if (!out || (!body && len))
		return EINVAL;
	if (len == 0 || len > SDP_BODY_MAX || memchr(body, '\0', len)) {
		cause_first(cause, "SDP body empty, too long or not text");
		return EBADMSG;
	}
	if (!mlines_ok(body, len)) {
		cause_first(cause, "malformed m= line");
		return EBADMSG;
	}
	o = calloc(1, sizeof *o);
	if (!o)
		return ENOMEM;
	parser = sdp_parse(NULL, body, (issize_t)len, 0);
	if (!parser) {
		err = ENOMEM;
		goto out;
	}
	s = sdp_session(parser);
	if (!s) {
		const char *e = sdp_parsing_error(parser);

		cause_first(cause, "bad SDP: %s", e ? e : "unparsable");
		err = EBADMSG;
		goto out;
	}
	if (s->sdp_origin) {
		o->sess_id = s->sdp_origin->o_id;
		o->sess_version = s->sdp_origin->o_version;
	}
	if (s->sdp_connection &&
	    (err = check_conn(o, s->sdp_connection, cause)) != 0)
		goto out;

	for (m = s->sdp_media, i = 0; m; m = m->m_next, i++) {
		struct sdp_mline *ml;

		if (i >= SDP_MEDIA_MAX) {
			cause_first(cause, "more than %d m= lines", SDP_MEDIA_MAX);
			err = EBADMSG;
			goto out;
		}
		ml = &o->media[i];
		if (copy_token(ml->media, m->m_type_name) ||
		    copy_token(ml->proto, m->m_proto_name)) {
			cause_first(cause, "m= line %u: bad media or proto", i + 1);
			err = EBADMSG;
			goto out;
		}
		if (m->m_rtpmaps)
			snprintf(ml->fmt, sizeof ml->fmt, "%u",
				 (unsigned)m->m_rtpmaps->rm_pt);
		else if (!m->m_format || copy_token(ml->fmt, m->m_format->l_text))
			strcpy(ml->fmt, "0");

		if (m->m_type != sdp_media_audio || m->m_rejected || !m->m_port)
			continue;
		audio = true;
		if (!has_codec(m))
			continue;
		if (m->m_proto == sdp_proto_rtp && !avp) {
			avp = m;
			iavp = i;
		} else if (m->m_proto == sdp_proto_srtp && !savp) {
			savp = m;
			isavp = i;
		}
	}
	o->nmedia = i;
	if (!avp && !savp) {
		if (audio) {
			cause_first(cause, "no audio stream with PCMU or PCMA over RTP/AVP");
			err = ENOTSUP;
		} else {
			cause_first(cause, "no audio stream");
			err = ENOENT;
		}
		goto out;
	}
	o->pcmu_pt = o->pcma_pt = o->te_pt = -1;
	o->audio = avp ? iavp : isavp;
	if ((err = read_stream(o, s, avp ? avp : savp, cause)) != 0)
		goto out;
	*out = *o;
out:
	if (parser)
		sdp_parser_free(parser);
	free(o);
	return err;
}

/* Parses an SDP offer of len bytes (not necessarily NUL-terminated) and
 * picks its audio stream: the first non-rejected m=audio over RTP/AVP that
 * offers PCMU or PCMA (else such a stream over RTP/SAVP, marked savp, for
 * the day SRTP is supported), with its connection address (media-level c=,
 * else session-level), port, direction, codecs, ptime and raw a=crypto
 * lines. out is written only on success; *cause (optional, caller frees)
 * says why it failed.
 * EINVAL: NULL out; EBADMSG: malformed, longer than SDP_BODY_MAX, a c=
 * address that is not an IP literal of its stated family (brackets, a host
 * name, IP4 with an IPv6 address or the reverse), more than SDP_MEDIA_MAX m=
 * lines; ENOENT: no usable audio stream (none, or all rejected with port 0);
 * ENOTSUP: audio, but neither PCMU nor PCMA over RTP/AVP or RTP/SAVP, or a
 * multicast address (answer 488); ENOMEM. */
int sdp_offer_parse(struct sdp_offer *out, const char *body, size_t len,
		    char **cause)
{
	return parse_desc(out, body, len, cause);
}

/* Parses the SDP answer to our sdp_offer_build offer (from the ACK of an
 * INVITE without SDP, or a 200): the same rules and errors as
 * sdp_offer_parse; sdp_choose then gives what to send. */
int sdp_answer_parse(struct sdp_offer *out, const char *body, size_t len,
		     char **cause)
{
	return parse_desc(out, body, len, cause);
}

/* Our direction given theirs: their send is our receive and the reverse
 * (RFC 3264 §6.1). */
static enum sdp_dir mirror(enum sdp_dir d)
{
	return (enum sdp_dir)(((d & SDP_SENDONLY) ? SDP_RECVONLY : 0) |
			      ((d & SDP_RECVONLY) ? SDP_SENDONLY : 0));
}

/* Decides what we send to the remote description's audio stream: the first
 * of PCMU/PCMA in its m= order (the offerer's preference, RFC 3264 §6.1; both
 * cost us the same), telephone-event with the remote's payload type if it has
 * one, 20 ms packets, and the mirrored direction — with our sending dropped
 * when the remote address is 0.0.0.0 / :: (RFC 2543-style hold: there is no
 * one to send to). EINVAL: NULL argument; ENOTSUP: no PCMU/PCMA. */
int sdp_choose(struct sdp_choice *out, const struct sdp_offer *remote)
{
	struct sdp_choice c;
	bool zero;

	if (!out || !remote)
		return EINVAL;
	memset(&c, 0, sizeof c);
	if (remote->first == SDP_CODEC_PCMU && remote->pcmu_pt >= 0) {
		c.codec = SDP_CODEC_PCMU;
		c.pt = (uint8_t)remote->pcmu_pt;
	} else if (remote->pcma_pt >= 0) {
		c.codec = SDP_CODEC_PCMA;
		c.pt = (uint8_t)remote->pcma_pt;
	} else if (remote->pcmu_pt >= 0) {
		c.codec = SDP_CODEC_PCMU;
		c.pt = (uint8_t)remote->pcmu_pt;
	} else {
		return ENOTSUP;
	}
	c.te_pt = remote->te_pt;
	c.ptime = 20;
	c.dir = mirror(remote->dir);
	zero = strcmp(remote->addr, "0.0.0.0") == 0 || strcmp(remote->addr, "::") == 0;
	if (zero)
		c.dir &= ~SDP_SENDONLY;
	c.hold = remote->hold;
	c.family = remote->family;
	memcpy(c.addr, remote->addr, sizeof c.addr);
	c.port = remote->port;
	*out = c;
	return 0;
}

/* A bounded text writer: the first overflow sticks. */
struct wbuf {
	char *p;
	size_t cap, len;
	bool over;
};

static void wr(struct wbuf *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void wr(struct wbuf *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->cap - w->len)
		w->over = true;
	else
		w->len += (size_t)n;
}

static const char *dir_name(enum sdp_dir d)
{
	switch (d) {
	case SDP_SENDONLY:
		return "sendonly";
	case SDP_RECVONLY:
		return "recvonly";
	case SDP_INACTIVE:
		return "inactive";
	default:
		return "sendrecv";
	}
}

/* Checks our side: a known family, an address literal of that family (so
 * never bracketed), a username without spaces. */
static int check_local(const struct sdp_local *l)
{
	unsigned char bin[16];

	if (!l || !l->addr || (l->family != AF_INET && l->family != AF_INET6) ||
	    inet_pton(l->family, l->addr, bin) != 1)
		return EINVAL;
	if (l->username && (!l->username[0] || strpbrk(l->username, " \t\r\n")))
		return EINVAL;
	return 0;
}

/* The session part: v=, o=, s=, c=, t= in our family, without brackets. */
static void wr_session(struct wbuf *w, const struct sdp_local *l)
{
	const char *ip = l->family == AF_INET6 ? "IP6" : "IP4";

	wr(w, "v=0\r\n");
	wr(w, "o=%s %llu %llu IN %s %s\r\n", l->username ? l->username : "-",
	   (unsigned long long)l->sess_id, (unsigned long long)l->sess_version,
	   ip, l->addr);
	wr(w, "s=OpenUM\r\n");
	wr(w, "c=IN %s %s\r\n", ip, l->addr);
	wr(w, "t=0 0\r\n");
}

static void wr_finish(struct wbuf *w)
{
	if (w->over && w->cap)
		w->p[0] = '\0';
}

/* Writes the answer to offer into buf (NUL-terminated, CRLF lines) and what
 * was agreed into *chosen (sdp_choose): every m= line of the offer in order,
 * the others rejected with port 0; the audio one with the chosen codec,
 * telephone-event with the offerer's payload type if offered (fmtp 0-16),
 * ptime 20 and the mirrored direction; o= and c= in local's family and
 * address, which must be the offer's family (c=IN IP6 for an IPv6 offer,
 * never brackets). chosen is written only on success. EINVAL: NULL
 * argument or a bad local (not a literal of its family, a username with
 * spaces); EAFNOSUPPORT: local's family is not the offer's; ENOTSUP: the
 * offer is RTP/SAVP (no SRTP yet) or has no PCMU/PCMA; ENOSPC: buf too
 * small. */
int sdp_answer_build(char *buf, size_t cap, const struct sdp_offer *offer,
		     const struct sdp_local *local, struct sdp_choice *chosen)
{
	struct wbuf w = {buf, cap, 0, false};
	struct sdp_choice c;
	int err;

	if (!buf || !cap || !offer || !chosen || check_local(local) ||
	    offer->nmedia > SDP_MEDIA_MAX || offer->audio >= offer->nmedia)
		return EINVAL;
	if (local->family != offer->family)
		return EAFNOSUPPORT;
	if (offer->savp)
		return ENOTSUP;
	if ((err = sdp_choose(&c, offer)) != 0)
		return err;

	wr_session(&w, local);
	for (unsigned i = 0; i < offer->nmedia; i++) {
		const struct sdp_mline *ml = &offer->media[i];

		if (i != offer->audio) {
			wr(&w, "m=%s 0 %s %s\r\n", ml->media, ml->proto, ml->fmt);
			continue;
		}
		wr(&w, "m=audio %u RTP/AVP %u", (unsigned)local->port,
		   (unsigned)c.pt);
		if (c.te_pt >= 0)
			wr(&w, " %d", c.te_pt);
		wr(&w, "\r\n");
		wr(&w, "a=rtpmap:%u %s/8000\r\n", (unsigned)c.pt,
		   c.codec == SDP_CODEC_PCMU ? "PCMU" : "PCMA");
		if (c.te_pt >= 0) {
			wr(&w, "a=rtpmap:%d telephone-event/8000\r\n", c.te_pt);
			wr(&w, "a=fmtp:%d 0-16\r\n", c.te_pt);
		}
		wr(&w, "a=ptime:%u\r\n", c.ptime);
		wr(&w, "a=%s\r\n", dir_name(c.dir));
	}
	wr_finish(&w);
	if (w.over)
		return ENOSPC;
	*chosen = c;
	return 0;
}

/* Writes our offer for an INVITE that came without SDP into buf
 * (NUL-terminated): PCMU, PCMA, telephone-event 101 (0-16), ptime 20,
 * sendrecv, o= and c= in local's family without brackets. The answer comes
 * back through sdp_answer_parse. EINVAL: NULL argument or bad local;
 * ENOSPC: buf too small. */
int sdp_offer_build(char *buf, size_t cap, const struct sdp_local *local)
{
	struct wbuf w = {buf, cap, 0, false};

	if (!buf || !cap || check_local(local))
		return EINVAL;
	wr_session(&w, local);
	wr(&w, "m=audio %u RTP/AVP 0 8 101\r\n", (unsigned)local->port);
	wr(&w, "a=rtpmap:0 PCMU/8000\r\n");
	wr(&w, "a=rtpmap:8 PCMA/8000\r\n");
	wr(&w, "a=rtpmap:101 telephone-event/8000\r\n");
	wr(&w, "a=fmtp:101 0-16\r\n");
	wr(&w, "a=ptime:20\r\n");
	wr(&w, "a=sendrecv\r\n");
	wr_finish(&w);
	return w.over ? ENOSPC : 0;
}
