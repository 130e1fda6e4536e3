/* ctl_ipc.h — umctl's side of the IPC socket: blocking request/reply
 * exchanges with the running umcallrouter (plain sockets, no event loop),
 * each bounded by CTL_IPC_TIMEOUT_MS. */
#ifndef OPENUM_CTL_IPC_H
#define OPENUM_CTL_IPC_H

#include "proto/openum.pb-c.h"

/* Bound on connecting, and on waiting for the reply once the request is
 * sent, in milliseconds. */
#define CTL_IPC_TIMEOUT_MS 3000

/* Both functions return 0 or a positive errno value; on error *cause (when
 * cause is not NULL) is a malloc'd readable reason the caller frees.
 *   ENOENT, ECONNREFUSED  no router at sock_path (returned unchanged so that
 *                         umctl can say "umcallrouter is not running")
 *   ETIMEDOUT             no connection or no reply within the timeout
 *   EPROTO                the router sent an Error envelope or speaks another
 *                         protocol version
 *   ECONNRESET            the router hung up before replying
 *   EBADMSG, EMSGSIZE     the router sent an undecodable frame
 *   EINVAL, ENAMETOOLONG, ENOMEM  as usual */

/* Asks for the router's status. *out (set only on success) is freed with
 * openum__status_reply__free_unpacked(*out, NULL). */
int ctl_ipc_status(const char *sock_path, Openum__StatusReply **out,
		   char **cause);

/* Tells the router that directory object `object` ("umservice",
 * "umipgateway", ...) changed; on success *notified (if not NULL) is the
 * number of UM service instances the router passed the change on to.
 * drop_gw (or NULL): the UM IP gateway whose calls in progress end now. */
int ctl_ipc_config_changed(const char *sock_path, const char *object,
			   const char *drop_gw, unsigned *notified,
			   char **cause);

/* Asks for a Play on Phone call and waits up to timeout_ms for its result
 * (the router answers at once when it cannot be placed). *out (set only on
 * success, whatever the call's outcome) is freed with
 * openum__play_on_phone_result__free_unpacked(*out, NULL). */
int ctl_ipc_play_on_phone(const char *sock_path,
			  const Openum__PlayOnPhoneRequest *r, int timeout_ms,
			  Openum__PlayOnPhoneResult **out, char **cause);

#endif
