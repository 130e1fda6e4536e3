/* netaddr.c — socket address formatting and comparison. */
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Formats host and port, IPv6 in brackets. */
const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (!netaddr_host(sa, host, sizeof host)[0] || !strcmp(host, "?")) {
		snprintf(buf, len, "?");
		return buf;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", host, netaddr_port(sa));
	else
		snprintf(buf, len, "%s:%u", host, netaddr_port(sa));
	return buf;
}

/* Formats the host literal. */
const char *netaddr_host(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = NULL;

	if (sa && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!a || !inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

/* The port in host order, 0 for unknown families. */
unsigned netaddr_port(const struct sockaddr *sa)
{
	if (sa && sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa && sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static bool mapped_v4(const struct sockaddr *sa, struct in_addr *out)
{
	const struct in6_addr *a6;

	if (sa->sa_family == AF_INET) {
		*out = ((const struct sockaddr_in *)sa)->sin_addr;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!IN6_IS_ADDR_V4MAPPED(a6))
		return false;
	memcpy(out, &a6->s6_addr[12], 4);
	return true;
}

/* Compares two hosts. */
bool netaddr_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	struct in_addr x, y;

	if (!a || !b)
		return false;
	if (mapped_v4(a, &x) && mapped_v4(b, &y))
		return x.s_addr == y.s_addr;
	if (a->sa_family == AF_INET6 && b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

/* See the header. */
int netaddr_literal(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return EINVAL;
}

int netaddr_route_source(const struct sockaddr_storage *dst,
			 struct sockaddr_storage *src)
{
	socklen_t sl = sizeof *src;
	socklen_t dl = dst->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)dst, dl) != 0 ||
	    getsockname(fd, (struct sockaddr *)src, &sl) != 0)
		err = errno;
	close(fd);
	if (!err) {
		if (src->ss_family == AF_INET6)
			((struct sockaddr_in6 *)src)->sin6_port = 0;
		else
			((struct sockaddr_in *)src)->sin_port = 0;
	}
	return err;
}
