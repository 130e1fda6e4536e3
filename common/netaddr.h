/* netaddr.h — socket address helpers: "[v6]:port" / "v4:port" text for logs
 * and protocol logs, and comparing addresses without their ports. */
#ifndef OPENUM_NETADDR_H
#define OPENUM_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_STRLEN 64

/* "127.0.0.1:5060", "[::1]:5060"; "?" for anything else. */
const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* The host only, IPv6 without brackets. */
const char *netaddr_host(const struct sockaddr *sa, char *buf, size_t len);
unsigned netaddr_port(const struct sockaddr *sa);
/* Same family and address (ports ignored). IPv4-mapped IPv6 addresses are
 * compared as the IPv4 address they carry. */
bool netaddr_same_host(const struct sockaddr *a, const struct sockaddr *b);
/* An IPv4 or IPv6 literal (no brackets) into *ss, port 0; EINVAL for
 * anything else (an FQDN). */
int netaddr_literal(const char *s, struct sockaddr_storage *ss);

/* The local address the kernel would send from toward dst (a connected
 * UDP socket, no packet sent); port 0. 0 or an errno. */
struct sockaddr_storage;
int netaddr_route_source(const struct sockaddr_storage *dst,
			 struct sockaddr_storage *src);

#endif
