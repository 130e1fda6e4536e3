/* popfwd.h — Play on Phone in the router: a request from umctl goes to
 * the least loaded accepting UM service instance under a request_id of the
 * router's; the instance's result goes back to the umctl connection that
 * asked. The router places no call itself.
 *
 * An umctl connection that closes first takes its requests with it (a
 * late result is dropped); an instance connection that closes first has
 * its requests answered at once with a failure; with no instance to ask,
 * the answer is immediate too. Everything runs on the loop thread. */
#ifndef OPENUM_POPFWD_H
#define OPENUM_POPFWD_H

#include <stddef.h>

#include "callrouter/registry.h"
#include "proto/openum.pb-c.h"

struct ipc_conn;
struct popfwd;

/* Requests in progress at once (more are refused with a reason). */
#define POPFWD_MAX_PENDING 64

int popfwd_alloc(struct popfwd **out, struct registry *reg);
/* Forgets every pending request (nothing is sent); NULL is fine. */
void popfwd_free(struct popfwd *p);
/* A PlayOnPhoneRequest from umctl connection `from`: checked, forwarded,
 * or answered at once with the reason it cannot be. */
void popfwd_request(struct popfwd *p, struct ipc_conn *from,
		    const Openum__PlayOnPhoneRequest *m);
/* A PlayOnPhoneResult from instance connection `from`. EPROTO when from is
 * not the instance the request went to (the caller closes it); a result
 * for a request that is no longer pending is dropped (0). */
int popfwd_result(struct popfwd *p, struct ipc_conn *from,
		  const Openum__PlayOnPhoneResult *m);
/* A connection is closing (umctl or instance): see above. Call before the
 * registry forgets the instance. */
void popfwd_conn_gone(struct popfwd *p, struct ipc_conn *c);
/* Requests pending, for tests and status. */
size_t popfwd_pending(const struct popfwd *p);

/* The instance to ask: registered, accepting, below MaxCallsAllowed, the
 * fewest active calls (the first such in registration order). Pure. */
struct reg_instance *popfwd_choose(struct registry *reg);

#endif
