/* sipmsg.c — see sipmsg.h. Everything here reads untrusted bytes: every
 * index is checked against the span it walks, nothing is written outside
 * the caller's buffers, and a message the router cannot make sense of is
 * refused whole rather than half-understood. */
#include "callrouter/sipmsg.h"
#include "common/netaddr.h"
#include "common/sipuri.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define CRLFCRLF "\r\n\r\n"

/* --- small scanners -------------------------------------------------------- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 3261 token characters. A table: the header scanner asks for every
 * byte of every header name. */
static const bool TOKEN[256] = {
	['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
	['-'] = true, ['.'] = true, ['!'] = true, ['%'] = true, ['*'] = true,
	['_'] = true, ['+'] = true, ['`'] = true, ['\''] = true, ['~'] = true,
};

static bool is_token(char c)
{
	return TOKEN[(unsigned char)c];
}

/* The n bytes at p equal lit, a lower-case literal, ignoring ASCII case.
 * Inline rather than strncasecmp: the names it compares are a few bytes
 * long and the library call cost more than the comparing. */
static bool ieq(const char *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (c != lit[i])
			return false;
	}
	return true;
}

/* s equals the lower-case string literal lit, ignoring case; the length is
 * the literal's, known at compile time (a strlen per header name showed). */
#define span_eq(s, lit) ((s).n == sizeof(lit) - 1 && ieq((s).p, lit, sizeof(lit) - 1))

static struct sipmsg_str trim(const char *p, size_t n)
{
	while (n && is_ws(*p)) {
		p++;
		n--;
	}
	while (n && is_ws(p[n - 1]))
		n--;
	return (struct sipmsg_str){p, n};
}

static const char *find(const char *p, size_t n, const char *lit)
{
	return memmem(p, n, lit, strlen(lit));
}

/* Whether an empty line (CRLFCRLF) starts in [p, end). A datagram nearly
 * always ends with it (no body), so its last four bytes are looked at
 * before the whole span. */
static bool headers_end_after(const char *p, const char *end)
{
	if (end - p >= 4 && !memcmp(end - 4, CRLFCRLF, 4))
		return true;
	return find(p, (size_t)(end - p), CRLFCRLF) != NULL;
}

/* The next CRLF in [p, p + n), NULL if none. */
static const char *find_crlf(const char *p, size_t n)
{
	const char *end = p + n, *cr;

	while (p < end && (cr = memchr(p, '\r', (size_t)(end - p))) != NULL) {
		if (cr + 1 < end && cr[1] == '\n')
			return cr;
		p = cr + 1;
	}
	return NULL;
}

/* Bytes no header line may hold (RFC 3261 25.1: no CTL but HTAB), CR
 * among them: where the line scanner has to stop and look. */
static const bool CTL[256] = {
	[0 ... 8] = true, [10 ... 31] = true, [127] = true,
};

/* The CRLF ending the header line at p, NULL if none before end; *bad is
 * set when the line holds a control character (a bare CR included). One
 * pass: the line is read once, not once for its end and once for its
 * bytes; with SSE2, 16 bytes per step (this loop was half of the parse's
 * own time when it went byte by byte). */
static const char *line_end(const char *p, const char *end, bool *bad)
{
	for (;;) {
#ifdef __SSE2__
		/* 16 bytes at a time while 16 are left: the same set as CTL[]
		 * (<= 0x1f but HTAB, and DEL); bytes >= 0x80 are not in it */
		const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t'),
			      del = _mm_set1_epi8(0x7f);

		while (end - p >= 16) {
			__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
			__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, c1f), x);
			unsigned mask;

			ctl = _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl);
			ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(x, del));
			mask = (unsigned)_mm_movemask_epi8(ctl);
			if (mask) {
				p += __builtin_ctz(mask);
				goto found;
			}
			p += 16;
		}
#endif
		while (p < end && !CTL[(unsigned char)*p])
			p++;
		if (p >= end)
			return NULL;
#ifdef __SSE2__
found:
#endif
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			return p;
		*bad = true;
		p++;
	}
}

/* Digits only, at most 10 of them, value <= max. */
static bool parse_uint(struct sipmsg_str s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (s.n == 0 || s.n > 10)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s.p[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Content-Length is a number up to this; a message announcing more than
 * SIPMSG_MAX in all is answered 513, a value beyond it is no length. */
#define CLEN_MAX 0xffffffffUL

/* --- framing ----------------------------------------------------------------- */

static size_t skip_crlf(const char *buf, size_t n)
{
	size_t i = 0;

	while (i < n && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i;
}

/* The value of the Content-Length header (long or compact name) among the
 * header lines in [p, p + n); NULL if there is none. */
static const char *content_length_at(const char *p, size_t n, size_t *vlen)
{
	const char *end = p + n;

	while (p < end) {
		const char *eol = find_crlf(p, (size_t)(end - p));
		const char *colon;
		struct sipmsg_str name;

		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && p[0] != ' ' && p[0] != '\t') {
			name = trim(p, (size_t)(colon - p));
			if (span_eq(name, "content-length") || span_eq(name, "l")) {
				*vlen = (size_t)(eol - colon - 1);
				return colon + 1;
			}
		}
		p = eol + 2;
	}
	return NULL;
}

/* See the header. */
int sipmsg_frame(const char *buf, size_t n, size_t *len)
{
	size_t start = skip_crlf(buf, n), hdr;
	const char *e, *cl;
	unsigned long clen = 0;
	size_t vlen = 0;

	if (start == n)
		return EAGAIN;
	e = find(buf + start, n - start, CRLFCRLF);
	*len = 0;
	if (!e)
		return n - start > SIPMSG_MAX ? EMSGSIZE : EAGAIN;
	hdr = (size_t)(e - buf) + 4;
	if (hdr - start > SIPMSG_MAX)
		return EMSGSIZE;
	cl = content_length_at(buf + start, hdr - start - 2, &vlen);
	if (cl && !parse_uint(trim(cl, vlen), CLEN_MAX, &clen)) {
		*len = hdr;
		return EBADMSG;
	}
	if (hdr - start + clen > SIPMSG_MAX) {
		*len = hdr;	/* the header part, to answer 513 */
		return EMSGSIZE;
	}
	if (hdr + clen > n)
		return EAGAIN;
	*len = hdr + clen;
	return 0;
}

/* See the header. */
bool sipmsg_stream_garbage(const char *buf, size_t n)
{
	size_t i = skip_crlf(buf, n), start = i;

	if (n - start >= 4 && !memcmp(buf + start, "SIP/", 4))
		return false;
	while (i < n && i - start <= 32 && is_token(buf[i]))
		i++;
	if (i - start > 32)
		return true;		/* no method is this long */
	if (i == n)
		return false;		/* a method still arriving */
	return i == start || buf[i] != ' ';
}

/* See the header. */
bool sipmsg_is_keepalive(const char *buf, size_t n)
{
	return n > 0 && skip_crlf(buf, n) == n;
}

/* --- URIs and hosts ------------------------------------------------------------ */

/* An IPv4 address as inet_pton(AF_INET) takes one: four decimal parts of
 * at most 255, no leading zeros. Here rather than there because every
 * request carries several and inet_pton wants a NUL-terminated copy. */
static bool ipv4_ok(const char *p, size_t n)
{
	unsigned parts = 0, val = 0, digits = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == '.') {
			if (!digits || ++parts > 4)
				return false;
			val = digits = 0;
			continue;
		}
		if (p[i] < '0' || p[i] > '9' || (digits && !val))
			return false;
		val = val * 10 + (unsigned)(p[i] - '0');
		if (val > 255)
			return false;
		digits++;
	}
	return parts == 4;
}

/* Characters of a hostname or IPv4address: digits and dots are both. */
enum { H_NAME = 1, H_DIGIT = 2 };
static const unsigned char HOST[256] = {
	['a' ... 'z'] = H_NAME, ['A' ... 'Z'] = H_NAME, ['-'] = H_NAME,
	['_'] = H_NAME, ['0' ... '9'] = H_DIGIT, ['.'] = H_DIGIT,
};

/* An IPv6reference, "[" IPv6address "]", n bytes at p. */
static bool ipv6_ref_ok(const char *p, size_t n)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char a[16];

	if (n < 3 || p[0] != '[' || p[n - 1] != ']' || n - 2 >= sizeof tmp)
		return false;
	memcpy(tmp, p + 1, n - 2);
	tmp[n - 2] = 0;
	return inet_pton(AF_INET6, tmp, a) == 1;
}

/* hostport at p: host [":" port]; *end is where it stops (';', '?', '>',
 * whitespace or the end). */
static bool hostport_ok(const char *p, size_t n, struct sipmsg_str *host,
			unsigned *port)
{
	size_t i = 0, h;
	unsigned long v = 0;

	if (n && p[0] == '[') {
		const char *rb = memchr(p, ']', n);

		if (!rb)
			return false;
		i = (size_t)(rb - p) + 1;
		if (!ipv6_ref_ok(p, i))
			return false;
	} else {
		/* hostname or IPv4address, checked on the way to the ':' */
		bool digits_dots = true;

		for (; i < n && p[i] != ':'; i++) {
			unsigned char k = HOST[(unsigned char)p[i]];

			if (!k)
				return false;
			digits_dots = digits_dots && k == H_DIGIT;
		}
		if (i == 0 || (digits_dots && !ipv4_ok(p, i)))
			return false;
	}
	h = i;
	if (host)
		*host = (struct sipmsg_str){p, h};
	if (port)
		*port = 0;
	if (i == n)
		return true;
	if (p[i] != ':' || !parse_uint((struct sipmsg_str){p + i + 1, n - i - 1},
				       65535, &v) || v == 0)
		return false;
	if (port)
		*port = (unsigned)v;
	return true;
}

/* What uri_check's scan stops at: space and control characters (bad), the
 * '@', and the ';' or '?' that can end a hostport; one lookup a byte. */
enum { U_BAD = 1, U_AT, U_END };
static const unsigned char URI_SCAN[256] = {
	[0 ... ' '] = U_BAD, [0x7f] = U_BAD, ['@'] = U_AT, [';'] = U_END, ['?'] = U_END,
};

/* A Request-URI or a URI out of a name-addr: sip:/sips: need a valid host,
 * tel: is taken as is; 0, or 416 for another scheme, 400 for a bad one. */
static int uri_check(struct sipmsg_str u)
{
	size_t skip, i, start = 0, hp_end = 0;

	/* one pass: no space or control character anywhere, and where the
	 * hostport starts (after the first '@', if any) and ends */
	for (i = 0; i < u.n; i++) {
		unsigned char k = URI_SCAN[(unsigned char)u.p[i]];

		if (!k)
			continue;
		if (k == U_BAD)
			return 400;
		if (k == U_AT && !start) {
			start = i + 1;
			hp_end = 0;	/* a ';' before the '@' is the user's */
		} else if (k == U_END && !hp_end)
			hp_end = i;
	}
	if (u.n > 4 && ieq(u.p, "sip:", 4))
		skip = 4;
	else if (u.n > 5 && ieq(u.p, "sips:", 5))
		skip = 5;
	else if (u.n > 4 && ieq(u.p, "tel:", 4))
		return 0;
	else
		return memchr(u.p, ':', u.n) ? 416 : 400;
	if (start < skip) {
		/* no '@' after the scheme: the hostport follows it */
		start = skip;
		for (hp_end = skip; hp_end < u.n && u.p[hp_end] != ';' &&
				    u.p[hp_end] != '?'; hp_end++)
			;
	} else if (!hp_end) {
		hp_end = u.n;
	}
	return hostport_ok(u.p + start, hp_end - start, NULL, NULL) ? 0 : 400;
}

/* The URI of one name-addr / addr-spec value and where its header
 * parameters start. false: no URI. */
static bool name_addr_uri(struct sipmsg_str v, struct sipmsg_str *uri,
			  struct sipmsg_str *params)
{
	size_t i = 0;
	bool quoted = false;
	const char *lt = NULL;

	for (i = 0; i < v.n; i++) {
		char c = v.p[i];

		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
		} else if (c == '"') {
			quoted = true;
		} else if (c == '<') {
			lt = v.p + i;
			break;
		}
	}
	if (quoted)
		return false;
	if (lt) {
		const char *gt = memchr(lt, '>', (size_t)(v.p + v.n - lt));

		if (!gt)
			return false;
		*uri = (struct sipmsg_str){lt + 1, (size_t)(gt - lt - 1)};
		*params = (struct sipmsg_str){gt + 1, (size_t)(v.p + v.n - gt - 1)};
		return true;
	}
	/* addr-spec: any ";" starts header parameters */
	for (i = 0; i < v.n && v.p[i] != ';'; i++)
		;
	*uri = trim(v.p, i);
	*params = (struct sipmsg_str){v.p + i, v.n - i};
	return uri->n > 0;
}

/* A header parameter ";name" (any value) in params. */
static bool has_param(struct sipmsg_str params, const char *name)
{
	size_t k = strlen(name);

	for (size_t i = 0; i < params.n; i++) {
		size_t j;

		if (params.p[i] != ';')
			continue;
		j = i + 1;
		while (j < params.n && is_ws(params.p[j]))
			j++;
		if (params.n - j >= k && ieq(params.p + j, name, k) &&
		    (j + k == params.n || params.p[j + k] == '=' ||
		     params.p[j + k] == ';' || is_ws(params.p[j + k])))
			return true;
	}
	return false;
}

/* Calls each entry of a comma-separated name-addr list (commas inside
 * quotes and <> do not count). false when an entry is empty. */
static bool list_each(struct sipmsg_str v, bool (*fn)(struct sipmsg_str, void *),
		      void *arg)
{
	size_t start = 0;
	bool quoted = false, angle = false;

	for (size_t i = 0; i <= v.n; i++) {
		char c = i < v.n ? v.p[i] : ',';

		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '<')
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == ',' && !angle) {
			struct sipmsg_str e = trim(v.p + start, i - start);

			if (!e.n || !fn(e, arg))
				return false;
			start = i + 1;
		}
	}
	return !quoted && !angle;
}

static bool contact_ok(struct sipmsg_str e, void *arg)
{
	struct sipmsg_str uri, params;

	(void)arg;
	if (e.n == 1 && e.p[0] == '*')
		return true;
	return name_addr_uri(e, &uri, &params) && uri_check(uri) == 0;
}

/* --- the top Via --------------------------------------------------------------- */

static bool parse_top_via(struct sipmsg *m)
{
	struct sipmsg_str v = m->via[0];
	const char *p = v.p, *end;
	size_t i, slash = 0;
	bool quoted = false;

	/* the first value ends at the first comma outside quotes */
	for (i = 0; i < v.n; i++) {
		if (v.p[i] == '"')
			quoted = !quoted;
		else if (v.p[i] == ',' && !quoted)
			break;
	}
	m->top_via = trim(v.p, i);
	p = m->top_via.p;
	end = p + m->top_via.n;
	/* sent-protocol: SIP / 2.0 / transport, LWS allowed around the slashes */
	for (i = 0; p + i < end && slash < 2; i++) {
		if (p[i] == '/')
			slash++;
	}
	if (slash < 2 || m->top_via.n < 7 || !ieq(p, "sip", 3))
		return false;
	while (p + i < end && is_ws(p[i]))
		i++;
	while (p + i < end && is_token(p[i]))
		i++;
	while (p + i < end && is_ws(p[i]))
		i++;
	/* sent-by up to ';' */
	{
		size_t s = i;

		while (p + i < end && p[i] != ';' && !is_ws(p[i]))
			i++;
		if (!hostport_ok(p + s, i - s, &m->via_host, &m->via_port))
			return false;
	}
	m->branch = (struct sipmsg_str){"", 0};
	/* parameters */
	while (p + i < end) {
		size_t ns, ne, vs = 0, ve = 0;

		while (p + i < end && is_ws(p[i]))
			i++;
		if (p + i == end)
			break;
		if (p[i] != ';')
			return false;
		i++;
		while (p + i < end && is_ws(p[i]))
			i++;
		ns = i;
		while (p + i < end && is_token(p[i]))
			i++;
		ne = i;
		if (ne == ns)
			return false;
		while (p + i < end && is_ws(p[i]))
			i++;
		if (p + i < end && p[i] == '=') {
			i++;
			while (p + i < end && is_ws(p[i]))
				i++;
			vs = i;
			if (p + i < end && p[i] == '[') {
				while (p + i < end && p[i] != ']')
					i++;
				if (p + i < end)
					i++;
			} else {
				while (p + i < end && p[i] != ';' && !is_ws(p[i]))
					i++;
			}
			ve = i;
			if (ve == vs)
				return false;
		}
		if (ne - ns == 6 && ieq(p + ns, "branch", 6) && ve > vs)
			m->branch = (struct sipmsg_str){p + vs, ve - vs};
		if (ne - ns == 5 && ieq(p + ns, "rport", 5) && ve == vs) {
			m->via_rport = true;
			m->via_rport_end = ne;
		}
	}
	return true;
}

/* --- the message ------------------------------------------------------------------ */

static const struct {
	const char *name;
	enum sipmsg_method id;
} METHODS[] = {
	{"INVITE", SIPMSG_INVITE},     {"ACK", SIPMSG_ACK},
	{"CANCEL", SIPMSG_CANCEL},     {"OPTIONS", SIPMSG_OPTIONS},
	{"BYE", SIPMSG_BYE},	       {"REGISTER", SIPMSG_REGISTER},
	{"SUBSCRIBE", SIPMSG_SUBSCRIBE}, {"NOTIFY", SIPMSG_NOTIFY},
	{"PUBLISH", SIPMSG_PUBLISH},   {"INFO", SIPMSG_INFO},
	{"PRACK", SIPMSG_PRACK},       {"UPDATE", SIPMSG_UPDATE},
	{"MESSAGE", SIPMSG_MESSAGE},   {"REFER", SIPMSG_REFER},
};

/* Methods are case-sensitive (RFC 3261 7.1). */
static enum sipmsg_method method_id(struct sipmsg_str s)
{
	for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
		if (strlen(METHODS[i].name) == s.n &&
		    !memcmp(METHODS[i].name, s.p, s.n))
			return METHODS[i].id;
	}
	return SIPMSG_OTHER;
}

/* Parses the request line [p, p + n). 0, 505, or -1 (not a request). */
static int request_line(struct sipmsg *m, const char *p, size_t n)
{
	const char *sp1 = memchr(p, ' ', n), *sp2;
	struct sipmsg_str ver;

	if (!sp1 || sp1 == p)
		return -1;
	m->method_name = (struct sipmsg_str){p, (size_t)(sp1 - p)};
	for (size_t i = 0; i < m->method_name.n; i++) {
		if (!is_token(p[i]))
			return -1;
	}
	sp2 = memchr(sp1 + 1, ' ', (size_t)(p + n - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -1;
	m->ruri = (struct sipmsg_str){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
	ver = (struct sipmsg_str){sp2 + 1, (size_t)(p + n - sp2 - 1)};
	if (ver.n < 4 || strncmp(ver.p, "SIP/", 4))
		return -1;
	if (!span_eq(ver, "sip/2.0"))
		return 505;
	m->method = method_id(m->method_name);
	return 0;
}

enum hdr { H_OTHER, H_VIA, H_FROM, H_TO, H_CALL_ID, H_CSEQ, H_CLEN, H_CONTACT,
	   H_DIVERSION, H_HISTORY_INFO };

static enum hdr header_id(struct sipmsg_str n)
{
	/* by length first: one comparison per header, not one per name */
	switch (n.n) {
	case 1:
		switch (n.p[0] | 0x20) {
		case 'v': return H_VIA;
		case 'f': return H_FROM;
		case 't': return H_TO;
		case 'i': return H_CALL_ID;
		case 'l': return H_CLEN;
		case 'm': return H_CONTACT;
		default: return H_OTHER;
		}
	case 2:
		return span_eq(n, "to") ? H_TO : H_OTHER;
	case 3:
		return span_eq(n, "via") ? H_VIA : H_OTHER;
	case 4:
		return span_eq(n, "from") ? H_FROM : span_eq(n, "cseq") ? H_CSEQ : H_OTHER;
	case 7:
		return span_eq(n, "call-id") ? H_CALL_ID : span_eq(n, "contact") ? H_CONTACT
										 : H_OTHER;
	case 9:
		return span_eq(n, "diversion") ? H_DIVERSION : H_OTHER;
	case 12:
		return span_eq(n, "history-info") ? H_HISTORY_INFO : H_OTHER;
	case 14:
		return span_eq(n, "content-length") ? H_CLEN : H_OTHER;
	default:
		return H_OTHER;
	}
}

#define FAIL(s, w)                   \
	do {                         \
		if (!status) {       \
			status = (s);  \
			reason = (w);  \
		}                    \
	} while (0)

/* Files one header field value; a status when it breaks a rule. */
static void take_header(struct sipmsg *m, enum hdr id, struct sipmsg_str v,
			int *status_p,
			const char **reason_p)
{
	int status = *status_p;
	const char *reason = *reason_p;
	struct sipmsg_str *one = NULL;

	switch (id) {
	case H_VIA:
		if (m->n_via == SIPMSG_VIA_MAX)
			FAIL(400, "Bad Request (too many Via)");
		else
			m->via[m->n_via++] = v;
		break;
	case H_FROM: one = &m->from; break;
	case H_TO: one = &m->to; break;
	case H_CALL_ID: one = &m->call_id; break;
	case H_CSEQ: one = &m->cseq; break;
	case H_CLEN: {
		unsigned long cl;

		if (m->content_length >= 0)
			FAIL(400, "Bad Request (two Content-Length)");
		else if (!parse_uint(v, CLEN_MAX, &cl))
			FAIL(400, "Bad Request (bad Content-Length)");
		else
			m->content_length = (long)cl;
		break;
	}
	case H_CONTACT:
		if (!list_each(v, contact_ok, NULL))
			FAIL(400, "Bad Request (bad Contact)");
		break;
	case H_DIVERSION:
		if (m->n_diversion == SIPMSG_LIST_MAX)
			FAIL(400, "Bad Request (too many Diversion headers)");
		else
			m->diversion[m->n_diversion++] = v;
		break;
	case H_HISTORY_INFO:
		if (m->n_history_info == SIPMSG_LIST_MAX)
			FAIL(400, "Bad Request (too many History-Info headers)");
		else
			m->history_info[m->n_history_info++] = v;
		break;
	case H_OTHER:
		break;
	}
	if (one) {
		if (one->p)
			FAIL(400, "Bad Request (a header that must be single is repeated)");
		else if (!v.n)
			FAIL(400, "Bad Request (empty header)");
		else
			*one = v;
	}
	*status_p = status;
	*reason_p = reason;
}

/* From / To: one name-addr with a valid URI. */
static bool address_ok(struct sipmsg_str v, bool *tag)
{
	struct sipmsg_str uri, params;

	if (!name_addr_uri(v, &uri, &params) || uri_check(uri) != 0)
		return false;
	if (tag)
		*tag = has_param(params, "tag");
	return true;
}

/* See the header. */
int sipmsg_parse(struct sipmsg *m, const char *buf, size_t n, bool stream,
		 const char **why)
{
	const char *p, *end, *hdr_end, *eol;
	enum hdr last = H_OTHER;
	struct sipmsg_str pending = {NULL, 0};
	int status = 0, rl;
	const char *reason = NULL;
	size_t start = skip_crlf(buf, n), rest;
	bool response, ack;

	memset(m, 0, offsetof(struct sipmsg, via));
	m->content_length = -1;
	*why = "not a SIP message";
	buf += start;
	n -= start;
	eol = find_crlf(buf, n);
	/* Responses and ACKs are not read further than their first line; they
	 * are still dropped whole when their headers never end. Other
	 * requests find the end on the way through their header lines. */
	response = n >= 4 && !memcmp(buf, "SIP/", 4);
	ack = n >= 4 && !memcmp(buf, "ACK ", 4);
	if (!eol || ((response || ack) && !headers_end_after(eol, buf + n))) {
		*why = "no end of headers";
		return -1;
	}
	if (response) {
		m->response = true;
		return 0;
	}
	rl = request_line(m, buf, (size_t)(eol - buf));
	if (rl < 0) {
		*why = "no SIP request line";
		return -1;
	}
	if (rl)
		FAIL(rl, "Version Not Supported");
	/* An ACK is never answered (it acknowledges our 302, or nothing):
	 * half of a redirect server's traffic needs no more reading. */
	if (!rl && m->method == SIPMSG_ACK) {
		*why = NULL;
		return 0;
	}
	/* header lines up to the empty one; a line starting with whitespace
	 * continues the last */
	end = buf + n;
	hdr_end = NULL;
	for (p = eol + 2; !hdr_end; p = eol + 2) {
		const char *colon;
		struct sipmsg_str name;
		bool bad = false;

		eol = line_end(p, end, &bad);
		if (!eol) {
			*why = "no end of headers";
			return -1;
		}
		if (eol == p) {
			hdr_end = p - 2;
			continue;
		}
		if (bad)
			FAIL(400, "Bad Request (control character in a header)");
		if (*p == ' ' || *p == '\t') {
			if (!pending.p) {
				FAIL(400, "Bad Request (continuation line without a header)");
				continue;
			}
			pending.n = (size_t)(eol - pending.p);
			continue;
		}
		if (pending.p)
			take_header(m, last, trim(pending.p, pending.n), &status, &reason);
		pending = (struct sipmsg_str){NULL, 0};
		/* the usual line: token characters, optional whitespace, the
		 * colon; read once (a line that is not, is judged below) */
		name.p = p;
		for (colon = p; colon < eol && is_token(*colon); colon++)
			;
		name.n = (size_t)(colon - p);
		while (colon < eol && is_ws(*colon))
			colon++;
		if (!name.n || colon == eol || *colon != ':') {
			colon = memchr(p, ':', (size_t)(eol - p));
			if (!colon) {
				FAIL(400, "Bad Request (header line without a colon)");
				continue;
			}
			name = trim(p, (size_t)(colon - p));
			FAIL(400, "Bad Request (bad header name)");
		}
		last = header_id(name);
		pending = (struct sipmsg_str){colon + 1, (size_t)(eol - colon - 1)};
	}
	if (pending.p)
		take_header(m, last, trim(pending.p, pending.n), &status,
			    &reason);
	if (!m->n_via) {
		*why = "no Via";
		return -1;
	}
	if (!parse_top_via(m)) {
		*why = "unparsable Via";
		return -1;
	}
	/* everything needed to answer is known from here on */
	if (!m->call_id.p)
		FAIL(400, "Bad Request (no Call-ID)");
	if (!m->cseq.p)
		FAIL(400, "Bad Request (no CSeq)");
	if (!m->from.p)
		FAIL(400, "Bad Request (no From)");
	if (!m->to.p)
		FAIL(400, "Bad Request (no To)");
	if (m->cseq.p) {
		size_t i = 0;
		unsigned long num;
		struct sipmsg_str meth;

		while (i < m->cseq.n && m->cseq.p[i] >= '0' && m->cseq.p[i] <= '9')
			i++;
		meth = trim(m->cseq.p + i, m->cseq.n - i);
		if (i == 0 || i == m->cseq.n || !is_ws(m->cseq.p[i]) ||
		    !parse_uint((struct sipmsg_str){m->cseq.p, i}, 0x7fffffffUL, &num))
			FAIL(400, "Bad Request (bad CSeq)");
		else if (meth.n != m->method_name.n ||
			 memcmp(meth.p, m->method_name.p, meth.n))
			FAIL(400, "Bad Request (CSeq method differs)");
		else
			m->cseq_num = (uint32_t)num;
	}
	if (m->from.p && !address_ok(m->from, NULL))
		FAIL(400, "Bad Request (bad From)");
	if (m->to.p && !address_ok(m->to, &m->to_tag))
		FAIL(400, "Bad Request (bad To)");
	switch (uri_check(m->ruri)) {
	case 0:
		break;
	case 416:
		FAIL(416, "Unsupported URI Scheme");
		break;
	default:
		FAIL(400, "Bad Request (bad Request-URI)");
	}
	rest = n - (size_t)(hdr_end + 4 - buf);
	if (m->content_length >= 0 &&
	    (size_t)m->content_length + (size_t)(hdr_end + 4 - buf) > SIPMSG_MAX) {
		FAIL(513, "Message Too Large");
	} else if (m->content_length < 0) {
		m->body = (struct sipmsg_str){hdr_end + 4, stream ? 0 : rest};
	} else if ((size_t)m->content_length > rest) {
		FAIL(400, "Bad Request (body shorter than Content-Length)");
	} else {
		m->body = (struct sipmsg_str){hdr_end + 4, (size_t)m->content_length};
	}
	if (status) {
		*why = reason;
		return status;
	}
	*why = NULL;
	return 0;
}

/* --- reading values ----------------------------------------------------------------- */

/* See the header. */
void sipmsg_copy(char *out, size_t len, struct sipmsg_str s)
{
	size_t k;

	if (!len)
		return;
	k = s.n < len - 1 ? s.n : len - 1;
	if (k)
		memcpy(out, s.p, k);
	out[k] = 0;
	/* folded lines read as one */
	for (size_t i = 0; i < k; i++) {
		if (out[i] == '\r' || out[i] == '\n')
			out[i] = ' ';
	}
}

/* Read in place: the parse has checked the URI (no space or control
 * character), and sipuri rejects raw control characters anyway. */
static void user_of(struct sipmsg_str uri, char *out, size_t len)
{
	if (len)
		out[0] = 0;
	if (!len || !uri.p || uri.n >= 1024)
		return;
	if (sipuri_user_n(out, len, uri.p, uri.n) != 0)
		out[0] = 0;
}

/* See the header. */
void sipmsg_ruri_user(const struct sipmsg *m, char *out, size_t len)
{
	user_of(m->ruri, out, len);
}

static void addr_user(struct sipmsg_str v, char *out, size_t len)
{
	struct sipmsg_str uri, params;

	if (len)
		out[0] = 0;
	if (v.p && name_addr_uri(v, &uri, &params))
		user_of(uri, out, len);
}

/* See the header. */
void sipmsg_to_user(const struct sipmsg *m, char *out, size_t len)
{
	addr_user(m->to, out, len);
}

/* See the header. */
void sipmsg_from_user(const struct sipmsg *m, char *out, size_t len)
{
	addr_user(m->from, out, len);
}

/* See the header. */
bool sipmsg_join(const struct sipmsg_str *v, size_t n, char *out, size_t len)
{
	size_t at = 0;

	if (!n || !len)
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t need = v[i].n + (i ? 2 : 0);

		if (at + need + 1 > len)
			return false;
		if (i) {
			memcpy(out + at, ", ", 2);
			at += 2;
		}
		memcpy(out + at, v[i].p, v[i].n);
		at += v[i].n;
	}
	out[at] = 0;
	for (size_t i = 0; i < at; i++) {
		if (out[i] == '\r' || out[i] == '\n')
			out[i] = ' ';
	}
	return true;
}

/* --- responses ------------------------------------------------------------------------ */

/* See the header. */
void sipmsg_reply_addr(const struct sipmsg *m, const struct sockaddr *src,
		       struct sockaddr_storage *dst)
{
	unsigned port = m->via_rport ? 0 : (m->via_port ? m->via_port : 5060);

	memset(dst, 0, sizeof *dst);
	if (src->sa_family == AF_INET6) {
		memcpy(dst, src, sizeof(struct sockaddr_in6));
		if (port)
			((struct sockaddr_in6 *)dst)->sin6_port = htons((uint16_t)port);
	} else {
		memcpy(dst, src, sizeof(struct sockaddr_in));
		if (port)
			((struct sockaddr_in *)dst)->sin_port = htons((uint16_t)port);
	}
}

struct out {
	char *p;
	size_t len, at;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (!n)
		return;
	if (o->full || o->at + n >= o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->at, s, n);
	o->at += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_header(struct out *o, const char *name, struct sipmsg_str v)
{
	if (!v.p)
		return;		/* a 400 for its absence */
	puts_(o, name);
	put(o, v.p, v.n);
	put(o, "\r\n", 2);
}

/* Is the sent-by host the address the request came from? */
static bool via_host_is(const struct sipmsg *m, const struct sockaddr *src)
{
	struct sockaddr_storage ss;
	char tmp[INET6_ADDRSTRLEN + 3];
	struct sipmsg_str h = m->via_host;

	if (h.n >= 2 && h.p[0] == '[') {
		h.p++;
		h.n -= 2;
	}
	if (h.n >= sizeof tmp)
		return false;
	memcpy(tmp, h.p, h.n);
	tmp[h.n] = 0;
	return netaddr_literal(tmp, &ss) == 0 &&
	       netaddr_same_host((const struct sockaddr *)&ss, src);
}

/* See the header. */
size_t sipmsg_echo(char *out, size_t len, const struct sipmsg *m,
		   const struct sockaddr *src, const char *to_tag)
{
	struct out o = {out, len, 0, false};
	const struct sipmsg_str tv = m->top_via;
	char num[16], host[NETADDR_STRLEN];

	/* An ACK is read no further than its request line: no Via to echo,
	 * and nothing is ever answered to it. */
	if (!m->n_via)
		return 0;
	/* the top Via: rport gets the port, received the address */
	puts_(&o, "Via: ");
	if (m->via_rport) {
		put(&o, tv.p, m->via_rport_end);
		unsigned port = netaddr_port(src), k = sizeof num;

		do {
			num[--k] = (char)('0' + port % 10);
			port /= 10;
		} while (port && k > 1);
		num[--k] = '=';
		put(&o, num + k, sizeof num - k);
		put(&o, tv.p + m->via_rport_end, tv.n - m->via_rport_end);
	} else {
		put(&o, tv.p, tv.n);
	}
	if (!via_host_is(m, src)) {
		puts_(&o, ";received=");
		puts_(&o, netaddr_host(src, host, sizeof host));
	}
	put(&o, "\r\n", 2);
	/* the rest of the first Via header field, then the others */
	{
		const struct sipmsg_str v0 = m->via[0];
		size_t done = (size_t)(tv.p + tv.n - v0.p);
		struct sipmsg_str rest;

		while (done < v0.n && (v0.p[done] == ',' || is_ws(v0.p[done])))
			done++;
		rest = (struct sipmsg_str){v0.p + done, v0.n - done};
		if (rest.n)
			put_header(&o, "Via: ", rest);
	}
	for (size_t i = 1; i < m->n_via; i++)
		put_header(&o, "Via: ", m->via[i]);
	put_header(&o, "From: ", m->from);
	if (m->to.p) {
		puts_(&o, "To: ");
		put(&o, m->to.p, m->to.n);
		if (!m->to_tag && to_tag) {
			puts_(&o, ";tag=");
			puts_(&o, to_tag);
		}
		put(&o, "\r\n", 2);
	}
	put_header(&o, "Call-ID: ", m->call_id);
	put_header(&o, "CSeq: ", m->cseq);
	return o.full ? 0 : o.at;
}

/* See the header. */
size_t sipmsg_response(char *out, size_t len, int status, const char *phrase,
		       const char *echo, size_t echo_len, const char *extra)
{
	struct out o = {out, len, 0, false};
	char line[64];

	if (status < 100 || status > 699)
		status = 500;
	memcpy(line, "SIP/2.0 ", 8);
	line[8] = (char)('0' + status / 100);
	line[9] = (char)('0' + status / 10 % 10);
	line[10] = (char)('0' + status % 10);
	line[11] = ' ';
	put(&o, line, 12);
	puts_(&o, phrase);
	put(&o, "\r\n", 2);
	put(&o, echo, echo_len);
	if (extra)
		puts_(&o, extra);
	puts_(&o, "Content-Length: 0\r\n\r\n");
	return o.full ? 0 : o.at;
}

/* See the header. */
void sipmsg_to_tag(const struct sipmsg *m, uint64_t secret, char out[17])
{
	uint64_t h = 14695981039346656037ull ^ secret;	/* FNV-1a */
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < m->call_id.n; i++)
		h = (h ^ (uint8_t)m->call_id.p[i]) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (size_t i = 0; i < m->branch.n; i++)
		h = (h ^ (uint8_t)m->branch.p[i]) * 1099511628211ull;
	for (int i = 15; i >= 0; i--) {
		out[i] = hex[h & 15];
		h >>= 4;
	}
	out[16] = 0;
}
