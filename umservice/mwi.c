/* mwi.c — unsolicited message-summary NOTIFYs (RFC 3842) to the UM IP
 * gateways of a mailbox's dial plan.
 *
 * Two kinds of state, both keyed by name so nothing points into a routing
 * snapshot that a directory change may replace:
 *
 * - a box (dial plan, mailbox) exists while its counts are to be read: a
 *   change puts it on the read queue for MWI_COALESCE_MS (every change in
 *   that window rides along), then its counts are read on the voicemail
 *   writer's thread; a change during the read marks it dirty and it is read
 *   once more afterwards. Every box waits the same delay, so the read queue
 *   is in deadline order and one timer serves it.
 * - a target (dial plan, mailbox, gateway) exists while a NOTIFY is to be
 *   sent, out, or waiting for a retry. Different counts replace the ones it
 *   holds: a queued or resolving target sends the latest, one in flight
 *   sends again when it is answered, and one waiting for a retry is sent at
 *   once with the new counts and a fresh retry budget. The same counts again
 *   (a refresh meanwhile) change nothing, so the backoff goes on. A target
 *   that has nothing left to do is freed.
 *
 * At most MWI_MAX_INFLIGHT targets are resolving or sending at once, so a
 * refresh of thousands of mailboxes trickles out instead of flooding the
 * gateways; the rest wait on the send queue in order.
 *
 * NOTIFYs go over TCP (Exchange UM signals over TCP or TLS, never UDP) from
 * the service's agent of the destination's family; TLS for SIPSecured and
 * Secured dial plans waits for TLS listeners. The address comes from the
 * outbound connection policy (common/outconn.h): the families allowed by
 * the gateway's IPAddressFamily and served by a listener of the service,
 * IPv6 first, addresses on the bad-address list skipped, staggered
 * connects. An address that then leaves the NOTIFY unanswered goes on the
 * list and the policy looks once more before the round counts as failed.
 * sofia binds the outgoing connection to the first listening address of
 * the family (Via shows it); the Contact carries the address the kernel
 * routes toward the gateway, or ExternalHostFqdn. */
#define LOG_MODULE "mwi"
#include "umservice/mwi.h"
#include "common/daemon.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/outconn.h"
#include "common/rtab.h"
#include "common/sipl.h"
#include "common/vmwriter.h"
#include "umservice/outreq.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#define HASH_SIZE 1024u
#define MAILBOX_MAX 21

enum tstate {
	T_QUEUED,	/* on the send queue */
	T_CONNECTING,	/* the outbound policy is finding an address */
	T_SENDING,	/* NOTIFY out, attempt timer running */
	T_WAITING,	/* retry timer running */
};

struct target {
	struct mwi *m;
	struct target *prev, *next;	/* every live target (m->targets) */
	struct target *hnext;		/* hash chain, while in the table */
	struct target *qnext;		/* send queue */
	char dialplan[DIR_NAME_MAX + 1];
	char mailbox[MAILBOX_MAX];
	char gw[DIR_NAME_MAX + 1];
	struct vm_counts counts;	/* the latest; what the next NOTIFY says */
	struct vm_counts sent;		/* what the NOTIFY out says */
	enum tstate st;
	bool in_table;
	bool again;			/* newer counts came while one was out */
	bool done;			/* closing: nothing more to do */
	unsigned retries;		/* failed rounds since the last counts */
	/* the current round */
	char gwaddr[256];		/* the gateway's Address */
	unsigned port;
	unsigned fams;			/* OUTCONN_V4/_V6 usable toward it */
	unsigned policy_runs;		/* outconn rounds in this round */
	struct outconn_req *oreq;	/* while T_CONNECTING */
	struct sockaddr_storage addr;	/* where the NOTIFY goes */
	nta_outgoing_t *orq;
	nta_agent_t *agent;
	char dest[300];			/* "[::1]:5070" or the FQDN, for logs */
	uv_timer_t timer;
};

struct box {
	struct box *hnext;		/* hash chain */
	struct box *qnext;		/* read queue */
	char dialplan[DIR_NAME_MAX + 1];
	char mailbox[MAILBOX_MAX];
	uint64_t due;			/* uv_now() when to read */
	bool queued, reading, dirty;
};

/* One counts read on the writer's thread; owns copies of the names. */
struct read_job {
	struct mwi *m;
	char dialplan[DIR_NAME_MAX + 1];
	char mailbox[MAILBOX_MAX];
	struct vm_counts counts;
};

struct refresh_job {
	struct mwi *m;
	char *dir_path;
	struct mwi_mailbox *boxes;
	size_t n;
};

struct mwi {
	uv_loop_t *loop;
	struct sipl *sip;
	struct vmwriter *vm;
	struct rtab *(*table_h)(void *arg);
	void *table_arg;
	char *dir_path;
	unsigned refresh_s;
	char fqdn[256];
	struct outconn *oc;

	struct target *targets;		/* every live target */
	struct target *thash[HASH_SIZE];
	struct target *q_head, *q_tail;	/* send queue */
	unsigned inflight;
	bool pumping;

	struct box *bhash[HASH_SIZE];
	struct box *rq_head, *rq_tail;	/* read queue */
	uv_timer_t read_timer;
	uv_timer_t refresh_timer;
	bool refreshing;

	unsigned long long sent;
	unsigned handles;		/* open uv handles (ours and targets') */
	unsigned jobs;			/* writer jobs whose callback is due */
	bool closing;
};

static void pump(struct mwi *m);
static void retry_due(uv_timer_t *t);
static void attempt_timeout(uv_timer_t *t);
static int notify_cb(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
		     sip_t const *sip);

/* ---- pure helpers ---------------------------------------------------------- */

/* What a final status means for the sender. */
enum mwi_outcome mwi_outcome_of(int status)
{
	if (status >= 200 && status < 300)
		return MWI_DELIVERED;
	if (status < 200 || status == 408 || (status >= 500 && status < 600))
		return MWI_RETRY;
	return MWI_REFUSED;
}

/* 5 s, 10 s, 20 s, ... capped at MWI_RETRY_MAX_MS; 0 past MWI_RETRY_COUNT. */
unsigned mwi_retry_delay_ms(unsigned n)
{
	unsigned long long d = MWI_RETRY_FIRST_MS;

	if (n == 0 || n > MWI_RETRY_COUNT)
		return 0;
	for (unsigned i = 1; i < n && d < MWI_RETRY_MAX_MS; i++)
		d *= 2;
	return d > MWI_RETRY_MAX_MS ? MWI_RETRY_MAX_MS : (unsigned)d;
}

/* The account URI of a mailbox at host (IPv6 literals get brackets). */
int mwi_account_uri(char *buf, size_t len, const char *ext, const char *host)
{
	bool v6 = strchr(host, ':') != NULL && host[0] != '[';
	int n = snprintf(buf, len, "sip:%s@%s%s%s", ext, v6 ? "[" : "", host,
			 v6 ? "]" : "");

	return n < 0 || (size_t)n >= len ? ENOSPC : 0;
}

/* The simple-message-summary body. */
int mwi_body(char *buf, size_t len, const char *account,
	     const struct vm_counts *c)
{
	int n = snprintf(buf, len,
			 "Messages-Waiting: %s\r\n"
			 "Message-Account: %s\r\n"
			 "Voice-Message: %u/%u (%u/%u)\r\n",
			 c->new_msgs ? "yes" : "no", account, c->new_msgs,
			 c->old_msgs, c->urgent_new, c->urgent_old);

	return n < 0 || (size_t)n >= len ? ENOSPC : 0;
}

/* The families (OUTCONN_V4/_V6) usable toward a gateway: its
 * IPAddressFamily and the service's listeners both allow them. */
unsigned mwi_families(enum dir_af af, bool have_v4, bool have_v6)
{
	unsigned f = 0;

	if (have_v6 && af != DIR_AF_IPV4ONLY)
		f |= OUTCONN_V6;
	if (have_v4 && af != DIR_AF_IPV6ONLY)
		f |= OUTCONN_V4;
	return f;
}

/* Whether gateway gw carries the NOTIFYs of dialplan. */
static bool gw_carries(const struct classify_ctx *ctx,
		       const struct dir_gateway *gw, const char *dialplan)
{
	if (!gw->mwi_allowed || gw->status != DIR_GW_ENABLED)
		return false;
	for (size_t h = 0; h < ctx->n_huntgroups; h++) {
		const struct dir_huntgroup *hg = &ctx->huntgroups[h];

		if (!strcasecmp(hg->dialplan, dialplan) &&
		    !strcasecmp(hg->gateway, gw->name))
			return true;
	}
	return false;
}

/* Gateways that carry a dial plan's NOTIFYs. */
size_t mwi_gateways(const struct rtab *t, const char *dialplan, size_t *idx,
		    size_t max)
{
	struct classify_ctx ctx;
	size_t n = 0;

	if (!t || !dialplan)
		return 0;
	rtab_classify_ctx(t, &ctx);
	for (size_t g = 0; g < rtab_gateway_count(t); g++) {
		if (!gw_carries(&ctx, rtab_gateway(t, g), dialplan))
			continue;
		if (n < max)
			idx[n] = g;
		n++;
	}
	return n;
}

/* Every enabled mailbox with its counts (writer thread). */
int mwi_collect(const char *dir_path, struct vmstore *vs,
		struct mwi_mailbox **out, size_t *n_out)
{
	struct dir *d = NULL;
	struct dir_dialplan *dps = NULL;
	struct mwi_mailbox *boxes = NULL;
	size_t n_dp = 0, n = 0, cap = 0;
	char *cause = NULL;
	int err;

	err = dir_open(&d, dir_path, 0, NULL, &cause);
	if (err)
		goto out;
	err = dir_dialplan_list(d, &dps, &n_dp);
	for (size_t i = 0; !err && i < n_dp; i++) {
		struct dir_mailbox *mb = NULL;
		size_t n_mb = 0;

		err = dir_mailbox_list(d, dps[i].name, &mb, &n_mb);
		for (size_t k = 0; !err && k < n_mb; k++) {
			struct mwi_mailbox *b;

			if (!mb[k].enabled)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct mwi_mailbox *p = realloc(boxes, nc * sizeof *p);

				if (!p) {
					err = ENOMEM;
					break;
				}
				boxes = p;
				cap = nc;
			}
			b = &boxes[n];
			memset(b, 0, sizeof *b);
			snprintf(b->dialplan, sizeof b->dialplan, "%s", mb[k].dialplan);
			snprintf(b->extension, sizeof b->extension, "%s",
				 mb[k].extension);
			err = vmstore_counts(vs, b->extension, b->dialplan, &b->counts);
			if (!err)
				n++;
		}
		free(mb);
	}
out:
	if (cause) {
		log_warn("MWI refresh: %s", cause);
		free(cause);
	}
	free(dps);
	dir_close(d);
	if (err) {
		free(boxes);
		return err;
	}
	*out = boxes;
	*n_out = n;
	return 0;
}

/* Removes --mwi-refresh from argv. */
int mwi_take_args(int *argc, char **argv, unsigned *refresh_s)
{
	return daemon_take_seconds(argc, argv, "--mwi-refresh",
				   MWI_REFRESH_MAX_S, refresh_s);
}

void mwi_usage(FILE *f)
{
	fprintf(f, "  --mwi-refresh SECONDS (umservice) send every mailbox's message "
		"waiting\n"
		"                       state this often (1-%u, default %u)\n",
		MWI_REFRESH_MAX_S, MWI_REFRESH_DEFAULT_S);
}

/* ---- tables ---------------------------------------------------------------- */

static unsigned hash3(const char *a, const char *b, const char *c)
{
	const char *parts[3] = {a, b, c};
	uint32_t h = 2166136261u;

	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i]; p && *p; p++) {
			int ch = *p >= 'A' && *p <= 'Z' ? *p + 32 : *p;

			h = (h ^ (uint8_t)ch) * 16777619u;
		}
		h = (h ^ 0x1f) * 16777619u;
	}
	return h % HASH_SIZE;
}

static struct box *box_find(struct mwi *m, const char *dp, const char *mbx,
			    struct box ***slot)
{
	struct box **pp = &m->bhash[hash3(dp, mbx, NULL)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (!strcasecmp((*pp)->dialplan, dp) && !strcmp((*pp)->mailbox, mbx))
			break;
	}
	if (slot)
		*slot = pp;
	return *pp;
}

static void box_free(struct mwi *m, struct box *b)
{
	struct box **pp;

	if (box_find(m, b->dialplan, b->mailbox, &pp) == b)
		*pp = b->hnext;
	free(b);
}

static struct target **target_slot(struct mwi *m, const char *dp,
				   const char *mbx, const char *gw)
{
	struct target **pp = &m->thash[hash3(dp, mbx, gw)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (!strcasecmp((*pp)->dialplan, dp) && !strcmp((*pp)->mailbox, mbx) &&
		    !strcasecmp((*pp)->gw, gw))
			break;
	}
	return pp;
}

static void handle_closed(uv_handle_t *h);

static void maybe_free_module(struct mwi *m)
{
	if (m->closing && m->handles == 0 && m->jobs == 0) {
		free(m->dir_path);
		free(m);
	}
}

static void target_closed(uv_handle_t *h)
{
	struct target *tg = h->data;
	struct mwi *m = tg->m;

	free(tg);
	m->handles--;
	maybe_free_module(m);
}

/* The target has nothing left to do: out of the table, freed once its timer
 * has closed. */
static void target_done(struct target *tg)
{
	struct mwi *m = tg->m;

	if (tg->done)
		return;
	tg->done = true;
	if (tg->in_table) {
		struct target **pp = target_slot(m, tg->dialplan, tg->mailbox, tg->gw);

		if (*pp == tg)
			*pp = tg->hnext;
		tg->in_table = false;
	}
	if (tg->prev)
		tg->prev->next = tg->next;
	else
		m->targets = tg->next;
	if (tg->next)
		tg->next->prev = tg->prev;
	if (tg->orq) {
		nta_outgoing_destroy(tg->orq);
		tg->orq = NULL;
	}
	outconn_cancel(tg->oreq);
	tg->oreq = NULL;
	uv_close((uv_handle_t *)&tg->timer, target_closed);
}

static void enqueue(struct target *tg)
{
	struct mwi *m = tg->m;

	tg->st = T_QUEUED;
	tg->qnext = NULL;
	if (m->q_tail)
		m->q_tail->qnext = tg;
	else
		m->q_head = tg;
	m->q_tail = tg;
}

/* ---- one NOTIFY -------------------------------------------------------------- */

static void log_result(struct target *tg, enum log_level level, int status,
		       const char *phrase, const char *next)
{
	const struct vm_counts *c = &tg->sent;
	enum mwi_outcome o = mwi_outcome_of(status);
	char code[16] = "";

	if (status)
		snprintf(code, sizeof code, "%d ", status);
	log_write(level, LOG_MODULE,
		  "NOTIFY for mailbox %s (dial plan %s) via gateway %s at %s: "
		  "Messages-Waiting %s, Voice-Message %u/%u (%u/%u): %s, %s%s%s%s",
		  tg->mailbox, tg->dialplan, tg->gw, tg->dest,
		  c->new_msgs ? "yes" : "no", c->new_msgs, c->old_msgs,
		  c->urgent_new, c->urgent_old,
		  o == MWI_DELIVERED ? "delivered"
		  : o == MWI_REFUSED ? "refused" : "failed",
		  code, phrase ? phrase : "", next ? "; " : "", next ? next : "");
}

/* The round is over (delivered, refused, or failed on every address):
 * what next. */
static void round_over(struct target *tg, enum mwi_outcome o, int status,
		       const char *phrase, bool log_it)
{
	struct mwi *m = tg->m;
	char next[96] = "";
	enum log_level level = o == MWI_DELIVERED ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;

	m->inflight--;
	tg->policy_runs = 0;
	if (m->closing) {
		target_done(tg);
		return;
	}
	if (tg->again) {
		tg->again = false;
		tg->retries = 0;
		if (o != MWI_DELIVERED)
			snprintf(next, sizeof next, "newer counts go now");
		if (log_it)
			log_result(tg, level, status, phrase, next[0] ? next : NULL);
		enqueue(tg);
		return;
	}
	if (o == MWI_RETRY) {
		unsigned d = mwi_retry_delay_ms(++tg->retries);

		if (d) {
			snprintf(next, sizeof next, "retry %u of %u in %u s",
				 tg->retries, MWI_RETRY_COUNT, d / 1000);
			if (log_it)
				log_result(tg, level, status, phrase, next);
			tg->st = T_WAITING;
			uv_update_time(m->loop);	/* may run in a sofia callback */
			uv_timer_start(&tg->timer, retry_due, d, 0);
			return;
		}
		snprintf(next, sizeof next, "giving up after %u retries (the next "
			 "change or refresh tries again)", MWI_RETRY_COUNT);
	}
	if (log_it)
		log_result(tg, level, status, phrase, next[0] ? next : NULL);
	target_done(tg);
}

/* Builds and sends the NOTIFY of tg to tg->addr: 0 or an errno. */
static int send_one(struct target *tg)
{
	struct mwi *m = tg->m;
	char account[300], body[600];
	struct outreq r = {
		.method = "NOTIFY", .addr = &tg->addr, .gw_host = tg->gwaddr,
		.gw_port = tg->port, .user = tg->mailbox, .fqdn = m->fqdn,
		.event = "message-summary",
		/* Unsolicited: no subscription exists, so none is active;
		 * "timeout" lets a peer that wants one subscribe at once
		 * (RFC 6665 §4.1.3). */
		.substate = "terminated;reason=timeout",
		.content_type = "application/simple-message-summary",
		.body = body,
	};
	int err;

	if (mwi_account_uri(account, sizeof account, tg->mailbox, tg->gwaddr) ||
	    mwi_body(body, sizeof body, account, &tg->sent))
		return ENOSPC;
	tg->orq = outreq_send(m->sip, &r, notify_cb, (nta_outgoing_magic_t *)tg,
			      &err);
	return tg->orq ? 0 : err;
}

static void connect_round(struct target *tg);

/* Sends the NOTIFY to the address the outbound policy found. */
static void send_to(struct target *tg)
{
	struct mwi *m = tg->m;
	const struct sockaddr_storage *a = &tg->addr;
	nta_agent_t *agent = sipl_agent(m->sip, a->ss_family == AF_INET6
							? SIPL_FAMILY_IPV6
							: SIPL_FAMILY_IPV4);
	char why[96];
	int err;

	netaddr_str((const struct sockaddr *)a, tg->dest, sizeof tg->dest);
	tg->sent = tg->counts;
	err = send_one(tg);
	if (err == ENOENT) {
		round_over(tg, MWI_RETRY, 0, "(not sent: no listener of the "
			   "address's family)", true);
		return;
	}
	if (err) {
		snprintf(why, sizeof why, "(not sent: %s)", strerror(err));
		round_over(tg, MWI_RETRY, 0, why, true);
		return;
	}
	tg->st = T_SENDING;
	tg->agent = agent;
	uv_update_time(m->loop);	/* may run in a sofia callback */
	uv_timer_start(&tg->timer, attempt_timeout, MWI_ATTEMPT_TIMEOUT_MS, 0);
}

/* no_answer: nothing came back from the address (transport error or
 * timeout), so it goes on the bad-address list and the policy looks once
 * more, skipping it. */
static void attempt_over(struct target *tg, int status, const char *phrase,
			 bool no_answer)
{
	struct mwi *m = tg->m;
	enum mwi_outcome o = mwi_outcome_of(status);

	tg->agent = NULL;
	if (o == MWI_DELIVERED)
		m->sent++;
	if (no_answer && !m->closing) {
		outconn_mark_bad(m->oc, (const struct sockaddr *)&tg->addr,
				 "a NOTIFY sent there got no answer");
		if (tg->policy_runs < 2) {
			log_result(tg, LOG_LEVEL_WARN, status, phrase,
				   "trying the gateway's other addresses");
			connect_round(tg);
			pump(m);
			return;
		}
	}
	round_over(tg, o, status, phrase, true);
	pump(m);
}

static int notify_cb(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
		     sip_t const *sip)
{
	struct target *tg = (struct target *)magic;
	int status = nta_outgoing_status(orq);
	/* nta's own answers (transport error, timeout): nothing came from
	 * the gateway. */
	bool no_answer = !sip || nta_sip_is_internal(sip);
	char phrase[96];

	if (status < 200)
		return 0;
	snprintf(phrase, sizeof phrase, "%s",
		 sip && sip->sip_status && sip->sip_status->st_phrase
			 ? sip->sip_status->st_phrase : "");
	nta_outgoing_destroy(orq);
	tg->orq = NULL;
	uv_timer_stop(&tg->timer);
	attempt_over(tg, status, phrase, no_answer);
	return 0;
}

static void attempt_timeout(uv_timer_t *t)
{
	struct target *tg = t->data;
	char phrase[64];

	if (tg->orq) {
		nta_outgoing_destroy(tg->orq);
		tg->orq = NULL;
	}
	snprintf(phrase, sizeof phrase, "(no answer within %u s)",
		 MWI_ATTEMPT_TIMEOUT_MS / 1000);
	attempt_over(tg, 408, phrase, true);
}

static void retry_due(uv_timer_t *t)
{
	struct target *tg = t->data;

	enqueue(tg);
	pump(tg->m);
}

/* ---- rounds ------------------------------------------------------------------ */

static void connected(void *arg, const struct outconn_result *r)
{
	struct target *tg = arg;
	struct mwi *m = tg->m;
	char why[300];

	tg->oreq = NULL;
	if (r->err) {
		snprintf(why, sizeof why, "(%s)", r->why);
		round_over(tg, MWI_RETRY, 0, why, true);
	} else {
		tg->addr = r->addr;
		send_to(tg);
	}
	pump(m);
}

/* The outbound policy finds the address to send to (the gateway's
 * families, IPv6 first, bad addresses skipped, staggered connects). */
static void connect_round(struct target *tg)
{
	struct mwi *m = tg->m;
	char who[200], why[300];
	int err;

	tg->st = T_CONNECTING;
	tg->policy_runs++;
	tg->sent = tg->counts;	/* what this round is about, for the logs */
	snprintf(who, sizeof who, "NOTIFY for mailbox %s via gateway %s",
		 tg->mailbox, tg->gw);
	err = outconn_start(m->oc, tg->gwaddr, tg->port, tg->fams, who,
			    connected, tg, &tg->oreq);
	if (err) {
		snprintf(why, sizeof why, "(outbound connection: %s)",
			 strerror(err));
		round_over(tg, MWI_RETRY, 0, why, true);
	}
}

/* Starts a round: the gateway as the current snapshot has it (it may have
 * been changed or removed since the counts were read), then the outbound
 * policy. */
static void start_round(struct target *tg)
{
	struct mwi *m = tg->m;
	struct rtab *t = m->table_h(m->table_arg);
	const struct dir_gateway *gw = NULL;

	if (t) {
		struct classify_ctx ctx;

		rtab_classify_ctx(t, &ctx);
		for (size_t g = 0; g < rtab_gateway_count(t); g++) {
			if (!strcasecmp(rtab_gateway(t, g)->name, tg->gw) &&
			    gw_carries(&ctx, rtab_gateway(t, g), tg->dialplan)) {
				gw = rtab_gateway(t, g);
				break;
			}
		}
	}
	if (!gw) {
		log_info("NOTIFY for mailbox %s (dial plan %s) via gateway %s "
			 "dropped: the gateway no longer carries the dial plan's "
			 "message waiting indicator", tg->mailbox, tg->dialplan,
			 tg->gw);
		target_done(tg);
		return;
	}
	snprintf(tg->gwaddr, sizeof tg->gwaddr, "%s", gw->address);
	snprintf(tg->dest, sizeof tg->dest, "%s", gw->address);
	tg->port = gw->port;
	tg->fams = mwi_families(gw->af, sipl_agent(m->sip, SIPL_FAMILY_IPV4) != NULL,
				sipl_agent(m->sip, SIPL_FAMILY_IPV6) != NULL);
	if (!tg->fams) {
		/* Nothing to send it over: the service does not listen on any
		 * family the gateway's IPAddressFamily allows. Not retried: a
		 * listener change is followed by the next change or
		 * refresh. */
		log_warn("NOTIFY for mailbox %s (dial plan %s) via gateway %s "
			 "(%s, IPAddressFamily %s) not sent: the UM service has "
			 "no listener of a family the gateway allows",
			 tg->mailbox, tg->dialplan, tg->gw, gw->address,
			 dir_af_name(gw->af));
		target_done(tg);
		return;
	}
	m->inflight++;
	tg->policy_runs = 0;
	connect_round(tg);
}

/* Starts queued rounds while fewer than MWI_MAX_INFLIGHT are out. Not
 * re-entered: a round that ends at once inside it loops here instead. */
static void pump(struct mwi *m)
{
	if (m->pumping || m->closing)
		return;
	m->pumping = true;
	while (m->q_head && m->inflight < MWI_MAX_INFLIGHT) {
		struct target *tg = m->q_head;

		m->q_head = tg->qnext;
		if (!m->q_head)
			m->q_tail = NULL;
		tg->qnext = NULL;
		start_round(tg);
	}
	m->pumping = false;
}

/* New counts for one mailbox toward one gateway. */
static void target_update(struct mwi *m, const char *dp, const char *mbx,
			  const char *gw, const struct vm_counts *c)
{
	struct target **pp = target_slot(m, dp, mbx, gw), *tg = *pp;

	if (!tg) {
		tg = calloc(1, sizeof *tg);
		if (!tg) {
			log_error("out of memory: no NOTIFY for mailbox %s via %s",
				  mbx, gw);
			return;
		}
		tg->m = m;
		snprintf(tg->dialplan, sizeof tg->dialplan, "%s", dp);
		snprintf(tg->mailbox, sizeof tg->mailbox, "%s", mbx);
		snprintf(tg->gw, sizeof tg->gw, "%s", gw);
		uv_timer_init(m->loop, &tg->timer);
		tg->timer.data = tg;
		m->handles++;
		*pp = tg;
		tg->in_table = true;
		tg->next = m->targets;
		if (m->targets)
			m->targets->prev = tg;
		m->targets = tg;
		tg->counts = *c;
		enqueue(tg);
		return;
	}
	/* The same counts again (a refresh while this one is still being
	 * sent or retried): nothing new to say, and the backoff goes on. */
	if (memcmp(c, &tg->counts, sizeof *c) == 0)
		return;
	tg->counts = *c;
	tg->retries = 0;
	switch (tg->st) {
	case T_QUEUED:
	case T_CONNECTING:
		break;		/* the latest counts go when it is sent */
	case T_SENDING:
		if (memcmp(c, &tg->sent, sizeof *c) != 0)
			tg->again = true;
		break;
	case T_WAITING:
		/* A newer change supersedes the pending retry. */
		uv_timer_stop(&tg->timer);
		enqueue(tg);
		break;
	}
}

/* A mailbox's counts: to each gateway of its dial plan. */
static void apply_counts(struct mwi *m, const char *dp, const char *mbx,
			 const struct vm_counts *c)
{
	struct rtab *t = m->table_h(m->table_arg);
	size_t cap, n, *idx;

	if (!t)
		return;
	if (!rtab_mailbox_name(t, dp, mbx)) {
		log_debug("mailbox %s (dial plan %s) is not an enabled mailbox: no "
			  "NOTIFY", mbx, dp);
		return;
	}
	cap = rtab_gateway_count(t);
	idx = calloc(cap ? cap : 1, sizeof *idx);
	if (!idx)
		return;
	n = mwi_gateways(t, dp, idx, cap);
	if (!n)
		log_debug("no gateway carries the message waiting indicator of dial "
			  "plan %s (mailbox %s)", dp, mbx);
	for (size_t i = 0; i < n && i < cap; i++)
		target_update(m, dp, mbx, rtab_gateway(t, idx[i])->name, c);
	free(idx);
}

/* ---- reading counts ---------------------------------------------------------- */

static void read_timer_cb(uv_timer_t *t);

static void box_queue(struct mwi *m, struct box *b)
{
	uv_update_time(m->loop);	/* may run in a sofia callback */
	b->due = uv_now(m->loop) + MWI_COALESCE_MS;
	b->queued = true;
	b->qnext = NULL;
	if (m->rq_tail)
		m->rq_tail->qnext = b;
	else
		m->rq_head = b;
	m->rq_tail = b;
	if (m->rq_head == b)
		uv_timer_start(&m->read_timer, read_timer_cb, MWI_COALESCE_MS, 0);
}

static int read_fn(struct vmstore *vs, void *arg)
{
	struct read_job *j = arg;

	return vmstore_counts(vs, j->mailbox, j->dialplan, &j->counts);
}

static void read_done(int err, int64_t id, int64_t duration_ms, void *arg)
{
	struct read_job *j = arg;
	struct mwi *m = j->m;
	struct box *b;

	(void)id;
	(void)duration_ms;
	m->jobs--;
	if (m->closing) {
		free(j);
		maybe_free_module(m);
		return;
	}
	if (err)
		log_warn("cannot read the message counts of mailbox %s (dial plan "
			 "%s): %s; no NOTIFY until its next change or refresh",
			 j->mailbox, j->dialplan, strerror(err));
	else
		apply_counts(m, j->dialplan, j->mailbox, &j->counts);
	b = box_find(m, j->dialplan, j->mailbox, NULL);
	if (b) {
		b->reading = false;
		if (b->dirty) {
			b->dirty = false;
			box_queue(m, b);
		} else {
			box_free(m, b);
		}
	}
	free(j);
	pump(m);
}

static void start_read(struct mwi *m, struct box *b)
{
	struct read_job *j = calloc(1, sizeof *j);
	int err = j ? 0 : ENOMEM;

	if (j) {
		j->m = m;
		snprintf(j->dialplan, sizeof j->dialplan, "%s", b->dialplan);
		snprintf(j->mailbox, sizeof j->mailbox, "%s", b->mailbox);
		err = vmwriter_run(m->vm, read_fn, read_done, j);
	}
	if (err) {
		free(j);
		log_warn("cannot queue the message count of mailbox %s (dial plan "
			 "%s): %s; trying again", b->mailbox, b->dialplan,
			 strerror(err));
		box_queue(m, b);
		return;
	}
	m->jobs++;
	b->reading = true;
}

static void read_timer_cb(uv_timer_t *t)
{
	struct mwi *m = t->data;
	uint64_t now = uv_now(m->loop);

	while (m->rq_head && m->rq_head->due <= now) {
		struct box *b = m->rq_head;

		m->rq_head = b->qnext;
		if (!m->rq_head)
			m->rq_tail = NULL;
		b->qnext = NULL;
		b->queued = false;
		start_read(m, b);
	}
	if (m->rq_head)
		uv_timer_start(&m->read_timer, read_timer_cb, m->rq_head->due - now, 0);
}

/* A mailbox's counts may have changed: read them once the burst is over. */
void mwi_mailbox_changed(void *arg, const char *dialplan, const char *mailbox)
{
	struct mwi *m = arg;
	struct box **pp, *b;

	if (!m || m->closing || !dialplan || !mailbox ||
	    strlen(dialplan) > DIR_NAME_MAX || strlen(mailbox) >= MAILBOX_MAX)
		return;
	b = box_find(m, dialplan, mailbox, &pp);
	if (b) {
		if (b->reading)
			b->dirty = true;
		return;		/* queued: this change rides along */
	}
	b = calloc(1, sizeof *b);
	if (!b) {
		log_error("out of memory: no NOTIFY for mailbox %s", mailbox);
		return;
	}
	snprintf(b->dialplan, sizeof b->dialplan, "%s", dialplan);
	snprintf(b->mailbox, sizeof b->mailbox, "%s", mailbox);
	*pp = b;
	box_queue(m, b);
}

/* ---- refresh ----------------------------------------------------------------- */

static int refresh_fn(struct vmstore *vs, void *arg)
{
	struct refresh_job *j = arg;

	return mwi_collect(j->dir_path, vs, &j->boxes, &j->n);
}

static void refresh_done(int err, int64_t id, int64_t duration_ms, void *arg)
{
	struct refresh_job *j = arg;
	struct mwi *m = j->m;

	(void)id;
	(void)duration_ms;
	m->jobs--;
	m->refreshing = false;
	if (!m->closing) {
		if (err) {
			log_warn("MWI refresh: cannot list the mailboxes and their "
				 "counts: %s", strerror(err));
		} else {
			log_info("MWI refresh: %zu mailbox%s", j->n,
				 j->n == 1 ? "" : "es");
			for (size_t i = 0; i < j->n; i++)
				apply_counts(m, j->boxes[i].dialplan,
					     j->boxes[i].extension,
					     &j->boxes[i].counts);
			pump(m);
		}
	}
	free(j->boxes);
	free(j->dir_path);
	free(j);
	maybe_free_module(m);
}

/* Sends every mailbox's state (the refresh timer calls this). */
void mwi_refresh_all(struct mwi *m)
{
	struct refresh_job *j;
	int err;

	if (!m || m->closing)
		return;
	if (m->refreshing) {
		log_info("MWI refresh: the previous one is still running");
		return;
	}
	j = calloc(1, sizeof *j);
	if (!j || !(j->dir_path = strdup(m->dir_path))) {
		free(j);
		log_error("MWI refresh: out of memory");
		return;
	}
	j->m = m;
	err = vmwriter_run(m->vm, refresh_fn, refresh_done, j);
	if (err) {
		log_warn("MWI refresh: cannot queue it: %s", strerror(err));
		free(j->dir_path);
		free(j);
		return;
	}
	m->jobs++;
	m->refreshing = true;
}

static void refresh_timer_cb(uv_timer_t *t)
{
	mwi_refresh_all(t->data);
}

/* ---- life cycle -------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
	struct mwi *m = h->data;

	m->handles--;
	maybe_free_module(m);
}

/* Creates the module; the refresh timer starts at once (first refresh one
 * interval from now). */
int mwi_alloc(struct mwi **out, const struct mwi_config *cfg)
{
	struct mwi *m;
	uint64_t every;

	if (!out || !cfg || !cfg->loop || !cfg->sip || !cfg->vm || !cfg->table_h ||
	    !cfg->directory_path || !cfg->outconn)
		return EINVAL;
	m = calloc(1, sizeof *m);
	if (!m || !(m->dir_path = strdup(cfg->directory_path))) {
		free(m);
		return ENOMEM;
	}
	m->loop = cfg->loop;
	m->sip = cfg->sip;
	m->oc = cfg->outconn;
	m->vm = cfg->vm;
	m->table_h = cfg->table_h;
	m->table_arg = cfg->table_arg;
	m->refresh_s = cfg->refresh_s ? cfg->refresh_s : MWI_REFRESH_DEFAULT_S;
	uv_timer_init(m->loop, &m->read_timer);
	m->read_timer.data = m;
	uv_timer_init(m->loop, &m->refresh_timer);
	m->refresh_timer.data = m;
	m->handles = 2;
	every = (uint64_t)m->refresh_s * 1000u;
	uv_timer_start(&m->refresh_timer, refresh_timer_cb, every, every);
	log_info("message waiting indicator: every mailbox refreshed every %u s",
		 m->refresh_s);
	*out = m;
	return 0;
}

/* ExternalHostFqdn, after every directory change. */
void mwi_configure(struct mwi *m, const char *fqdn)
{
	if (m)
		snprintf(m->fqdn, sizeof m->fqdn, "%s", fqdn ? fqdn : "");
}

/* Drops the NOTIFYs out on an agent that is going away; each is retried. */
void mwi_agent_gone(struct mwi *m, nta_agent_t *agent)
{
	struct target *tg, *next;

	if (!m)
		return;
	for (tg = m->targets; tg; tg = next) {
		next = tg->next;
		if (tg->st != T_SENDING || tg->agent != agent)
			continue;
		if (tg->orq) {
			nta_outgoing_destroy(tg->orq);
			tg->orq = NULL;
		}
		uv_timer_stop(&tg->timer);
		tg->agent = NULL;
		/* No next address now: it may be on this very agent. */
		round_over(tg, MWI_RETRY, 0, "(SIP listener closed)", true);
	}
}

/* NOTIFYs delivered (2xx) since start. */
unsigned long long mwi_sent(const struct mwi *m)
{
	return m ? m->sent : 0;
}

/* Stops everything: NOTIFYs out are dropped (call before the SIP agents
 * go), timers close. The memory goes once the loop has run the close
 * callbacks and the writer has called back every job; until then the
 * call_env hook may still be called and is ignored. */
void mwi_free(struct mwi *m)
{
	if (!m || m->closing)
		return;
	m->closing = true;
	while (m->targets)
		target_done(m->targets);
	m->q_head = m->q_tail = NULL;
	for (size_t i = 0; i < HASH_SIZE; i++) {
		while (m->bhash[i]) {
			struct box *b = m->bhash[i];

			m->bhash[i] = b->hnext;
			free(b);
		}
	}
	m->rq_head = m->rq_tail = NULL;
	uv_close((uv_handle_t *)&m->read_timer, handle_closed);
	uv_close((uv_handle_t *)&m->refresh_timer, handle_closed);
}
